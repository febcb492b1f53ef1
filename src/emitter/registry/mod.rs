//! The registry actor: emitter ids to worker actors, event names to the workers
//! attached to them. Every `emit` passes through it, so an emit that follows an
//! `attach` or a `detach` is routed with that change already made, and every
//! event a detached worker received is in its mailbox before its `Stop`.
//!
//! - this file: attach, routing of emits and publications, detach;
//! - [`reconfigure`]: new events and settings for an attached emitter;
//! - [`control`]: calls about one emitter or all of them, flush, shutdown;
//! - [`supervision`]: restarting a worker or the SSE broadcaster that crashed.

mod control;
mod reconfigure;
mod supervision;
mod table;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::{broadcast, oneshot};

pub(crate) use control::{
    DiscardOrphans, Flush, Forward, ListRunning, Orphans, Shutdown, StatsAll,
};
pub(crate) use reconfigure::Reconfigure;
#[cfg(feature = "sse")]
pub(crate) use supervision::SseLink;
use table::{Route, Table};

use crate::emitter::config::ValidatedConfig;
use crate::emitter::report::{DeliveryReport, DropReason, Outcome, Reporter};
use crate::emitter::worker::{Enqueue, Inheritance, Stop, Worker};
use crate::error::StoreError;
use crate::error::{AttachError, ControlError};
use crate::model::subscription::channels_admit;
use crate::model::Event;
#[cfg(feature = "sse")]
use crate::sse::Publish;
use crate::store::durable::DurableAck;
use crate::store::Store;

/// One attached emitter.
struct Attached {
    worker: Addr<Worker>,
    events: Vec<Arc<str>>,
    config: Arc<ValidatedConfig>,
    reporter: Arc<Reporter>,
    /// Bumped at every restart, so a late notice about an old worker is ignored.
    generation: u64,
    /// When it was restarted recently, for the crash-loop limit.
    restarts: VecDeque<Instant>,
    /// Events routed while its worker was down, for the successor, in order.
    pending: Vec<(Arc<Event>, Option<DurableAck>)>,
}

/// Maps names to workers; owns the workers' lifecycle.
pub(crate) struct Registry {
    emitters: HashMap<String, Attached>,
    /// Per tenant (`None`: emitters without one), by what each emitter is
    /// attached to: event names and patterns.
    tables: HashMap<Option<Arc<str>>, Table>,
    reports: broadcast::Sender<DeliveryReport>,
    /// Where the workers keep their queues.
    store: Store,
    /// Every emitted event is published there too, on the topic of its name.
    #[cfg(feature = "sse")]
    sse: Option<SseLink>,
    shut_down: bool,
}

impl Registry {
    pub(crate) fn new(reports: broadcast::Sender<DeliveryReport>, store: Store) -> Self {
        Registry {
            emitters: HashMap::new(),
            tables: HashMap::new(),
            reports,
            store,
            #[cfg(feature = "sse")]
            sse: None,
            shut_down: false,
        }
    }

    /// Publishes every emitted event through `sse` too.
    #[cfg(feature = "sse")]
    pub(crate) fn with_sse(mut self, sse: SseLink) -> Self {
        self.sse = Some(sse);
        self
    }

    /// Starts a worker; a successor takes over `inheritance`.
    fn start_worker(
        &self,
        config: &Arc<ValidatedConfig>,
        reporter: &Reporter,
        generation: u64,
        inheritance: Option<Inheritance>,
        ctx: &mut Context<Self>,
    ) -> Addr<Worker> {
        let worker = Worker::new(
            config.clone(),
            reporter.clone(),
            ctx.address().recipient(),
            generation,
            self.store.clone(),
        );
        match inheritance {
            Some(inheritance) => worker.inherit(inheritance).start(),
            None => worker.start(),
        }
    }

    /// Puts `attached` in the maps under `id`: its events are routed to it.
    fn insert(&mut self, id: String, attached: Attached) {
        let table = self
            .tables
            .entry(attached.config.tenant.clone())
            .or_default();
        for event in &attached.events {
            table.add(
                event,
                Route {
                    id: attached.reporter.emitter_id().clone(),
                    worker: attached.worker.clone(),
                    reporter: attached.reporter.clone(),
                    channels: attached.config.channels.clone(),
                },
            );
        }
        self.emitters.insert(id, attached);
    }

    /// Removes `id` from the maps; the caller stops its worker.
    fn remove(&mut self, id: &str) -> Option<Attached> {
        let attached = self.emitters.remove(id)?;
        let tenant = &attached.config.tenant;
        if let Some(table) = self.tables.get_mut(tenant) {
            for event in &attached.events {
                table.remove(event, id);
            }
            if table.is_empty() {
                self.tables.remove(tenant);
            }
        }
        Some(attached)
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

    fn handle(&mut self, msg: Attach, ctx: &mut Context<Self>) -> Self::Result {
        if self.shut_down {
            return Err(AttachError::ShutDown);
        }
        if self.emitters.contains_key(&msg.id) {
            return Err(AttachError::AlreadyExists { id: msg.id });
        }
        let id: Arc<str> = Arc::from(msg.id.as_str());
        let reporter = Arc::new(Reporter::new(id, self.reports.clone()));
        let worker = self.start_worker(&msg.config, &reporter, 0, None, ctx);
        let attached = Attached {
            worker,
            events: msg.events,
            config: msg.config,
            reporter: reporter.clone(),
            generation: 0,
            restarts: VecDeque::new(),
            pending: Vec::new(),
        };
        tracing::info!(emitter = %msg.id, events = ?attached.events, "emitter attached");
        self.insert(msg.id, attached);
        Ok(())
    }
}

/// Route an event to every worker attached to its name. With `durable`, the
/// caller is answered once every copy is safe (`emit_durable`).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Emit {
    pub event: Arc<Event>,
    pub durable: Option<oneshot::Sender<Result<(), StoreError>>>,
    /// The channels it is sent to (`None`: every emitter its name reaches).
    pub channels: Option<Arc<[Arc<str>]>>,
    /// The tenant it is emitted for: only that tenant's emitters get it.
    pub tenant: Option<Arc<str>>,
}

impl Handler<Emit> for Registry {
    type Result = ();

    fn handle(
        &mut self,
        Emit {
            event,
            durable,
            channels,
            tenant,
        }: Emit,
        _: &mut Context<Self>,
    ) {
        // Only names some emitter is attached to become a label: any caller
        // can emit any name, and label sets must stay bounded.
        let (mut routes, label) = match self.tables.get(&tenant) {
            Some(table) => table.covering(&event),
            None => (Vec::new(), None),
        };
        if let Some(channels) = &channels {
            routes.retain(|route| channels_admit(&route.channels, channels));
        }
        crate::telemetry::emitted(label);
        let durable = durable.map(|answer| DurableAck::new(routes.len(), answer));
        for route in routes {
            if route.worker.connected() {
                let enqueue = Enqueue::new(event.clone(), durable.clone(), route.reporter.clone());
                route.worker.do_send(enqueue);
            } else if let Some(attached) = self.emitters.get_mut(&*route.id) {
                // Its worker crashed; the notice is in our mailbox, and the
                // successor gets this event, in order.
                attached.pending.push((event.clone(), durable.clone()));
            }
        }
        // SSE topics are event names, shared by every tenant: a tenant's
        // events stay off them.
        #[cfg(feature = "sse")]
        if tenant.is_none() {
            self.publish(Publish {
                topic: event.shared_name(),
                event: event.shared_name(),
                data: event.payload_bytes(),
                json: true,
                numbered: None,
            });
        }
    }
}

/// Route events to one emitter only, whatever its names, channels and tenant
/// (`emit_all_durable_to`): answered `UnknownEmitter` if it is not attached;
/// `durable` once every event is safe.
#[derive(Message)]
#[rtype(result = "Result<(), ControlError>")]
pub(crate) struct EmitTo {
    pub id: String,
    pub events: Vec<Arc<Event>>,
    pub durable: oneshot::Sender<Result<(), StoreError>>,
}

impl Handler<EmitTo> for Registry {
    type Result = Result<(), ControlError>;

    fn handle(&mut self, msg: EmitTo, _: &mut Context<Self>) -> Self::Result {
        let Some(attached) = self.emitters.get_mut(&msg.id) else {
            return Err(ControlError::UnknownEmitter { id: msg.id });
        };
        let durable = DurableAck::new(msg.events.len(), msg.durable);
        for event in msg.events {
            if attached.worker.connected() {
                let enqueue = Enqueue::new(event, Some(durable.clone()), attached.reporter.clone());
                attached.worker.do_send(enqueue);
            } else {
                attached.pending.push((event, Some(durable.clone())));
            }
        }
        Ok(())
    }
}

/// Forward an app's own SSE publication. It passes through the registry, like
/// `Emit`, so that a caller's emits and broadcasts reach SSE clients in call order.
#[cfg(feature = "sse")]
impl Handler<Publish> for Registry {
    type Result = ();

    fn handle(&mut self, publish: Publish, _: &mut Context<Self>) {
        self.publish(publish);
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
        Box::pin(async move { Ok(stop(attached, DropReason::Detached).await.queued) })
    }
}

/// Stops an attached emitter's worker; what it held, and what was pending for
/// a successor, is returned (and reported as dropped).
async fn stop(attached: Attached, reason: DropReason) -> crate::emitter::worker::Stopped {
    let mut stopped = attached.worker.send(Stop(reason)).await.unwrap_or_default();
    for (event, _) in &attached.pending {
        attached.reporter.report(event, Outcome::Dropped { reason });
    }
    stopped
        .queued
        .extend(attached.pending.into_iter().map(|(event, _)| event));
    stopped
}
