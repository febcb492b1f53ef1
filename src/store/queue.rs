//! The queue port: an emitter's queue behind a small boundary (push, start,
//! ack, fail), so that a durable store replaces the in-memory one without
//! touching the worker's state machine. Each store implements it
//! ([`memory`](super::memory), [`journal`](super::journal), `postgres`) and
//! tells the worker what changed through one notice path:
//! [`EventQueue::on_notice`] turns a [`StoreNotice`] into a [`QueueChange`].
//!
//! The queue owns the events waiting to start. Once started, an event belongs
//! to the worker (which tracks its attempts and timers) until it is acked
//! (delivered) or failed (dead-lettered); the queue only counts it, so that the
//! bound covers started events too, and a durable store keeps it stored until
//! then: a crash between start and ack must not lose it.

use std::sync::Arc;
use std::time::SystemTime;

use futures_util::future::BoxFuture;

use crate::error::StoreError;
use crate::model::{DeadLetter, Event};
use crate::store::durable::DurableAck;
use crate::store::journal::JournalNotice;
#[cfg(feature = "postgres")]
use crate::store::postgres::ClusterNotice;
use crate::store::records::StoredCounters;

/// Identifies a started event until it is acked or failed. Tickets increase in
/// the order events are started, which is their emit order.
pub(crate) type Ticket = u64;

/// An event handed to the worker, with the attempts it already had (a stored
/// event resumed after a restart).
#[derive(Debug)]
pub(crate) struct Started {
    pub ticket: Ticket,
    pub event: Arc<Event>,
    pub attempts: u32,
    /// Not to be sent before this: the backoff of a failed attempt, kept by a
    /// store across a restart.
    pub retry_at: Option<SystemTime>,
}

/// An event a full queue gave back.
#[derive(Debug)]
pub(crate) struct Refused {
    pub event: Arc<Event>,
    pub durable: Option<DurableAck>,
}

/// What a detached emitter's queue held.
pub(crate) enum Drained {
    /// In memory: the waiting events (the worker adds the started ones).
    Waiting(Vec<Arc<Event>>),
    /// In a store: every stored event, started ones included, once removed.
    Stored(BoxFuture<'static, Vec<Arc<Event>>>),
}

/// A FIFO of events for one emitter. The methods about persistence do nothing
/// in memory.
pub(crate) trait EventQueue {
    /// Appends an event, or gives it back if the queue is full (started
    /// events count towards the bound). `durable` is told once it is safe.
    fn push(&mut self, event: Arc<Event>, durable: Option<DurableAck>) -> Result<(), Refused>;
    /// Starts the oldest waiting event (`None` also while stored events are
    /// being read back).
    fn start_next(&mut self) -> Option<Started>;
    /// A started event failed an attempt; it had `attempts` so far, and is
    /// not to be sent again before `retry_at`.
    fn attempted(&mut self, _ticket: Ticket, _attempts: u32, _retry_at: SystemTime) {}
    /// A started event was delivered.
    fn ack(&mut self, ticket: Ticket);
    /// An event was given up: a started one (`ticket`), or one that never got
    /// in (queue full). It is kept as `letter` (`None` when dead letters are
    /// not kept).
    fn fail(
        &mut self,
        ticket: Option<Ticket>,
        letter: Option<&DeadLetter>,
        durable: Option<DurableAck>,
    );
    /// Dead letters evicted to make room.
    fn evict_dead_letters(&mut self, _ids: Vec<u64>) {}
    /// Dead letters back at the tail (the caller checked there is room).
    fn redeliver(&mut self, letters: Vec<DeadLetter>);
    /// The emitter was paused or resumed.
    fn set_paused(&mut self, _paused: bool) {}
    /// A new bound; events already held above it stay (only pushes are refused).
    fn set_capacity(&mut self, capacity: usize);
    /// A new dead-letter bound, for a store that keeps it itself (the worker
    /// evicts its own copy).
    fn set_dead_letter_capacity(&mut self, _capacity: usize) {}
    /// Events waiting to start.
    fn waiting(&self) -> usize;
    /// Events held: waiting, or started and not yet acked or failed.
    fn len(&self) -> usize;
    /// How many more events `push` would take now.
    fn room(&self) -> usize;
    /// Holds nothing, and knows it (a store's queue is not idle before it
    /// has read back what is stored).
    fn is_idle(&self) -> bool {
        self.len() == 0
    }
    /// Events held in a store (0 in memory).
    fn stored(&self) -> usize {
        0
    }
    /// Removes every event, for a detach.
    fn drain(&mut self) -> Drained;
    /// Whether events live in a durable store (they stay there at shutdown,
    /// and a crashed worker's successor recovers them).
    fn durable(&self) -> bool {
        false
    }
    /// The worker is stopping (detach, shutdown): let go of the store.
    fn stopping(&mut self) {}
    /// Whether this node may send now (in a cluster: while it holds a valid
    /// lease).
    fn may_deliver(&self) -> bool {
        true
    }
    /// What a notice from this queue's store changes, for the worker to act
    /// on (only the store that sent it gets it).
    fn on_notice(&mut self, _notice: StoreNotice) -> QueueChange {
        QueueChange::Nothing
    }
    /// Asked to give the lease back (a cluster spreading its leases): start
    /// nothing more.
    fn releasing(&self) -> bool {
        false
    }
    /// Gives the lease back; the worker has dropped its started events.
    fn release(&mut self) {}
}

/// What a store's thread tells an emitter's worker, for its queue.
pub(crate) enum StoreNotice {
    Journal(JournalNotice),
    #[cfg(feature = "postgres")]
    Cluster(ClusterNotice),
}

/// What a store's notice means for the worker.
// The lease and cluster variants come from a shared store only.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) enum QueueChange {
    Nothing,
    /// The emitter's stored state, read when it was attached: resume from it
    /// (what this process did before it came stays, the counters add up).
    Recovered(StoredState),
    /// The cluster's state of the emitter (on registering, or with the
    /// lease), counters included: it replaces this node's copy.
    ClusterState(StoredState),
    /// The cluster's dead letters, oldest first: they replace this node's.
    DeadLetters {
        letters: Vec<DeadLetter>,
        next_id: u64,
    },
    /// Paused or resumed on another node.
    Paused(bool),
    /// The lease is gone: drop the started events (stored, the new holder
    /// sends them).
    LeaseLost,
    /// Give the lease back once nothing is in flight.
    Release,
    /// The lease is valid again: send what was held.
    Renewed,
    /// These events could not be written (their callers were told).
    NotStored {
        events: Vec<Arc<Event>>,
        error: StoreError,
    },
}

/// An emitter's state as a store keeps it.
#[derive(Debug, Default)]
pub(crate) struct StoredState {
    pub paused: bool,
    pub dead_letters: Vec<DeadLetter>,
    pub next_dead_letter: u64,
    /// Deliveries, failed attempts and dead letters so far.
    pub counters: StoredCounters,
}

/// What a store writes for an event given up (`EventQueue::fail`), the same
/// for every store; `S` is where the event is stored, if it was.
pub(crate) enum GiveUp<'a, S> {
    /// Keep it as a dead letter, removing its stored event (if any).
    Keep(&'a DeadLetter, Option<S>),
    /// Dead letters are not kept: the stored event just leaves the store.
    Remove(S),
    /// Not kept and not stored: nothing to write.
    Nothing,
}

impl<'a, S> GiveUp<'a, S> {
    pub(crate) fn new(letter: Option<&'a DeadLetter>, stored: Option<S>) -> Self {
        match (letter, stored) {
            (Some(letter), stored) => GiveUp::Keep(letter, stored),
            (None, Some(stored)) => GiveUp::Remove(stored),
            (None, None) => GiveUp::Nothing,
        }
    }
}
