//! What other actors ask of a worker, one message per request.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use bytes::Bytes;
use tokio::sync::oneshot;

use super::{Step, Worker};
use crate::delivery::{envelope, request};
use crate::emitter::report::{AttemptAnswer, DropReason, Outcome, Reporter};
use crate::emitter::stats::EmitterStats;
use crate::emitter::test_delivery::{TestDelivery, TEST_EVENT};
use crate::error::ControlError;
use crate::error::StoreError;
use crate::model::Failure;
use crate::model::{DeadLetter, DeadLetterReason};
use crate::model::{Event, RequestId};
use crate::store::durable::DurableAck;
use crate::store::queue::{Drained, Refused, Ticket};

/// The result of one attempt, from the driver.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct AttemptDone {
    pub ticket: Ticket,
    pub result: Result<u16, Failure>,
    pub answer: AttemptAnswer,
}

impl Handler<AttemptDone> for Worker {
    type Result = ();

    fn handle(&mut self, done: AttemptDone, ctx: &mut Context<Self>) {
        self.on_attempt_done(done.ticket, done.result, done.answer, ctx);
    }
}

/// Queue an event for delivery. If the worker dies with this message still
/// in its mailbox, the message reports its event as dropped when it is
/// dropped: an event is never lost without a report.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Enqueue {
    event: Option<(Arc<Event>, Option<DurableAck>)>,
    reporter: Arc<Reporter>,
}

impl Enqueue {
    /// `durable` is told once the event is safe (stored, or queued in memory).
    pub(crate) fn new(
        event: Arc<Event>,
        durable: Option<DurableAck>,
        reporter: Arc<Reporter>,
    ) -> Self {
        Enqueue {
            event: Some((event, durable)),
            reporter,
        }
    }

    /// The event, taken out: the message no longer answers for it.
    pub(crate) fn take(mut self) -> Option<(Arc<Event>, Option<DurableAck>)> {
        self.event.take()
    }
}

impl Drop for Enqueue {
    fn drop(&mut self) {
        if let Some((event, durable)) = self.event.take() {
            let reason = if std::thread::panicking() {
                DropReason::Crashed
            } else {
                DropReason::Shutdown
            };
            self.reporter.report(&event, Outcome::Dropped { reason });
            if let Some(durable) = durable {
                durable.failed(StoreError::Io {
                    detail: "the emitter stopped before the event was stored".into(),
                });
            }
        }
    }
}

impl Handler<Enqueue> for Worker {
    type Result = ();

    fn handle(&mut self, message: Enqueue, ctx: &mut Context<Self>) {
        let Some((event, durable)) = message.take() else {
            return;
        };
        if let Err(Refused { event, durable }) = self.queue.push(event, durable) {
            tracing::error!(parent: &self.span, event = event.name(), request_id = %event.request_id(), capacity = self.config.queue_capacity, "queue full; event dead-lettered");
            self.dead_letter(None, event, 0, DeadLetterReason::QueueFull, durable, None);
            return;
        }
        self.pump(ctx);
    }
}

/// Pause (`true`) or resume (`false`) deliveries; events keep being queued.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SetPaused(pub bool);

impl Handler<SetPaused> for Worker {
    type Result = ();

    fn handle(&mut self, SetPaused(paused): SetPaused, ctx: &mut Context<Self>) {
        self.paused = paused;
        self.paused_by_call = true;
        self.queue.set_paused(paused);
        if !paused {
            // A restart is a fresh start for auto-disable.
            self.streak.dead_letters = 0;
            self.streak.since = None;
        }
        let state = if paused { "paused" } else { "resumed" };
        tracing::info!(parent: &self.span, paused, queued = self.queue.len(), "emitter {state}");
        self.resume(ctx);
    }
}

/// Resolve once the store's state (paused, dead letters) is applied, so that
/// what `attach` returns to is the stored state, not a default.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct WhenRecovered;

impl Handler<WhenRecovered> for Worker {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: WhenRecovered, _: &mut Context<Self>) -> Self::Result {
        let (done, wait) = oneshot::channel();
        if self.recovered {
            let _ = done.send(());
        } else {
            self.recovery_waiters.push(done);
        }
        Box::pin(async move {
            let _ = wait.await;
        })
    }
}

/// Whether deliveries are paused.
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) struct IsPaused;

impl Handler<IsPaused> for Worker {
    type Result = bool;

    fn handle(&mut self, _: IsPaused, _: &mut Context<Self>) -> bool {
        self.paused
    }
}

/// What a stopped worker leaves.
#[derive(Debug, Default)]
pub(crate) struct Stopped {
    /// Started events first, oldest first, then waiting ones; each reported
    /// as dropped.
    pub queued: Vec<Arc<Event>>,
    pub dead_letters: Vec<DeadLetter>,
    /// Events left in the durable store (at shutdown).
    pub stored: usize,
}

/// Stop the actor. In memory, or on detach, what is still queued is reported
/// as dropped and returned, with the dead letters; at shutdown, a durable
/// store keeps its events.
#[derive(Message)]
#[rtype(result = "Stopped")]
pub(crate) struct Stop(pub DropReason);

impl Handler<Stop> for Worker {
    type Result = ResponseFuture<Stopped>;

    fn handle(&mut self, Stop(reason): Stop, ctx: &mut Context<Self>) -> Self::Result {
        self.stopping = true;
        self.queue.stopping();
        let mut started = Vec::with_capacity(self.active.len());
        for (_, active) in std::mem::take(&mut self.active) {
            if let Step::Waiting(timer) = active.step {
                ctx.cancel_future(timer);
            }
            started.push(active.event);
        }
        ctx.stop();
        let dead_letters = self.dead_letters.take_all();
        if reason == DropReason::Shutdown && self.queue.durable() {
            let stored = self.queue.stored();
            tracing::info!(parent: &self.span, stored, "emitter stopped; its events stay in the store");
            return Box::pin(async move {
                Stopped {
                    queued: Vec::new(),
                    dead_letters,
                    stored,
                }
            });
        }
        let drained = self.queue.drain();
        let (reporter, span) = (self.reporter.clone(), self.span.clone());
        Box::pin(async move {
            let queued = match drained {
                Drained::Waiting(waiting) => started.into_iter().chain(waiting).collect(),
                Drained::Stored(all) => all.await,
            };
            for event in &queued {
                reporter.report(event, Outcome::Dropped { reason });
            }
            if !queued.is_empty() {
                tracing::warn!(parent: &span, dropped = queued.len(), ?reason, "emitter stopped with events still queued");
            }
            Stopped {
                queued,
                dead_letters,
                stored: 0,
            }
        })
    }
}

/// Resolve once the queue is empty.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Drain;

impl Handler<Drain> for Worker {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        let (done, wait) = oneshot::channel();
        if self.queue.is_idle() {
            let _ = done.send(());
        } else {
            self.drain_waiters.push(done);
        }
        Box::pin(async move {
            let _ = wait.await;
        })
    }
}

/// Read the dead letters, oldest first.
#[derive(Message)]
#[rtype(result = "Vec<DeadLetter>")]
pub(crate) struct ListDeadLetters;

impl Handler<ListDeadLetters> for Worker {
    type Result = MessageResult<ListDeadLetters>;

    fn handle(&mut self, _: ListDeadLetters, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.dead_letters.list())
    }
}

/// Move dead letters back to the tail of the queue with fresh attempts: one by
/// id, or all of them, oldest first. Returns how many were queued. All or
/// nothing: if the queue has no room for every one of them, nothing changes.
#[derive(Message)]
#[rtype(result = "Result<usize, ControlError>")]
pub(crate) struct Redeliver(pub Option<u64>);

impl Handler<Redeliver> for Worker {
    type Result = Result<usize, ControlError>;

    fn handle(&mut self, Redeliver(which): Redeliver, ctx: &mut Context<Self>) -> Self::Result {
        let wanted = match which {
            Some(id) if !self.dead_letters.contains(id) => {
                return Err(ControlError::UnknownDeadLetter {
                    id: self.id().to_owned(),
                    dead_letter: id,
                })
            }
            Some(_) => 1,
            None => self.dead_letters.len(),
        };
        if self.queue.room() < wanted {
            return Err(ControlError::QueueFull {
                id: self.id().to_owned(),
            });
        }
        let letters: Vec<DeadLetter> = match which {
            Some(id) => self.dead_letters.take(id).into_iter().collect(),
            None => self.dead_letters.take_all(),
        };
        let queued = letters.len();
        self.queue.redeliver(letters);
        tracing::info!(parent: &self.span, queued, "dead letters queued for redelivery");
        self.pump(ctx);
        Ok(queued)
    }
}

/// A snapshot of the counters.
#[derive(Message)]
#[rtype(result = "EmitterStats")]
pub(crate) struct Stats;

impl Handler<Stats> for Worker {
    type Result = MessageResult<Stats>;

    fn handle(&mut self, _: Stats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(EmitterStats {
            id: self.id().to_owned(),
            queued: self.queue.waiting(),
            in_flight: self.count(|s| matches!(s, Step::InFlight)),
            retrying: self.count(|s| !matches!(s, Step::InFlight)),
            delivered: self.counters.delivered,
            failed_attempts: self.counters.failed_attempts,
            dead_lettered: self.counters.dead_lettered,
            dead_letters: self.dead_letters.len(),
            last_status: self.counters.last_status,
            last_latency: self.counters.last_latency,
            paused: self.paused,
            stored: self.queue.stored(),
            rate_limit: self.config.pacing.rate_limit,
            circuit_open: self.circuit_open(),
        })
    }
}

/// Send one `webhook_test` event now, outside the queue, once.
#[derive(Message)]
#[rtype(result = "TestDelivery")]
pub(crate) struct SendTest;

impl Handler<SendTest> for Worker {
    type Result = ResponseActFuture<Self, TestDelivery>;

    fn handle(&mut self, _: SendTest, _: &mut Context<Self>) -> Self::Result {
        let payload = serde_json::json!({ "test": true, "emitter": self.id() });
        let request_id = RequestId::generate();
        let event = Event::new(
            Arc::from(TEST_EVENT),
            Bytes::from(payload.to_string()),
            request_id.clone(),
        );
        let (client, config) = (self.client.clone(), self.config.clone());
        let send = async move {
            let started = Instant::now();
            let outcome = match (client, envelope::body_for(config.request.envelope, &event)) {
                (Some(client), Ok(body)) => {
                    request::attempt(&client, &config.request, &event, body)
                        .await
                        .0
                }
                (None, _) => Err(Failure::Request("emitter not started".into())),
                (_, Err(e)) => Err(Failure::Request(e.to_string())),
            };
            TestDelivery {
                request_id,
                outcome,
                latency: started.elapsed(),
            }
        };
        Box::pin(send.into_actor(self))
    }
}
