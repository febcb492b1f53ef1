//! The registry actor: emitter ids to worker actors, event names to the workers
//! attached to them. Every `emit` passes through it, so an emit that follows an
//! `attach` or a `detach` is routed with that change already made, and every
//! event a detached worker received is in its mailbox before its `Stop`.
//! Calls about one emitter pass through it too ([`Forward`]), so a missing
//! emitter is always `UnknownEmitter`, never a closed mailbox.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::join_all;
use tokio::sync::broadcast;

use crate::emitter::config::ValidatedConfig;
use crate::emitter::event::Event;
use crate::emitter::report::{DeliveryReport, DropReason, Reporter};
use crate::emitter::shutdown::{ShutdownReport, Undelivered};
use crate::emitter::stats::EmitterStats;
use crate::emitter::worker::{Drain, Enqueue, IsPaused, Stats, Stop, Worker};
use crate::error::{AttachError, ControlError};
#[cfg(feature = "sse")]
use crate::sse::{Publish, SseBroadcaster};

struct Attached {
    worker: Addr<Worker>,
    events: Vec<Arc<str>>,
}

/// Maps names to workers; owns the workers' lifecycle.
pub(crate) struct Registry {
    emitters: HashMap<String, Attached>,
    /// Every emitted event is published there too, on the topic of its name.
    #[cfg(feature = "sse")]
    sse: Option<Addr<SseBroadcaster>>,
    routes: HashMap<Arc<str>, Vec<Addr<Worker>>>,
    reports: broadcast::Sender<DeliveryReport>,
    shut_down: bool,
}

impl Registry {
    pub(crate) fn new(reports: broadcast::Sender<DeliveryReport>) -> Self {
        Registry {
            emitters: HashMap::new(),
            #[cfg(feature = "sse")]
            sse: None,
            routes: HashMap::new(),
            reports,
            shut_down: false,
        }
    }

    /// Publishes every emitted event to `sse` too.
    #[cfg(feature = "sse")]
    pub(crate) fn with_sse(mut self, sse: Addr<SseBroadcaster>) -> Self {
        self.sse = Some(sse);
        self
    }

    /// Removes `id` from the maps; the caller stops its worker.
    fn remove(&mut self, id: &str) -> Option<Attached> {
        let attached = self.emitters.remove(id)?;
        for event in &attached.events {
            if let Some(workers) = self.routes.get_mut(event) {
                workers.retain(|w| w != &attached.worker);
                if workers.is_empty() {
                    self.routes.remove(event);
                }
            }
        }
        Some(attached)
    }

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

impl Actor for Registry {
    type Context = Context<Self>;
}

/// Attach a new worker under `id` for `events` (already validated and deduplicated).
#[derive(Message)]
#[rtype(result = "Result<(), AttachError>")]
pub(crate) struct Attach {
    pub id: String,
    pub events: Vec<Arc<str>>,
    pub config: Arc<ValidatedConfig>,
}

impl Handler<Attach> for Registry {
    type Result = Result<(), AttachError>;

    fn handle(&mut self, msg: Attach, _: &mut Context<Self>) -> Self::Result {
        if self.shut_down {
            return Err(AttachError::ShutDown);
        }
        if self.emitters.contains_key(&msg.id) {
            return Err(AttachError::AlreadyExists { id: msg.id });
        }
        let reporter = Reporter::new(Arc::from(msg.id.as_str()), self.reports.clone());
        let worker = Worker::new(msg.config, reporter).start();
        for event in &msg.events {
            self.routes
                .entry(event.clone())
                .or_default()
                .push(worker.clone());
        }
        tracing::info!(emitter = %msg.id, events = ?msg.events, "emitter attached");
        let attached = Attached {
            worker,
            events: msg.events,
        };
        self.emitters.insert(msg.id, attached);
        Ok(())
    }
}

/// Route an event to every worker attached to its name.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Emit(pub Arc<Event>);

impl Handler<Emit> for Registry {
    type Result = ();

    fn handle(&mut self, Emit(event): Emit, _: &mut Context<Self>) {
        if let Some(workers) = self.routes.get(event.name()) {
            for worker in workers {
                worker.do_send(Enqueue(event.clone()));
            }
        }
        #[cfg(feature = "sse")]
        if let Some(sse) = &self.sse {
            sse.do_send(Publish {
                topic: event.shared_name(),
                event: event.shared_name(),
                data: event.payload_bytes(),
            });
        }
    }
}

/// Forward an app's own SSE publication. It passes through the registry, like
/// `Emit`, so that a caller's emits and broadcasts reach SSE clients in call order.
#[cfg(feature = "sse")]
impl Handler<Publish> for Registry {
    type Result = ();

    fn handle(&mut self, publish: Publish, _: &mut Context<Self>) {
        if let Some(sse) = &self.sse {
            sse.do_send(publish);
        }
    }
}

/// Detach `id`: stop its worker and return what it still had queued.
#[derive(Message)]
#[rtype(result = "Result<Vec<Arc<Event>>, ControlError>")]
pub(crate) struct Detach(pub String);

impl Handler<Detach> for Registry {
    type Result = ResponseFuture<Result<Vec<Arc<Event>>, ControlError>>;

    fn handle(&mut self, Detach(id): Detach, _: &mut Context<Self>) -> Self::Result {
        let Some(attached) = self.remove(&id) else {
            return Box::pin(async move { Err(ControlError::UnknownEmitter { id }) });
        };
        tracing::info!(emitter = %id, "emitter detached");
        let stopped = attached.worker.send(Stop(DropReason::Detached));
        Box::pin(async move {
            stopped
                .await
                .map_err(|_| ControlError::UnknownEmitter { id })
        })
    }
}

/// A request for the worker of emitter `id`, answered by that worker.
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

    fn handle(
        &mut self,
        Forward { id, message }: Forward<M>,
        _: &mut Context<Self>,
    ) -> Self::Result {
        let Some(attached) = self.emitters.get(&id) else {
            return Box::pin(async move { Err(ControlError::UnknownEmitter { id }) });
        };
        let answer = attached.worker.send(message);
        // A worker that stopped while answering is gone as far as the caller
        // can tell: the same error as one that was never attached.
        Box::pin(async move {
            answer
                .await
                .map_err(|_| ControlError::UnknownEmitter { id })
        })
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
                    let stopped = registry
                        .remove(&id)?
                        .worker
                        .send(Stop(DropReason::Shutdown));
                    Some(async move { (id, stopped.await.unwrap_or_default()) })
                })
                .collect();
            async move {
                let undelivered = join_all(stops)
                    .await
                    .into_iter()
                    .flat_map(|(id, events)| {
                        let emitter_id: Arc<str> = Arc::from(id);
                        events.into_iter().map(move |event| Undelivered {
                            emitter_id: emitter_id.clone(),
                            event,
                        })
                    })
                    .collect();
                ShutdownReport {
                    drained,
                    undelivered,
                }
            }
            .into_actor(registry)
        }))
    }
}
