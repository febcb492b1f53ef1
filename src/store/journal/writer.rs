//! The writer thread: it takes the operations that arrive within the commit
//! interval (or up to the batch limit), applies them in one transaction, commits
//! once (one fsync), then answers everyone waiting on them. Nothing else writes
//! the file, so operations apply in the order they were sent.
//!
//! When a commit fails (disk full, I/O error), the batch is kept and tried again
//! with a backoff on a reopened database, while new operations pile up behind
//! it; callers of `emit_durable` and workers hear of the failure at once, and
//! `Journal::failure` reports it until a commit succeeds again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix::Recipient;
use redb::Database;

use super::tables::{self, Tables};
use super::{JournalOptions, Notice, Op};
use crate::store::StoreError;

/// An operation, and whether its failure was already told.
struct Pending {
    op: Op,
    told: bool,
}

struct Writer {
    database: Option<Database>,
    path: PathBuf,
    options: JournalOptions,
    failure: Arc<Mutex<Option<StoreError>>>,
    fail_commits: Arc<AtomicU32>,
    /// The worker of each emitter that recovered, for notices.
    workers: HashMap<Arc<str>, Recipient<Notice>>,
}

/// Starts the writer thread on `database`; returns where to send operations.
pub(super) fn spawn(
    database: Database,
    path: PathBuf,
    options: JournalOptions,
    failure: Arc<Mutex<Option<StoreError>>>,
    fail_commits: Arc<AtomicU32>,
) -> Result<(mpsc::Sender<Op>, std::thread::JoinHandle<()>), StoreError> {
    let (sender, operations) = mpsc::channel();
    let writer = Writer {
        database: Some(database),
        path: path.clone(),
        options,
        failure,
        fail_commits,
        workers: HashMap::new(),
    };
    let thread = std::thread::Builder::new()
        .name("webhooks-journal".into())
        .spawn(move || writer.run(&operations))
        .map_err(|e| StoreError::from_io(&path, &e))?;
    Ok((sender, thread))
}

/// Answers a caller with the batch's outcome.
type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// What a committed batch owes its callers, delivered after the commit.
#[derive(Default)]
struct Effects {
    committed: HashMap<Arc<str>, u64>,
    notices: Vec<(Arc<str>, Notice)>,
    done: Vec<crate::store::durable::DurableAck>,
    replies: Vec<Reply>,
}

impl Writer {
    fn run(mut self, operations: &mpsc::Receiver<Op>) {
        let mut batch: Vec<Pending> = Vec::new();
        let mut backoff = Duration::from_millis(50);
        // Every handle is gone: commit what is left, then stop.
        let mut closing = false;
        loop {
            if batch.is_empty() {
                match operations.recv() {
                    Ok(op) => batch.push(Pending { op, told: false }),
                    Err(_) => return,
                }
            }
            let deadline = Instant::now() + self.options.commit_interval;
            while batch.len() < self.options.max_batch && !closing {
                let left = deadline.saturating_duration_since(Instant::now());
                match operations.recv_timeout(left) {
                    Ok(op) => batch.push(Pending { op, told: false }),
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                    Err(mpsc::RecvTimeoutError::Disconnected) => closing = true,
                }
            }
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

    /// Applies `batch` in one transaction and commits it; `effects` collects
    /// what it owes (replies are owed even if the commit fails).
    fn commit(&mut self, batch: &mut [Pending], effects: &mut Effects) -> Result<(), StoreError> {
        let path = self.path.clone();
        let fail = |e: redb::Error| StoreError::from_redb(&path, e);
        let database = match self.database.take() {
            Some(database) => database,
            // After a failure redb refuses further writes: open it again.
            None => tables::open(&self.path, self.options.cache_bytes)?,
        };
        let txn = database.begin_write().map_err(|e| fail(e.into()))?;
        {
            let mut tables = Tables::open(&txn).map_err(fail)?;
            for pending in batch.iter_mut() {
                self.apply(&mut tables, &mut pending.op, effects)
                    .map_err(fail)?;
            }
            tables.finish().map_err(fail)?;
        }
        if self.fail_commits.load(Ordering::SeqCst) > 0 {
            self.fail_commits.fetch_sub(1, Ordering::SeqCst);
            return Err(StoreError::DiskFull {
                detail: "injected by a test".into(),
            });
        }
        txn.commit().map_err(|e| fail(e.into()))?;
        self.database = Some(database);
        Ok(())
    }

    /// One operation's writes, and what it owes once committed.
    fn apply(
        &mut self,
        tables: &mut Tables<'_>,
        op: &mut Op,
        effects: &mut Effects,
    ) -> Result<(), redb::Error> {
        match op {
            Op::Recover {
                emitter,
                window,
                worker,
            } => {
                self.workers.insert(emitter.clone(), worker.clone());
                let recovery = tables.recover(emitter, *window)?;
                effects
                    .notices
                    .push((emitter.clone(), Notice::Recovered(recovery)));
            }
            Op::Append {
                emitter,
                seq,
                event,
                durable,
            } => {
                tables.append(emitter, *seq, event)?;
                let up_to = effects.committed.entry(emitter.clone()).or_default();
                *up_to = (*up_to).max(*seq);
                effects.done.extend(durable.clone());
            }
            Op::Attempted {
                emitter,
                seq,
                attempts,
            } => tables.attempted(emitter, *seq, *attempts)?,
            Op::Ack { emitter, seq } => tables.remove_event(emitter, *seq)?,
            Op::DeadLetter {
                emitter,
                seq,
                letter,
                durable,
            } => {
                if let Some(seq) = seq {
                    tables.remove_event(emitter, *seq)?;
                }
                tables.put_dead_letter(emitter, letter)?;
                effects.done.extend(durable.clone());
            }
            Op::EvictDeadLetters { emitter, ids } => {
                for id in ids.iter() {
                    tables.remove_dead_letter(emitter, *id)?;
                }
            }
            Op::Redeliver {
                emitter,
                ids,
                appends,
            } => {
                for id in ids.iter() {
                    tables.remove_dead_letter(emitter, *id)?;
                }
                for (seq, event) in appends.iter() {
                    tables.append(emitter, *seq, event)?;
                    let up_to = effects.committed.entry(emitter.clone()).or_default();
                    *up_to = (*up_to).max(*seq);
                }
            }
            Op::SetPaused { emitter, paused } => tables.set_paused(emitter, *paused)?,
            Op::Load {
                emitter,
                after,
                through,
                limit,
            } => {
                let loaded = tables.load(emitter, *after, *through, *limit)?;
                effects
                    .notices
                    .push((emitter.clone(), Notice::Loaded(loaded)));
            }
            Op::Drain { emitter, reply } => {
                let events = tables.drain(emitter)?;
                self.workers.remove(emitter);
                let reply = take_reply(reply);
                effects.replies.push(Box::new(move |result| {
                    let _ = reply.send(result.map(|()| events));
                }));
            }
            Op::Orphans { attached, reply } => {
                let found = tables.orphans(attached)?;
                let reply = take_reply(reply);
                effects.replies.push(Box::new(move |result| {
                    let _ = reply.send(result.map(|()| found));
                }));
            }
            Op::Discard { emitter, reply } => {
                let emitter: Arc<str> = Arc::from(emitter.as_str());
                let removed = tables.delete(&emitter)?;
                let reply = take_reply(reply);
                effects.replies.push(Box::new(move |result| {
                    let _ = reply.send(result.map(|()| removed));
                }));
            }
            Op::Flush { reply } => {
                let reply = take_reply(reply);
                effects.replies.push(Box::new(move |result| {
                    let _ = reply.send(result);
                }));
            }
        }
        Ok(())
    }

    /// After a commit: confirmations, notices, answers.
    fn deliver(&self, effects: Effects) {
        for (emitter, up_to) in effects.committed {
            if let Some(worker) = self.workers.get(&emitter) {
                worker.do_send(Notice::Committed { up_to });
            }
        }
        for (emitter, notice) in effects.notices {
            if let Some(worker) = self.workers.get(&emitter) {
                worker.do_send(notice);
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
                Op::Append {
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
                Op::DeadLetter {
                    durable: Some(durable),
                    ..
                } => durable.failed(error.clone()),
                _ => {}
            }
        }
        for (emitter, seqs) in failed_appends {
            if let Some(worker) = self.workers.get(&emitter) {
                worker.do_send(Notice::WriteFailed {
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
            &mut *self.failure.lock().unwrap_or_else(PoisonError::into_inner),
            failure,
        )
    }
}

/// Moves a reply channel out of an operation, into what the batch owes (an
/// operation with a reply is never applied twice: a failed batch answers it
/// with the error and drops it).
fn take_reply<T>(reply: &mut tokio::sync::oneshot::Sender<T>) -> tokio::sync::oneshot::Sender<T> {
    let (placeholder, _) = tokio::sync::oneshot::channel();
    std::mem::replace(reply, placeholder)
}
