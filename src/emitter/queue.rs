//! The emitter's queue behind a small boundary (push, start, ack, fail), so
//! that a durable store replaces the in-memory one without touching the
//! worker's state machine.
//!
//! The queue owns the events waiting to start. Once started, an event belongs
//! to the worker (which tracks its attempts and timers) until it is acked
//! (delivered) or failed (dead-lettered); the queue only counts it, so that the
//! bound covers started events too, and a durable store keeps it stored until
//! then: a crash between start and ack must not lose it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::future::BoxFuture;

use crate::model::DeadLetter;
use crate::model::Event;
use crate::store::durable::DurableAck;
use crate::store::journal::queue::JournalQueue;

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
    /// The journal's queue, for the writer's notices.
    fn as_journal(&mut self) -> Option<&mut JournalQueue> {
        None
    }
    /// The worker is stopping (detach, shutdown): let go of the store.
    fn stopping(&mut self) {}
    /// Whether this node may send now (in a cluster: while it holds a valid
    /// lease).
    fn may_deliver(&self) -> bool {
        true
    }
    /// The PostgreSQL queue, for the store's notices.
    #[cfg(feature = "postgres")]
    fn as_cluster(&mut self) -> Option<&mut crate::store::postgres::queue::PgQueue> {
        None
    }
}

/// The in-memory queue: a bounded `VecDeque` of waiting events.
#[derive(Debug)]
pub(crate) struct MemoryQueue {
    waiting: VecDeque<Arc<Event>>,
    /// Started and not yet acked or failed.
    started: usize,
    next_ticket: Ticket,
    capacity: usize,
}

impl MemoryQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        MemoryQueue {
            waiting: VecDeque::new(),
            started: 0,
            next_ticket: 0,
            capacity,
        }
    }
}

impl EventQueue for MemoryQueue {
    fn push(&mut self, event: Arc<Event>, durable: Option<DurableAck>) -> Result<(), Refused> {
        if self.len() >= self.capacity {
            return Err(Refused { event, durable });
        }
        self.waiting.push_back(event);
        // In memory, queued is as safe as it gets.
        if let Some(durable) = durable {
            durable.done();
        }
        Ok(())
    }

    fn start_next(&mut self) -> Option<Started> {
        let event = self.waiting.pop_front()?;
        let ticket = self.next_ticket;
        self.next_ticket = self.next_ticket.wrapping_add(1);
        self.started += 1;
        Some(Started {
            ticket,
            event,
            attempts: 0,
            retry_at: None,
        })
    }

    fn ack(&mut self, _: Ticket) {
        self.started = self.started.saturating_sub(1);
    }

    fn fail(
        &mut self,
        ticket: Option<Ticket>,
        _: Option<&DeadLetter>,
        durable: Option<DurableAck>,
    ) {
        if ticket.is_some() {
            self.started = self.started.saturating_sub(1);
        }
        if let Some(durable) = durable {
            durable.done();
        }
    }

    fn redeliver(&mut self, letters: Vec<DeadLetter>) {
        self.waiting.extend(letters.into_iter().map(|l| l.event));
    }

    fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
    }

    fn waiting(&self) -> usize {
        self.waiting.len()
    }

    fn len(&self) -> usize {
        self.waiting.len() + self.started
    }

    fn room(&self) -> usize {
        self.capacity.saturating_sub(self.len())
    }

    fn drain(&mut self) -> Drained {
        Drained::Waiting(self.waiting.drain(..).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RequestId;

    fn event(n: u8) -> Arc<Event> {
        Arc::new(Event::new(
            Arc::from("e"),
            bytes::Bytes::from(vec![n]),
            RequestId::generate(),
        ))
    }

    #[test]
    fn started_events_count_until_acked() {
        let mut queue = MemoryQueue::new(3);
        for n in 0..3 {
            assert!(queue.push(event(n), None).is_ok());
        }
        assert!(
            queue.push(event(9), None).is_err(),
            "bounded, started ones included"
        );
        let first = queue.start_next().map(|s| s.ticket);
        let second = queue.start_next().map(|s| s.ticket);
        assert!(first < second, "tickets follow the emit order");
        assert_eq!((queue.len(), queue.waiting()), (3, 1));
        queue.ack(second.unwrap_or_default());
        assert_eq!(queue.len(), 2);
        assert!(queue.push(event(3), None).is_ok());
        let Drained::Waiting(drained) = queue.drain() else {
            unreachable!("memory queues drain at once")
        };
        let drained: Vec<u8> = drained.iter().map(|e| e.payload()[0]).collect();
        assert_eq!(drained, [2, 3]);
    }
}
