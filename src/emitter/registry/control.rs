//! Calls about one emitter (forwarded to its worker) or all of them, flush and
//! shutdown.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::join_all;
use tokio::sync::oneshot;

use super::{stop, Registry};
use crate::emitter::report::DropReason;
use crate::emitter::shutdown::{EmitterDeadLetter, ShutdownReport, StoredEvents, Undelivered};
use crate::emitter::stats::EmitterStats;
use crate::emitter::worker::{Drain, IsPaused, Stats, Stopped, Worker};
use crate::error::ControlError;
use crate::error::StoreError;
use crate::store::journal::JournalOp;
use crate::store::Store;

/// A request for the worker of emitter `id`, answered by that worker. Passing
/// through the registry, a missing emitter is always `UnknownEmitter`.
pub(crate) struct Forward<M> {
    pub id: String,
    pub message: M,
}

impl<M> Message for Forward<M>
where
    M: Message,
    M::Result: Send + 'static,
{
    type Result = Result<M::Result, ControlError>;
}

impl<M> Handler<Forward<M>> for Registry
where
    M: Message + Send + 'static,
    M::Result: Send + 'static,
    Worker: Handler<M>,
{
    type Result = ResponseFuture<Result<M::Result, ControlError>>;

    fn handle(&mut self, forward: Forward<M>, _: &mut Context<Self>) -> Self::Result {
        let Forward { id, message } = forward;
        let Some(attached) = self.emitters.get(&id) else {
            return Box::pin(async move { Err(ControlError::UnknownEmitter { id }) });
        };
        let answer = attached.worker.send(message);
        // A closed mailbox here is a worker that crashed (its restart is on
        // the way); a detached one would not be in the map.
        Box::pin(async move { answer.await.map_err(|_| ControlError::Crashed { id }) })
    }
}

/// Every emitter's stats, sorted by id.
#[derive(Message)]
#[rtype(result = "Vec<EmitterStats>")]
pub(crate) struct StatsAll;

impl Handler<StatsAll> for Registry {
    type Result = ResponseFuture<Vec<EmitterStats>>;

    fn handle(&mut self, _: StatsAll, _: &mut Context<Self>) -> Self::Result {
        let all = join_all(self.emitters.values().map(|a| a.worker.send(Stats)));
        Box::pin(async move {
            let mut stats: Vec<EmitterStats> =
                all.await.into_iter().filter_map(Result::ok).collect();
            stats.sort_by(|a, b| a.id.cmp(&b.id));
            stats
        })
    }
}

/// Ids of the emitters that are attached and not paused, sorted.
#[derive(Message)]
#[rtype(result = "Vec<String>")]
pub(crate) struct ListRunning;

impl Handler<ListRunning> for Registry {
    type Result = ResponseFuture<Vec<String>>;

    fn handle(&mut self, _: ListRunning, _: &mut Context<Self>) -> Self::Result {
        // Paused is the worker's own state: ask each one.
        let asks = self.emitters.iter().map(|(id, attached)| {
            let (id, paused) = (id.clone(), attached.worker.send(IsPaused));
            async move { (id, paused.await) }
        });
        let asks = join_all(asks);
        Box::pin(async move {
            let mut ids: Vec<String> = asks
                .await
                .into_iter()
                .filter(|(_, paused)| matches!(paused, Ok(false)))
                .map(|(id, _)| id)
                .collect();
            ids.sort();
            ids
        })
    }
}

impl Registry {
    /// A future that resolves `true` once every worker's queue is empty, or
    /// `false` at `deadline`.
    fn drained_within(
        &self,
        deadline: Duration,
    ) -> impl std::future::Future<Output = bool> + 'static {
        let drains = join_all(self.emitters.values().map(|a| a.worker.send(Drain)));
        async move { actix::clock::timeout(deadline, drains).await.is_ok() }
    }
}

/// Resolve `true` once every queue is empty, `false` at `deadline`.
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) struct Flush {
    pub deadline: Duration,
}

impl Handler<Flush> for Registry {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, Flush { deadline }: Flush, _: &mut Context<Self>) -> Self::Result {
        Box::pin(self.drained_within(deadline))
    }
}

/// Refuse new attachments, let every queue drain until `deadline`, then stop
/// every worker and return what was left.
#[derive(Message)]
#[rtype(result = "ShutdownReport")]
pub(crate) struct Shutdown {
    pub deadline: Duration,
}

impl Handler<Shutdown> for Registry {
    type Result = ResponseActFuture<Self, ShutdownReport>;

    fn handle(&mut self, Shutdown { deadline }: Shutdown, _: &mut Context<Self>) -> Self::Result {
        self.shut_down = true;
        let drained = self.drained_within(deadline);
        Box::pin(drained.into_actor(self).then(|drained, registry, _| {
            let ids: Vec<String> = registry.emitters.keys().cloned().collect();
            let stops: Vec<_> = ids
                .into_iter()
                .filter_map(|id| {
                    let attached = registry.remove(&id)?;
                    Some(async move { (id, stop(attached, DropReason::Shutdown).await) })
                })
                .collect();
            let store = registry.store.clone();
            async move {
                let report = report(drained, join_all(stops).await);
                // Everything the workers sent the store is written before
                // shutdown returns.
                if let Err(error) = store.flush().await {
                    tracing::error!(%error, "store could not be flushed at shutdown");
                }
                report
            }
            .into_actor(registry)
        }))
    }
}

/// What the stopped emitters left, as a shutdown report.
fn report(drained: bool, stopped: Vec<(String, Stopped)>) -> ShutdownReport {
    let mut report = ShutdownReport {
        drained,
        undelivered: Vec::new(),
        dead_letters: Vec::new(),
        stored: Vec::new(),
    };
    for (id, stopped) in stopped {
        let emitter_id: Arc<str> = Arc::from(id);
        if stopped.stored > 0 {
            report.stored.push(StoredEvents {
                emitter_id: emitter_id.clone(),
                events: stopped.stored,
            });
        }
        let undelivered = stopped.queued.into_iter().map(|event| Undelivered {
            emitter_id: emitter_id.clone(),
            event,
        });
        report.undelivered.extend(undelivered);
        let letters = stopped
            .dead_letters
            .into_iter()
            .map(|letter| EmitterDeadLetter {
                emitter_id: emitter_id.clone(),
                letter,
            });
        report.dead_letters.extend(letters);
    }
    report
}

/// Stored events of ids that are not attached.
#[derive(Message)]
#[rtype(result = "Result<Vec<(String, usize)>, StoreError>")]
pub(crate) struct Orphans;

impl Handler<Orphans> for Registry {
    type Result = ResponseFuture<Result<Vec<(String, usize)>, StoreError>>;

    fn handle(&mut self, _: Orphans, _: &mut Context<Self>) -> Self::Result {
        let Store::Journal(journal) = &self.store else {
            return Box::pin(async { Ok(Vec::new()) });
        };
        let attached = self.emitters.keys().cloned().collect();
        let (reply, answer) = oneshot::channel();
        let sent = journal.send(JournalOp::Orphans { attached, reply });
        Box::pin(async move {
            sent?;
            answer.await.unwrap_or(Err(StoreError::Closed))
        })
    }
}

/// Delete the stored events of an id that is not attached.
#[derive(Message)]
#[rtype(result = "Result<usize, ControlError>")]
pub(crate) struct DiscardOrphans(pub String);

impl Handler<DiscardOrphans> for Registry {
    type Result = ResponseFuture<Result<usize, ControlError>>;

    fn handle(
        &mut self,
        DiscardOrphans(id): DiscardOrphans,
        _: &mut Context<Self>,
    ) -> Self::Result {
        if self.emitters.contains_key(&id) {
            return Box::pin(async move { Err(ControlError::Attached { id }) });
        }
        let Store::Journal(journal) = &self.store else {
            return Box::pin(async { Ok(0) });
        };
        let (reply, answer) = oneshot::channel();
        let sent = journal.send(JournalOp::Discard { emitter: id, reply });
        Box::pin(async move {
            sent?;
            Ok(answer.await.unwrap_or(Err(StoreError::Closed))?)
        })
    }
}
