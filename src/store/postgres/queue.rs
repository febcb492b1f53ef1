//! An emitter's queue on PostgreSQL, as one node sees it. Every push is an
//! append for the writer; nothing pushed is delivered from memory. Only the
//! lease holder delivers, and it reads the stored events back in sequence
//! order (a window at a time), whichever node emitted them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use actix::Recipient;

use super::{Deadline, Fence, Member, Notice, Op, PgStore, State};
use crate::emitter::queue::{Drained, EventQueue, Refused, Started, Ticket};
use crate::error::StoreError;
use crate::model::DeadLetter;
use crate::model::Event;
use crate::store::durable::DurableAck;
use crate::store::records::StoredEvent;

/// Events read back per load.
const WINDOW: usize = 1024;

/// What a notice means for the worker.
pub(crate) enum Consequence {
    Nothing,
    /// The stored state (on registering, or with the lease): resume it.
    State(State),
    /// The lease is gone: drop the started events (stored, the new holder
    /// sends them).
    LeaseLost,
    /// Give the lease back once nothing is in flight.
    Release,
    /// The lease is valid again: send what was held.
    Renewed,
    Paused(bool),
    DeadLetters {
        letters: Vec<DeadLetter>,
        next_id: u64,
    },
    NotStored {
        events: Vec<Arc<Event>>,
        error: StoreError,
    },
}

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
        worker: Recipient<Notice>,
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
        queue.send(Op::Register {
            emitter: queue.emitter.clone(),
            member: Some(member),
        });
        queue
    }

    fn send(&self, op: Op) {
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
        self.send(Op::Load {
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
    pub(crate) fn notice(&mut self, notice: Notice) -> Consequence {
        match notice {
            Notice::Registered(state) => {
                self.registered = true;
                self.newest = self.newest.max(state.last_seq);
                return Consequence::State(state);
            }
            Notice::Granted { epoch, state } => {
                if self.epoch == Some(epoch) {
                    // Told twice (a grant racing a registration): the same
                    // lease, and what is started stays started.
                    return Consequence::Nothing;
                }
                self.reset();
                self.epoch = Some(epoch);
                self.newest = state.last_seq;
                self.refill();
                return Consequence::State(state);
            }
            Notice::LeaseLost => {
                self.epoch = None;
                self.reset();
                return Consequence::LeaseLost;
            }
            Notice::Release => {
                if self.epoch.is_some() {
                    self.releasing = true;
                    return Consequence::Release;
                }
            }
            Notice::Renewed => return Consequence::Renewed,
            Notice::Committed { count, last_seq } => {
                self.newest = self.newest.max(last_seq);
                self.pending = self.pending.saturating_sub(count);
                self.refill();
            }
            Notice::NotStored { events, error } => {
                self.pending = self.pending.saturating_sub(events.len());
                return Consequence::NotStored { events, error };
            }
            Notice::Newest { last_seq, paused } => {
                self.newest = self.newest.max(last_seq);
                self.refill();
                if let Some(paused) = paused {
                    return Consequence::Paused(paused);
                }
            }
            Notice::Loaded {
                epoch,
                events,
                through,
                complete,
            } => {
                if self.epoch != Some(epoch) {
                    return Consequence::Nothing;
                }
                self.loading = false;
                for stored in events {
                    if stored.seq > self.read_through {
                        self.read_through = stored.seq;
                        self.head.push_back(stored);
                    }
                }
                if complete {
                    // Nothing else was stored up to `through` when read.
                    self.read_through = self.read_through.max(through);
                }
                self.refill();
            }
            Notice::DeadLetters { letters, next_id } => {
                return Consequence::DeadLetters { letters, next_id };
            }
            Notice::Paused(paused) => return Consequence::Paused(paused),
        }
        Consequence::Nothing
    }

    /// Gives the lease back (nothing is in flight): the next holder starts
    /// where this one stopped.
    pub(crate) fn release(&mut self) {
        if let Some(epoch) = self.epoch.take() {
            self.send(Op::Release {
                emitter: self.emitter.clone(),
                epoch,
            });
        }
        self.deadline.clear();
        self.reset();
    }

    /// Asked to give the lease back.
    pub(crate) fn releasing(&self) -> bool {
        self.releasing
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
        self.send(Op::Append {
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
            self.send(Op::Attempted {
                emitter: self.emitter.clone(),
                fence,
                attempts,
                retry_at,
            });
        }
    }

    fn ack(&mut self, ticket: Ticket) {
        if let Some(fence) = self.fence(ticket) {
            self.send(Op::Ack {
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
                durable.into_iter().for_each(|d| d.done());
                return;
            }
        }
        match (letter, fence) {
            (Some(letter), _) => self.send(Op::DeadLetter {
                emitter: self.emitter.clone(),
                fence,
                letter: letter.clone(),
                capacity: self.dead_letter_capacity,
                durable,
            }),
            (None, Some(fence)) => {
                self.send(Op::Ack {
                    emitter: self.emitter.clone(),
                    fence,
                });
                durable.into_iter().for_each(|d| d.done());
            }
            (None, None) => durable.into_iter().for_each(|d| d.done()),
        }
    }

    fn redeliver(&mut self, letters: Vec<DeadLetter>) {
        self.send(Op::Redeliver {
            emitter: self.emitter.clone(),
            ids: letters.iter().map(|l| l.id).collect(),
        });
    }

    fn set_paused(&mut self, paused: bool) {
        self.send(Op::SetPaused {
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
        self.send(Op::Unregister {
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

    fn as_cluster(&mut self) -> Option<&mut PgQueue> {
        Some(self)
    }
}
