//! An emitter's queue on PostgreSQL, as one node sees it. Every push is an
//! append for the writer; nothing pushed is delivered from memory. Only the
//! lease holder delivers, and it reads the stored events back in sequence
//! order (a window at a time), whichever node emitted them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::{ClusterNotice, ClusterOp, Deadline, Fence, Member, PgStore, State};
use crate::model::DeadLetter;
use crate::model::Event;
use crate::store::durable::DurableAck;
use crate::store::queue::StoredState;
use crate::store::queue::{
    Drained, EventQueue, GiveUp, QueueChange, Refused, Started, StoreNotice, Ticket,
};
use crate::store::records::StoredEvent;
use crate::store::thread::NoticeSink;

/// Events read back per load.
const WINDOW: usize = 1024;

pub(crate) struct PgQueue {
    store: PgStore,
    emitter: Arc<str>,
    token: u64,
    capacity: usize,
    dead_letter_capacity: usize,
    deadline: Arc<Deadline>,
    /// The lease epoch, while this node holds the lease.
    epoch: Option<i64>,
    /// Asked to give the lease back: start nothing more.
    releasing: bool,
    registered: bool,
    head: VecDeque<StoredEvent>,
    /// Every stored event up to here is in `head`, started, or done.
    read_through: u64,
    /// The newest sequence number known to be stored.
    newest: u64,
    loading: bool,
    /// Started events: ticket → sequence number.
    started: HashMap<Ticket, u64>,
    next_ticket: Ticket,
    /// Appends sent and not yet committed.
    pending: usize,
}

impl PgQueue {
    /// Registers this node's worker for `emitter`; its notices go to `worker`.
    pub(crate) fn register(
        store: PgStore,
        emitter: Arc<str>,
        fingerprint: String,
        capacity: usize,
        dead_letter_capacity: usize,
        worker: NoticeSink<ClusterNotice>,
    ) -> Self {
        static TOKENS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let token = TOKENS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let deadline = Arc::new(Deadline::default());
        let member = Member {
            worker,
            token,
            fingerprint,
            epoch: None,
            releasing: false,
            deadline: deadline.clone(),
        };
        let queue = PgQueue {
            store,
            emitter,
            token,
            capacity,
            dead_letter_capacity,
            deadline,
            epoch: None,
            releasing: false,
            registered: false,
            head: VecDeque::new(),
            read_through: 0,
            newest: 0,
            loading: false,
            started: HashMap::new(),
            next_ticket: 0,
            pending: 0,
        };
        queue.send(ClusterOp::Register {
            emitter: queue.emitter.clone(),
            member: Some(member),
        });
        queue
    }

    fn send(&self, op: ClusterOp) {
        if let Err(error) = self.store.send(op) {
            tracing::error!(emitter = %self.emitter, %error, "PostgreSQL store unavailable");
        }
    }

    /// Asks for the next stored events when the window runs low.
    fn refill(&mut self) {
        let Some(epoch) = self.epoch else {
            return;
        };
        if self.loading || self.head.len() >= WINDOW / 2 || self.newest <= self.read_through {
            return;
        }
        self.loading = true;
        self.send(ClusterOp::Load {
            emitter: self.emitter.clone(),
            epoch,
            after: self.read_through,
            through: self.newest,
            limit: WINDOW - self.head.len(),
        });
    }

    /// Forgets what it read and started (the lease moved on or came back).
    fn reset(&mut self) {
        self.head.clear();
        self.started.clear();
        self.read_through = 0;
        self.loading = false;
        self.releasing = false;
    }

    fn fence(&self, ticket: Ticket) -> Option<Fence> {
        let (epoch, seq) = (self.epoch?, *self.started.get(&ticket)?);
        Some(Fence { epoch, seq })
    }

    /// Handles what the store says.
    fn notice(&mut self, notice: ClusterNotice) -> QueueChange {
        match notice {
            ClusterNotice::Registered(state) => {
                self.registered = true;
                self.newest = self.newest.max(state.last_seq);
                QueueChange::ClusterState(state.into())
            }
            ClusterNotice::Granted { epoch, state } => self.granted(epoch, state),
            ClusterNotice::LeaseLost => {
                self.epoch = None;
                self.reset();
                QueueChange::LeaseLost
            }
            ClusterNotice::Release if self.epoch.is_some() => {
                self.releasing = true;
                QueueChange::Release
            }
            ClusterNotice::Release => QueueChange::Nothing,
            ClusterNotice::Renewed => QueueChange::Renewed,
            ClusterNotice::Committed { count, last_seq } => {
                self.newest = self.newest.max(last_seq);
                self.pending = self.pending.saturating_sub(count);
                self.refill();
                QueueChange::Nothing
            }
            ClusterNotice::NotStored { events, error } => {
                self.pending = self.pending.saturating_sub(events.len());
                QueueChange::NotStored { events, error }
            }
            ClusterNotice::Newest { last_seq, paused } => {
                self.newest = self.newest.max(last_seq);
                self.refill();
                paused.map_or(QueueChange::Nothing, QueueChange::Paused)
            }
            ClusterNotice::Loaded {
                epoch,
                events,
                through,
                complete,
            } => {
                self.loaded(epoch, events, through, complete);
                QueueChange::Nothing
            }
            ClusterNotice::DeadLetters { letters, next_id } => {
                QueueChange::DeadLetters { letters, next_id }
            }
            ClusterNotice::Paused(paused) => QueueChange::Paused(paused),
        }
    }

    /// This node holds the lease at `epoch` now: read from where the
    /// cluster's queue starts.
    fn granted(&mut self, epoch: i64, state: State) -> QueueChange {
        if self.epoch == Some(epoch) {
            // Told twice (a grant racing a registration): the same lease,
            // and what is started stays started.
            return QueueChange::Nothing;
        }
        self.reset();
        self.epoch = Some(epoch);
        self.newest = state.last_seq;
        self.refill();
        QueueChange::ClusterState(state.into())
    }

    /// Events read back for the holder at `epoch`, in order; `complete` if
    /// nothing more was stored up to `through` when they were read.
    fn loaded(&mut self, epoch: i64, events: Vec<StoredEvent>, through: u64, complete: bool) {
        if self.epoch != Some(epoch) {
            return; // read for a lease since lost
        }
        self.loading = false;
        for stored in events {
            if stored.seq > self.read_through {
                self.read_through = stored.seq;
                self.head.push_back(stored);
            }
        }
        if complete {
            self.read_through = self.read_through.max(through);
        }
        self.refill();
    }
}

impl EventQueue for PgQueue {
    fn push(&mut self, event: Arc<Event>, durable: Option<DurableAck>) -> Result<(), Refused> {
        // The cluster's backlog lives in the database; the bound holds what
        // this node has not yet written (it grows only while writes fail).
        if self.pending >= self.capacity {
            return Err(Refused { event, durable });
        }
        self.pending += 1;
        self.send(ClusterOp::Append {
            emitter: self.emitter.clone(),
            event,
            durable,
        });
        Ok(())
    }

    fn start_next(&mut self) -> Option<Started> {
        if self.epoch.is_none() || self.releasing {
            return None;
        }
        let next = self.head.pop_front();
        self.refill();
        let next = next?;
        let ticket = self.next_ticket;
        self.next_ticket = self.next_ticket.wrapping_add(1);
        self.started.insert(ticket, next.seq);
        Some(Started {
            ticket,
            event: next.event,
            attempts: next.attempts,
            retry_at: next.retry_at,
        })
    }

    fn attempted(&mut self, ticket: Ticket, attempts: u32, retry_at: std::time::SystemTime) {
        if let Some(fence) = self.fence(ticket) {
            self.send(ClusterOp::Attempted {
                emitter: self.emitter.clone(),
                fence,
                attempts,
                retry_at,
            });
        }
    }

    fn ack(&mut self, ticket: Ticket) {
        if let Some(fence) = self.fence(ticket) {
            self.send(ClusterOp::Ack {
                emitter: self.emitter.clone(),
                fence,
            });
        }
        self.started.remove(&ticket);
    }

    fn fail(
        &mut self,
        ticket: Option<Ticket>,
        letter: Option<&DeadLetter>,
        durable: Option<DurableAck>,
    ) {
        let fence = ticket.and_then(|t| self.fence(t));
        if let Some(ticket) = ticket {
            self.started.remove(&ticket);
            if fence.is_none() {
                // Started under a lease since lost: not this node's to write.
                DurableAck::settle(durable);
                return;
            }
        }
        match GiveUp::new(letter, fence) {
            GiveUp::Keep(letter, fence) => self.send(ClusterOp::DeadLetter {
                emitter: self.emitter.clone(),
                fence,
                letter: letter.clone(),
                capacity: self.dead_letter_capacity,
                durable,
            }),
            GiveUp::Remove(fence) => {
                self.send(ClusterOp::Ack {
                    emitter: self.emitter.clone(),
                    fence,
                });
                DurableAck::settle(durable);
            }
            GiveUp::Nothing => DurableAck::settle(durable),
        }
    }

    fn redeliver(&mut self, letters: Vec<DeadLetter>) {
        self.send(ClusterOp::Redeliver {
            emitter: self.emitter.clone(),
            ids: letters.iter().map(|l| l.id).collect(),
        });
    }

    fn set_paused(&mut self, paused: bool) {
        self.send(ClusterOp::SetPaused {
            emitter: self.emitter.clone(),
            paused,
        });
    }

    fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
    }

    fn set_dead_letter_capacity(&mut self, capacity: usize) {
        self.dead_letter_capacity = capacity;
    }

    fn waiting(&self) -> usize {
        let stored = match self.epoch {
            Some(_) => {
                let unread = self.newest.saturating_sub(self.read_through);
                self.head.len() + usize::try_from(unread).unwrap_or(usize::MAX)
            }
            None => 0,
        };
        stored.saturating_add(self.pending)
    }

    fn len(&self) -> usize {
        self.waiting().saturating_add(self.started.len())
    }

    fn room(&self) -> usize {
        self.capacity.saturating_sub(self.pending)
    }

    fn is_idle(&self) -> bool {
        self.registered && !self.loading && self.len() == 0
    }

    fn stored(&self) -> usize {
        self.len()
    }

    fn drain(&mut self) -> Drained {
        // The cluster's events stay stored for the nodes that still attach
        // this emitter; this node lets go of them.
        self.reset();
        Drained::Stored(Box::pin(std::future::ready(Vec::new())))
    }

    fn stopping(&mut self) {
        self.deadline.clear();
        self.send(ClusterOp::Unregister {
            emitter: self.emitter.clone(),
            token: self.token,
        });
    }

    fn durable(&self) -> bool {
        true
    }

    fn may_deliver(&self) -> bool {
        self.epoch.is_some() && !self.releasing && self.deadline.valid()
    }

    fn on_notice(&mut self, notice: StoreNotice) -> QueueChange {
        match notice {
            StoreNotice::Cluster(notice) => self.notice(notice),
            StoreNotice::Journal(_) => QueueChange::Nothing,
        }
    }

    fn releasing(&self) -> bool {
        self.releasing
    }

    /// Gives the lease back (nothing is in flight): the next holder starts
    /// where this one stopped.
    fn release(&mut self) {
        if let Some(epoch) = self.epoch.take() {
            self.send(ClusterOp::Release {
                emitter: self.emitter.clone(),
                epoch,
            });
        }
        self.deadline.clear();
        self.reset();
    }
}

impl From<State> for StoredState {
    fn from(state: State) -> Self {
        StoredState {
            paused: state.paused,
            dead_letters: state.dead_letters,
            next_dead_letter: state.next_dead_letter,
            counters: state.counters,
        }
    }
}
