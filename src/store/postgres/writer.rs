//! Group commit: the operations of a short interval go to the database in one
//! transaction ([`transaction`](super::transaction)); then callers and
//! workers are told, and the reads the batch asked for are done. After a
//! failure the batch is tried again, backing off; appends a caller waits on
//! (`emit_durable`) fail at once instead, and are not kept. While failing
//! with nothing to retry, the writer looks for the database itself (emits are
//! refused meanwhile, so no batch would come to find it back).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::errors::from_sqlx;
use super::plan::{plan, Rows};
use super::reads::{perform, LoadRequest, Reads};
use super::{app_records, transaction, ClusterNotice, ClusterOp, NodeState};
use crate::error::StoreError;
use crate::model::Event;
use crate::store::batch::BatchOptions;
/// First and longest wait before a failed batch is tried again.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Payload bytes gathered in one batch at most (one statement carries them
/// all; PostgreSQL refuses a message over 1 GiB).
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// At close, how long a failing batch is retried before it is given up.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Runs until the channel is closed (or a [`ClusterOp::Close`] comes) and
/// what came before is committed; returns the close's answer, to be sent
/// once the thread has given everything back.
pub(super) async fn run(
    pool: PgPool,
    shared: Arc<NodeState>,
    ops: mpsc::UnboundedReceiver<ClusterOp>,
) -> Option<oneshot::Sender<()>> {
    let mut intake = Intake {
        ops,
        carried: Vec::new(),
        closed_at: None,
        close: None,
        last_commit: Instant::now(),
    };
    let mut backoff = FIRST_BACKOFF;
    loop {
        if intake.carried.is_empty()
            && (intake.closed_at.is_some()
                || !intake.wait_first(&pool, &shared, &mut backoff).await)
        {
            return intake.close;
        }
        intake.gather(shared.options.batch).await;
        let batch = std::mem::take(&mut intake.carried);
        let committed = commit(&pool, &shared, batch).await;
        intake.last_commit = Instant::now();
        match committed {
            Ok(()) => {
                if shared.failing() {
                    tracing::info!("PostgreSQL store reaches the database again");
                }
                backoff = FIRST_BACKOFF;
                shared.set_failure(None);
            }
            Err((error, retry)) => {
                tracing::error!(%error, retry_in = ?backoff, "PostgreSQL store: batch not committed; retrying");
                shared.set_failure(Some(error));
                intake.carried = retry;
                if intake
                    .closed_at
                    .is_some_and(|at| at.elapsed() > CLOSE_GRACE)
                {
                    tracing::error!(dropped = intake.carried.len(), "PostgreSQL store closing with the database unavailable; pending writes dropped (stored events stay)");
                    return intake.close;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Where a batch's operations come from: the channel, and those carried
/// over from a batch that did not commit.
struct Intake {
    ops: mpsc::UnboundedReceiver<ClusterOp>,
    carried: Vec<ClusterOp>,
    /// When the channel closed or a close came (the store is closing).
    closed_at: Option<Instant>,
    /// Who asked to close, waiting for the answer.
    close: Option<oneshot::Sender<()>>,
    /// When the last batch ended: the next one is committed one commit
    /// interval later, or at once if that is past. The interval bounds the
    /// rate of transactions; counted from the last one rather than from the
    /// next arrival, callers who answer a commit and emit again (a client
    /// across HTTP) make the next batch on time, and an idle store commits
    /// at once.
    last_commit: Instant,
}

impl Intake {
    /// Waits for the first operation of a batch; false once the channel is
    /// closed. While the store is failing, emits are refused, so no batch may
    /// come to prove the database is back: it looks, backing off.
    async fn wait_first(
        &mut self,
        pool: &PgPool,
        shared: &NodeState,
        backoff: &mut Duration,
    ) -> bool {
        loop {
            let next = if shared.failing() {
                match tokio::time::timeout(*backoff, self.ops.recv()).await {
                    Ok(next) => next,
                    Err(_) => {
                        if sqlx::query("SELECT 1").execute(pool).await.is_ok() {
                            tracing::info!("PostgreSQL store reaches the database again");
                            shared.set_failure(None);
                            *backoff = FIRST_BACKOFF;
                        } else {
                            *backoff = (*backoff * 2).min(MAX_BACKOFF);
                        }
                        continue;
                    }
                }
            } else {
                self.ops.recv().await
            };
            return match next {
                Some(op) => {
                    self.take(op);
                    true
                }
                None => false,
            };
        }
    }

    /// Carries `op` into the batch, or takes a close (what comes after it
    /// is not written); the payload bytes it adds.
    fn take(&mut self, op: ClusterOp) -> usize {
        if let ClusterOp::Close { reply } = op {
            self.closed_at.get_or_insert_with(Instant::now);
            self.close = Some(reply);
            return 0;
        }
        let bytes = op.bytes();
        self.carried.push(op);
        bytes
    }

    /// Adds what arrives until the commit interval since the last batch has
    /// passed (see `last_commit`), up to the batch's bounds.
    async fn gather(&mut self, batch: BatchOptions) {
        let gather_until = (self.last_commit + batch.commit_interval).max(Instant::now());
        let max_batch = batch.max_batch;
        let mut bytes: usize = self.carried.iter().map(ClusterOp::bytes).sum();
        while self.closed_at.is_none() && self.carried.len() < max_batch && bytes < MAX_BATCH_BYTES
        {
            match tokio::time::timeout_at(gather_until, self.ops.recv()).await {
                Ok(Some(op)) => bytes += self.take(op),
                Ok(None) => self.closed_at = Some(Instant::now()),
                Err(_) => break,
            }
        }
    }
}

async fn commit(
    pool: &PgPool,
    shared: &Arc<NodeState>,
    batch: Vec<ClusterOp>,
) -> Result<(), (StoreError, Vec<ClusterOp>)> {
    // Application records go on their own, each in a transaction of its
    // own: they answer their caller and are never retried with a batch.
    let (records, mut batch): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .partition(|op| matches!(op, ClusterOp::Records(_)));
    for op in records {
        if let ClusterOp::Records(op) = op {
            tokio::spawn(app_records::perform(pool.clone(), op));
        }
    }
    if batch.is_empty() {
        return Ok(());
    }
    let plan = plan(shared, &mut batch);
    let result = async {
        let mut tx = pool.begin().await?;
        let outcome = transaction::write(&mut tx, &shared.node(), &plan, &batch).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(outcome)
    }
    .await;
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(error) => return Err(failed(shared, from_sqlx(&error), batch)),
    };
    shared
        .commits
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let reads = settle(shared, batch, outcome);
    if let Err(error) = perform(pool, shared, &reads).await {
        // Committed; only the reads are tried again.
        return Err((from_sqlx(&error), reads.into_ops()));
    }
    Ok(())
}

/// After a commit: callers and workers are told, members updated, reads done.
fn settle(shared: &Arc<NodeState>, batch: Vec<ClusterOp>, outcome: Rows) -> Reads {
    let mut committed: HashMap<Arc<str>, usize> = HashMap::new();
    let mut reads = Reads::default();
    for op in batch {
        match op {
            ClusterOp::Append {
                emitter, durable, ..
            } => {
                if let Some(durable) = durable {
                    durable.done();
                }
                *committed.entry(emitter).or_default() += 1;
            }
            ClusterOp::DeadLetter {
                durable: Some(durable),
                ..
            } => durable.done(),
            ClusterOp::Flush { reply } => {
                let _ = reply.send(Ok(()));
            }
            ClusterOp::GroupRecords { reply, .. } => {
                let _ = reply.send(Ok(()));
            }
            ClusterOp::Register { emitter, .. } => reads.registered.push(emitter),
            ClusterOp::Unregister { emitter, token } => shared.unregistered(&emitter, token),
            ClusterOp::Release { emitter, epoch } => shared.released(&emitter, epoch),
            ClusterOp::Load {
                emitter,
                epoch,
                after,
                through,
                limit,
            } => reads.loads.push((
                LoadRequest {
                    emitter,
                    after,
                    limit,
                },
                epoch,
                through,
            )),
            ClusterOp::ReadDeadLetters { emitter } => reads.dead_letters.push(emitter),
            _ => {}
        }
    }
    tell_workers(shared, committed, outcome);
    reads
}

/// Tells the workers of this node what the batch wrote for them, and those
/// whose writes were fenced off that their lease is gone.
fn tell_workers(shared: &NodeState, committed: HashMap<Arc<str>, usize>, outcome: Rows) {
    for (emitter, count) in committed {
        // With the count, the newest sequence number: the holder on this
        // node knows of the events before `flush` could find it idle.
        let last_seq = outcome.newest(&emitter).unwrap_or(0);
        shared.tell(&emitter, ClusterNotice::Committed { count, last_seq });
    }
    for (emitter, epoch) in outcome.fenced_off {
        tracing::warn!(emitter, epoch, node = %shared.node(), "write refused: this node no longer holds the lease");
        shared.lost(&emitter, Some(epoch));
    }
}

/// A batch that did not commit: the operations to try again. Callers who
/// wait (durable appends, flushes) hear the error now; their appends are
/// dropped, so that `Err` means "not stored".
fn failed(
    shared: &NodeState,
    error: StoreError,
    batch: Vec<ClusterOp>,
) -> (StoreError, Vec<ClusterOp>) {
    let mut retry = Vec::with_capacity(batch.len());
    let mut refused: HashMap<Arc<str>, Vec<Arc<Event>>> = HashMap::new();
    for op in batch {
        match op {
            ClusterOp::Append {
                emitter,
                event,
                durable: Some(durable),
            } => {
                durable.failed(error.clone());
                refused.entry(emitter).or_default().push(event);
            }
            ClusterOp::Flush { reply } => {
                let _ = reply.send(Err(error.clone()));
            }
            // Its caller is told, as a record call's is; not retried.
            ClusterOp::GroupRecords { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            ClusterOp::DeadLetter {
                emitter,
                fence,
                letter,
                capacity,
                durable: Some(durable),
            } => {
                durable.failed(error.clone());
                retry.push(ClusterOp::DeadLetter {
                    emitter,
                    fence,
                    letter,
                    capacity,
                    durable: None,
                });
            }
            other => retry.push(other),
        }
    }
    for (emitter, events) in refused {
        let error = error.clone();
        shared.tell(&emitter, ClusterNotice::NotStored { events, error });
    }
    (error, retry)
}
