//! The emitter actor: one per attached emitter id. It owns a FIFO queue and
//! delivers its head one attempt at a time (states Idle, InFlight, Backoff), so
//! events reach the endpoint in emit order and a failing event holds back the
//! ones behind it until it succeeds or runs out of attempts.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::config::ValidatedConfig;
use crate::dead_letter::{DeadLetter, DeadLetterReason, DeadLetters};
use crate::delivery;
use crate::error::ControlError;
use crate::event::Event;
use crate::queue::{EventQueue, MemoryQueue};
use crate::report::{DropReason, Failure, Outcome, Reporter};

/// Where the head of the queue stands.
#[derive(Debug)]
enum State {
    /// Nothing in flight, no timer: the next event can go.
    Idle,
    /// One request is on the wire.
    InFlight,
    /// The head failed; a timer will try it again.
    Backoff(SpawnHandle),
}

/// The actor behind one emitter id.
pub(crate) struct Worker {
    config: Arc<ValidatedConfig>,
    /// Created in `started`, on the actor's own thread: awc clients are `!Send`.
    client: Option<awc::Client>,
    queue: Box<dyn EventQueue>,
    state: State,
    paused: bool,
    /// Attempts made on the current head.
    head_attempts: u32,
    /// Failed attempts since the last success, across events: drives the backoff.
    consecutive_failures: u32,
    dead_letters: DeadLetters,
    reporter: Reporter,
    /// `Drain` callers waiting for an empty, idle queue.
    drain_waiters: Vec<oneshot::Sender<()>>,
}

impl Worker {
    pub(crate) fn new(config: Arc<ValidatedConfig>, reporter: Reporter) -> Self {
        Worker {
            queue: Box::new(MemoryQueue::new(config.queue_capacity)),
            dead_letters: DeadLetters::new(config.dead_letter_capacity),
            config,
            client: None,
            state: State::Idle,
            paused: false,
            head_attempts: 0,
            consecutive_failures: 0,
            reporter,
            drain_waiters: Vec::new(),
        }
    }

    fn id(&self) -> &str {
        self.reporter.emitter_id()
    }

    /// Starts an attempt on the head if nothing stops it.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if !matches!(self.state, State::Idle) {
            return;
        }
        if self.queue.len() == 0 {
            self.drain_waiters.drain(..).for_each(|waiter| {
                let _ = waiter.send(());
            });
            return;
        }
        if self.paused {
            return;
        }
        let (Some(event), Some(client)) = (self.queue.peek().cloned(), self.client.clone()) else {
            return;
        };
        self.state = State::InFlight;
        let config = self.config.clone();
        let started = Instant::now();
        let attempt = async move { delivery::attempt(&client, &config, &event).await };
        ctx.spawn(
            attempt
                .into_actor(self)
                .map(move |result, worker, ctx| worker.on_attempt_done(result, started, ctx)),
        );
    }

    fn on_attempt_done(
        &mut self,
        result: Result<u16, Failure>,
        started: Instant,
        ctx: &mut Context<Self>,
    ) {
        self.state = State::Idle;
        self.head_attempts += 1;
        let attempts = self.head_attempts;
        match result {
            Ok(status) => {
                self.consecutive_failures = 0;
                self.head_attempts = 0;
                if let Some(event) = self.queue.ack() {
                    tracing::debug!(emitter = self.id(), event = event.name(), request_id = %event.request_id(), status, attempts, "delivered");
                    let latency = started.elapsed();
                    self.reporter.report(
                        &event,
                        Outcome::Delivered {
                            status,
                            attempts,
                            latency,
                        },
                    );
                }
            }
            Err(failure) if attempts >= self.config.max_retries => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.head_attempts = 0;
                if let Some(event) = self.queue.fail() {
                    tracing::error!(emitter = self.id(), event = event.name(), request_id = %event.request_id(), url = %self.config.display_url, attempts, %failure, "attempts exhausted; event dead-lettered");
                    let reason = DeadLetterReason::AttemptsExhausted {
                        last_failure: failure,
                    };
                    self.dead_letter(event, attempts, reason);
                }
            }
            Err(failure) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                let retry_in = self.config.backoff.delay(self.consecutive_failures);
                if let Some(event) = self.queue.peek().cloned() {
                    tracing::warn!(emitter = self.id(), event = event.name(), request_id = %event.request_id(), url = %self.config.display_url, attempt = attempts, %failure, ?retry_in, "attempt failed; will retry");
                    self.reporter.report(
                        &event,
                        Outcome::AttemptFailed {
                            attempt: attempts,
                            failure,
                            retry_in,
                        },
                    );
                }
                let timer = ctx.run_later(retry_in, |worker, ctx| {
                    worker.state = State::Idle;
                    worker.pump(ctx);
                });
                self.state = State::Backoff(timer);
                return;
            }
        }
        self.pump(ctx);
    }

    fn dead_letter(&mut self, event: Arc<Event>, attempts: u32, reason: DeadLetterReason) {
        self.reporter.report(
            &event,
            Outcome::DeadLettered {
                attempts,
                reason: reason.clone(),
            },
        );
        self.dead_letters.push(event, attempts, reason);
    }
}

impl Actor for Worker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.client = Some(delivery::build_client(&self.config));
        tracing::info!(emitter = self.id(), url = %self.config.display_url, "emitter started");
        self.pump(ctx);
    }
}

/// Queue an event for delivery.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Enqueue(pub Arc<Event>);

impl Handler<Enqueue> for Worker {
    type Result = ();

    fn handle(&mut self, Enqueue(event): Enqueue, ctx: &mut Context<Self>) {
        if let Err(event) = self.queue.push(event) {
            tracing::error!(emitter = self.id(), event = event.name(), request_id = %event.request_id(), capacity = self.config.queue_capacity, "queue full; event dead-lettered");
            self.dead_letter(event, 0, DeadLetterReason::QueueFull);
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
        tracing::info!(
            emitter = self.id(),
            paused,
            queued = self.queue.len(),
            "emitter {}",
            if paused { "paused" } else { "resumed" }
        );
        self.pump(ctx);
    }
}

/// Stop the actor; what is still queued is reported as dropped and returned.
#[derive(Message)]
#[rtype(result = "Vec<Arc<Event>>")]
pub(crate) struct Stop(pub DropReason);

impl Handler<Stop> for Worker {
    type Result = MessageResult<Stop>;

    fn handle(&mut self, Stop(reason): Stop, ctx: &mut Context<Self>) -> Self::Result {
        if let State::Backoff(timer) = std::mem::replace(&mut self.state, State::Idle) {
            ctx.cancel_future(timer);
        }
        let dropped = self.queue.drain();
        for event in &dropped {
            self.reporter.report(event, Outcome::Dropped { reason });
        }
        if !dropped.is_empty() {
            tracing::warn!(
                emitter = self.id(),
                dropped = dropped.len(),
                ?reason,
                "emitter stopped with events still queued"
            );
        }
        ctx.stop();
        MessageResult(dropped)
    }
}

/// Resolve once the queue is empty and nothing is in flight.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Drain;

impl Handler<Drain> for Worker {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        let (done, wait) = oneshot::channel();
        if self.queue.len() == 0 && matches!(self.state, State::Idle) {
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
/// id, or all of them. Returns how many were queued.
#[derive(Message)]
#[rtype(result = "Result<usize, ControlError>")]
pub(crate) struct Redeliver(pub Option<u64>);

impl Handler<Redeliver> for Worker {
    type Result = Result<usize, ControlError>;

    fn handle(&mut self, Redeliver(which): Redeliver, ctx: &mut Context<Self>) -> Self::Result {
        let letters =
            match which {
                Some(id) => vec![self.dead_letters.take(id).ok_or_else(|| {
                    ControlError::UnknownDeadLetter {
                        id: self.id().to_owned(),
                        dead_letter: id,
                    }
                })?],
                None => self.dead_letters.take_all(),
            };
        let mut queued = 0;
        let mut letters = letters.into_iter();
        for letter in letters.by_ref() {
            if self.queue.push(letter.event.clone()).is_err() {
                // Keep this one and the rest: a full queue must not lose them.
                self.dead_letters.restore(letter);
                letters.for_each(|l| self.dead_letters.restore(l));
                self.pump(ctx);
                return Err(ControlError::QueueFull {
                    id: self.id().to_owned(),
                });
            }
            queued += 1;
        }
        tracing::info!(
            emitter = self.id(),
            queued,
            "dead letters queued for redelivery"
        );
        self.pump(ctx);
        Ok(queued)
    }
}
