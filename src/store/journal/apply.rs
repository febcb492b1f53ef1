//! What each operation does inside the writer's transaction, and what it
//! owes once the batch is committed: confirmations to workers, answers to
//! callers.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::tables::Tables;
use super::{JournalNotice, JournalOp};
use crate::error::StoreError;
use crate::store::durable::DurableAck;
use crate::store::thread::NoticeSink;

/// Answers a caller with the batch's outcome.
pub(super) type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// What a committed batch owes, delivered after the commit.
#[derive(Default)]
pub(super) struct Effects {
    /// Per emitter, every append up to this sequence number is on disk.
    pub committed: HashMap<Arc<str>, u64>,
    pub notices: Vec<(Arc<str>, JournalNotice)>,
    pub done: Vec<DurableAck>,
    pub replies: Vec<Reply>,
}

impl Effects {
    /// The append `seq` of `emitter` is in this batch.
    pub(super) fn committed_up_to(&mut self, emitter: &Arc<str>, seq: u64) {
        let up_to = self.committed.entry(emitter.clone()).or_default();
        *up_to = (*up_to).max(seq);
    }
}

/// Answers `reply` with `value` once the batch is committed, or with the
/// commit's error. The channel is moved out of the operation: an operation
/// with a reply is never applied twice (a failed batch answers it and drops it).
pub(super) fn answer_after_commit<T: Send + 'static>(
    replies: &mut Vec<Reply>,
    reply: &mut oneshot::Sender<Result<T, StoreError>>,
    value: T,
) {
    let (placeholder, _) = oneshot::channel();
    let reply = std::mem::replace(reply, placeholder);
    replies.push(Box::new(move |result| {
        let _ = reply.send(result.map(|()| value));
    }));
}

/// Counts a delivery or a failed attempt in the emitter's stored counters:
/// for every such operation, applied or cancelled within its batch (dead
/// letters count where they are stored).
pub(super) fn count(tables: &mut Tables<'_>, op: &JournalOp) -> Result<(), redb::Error> {
    match op {
        JournalOp::Ack { emitter, .. } => tables.count(emitter, |c| c.delivered += 1),
        JournalOp::Attempted { emitter, .. } => tables.count(emitter, |c| c.failed_attempts += 1),
        _ => Ok(()),
    }
}

/// One operation's writes, and what it owes once committed. `workers` are
/// the emitters' workers that recovered, for notices.
pub(super) fn apply(
    workers: &mut HashMap<Arc<str>, NoticeSink<JournalNotice>>,
    tables: &mut Tables<'_>,
    op: &mut JournalOp,
    effects: &mut Effects,
) -> Result<(), redb::Error> {
    count(tables, op)?;
    match op {
        // Application records, answered or not (`put_record_soon`).
        JournalOp::App(_) => answer(workers, tables, op, &mut effects.replies),
        _ if op.answers() => answer(workers, tables, op, &mut effects.replies),
        JournalOp::Recover { .. } | JournalOp::Load { .. } => read(workers, tables, op, effects),
        JournalOp::EvictDeadLetters { .. } | JournalOp::Redeliver { .. } => {
            change_dead_letters(tables, op, effects)
        }
        _ => write_queue(tables, op, effects),
    }
}

/// An event's way through the queue: appended, attempted, delivered, given
/// up; and the paused state.
fn write_queue(
    tables: &mut Tables<'_>,
    op: &mut JournalOp,
    effects: &mut Effects,
) -> Result<(), redb::Error> {
    match op {
        JournalOp::Append {
            emitter,
            seq,
            event,
            durable,
        } => {
            tables.append(emitter, *seq, event)?;
            effects.committed_up_to(emitter, *seq);
            effects.done.extend(durable.clone());
        }
        JournalOp::Attempted {
            emitter,
            seq,
            attempts,
            retry_at,
        } => tables.attempted(emitter, *seq, *attempts, *retry_at)?,
        JournalOp::Ack { emitter, seq } => tables.ack(emitter, *seq),
        JournalOp::DeadLetter {
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
        JournalOp::SetPaused { emitter, paused } => tables.set_paused(emitter, *paused)?,
        _ => {}
    }
    Ok(())
}

/// Dead letters evicted, or sent back to the queue.
fn change_dead_letters(
    tables: &mut Tables<'_>,
    op: &mut JournalOp,
    effects: &mut Effects,
) -> Result<(), redb::Error> {
    match op {
        JournalOp::EvictDeadLetters { emitter, ids } => {
            for id in ids.iter() {
                tables.remove_dead_letter(emitter, *id)?;
            }
        }
        JournalOp::Redeliver {
            emitter,
            ids,
            appends,
        } => {
            for id in ids.iter() {
                tables.remove_dead_letter(emitter, *id)?;
            }
            for (seq, event) in appends.iter() {
                tables.append(emitter, *seq, event)?;
                effects.committed_up_to(emitter, *seq);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Reads for a worker: its stored state when it starts (from then on it
/// gets notices), and events read back for its window.
fn read(
    workers: &mut HashMap<Arc<str>, NoticeSink<JournalNotice>>,
    tables: &mut Tables<'_>,
    op: &mut JournalOp,
    effects: &mut Effects,
) -> Result<(), redb::Error> {
    match op {
        JournalOp::Recover {
            emitter,
            window,
            worker,
        } => {
            workers.insert(emitter.clone(), worker.clone());
            let recovery = tables.recover(emitter, *window)?;
            effects
                .notices
                .push((emitter.clone(), JournalNotice::Recovered(recovery)));
        }
        JournalOp::Load {
            emitter,
            after,
            through,
            limit,
        } => {
            let loaded = tables.load(emitter, *after, *through, *limit)?;
            effects
                .notices
                .push((emitter.clone(), JournalNotice::Loaded(loaded)));
        }
        _ => {}
    }
    Ok(())
}

/// The operations that answer a caller: queries, deletions, flush.
fn answer(
    workers: &mut HashMap<Arc<str>, NoticeSink<JournalNotice>>,
    tables: &mut Tables<'_>,
    op: &mut JournalOp,
    replies: &mut Vec<Reply>,
) -> Result<(), redb::Error> {
    match op {
        JournalOp::Drain { emitter, reply } => {
            let events = tables.drain(emitter)?;
            workers.remove(emitter);
            answer_after_commit(replies, reply, events);
        }
        JournalOp::Orphans { attached, reply } => {
            let found = tables.orphans(attached)?;
            answer_after_commit(replies, reply, found);
        }
        JournalOp::Discard { emitter, reply } => {
            let emitter: Arc<str> = Arc::from(emitter.as_str());
            let removed = tables.delete(&emitter)?;
            answer_after_commit(replies, reply, removed);
        }
        JournalOp::App(op) => op.apply(tables, replies)?,
        JournalOp::Flush { reply } => answer_after_commit(replies, reply, ()),
        _ => {}
    }
    Ok(())
}
