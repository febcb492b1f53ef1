//! Supervision, as in OTP: a worker or the SSE broadcaster that stops without
//! being asked to (a panic) is noticed and restarted.
//!
//! A worker's `Drop` reports the events it held as dropped and sends
//! [`WorkerGone`] with what is not an event (paused state, dead letters); its
//! successor takes those over, and gets the events routed to it meanwhile, in
//! order. An emitter that crashes more than [`MAX_RESTARTS`] times within
//! [`RESTART_WINDOW`] is restarted paused, so that a crash loop stops until
//! someone looks (`restart` resumes it). A restarted broadcaster starts with no
//! clients and empty replay buffers, and continues each topic's ids: clients,
//! whose streams ended, reconnect and resume by id; what the buffers held
//! before the crash is announced with `sse-lost`.

#[cfg(feature = "sse")]
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::Registry;
use crate::emitter::worker::{Enqueue, WorkerGone};
#[cfg(feature = "sse")]
use crate::sse::{BroadcasterGone, BroadcasterSlot, Publish, SseBroadcaster, SseOptions};
#[cfg(all(feature = "sse", feature = "postgres"))]
use crate::store::{postgres::feed::FeedItem, Store};

/// Restarts allowed within [`RESTART_WINDOW`] before an emitter is held paused.
pub(crate) const MAX_RESTARTS: usize = 5;
/// The window restarts are counted in.
pub(crate) const RESTART_WINDOW: Duration = Duration::from_secs(60);

impl Handler<WorkerGone> for Registry {
    type Result = ();

    fn handle(&mut self, gone: WorkerGone, ctx: &mut Context<Self>) {
        let Some(attached) = self.emitters.get_mut(&*gone.id) else {
            return; // detached meanwhile
        };
        if attached.generation != gone.generation {
            return;
        }
        let now = Instant::now();
        attached
            .restarts
            .retain(|at| now.duration_since(*at) < RESTART_WINDOW);
        attached.restarts.push_back(now);
        let mut inheritance = gone.inheritance;
        if attached.restarts.len() > MAX_RESTARTS {
            inheritance.paused = true;
            tracing::error!(emitter = %gone.id, restarts = attached.restarts.len(), window = ?RESTART_WINDOW, "emitter keeps crashing; restarted paused: `restart` it once the cause is fixed");
        }
        attached.generation += 1;
        let (config, reporter) = (attached.config.clone(), attached.reporter.clone());
        let generation = attached.generation;
        let worker = self.start_worker(&config, &reporter, generation, Some(inheritance), ctx);
        let Some(attached) = self.emitters.get_mut(&*gone.id) else {
            return;
        };
        for (event, durable) in attached.pending.drain(..) {
            worker.do_send(Enqueue::new(event, durable, reporter.clone()));
        }
        tracing::error!(emitter = %gone.id, generation = attached.generation, "emitter restarted after a crash");
        if let Some(table) = self.tables.get_mut(&attached.config.tenant) {
            for event in &attached.events {
                if let Some(route) = table.route_mut(event, &gone.id) {
                    route.worker = worker.clone();
                }
            }
        }
        attached.worker = worker;
    }
}

/// The broadcaster, where the endpoint and the handle find it, and what it
/// takes to start another.
#[cfg(feature = "sse")]
pub(crate) struct SseLink {
    pub slot: BroadcasterSlot,
    pub options: SseOptions,
    /// Publications that found the broadcaster gone, for its successor.
    pub pending: VecDeque<Publish>,
}

/// Most publications held for a broadcaster being restarted (its restart
/// notice is already in the registry's mailbox, so few ever wait).
#[cfg(feature = "sse")]
const MAX_PENDING_PUBLICATIONS: usize = 65_536;

#[cfg(feature = "sse")]
impl Registry {
    /// Publishes through the broadcaster; while it is being restarted, the
    /// publication waits for its successor. On a cluster's shared feed, a
    /// publication goes there first, and comes back numbered.
    pub(super) fn publish(&mut self, publish: Publish) {
        #[cfg(feature = "postgres")]
        if let (Store::Postgres(store), None) = (&self.store, publish.numbered) {
            if store.shares_live_updates() {
                store.publish(FeedItem {
                    topic: publish.topic,
                    event: publish.event,
                    data: publish.data,
                    json: publish.json,
                });
                return;
            }
        }
        let shut_down = self.shut_down;
        let Some(link) = self.sse.as_mut() else {
            return;
        };
        let broadcaster = link.slot.get();
        if broadcaster.connected() {
            broadcaster.do_send(publish);
        } else if !shut_down {
            if link.pending.len() >= MAX_PENDING_PUBLICATIONS {
                link.pending.pop_front();
            }
            link.pending.push_back(publish);
        }
    }
}

#[cfg(feature = "sse")]
impl Handler<BroadcasterGone> for Registry {
    type Result = ();

    fn handle(&mut self, gone: BroadcasterGone, ctx: &mut Context<Self>) {
        let Some(link) = self.sse.as_mut() else {
            return;
        };
        if self.shut_down || link.slot.get().connected() {
            return;
        }
        let fresh = SseBroadcaster::new(link.options.clone(), Some(ctx.address().recipient()))
            .continuing(gone.last_ids)
            .start();
        for publish in link.pending.drain(..) {
            fresh.do_send(publish);
        }
        link.slot.replace(fresh);
        tracing::error!("SSE broadcaster restarted after a crash; its clients resume by id");
    }
}
