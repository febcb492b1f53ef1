//! The writer thread: it takes the operations that arrive within the commit
//! interval (or up to the batch limit), applies them in one transaction, commits
//! once (one fsync), then answers everyone waiting on them. Nothing else writes
//! the file, so operations apply in the order they were sent.
//!
//! When a commit fails (disk full, I/O error), the batch is kept and tried again
//! with a backoff on a reopened database, while new operations pile up behind
//! it; callers of `emit_durable` and workers hear of the failure at once, and
//! `Journal::failure` reports it until a commit succeeds again.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
#[cfg(feature = "test-util")]
use std::sync::atomic::AtomicU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redb::{Database, Durability};

use super::apply::{apply, count, Effects};
use super::tables::{self, Tables};
use super::{JournalNotice, JournalOp, JournalOptions};
use crate::error::StoreError;
use crate::store::thread::NoticeSink;

/// An operation, and whether its failure was already told.
struct Pending {
    op: JournalOp,
    told: bool,
}

/// What the writer shares with the journal's handles.
pub(super) struct WriterState {
    pub path: PathBuf,
    pub options: JournalOptions,
    pub failure: Arc<Mutex<Option<StoreError>>>,
    /// Commits still to fail on purpose (a test hook).
    #[cfg(feature = "test-util")]
    pub fail_commits: Arc<AtomicU32>,
    pub commits: Arc<AtomicU64>,
}

struct Writer {
    database: Option<Database>,
    shared: WriterState,
    /// When the last durable (fsynced) commit was.
    last_sync: Instant,
    /// The worker of each emitter that recovered, for notices.
    workers: HashMap<Arc<str>, NoticeSink<JournalNotice>>,
}

/// Where operations go: those someone waits on, and the rest (acks, attempt
/// counts), which need not wake the writer.
pub(super) struct Senders {
    urgent: mpsc::Sender<JournalOp>,
    later: mpsc::Sender<JournalOp>,
}

impl crate::store::thread::Inbox<JournalOp> for Senders {
    fn put(&self, op: JournalOp) -> Result<(), StoreError> {
        let channel = if op.urgent() {
            &self.urgent
        } else {
            &self.later
        };
        channel.send(op).map_err(|_| StoreError::Closed)
    }
}

/// The writer's side of [`Senders`].
struct Inbox {
    urgent: mpsc::Receiver<JournalOp>,
    later: mpsc::Receiver<JournalOp>,
}

impl Inbox {
    /// Takes what has arrived. The rest first, then the urgent: an append
    /// always travels before its ack, so every ack taken here has its append
    /// taken too; in the batch, appends go first so that an event appended and
    /// delivered within it cancels out. Returns whether every handle is gone.
    fn drain(&self, batch: &mut Vec<Pending>) -> bool {
        let later: Vec<JournalOp> = self.later.try_iter().collect();
        let mut closed = false;
        loop {
            match self.urgent.try_recv() {
                Ok(op) => batch.push(Pending { op, told: false }),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        batch.extend(later.into_iter().map(|op| Pending { op, told: false }));
        closed
    }
}

/// Starts the writer thread on `database`; returns where to send operations.
pub(super) fn spawn(
    database: Database,
    shared: WriterState,
) -> Result<(Senders, std::thread::JoinHandle<()>), StoreError> {
    let (urgent, urgent_inbox) = mpsc::channel();
    let (later, later_inbox) = mpsc::channel();
    let inbox = Inbox {
        urgent: urgent_inbox,
        later: later_inbox,
    };
    let path = shared.path.clone();
    let writer = Writer {
        database: Some(database),
        shared,
        last_sync: Instant::now(),
        workers: HashMap::new(),
    };
    let thread = std::thread::Builder::new()
        .name("webhooks-journal".into())
        .spawn(move || writer.run(&inbox))
        .map_err(|e| StoreError::from_io(&path, &e))?;
    Ok((Senders { urgent, later }, thread))
}

impl Writer {
    fn run(mut self, inbox: &Inbox) {
        let mut batch: Vec<Pending> = Vec::new();
        let mut backoff = Duration::from_millis(50);
        // Every handle is gone: commit what is left, then stop.
        let mut closing = false;
        loop {
            if batch.is_empty() {
                // Woken by an urgent operation at once; acks alone are
                // taken on a slow tick.
                match inbox.urgent.recv_timeout(MAX_UNSYNCED) {
                    Ok(op) => batch.push(Pending { op, told: false }),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => closing = true,
                }
                closing |= inbox.drain(&mut batch);
                if batch.is_empty() {
                    if closing {
                        return;
                    }
                    continue;
                }
            }
            self.gather(&mut batch, inbox, &mut closing);
            let mut effects = Effects::default();
            match self.commit(&mut batch, &mut effects) {
                Ok(()) => {
                    self.recovered();
                    self.deliver(effects);
                    batch.clear();
                    backoff = Duration::from_millis(50);
                }
                Err(error) => {
                    // Queries and flushes are answered now, with the error,
                    // and not tried again; writes are.
                    for reply in effects.replies {
                        reply(Err(error.clone()));
                    }
                    batch.retain(|p| !p.op.answers());
                    self.failed(&mut batch, error);
                    if closing && backoff >= Duration::from_secs(2) {
                        tracing::error!(operations = batch.len(), "journal closed while it cannot be written; the last operations are lost");
                        return;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Adds to `batch` what arrives until the commit window of an urgent
    /// operation (someone waits on it) ends ([`window_end`](Self::window_end)),
    /// or within `MAX_UNSYNCED` while only acks and attempt counts wait:
    /// fewer commits for them, same promptness for the rest.
    ///
    /// It sleeps and then takes what has arrived, rather than waiting on the
    /// channel: a waiting receiver makes every send a wake-up (a syscall on
    /// the worker's thread and a context switch here), tens of thousands a
    /// second under load.
    fn gather(&self, batch: &mut Vec<Pending>, inbox: &Inbox, closing: &mut bool) {
        let started = Instant::now();
        let mut urgent = batch.iter().any(|p| p.op.urgent());
        let mut deadline = if urgent {
            self.window_end(started)
        } else {
            started + MAX_UNSYNCED.max(self.shared.options.batch.commit_interval)
        };
        loop {
            let before = batch.len();
            *closing |= inbox.drain(batch);
            if !urgent && batch[before..].iter().any(|p| p.op.urgent()) {
                urgent = true;
                deadline = deadline.min(self.window_end(Instant::now()));
            }
            let now = Instant::now();
            if *closing || batch.len() >= self.shared.options.batch.max_batch || now >= deadline {
                return;
            }
            if urgent {
                // Sleep rather than wait on the channel: a waiting receiver
                // makes every send a wake-up.
                std::thread::sleep(deadline - now);
            } else {
                // Only acks so far: an urgent operation wakes us at once.
                match inbox.urgent.recv_timeout(deadline - now) {
                    Ok(op) => batch.push(Pending { op, told: false }),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => *closing = true,
                }
            }
        }
    }

    /// When a batch with an urgent operation that arrived at `now` is
    /// committed: one commit interval after the last durable commit ended,
    /// or at once if that is past. The interval bounds how often the file
    /// is synced; counting it from the last sync rather than from the first
    /// arrival means callers who answer a commit and emit again (a client
    /// across HTTP, say) make the next commit on time, not one round trip
    /// late, and an emit on an idle journal is synced at once.
    fn window_end(&self, now: Instant) -> Instant {
        (self.last_sync + self.shared.options.batch.commit_interval).max(now)
    }

    /// Applies `batch` in one transaction and commits it; `effects` collects
    /// what it owes (replies are owed even if the commit fails).
    fn commit(&mut self, batch: &mut [Pending], effects: &mut Effects) -> Result<(), StoreError> {
        let path = self.shared.path.clone();
        let fail = |e: redb::Error| StoreError::from_redb(&path, e);
        let database = match self.database.take() {
            Some(database) => database,
            // After a failure redb refuses further writes: open it again.
            None => tables::open(&self.shared.path, self.shared.options.cache_bytes)?,
        };
        let mut txn = database.begin_write().map_err(|e| fail(e.into()))?;
        // Only what callers were promised needs an fsync now (new events,
        // dead letters, paused state, answers); acks and attempt counts ride
        // on the next durable commit, at most `MAX_UNSYNCED` later. A crash
        // in between redelivers what was acked: a duplicate, never a loss.
        let sync =
            batch.iter().any(|p| p.op.must_sync()) || self.last_sync.elapsed() >= MAX_UNSYNCED;
        let durability = if sync {
            Durability::Immediate
        } else {
            Durability::None
        };
        txn.set_durability(durability).map_err(|e| fail(e.into()))?;
        let cancelled = delivered_within(batch);
        {
            let mut tables = Tables::open(&txn).map_err(fail)?;
            for pending in batch.iter_mut() {
                let key = pending.op.event_key();
                if key.is_some_and(|key| cancelled.contains(&key)) {
                    // Appended and delivered in the same batch: the event
                    // never needs to touch the disk.
                    self.skip(&mut tables, &pending.op, effects).map_err(fail)?;
                    continue;
                }
                apply(&mut self.workers, &mut tables, &mut pending.op, effects).map_err(fail)?;
            }
            tables.finish().map_err(fail)?;
        }
        #[cfg(feature = "test-util")]
        if self.shared.fail_commits.load(Ordering::SeqCst) > 0 {
            self.shared.fail_commits.fetch_sub(1, Ordering::SeqCst);
            return Err(StoreError::DiskFull {
                detail: "injected by a test".into(),
            });
        }
        txn.commit().map_err(|e| fail(e.into()))?;
        self.shared.commits.fetch_add(1, Ordering::Relaxed);
        if sync {
            self.last_sync = Instant::now();
        }
        self.database = Some(database);
        Ok(())
    }

    /// What an operation cancelled by its ack still owes: the sequence
    /// number (so numbering goes on), the confirmation, the durable answer,
    /// the counters.
    fn skip(
        &mut self,
        tables: &mut Tables<'_>,
        op: &JournalOp,
        effects: &mut Effects,
    ) -> Result<(), redb::Error> {
        match op {
            JournalOp::Append {
                emitter,
                seq,
                durable,
                ..
            } => {
                tables.note_seq(emitter, *seq)?;
                effects.committed_up_to(emitter, *seq);
                effects.done.extend(durable.clone());
            }
            _ => count(tables, op)?,
        }
        Ok(())
    }

    /// After a commit: confirmations, notices, answers.
    fn deliver(&self, effects: Effects) {
        for (emitter, up_to) in effects.committed {
            if let Some(worker) = self.workers.get(&emitter) {
                worker.send(JournalNotice::Committed { up_to });
            }
        }
        for (emitter, notice) in effects.notices {
            if let Some(worker) = self.workers.get(&emitter) {
                worker.send(notice);
            }
        }
        for ack in effects.done {
            ack.done();
        }
        for reply in effects.replies {
            reply(Ok(()));
        }
    }

    /// A commit failed: say so once per operation, keep the batch for a retry.
    fn failed(&mut self, batch: &mut [Pending], error: StoreError) {
        let first = self.set_failure(Some(error.clone())).is_none();
        if first {
            tracing::error!(%error, "journal write failed; events stay in memory and writing is retried");
        }
        let mut failed_appends: HashMap<Arc<str>, Vec<u64>> = HashMap::new();
        for pending in batch.iter_mut().filter(|p| !p.told) {
            pending.told = true;
            match &pending.op {
                JournalOp::Append {
                    emitter,
                    seq,
                    durable,
                    ..
                } => {
                    failed_appends
                        .entry(emitter.clone())
                        .or_default()
                        .push(*seq);
                    if let Some(durable) = durable {
                        durable.failed(error.clone());
                    }
                }
                JournalOp::DeadLetter {
                    durable: Some(durable),
                    ..
                } => durable.failed(error.clone()),
                _ => {}
            }
        }
        for (emitter, seqs) in failed_appends {
            if let Some(worker) = self.workers.get(&emitter) {
                worker.send(JournalNotice::WriteFailed {
                    error: error.clone(),
                    seqs,
                });
            }
        }
    }

    fn recovered(&self) {
        if self.set_failure(None).is_some() {
            tracing::warn!("journal writable again; writing resumed");
        }
    }

    fn set_failure(&self, failure: Option<StoreError>) -> Option<StoreError> {
        std::mem::replace(
            &mut *self
                .shared
                .failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            failure,
        )
    }
}

/// Events appended and acked within `batch`: their append, attempts and ack
/// cancel out.
fn delivered_within(batch: &[Pending]) -> HashSet<(Arc<str>, u64)> {
    let mut appended = HashSet::new();
    let mut delivered = HashSet::new();
    for pending in batch {
        match &pending.op {
            JournalOp::Append { emitter, seq, .. } => {
                appended.insert((emitter.clone(), *seq));
            }
            JournalOp::Ack { emitter, seq } => {
                let key = (emitter.clone(), *seq);
                if appended.contains(&key) {
                    delivered.insert(key);
                }
            }
            _ => {}
        }
    }
    delivered
}

/// Longest a delivery's ack may wait for a durable commit.
const MAX_UNSYNCED: Duration = Duration::from_millis(100);
