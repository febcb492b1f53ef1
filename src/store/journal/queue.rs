//! An emitter's queue on the journal. Every event is written to the journal
//! when pushed; only a window of them stays in memory: the oldest (the next to
//! start) and the newest until the writer confirms they are on disk. Events in
//! between are read back, in order, when the window runs low. So memory is
//! bounded by the window, not by the backlog, and a dead endpoint can pile up
//! a million events.
//!
//! ```text
//!   head (in memory)   spilled (on disk only)   tail (in memory)
//!   oldest ─────────── contiguous in order ──── newest, until committed
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::oneshot;

use super::{Journal, JournalNotice, JournalOp, Recovery};
use crate::model::DeadLetter;
use crate::model::Event;
use crate::store::durable::DurableAck;
use crate::store::queue::{
    Drained, EventQueue, GiveUp, QueueChange, Refused, Started, StoreNotice, StoredState, Ticket,
};
use crate::store::records::StoredEvent;
use crate::store::thread::NoticeSink;

/// Events held in memory while the rest waits on disk.
pub(crate) const DEFAULT_WINDOW: usize = 1024;

/// Stored events not in memory: sequence numbers in `(after, through]`.
#[derive(Debug, Clone, Copy)]
struct Spilled {
    after: u64,
    through: u64,
    count: usize,
}

pub(crate) struct JournalQueue {
    journal: Journal,
    emitter: Arc<str>,
    capacity: usize,
    window: usize,
    /// Events pushed before the stored state came back; appended after it.
    recovering: Option<Vec<(Arc<Event>, Option<DurableAck>)>>,
    head: VecDeque<StoredEvent>,
    spilled: Option<Spilled>,
    tail: VecDeque<StoredEvent>,
    /// Started and not yet acked or failed.
    started: usize,
    next_seq: u64,
    committed: u64,
    loading: bool,
}

impl JournalQueue {
    /// A queue that asks the journal for `emitter`'s stored state at once;
    /// notices go to `worker`.
    pub(crate) fn recover(
        journal: Journal,
        emitter: Arc<str>,
        capacity: usize,
        worker: NoticeSink<JournalNotice>,
    ) -> Self {
        let op = JournalOp::Recover {
            emitter: emitter.clone(),
            window: DEFAULT_WINDOW,
            worker,
        };
        if let Err(error) = journal.send(op) {
            tracing::error!(emitter = %emitter, %error, "journal unavailable; this emitter cannot recover its stored events");
        }
        JournalQueue {
            journal,
            emitter,
            capacity,
            window: DEFAULT_WINDOW,
            recovering: Some(Vec::new()),
            head: VecDeque::new(),
            spilled: None,
            tail: VecDeque::new(),
            started: 0,
            next_seq: 1,
            committed: 0,
            loading: false,
        }
    }

    fn send(&self, op: JournalOp) {
        if let Err(error) = self.journal.send(op) {
            tracing::error!(emitter = %self.emitter, %error, "journal unavailable");
        }
    }

    fn in_memory(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    fn append(&mut self, event: Arc<Event>, durable: Option<DurableAck>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.tail.push_back(StoredEvent {
            seq,
            event: event.clone(),
            attempts: 0,
            retry_at: None,
        });
        self.send(JournalOp::Append {
            emitter: self.emitter.clone(),
            seq,
            event,
            durable,
        });
    }

    fn recovered(&mut self, recovery: Recovery) -> QueueChange {
        let loaded = recovery.head.len();
        self.head = recovery.head.into();
        let behind = recovery.stored.saturating_sub(loaded);
        if behind > 0 {
            let after = self.head.back().map_or(0, |s| s.seq);
            self.spilled = Some(Spilled {
                after,
                through: recovery.last_seq,
                count: behind,
            });
        }
        self.next_seq = recovery.next_seq;
        self.committed = recovery.last_seq;
        for (event, durable) in self.recovering.take().unwrap_or_default() {
            self.append(event, durable);
        }
        self.settle();
        QueueChange::Recovered(StoredState {
            paused: recovery.paused,
            dead_letters: recovery.dead_letters,
            next_dead_letter: recovery.next_dead_letter,
            counters: recovery.counters,
        })
    }

    /// Moves events from the tail to the head while nothing waits on disk
    /// between them, then committed ones from the tail to disk while memory
    /// holds more than the window.
    fn settle(&mut self) {
        while self.spilled.is_none() && self.head.len() < self.window {
            match self.tail.pop_front() {
                Some(stored) => self.head.push_back(stored),
                None => break,
            }
        }
        while self.in_memory() > self.window {
            let Some(front) = self.tail.front() else {
                return;
            };
            if front.seq > self.committed {
                return;
            }
            let seq = front.seq;
            self.tail.pop_front();
            let spilled = self.spilled.get_or_insert(Spilled {
                after: seq.saturating_sub(1),
                through: seq,
                count: 0,
            });
            spilled.through = seq;
            spilled.count += 1;
        }
    }

    /// Asks for the next stored events when the head runs low.
    fn refill(&mut self) {
        if self.loading || self.head.len() >= self.window / 2 {
            return;
        }
        let Some(spilled) = self.spilled else {
            return;
        };
        self.loading = true;
        self.send(JournalOp::Load {
            emitter: self.emitter.clone(),
            after: spilled.after,
            through: spilled.through,
            limit: self.window.saturating_sub(self.head.len()).max(1),
        });
    }

    fn loaded(&mut self, events: Vec<StoredEvent>) {
        self.loading = false;
        let Some(mut spilled) = self.spilled else {
            return;
        };
        if events.is_empty() {
            // Nothing more on disk than counted (a record was damaged).
            tracing::error!(emitter = %self.emitter, missing = spilled.count, "stored events could not be read back");
            self.spilled = None;
            return;
        }
        for stored in events {
            spilled.after = stored.seq;
            spilled.count = spilled.count.saturating_sub(1);
            self.head.push_back(stored);
        }
        self.spilled = (spilled.count > 0 && spilled.after < spilled.through).then_some(spilled);
    }

    /// Handles what the writer says.
    fn notice(&mut self, notice: JournalNotice) -> QueueChange {
        match notice {
            JournalNotice::Recovered(recovery) => return self.recovered(recovery),
            JournalNotice::Committed { up_to } => {
                self.committed = self.committed.max(up_to);
                self.settle();
            }
            JournalNotice::Loaded(events) => self.loaded(events),
            JournalNotice::WriteFailed { error, seqs } => {
                let events = self
                    .tail
                    .iter()
                    .chain(self.head.iter())
                    .filter(|s| seqs.contains(&s.seq))
                    .map(|s| s.event.clone())
                    .collect();
                return QueueChange::NotStored { events, error };
            }
        }
        QueueChange::Nothing
    }
}

impl EventQueue for JournalQueue {
    fn push(&mut self, event: Arc<Event>, durable: Option<DurableAck>) -> Result<(), Refused> {
        if self.len() >= self.capacity {
            return Err(Refused { event, durable });
        }
        match &mut self.recovering {
            Some(buffered) => buffered.push((event, durable)),
            None => {
                self.append(event, durable);
                self.settle();
            }
        }
        Ok(())
    }

    fn start_next(&mut self) -> Option<Started> {
        let next = match self.head.pop_front() {
            Some(next) => Some(next),
            // Stored events come first; wait for them to be read back.
            None if self.spilled.is_some() => None,
            None => self.tail.pop_front(),
        };
        self.refill();
        let next = next?;
        self.started += 1;
        Some(Started {
            ticket: next.seq,
            event: next.event,
            attempts: next.attempts,
            retry_at: next.retry_at,
        })
    }

    fn attempted(&mut self, ticket: Ticket, attempts: u32, retry_at: SystemTime) {
        self.send(JournalOp::Attempted {
            emitter: self.emitter.clone(),
            seq: ticket,
            attempts,
            retry_at: Some(retry_at),
        });
    }

    fn ack(&mut self, ticket: Ticket) {
        self.started = self.started.saturating_sub(1);
        self.send(JournalOp::Ack {
            emitter: self.emitter.clone(),
            seq: ticket,
        });
    }

    fn fail(
        &mut self,
        ticket: Option<Ticket>,
        letter: Option<&DeadLetter>,
        durable: Option<DurableAck>,
    ) {
        if ticket.is_some() {
            self.started = self.started.saturating_sub(1);
        }
        match GiveUp::new(letter, ticket) {
            GiveUp::Keep(letter, seq) => self.send(JournalOp::DeadLetter {
                emitter: self.emitter.clone(),
                seq,
                letter: letter.clone(),
                durable,
            }),
            GiveUp::Remove(seq) => {
                self.send(JournalOp::Ack {
                    emitter: self.emitter.clone(),
                    seq,
                });
                DurableAck::settle(durable);
            }
            GiveUp::Nothing => DurableAck::settle(durable),
        }
    }

    fn evict_dead_letters(&mut self, ids: Vec<u64>) {
        if !ids.is_empty() {
            self.send(JournalOp::EvictDeadLetters {
                emitter: self.emitter.clone(),
                ids,
            });
        }
    }

    fn redeliver(&mut self, letters: Vec<DeadLetter>) {
        let mut appends = Vec::with_capacity(letters.len());
        let ids = letters.iter().map(|l| l.id).collect();
        for letter in letters {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.tail.push_back(StoredEvent {
                seq,
                event: letter.event.clone(),
                attempts: 0,
                retry_at: None,
            });
            appends.push((seq, letter.event));
        }
        self.send(JournalOp::Redeliver {
            emitter: self.emitter.clone(),
            ids,
            appends,
        });
    }

    fn set_paused(&mut self, paused: bool) {
        self.send(JournalOp::SetPaused {
            emitter: self.emitter.clone(),
            paused,
        });
    }

    fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
    }

    fn waiting(&self) -> usize {
        self.len().saturating_sub(self.started)
    }

    fn len(&self) -> usize {
        self.in_memory()
            + self.spilled.map_or(0, |s| s.count)
            + self.started
            + self.recovering.as_ref().map_or(0, Vec::len)
    }

    fn room(&self) -> usize {
        self.capacity.saturating_sub(self.len())
    }

    fn stored(&self) -> usize {
        self.len()
    }

    fn is_idle(&self) -> bool {
        self.recovering.is_none() && self.len() == 0
    }

    fn drain(&mut self) -> Drained {
        let (reply, answer) = oneshot::channel();
        self.send(JournalOp::Drain {
            emitter: self.emitter.clone(),
            reply,
        });
        let unwritten: Vec<Arc<Event>> = self
            .recovering
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(|(event, _)| event)
            .collect();
        self.head.clear();
        self.tail.clear();
        self.spilled = None;
        Drained::Stored(Box::pin(async move {
            let mut events = match answer.await {
                Ok(Ok(events)) => events,
                Ok(Err(error)) => {
                    tracing::error!(%error, "stored events could not be removed; they stay in the journal as orphans");
                    Vec::new()
                }
                Err(_) => Vec::new(),
            };
            events.extend(unwritten);
            events
        }))
    }

    fn durable(&self) -> bool {
        true
    }

    fn on_notice(&mut self, notice: StoreNotice) -> QueueChange {
        match notice {
            StoreNotice::Journal(notice) => self.notice(notice),
            #[cfg(feature = "postgres")]
            StoreNotice::Cluster(_) => QueueChange::Nothing,
        }
    }
}
