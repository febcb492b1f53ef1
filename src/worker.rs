//! The emitter actor: one per attached emitter id. It owns a FIFO queue and
//! keeps up to `max_in_flight` of its events active (default 1). An active
//! event is in flight, waiting out its backoff, or ready to be sent again.
//! With one active event, events reach the endpoint in emit order and a failing
//! event holds back the ones behind it until it succeeds or runs out of attempts.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::config::ValidatedConfig;
use crate::dead_letter::{DeadLetter, DeadLetterReason, DeadLetters};
use crate::delivery;
use crate::driver;
use crate::error::ControlError;
use crate::event::{Event, RequestId};
use crate::queue::{EventQueue, MemoryQueue, Ticket};
use crate::report::{DropReason, Failure, Outcome, PauseReason, Reporter};
use crate::stats::EmitterStats;
use crate::test_delivery::{TestDelivery, TEST_EVENT};

/// Where an active event stands.
#[derive(Debug)]
enum Step {
    /// A request is on the wire.
    InFlight,
    /// It failed; the timer will make it ready again.
    Waiting(SpawnHandle),
    /// To be sent as soon as the emitter is not paused.
    Ready,
}

/// An event the worker has started on.
struct Active {
    event: Arc<Event>,
    /// The bytes sent (and signed), built once so retries send the same body.
    body: Bytes,
    attempts: u32,
    step: Step,
}

/// The counters behind [`EmitterStats`].
#[derive(Debug, Default)]
struct Counters {
    delivered: u64,
    failed_attempts: u64,
    dead_lettered: u64,
    last_status: Option<u16>,
    last_latency: Option<Duration>,
}

/// Tells the registry that a worker paused itself (410, auto-disable).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SelfPaused(pub Arc<str>);

/// The actor behind one emitter id.
pub(crate) struct Worker {
    config: Arc<ValidatedConfig>,
    /// Created in `started`, on the actor's own thread: awc clients are `!Send`.
    client: Option<awc::Client>,
    queue: Box<dyn EventQueue>,
    active: HashMap<Ticket, Active>,
    /// Active events in `Step::Ready`, oldest first: what `pump` resends.
    ready: VecDeque<Ticket>,
    paused: bool,
    /// Failed attempts since the last success, across events: drives the
    /// backoff in strict-order mode, as in the Elixir original.
    consecutive_failures: u32,
    consecutive_dead_letters: u32,
    /// When the current run of failures began (none since the last success).
    failing_since: Option<Instant>,
    dead_letters: DeadLetters,
    counters: Counters,
    reporter: Reporter,
    registry: Recipient<SelfPaused>,
    /// `Drain` callers waiting for an empty queue.
    drain_waiters: Vec<oneshot::Sender<()>>,
}

impl Worker {
    pub(crate) fn new(
        config: Arc<ValidatedConfig>,
        reporter: Reporter,
        registry: Recipient<SelfPaused>,
    ) -> Self {
        Worker {
            queue: Box::new(MemoryQueue::new(config.queue_capacity)),
            dead_letters: DeadLetters::new(config.dead_letter_capacity),
            config,
            client: None,
            active: HashMap::new(),
            ready: VecDeque::new(),
            paused: false,
            consecutive_failures: 0,
            consecutive_dead_letters: 0,
            failing_since: None,
            counters: Counters::default(),
            reporter,
            registry,
            drain_waiters: Vec::new(),
        }
    }

    fn id(&self) -> &str {
        self.reporter.emitter_id()
    }

    /// Sends what can be sent: ready events first, then new ones up to the limit.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.queue.len() == 0 {
            self.drain_waiters.drain(..).for_each(|waiter| {
                let _ = waiter.send(());
            });
            return;
        }
        if self.paused {
            return;
        }
        while let Some(ticket) = self.ready.pop_front() {
            self.send(ticket, ctx);
        }
        while self.active.len() < self.config.max_in_flight {
            let Some((ticket, event)) = self.queue.start_next() else {
                break;
            };
            let body = delivery::body_for(&self.config, &event);
            self.active.insert(
                ticket,
                Active {
                    event,
                    body,
                    attempts: 0,
                    step: Step::Ready,
                },
            );
            self.send(ticket, ctx);
        }
    }

    fn send(&mut self, ticket: Ticket, ctx: &mut Context<Self>) {
        let (Some(active), Some(client)) = (self.active.get_mut(&ticket), self.client.clone())
        else {
            return;
        };
        active.step = Step::InFlight;
        let (config, event, body) = (
            self.config.clone(),
            active.event.clone(),
            active.body.clone(),
        );
        let worker = ctx.address();
        driver::submit(Box::pin(async move {
            let started = Instant::now();
            let result = delivery::attempt(&client, &config, &event, body).await;
            // A stopped worker (detached) no longer wants the result.
            worker.do_send(AttemptDone {
                ticket,
                result,
                latency: started.elapsed(),
            });
        }));
    }

    fn on_attempt_done(
        &mut self,
        ticket: Ticket,
        result: Result<u16, Failure>,
        latency: Duration,
        ctx: &mut Context<Self>,
    ) {
        let Some(active) = self.active.get_mut(&ticket) else {
            return;
        };
        active.attempts += 1;
        let (attempts, event) = (active.attempts, active.event.clone());
        match result {
            Ok(status) => {
                self.active.remove(&ticket);
                self.queue.ack(ticket);
                self.consecutive_failures = 0;
                self.consecutive_dead_letters = 0;
                self.failing_since = None;
                self.counters.delivered += 1;
                self.counters.last_status = Some(status);
                self.counters.last_latency = Some(latency);
                tracing::debug!(emitter = self.id(), event = event.name(), request_id = %event.request_id(), status, attempts, "delivered");
                self.reporter.report(
                    &event,
                    Outcome::Delivered {
                        status,
                        attempts,
                        latency,
                    },
                );
            }
            Err(failure) => {
                self.counters.failed_attempts += 1;
                self.counters.last_status = failure.status().or(self.counters.last_status);
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                // How long the endpoint has been failing: from the first
                // failure of this run to this one (none on the first).
                let now = Instant::now();
                let failing_for = match self.failing_since {
                    Some(since) => now.duration_since(since),
                    None => {
                        self.failing_since = Some(now);
                        Duration::ZERO
                    }
                };
                if failure.status() == Some(410) {
                    // The endpoint asked to stop: keep the event, pause at once.
                    active.step = Step::Ready;
                    self.ready.push_back(ticket);
                    self.pause_self(&event, PauseReason::Gone);
                    return;
                }
                if matches!(failure, Failure::Blocked(_)) || attempts >= self.config.max_retries {
                    self.give_up(ticket, event.clone(), attempts, failure);
                } else {
                    self.schedule_retry(ticket, &event, attempts, failure, ctx);
                }
                if let Some(limit) = self.config.auto_disable.failing_for {
                    if !self.paused && failing_for >= limit {
                        self.pause_self(&event, PauseReason::FailingFor(limit));
                    }
                }
            }
        }
        self.pump(ctx);
    }

    fn schedule_retry(
        &mut self,
        ticket: Ticket,
        event: &Arc<Event>,
        attempt: u32,
        failure: Failure,
        ctx: &mut Context<Self>,
    ) {
        // Strict order keeps the Elixir behaviour (backoff grows across events
        // until a success); parallel mode gives each event its own backoff.
        let level = if self.config.max_in_flight == 1 {
            self.consecutive_failures
        } else {
            attempt
        };
        let mut retry_in = self.config.backoff.delay(level);
        if let Failure::Status {
            retry_after: Some(wait),
            ..
        } = failure
        {
            retry_in = retry_in.max(wait.min(self.config.retry_after_limit));
        }
        tracing::warn!(emitter = self.id(), event = event.name(), request_id = %event.request_id(), url = %self.config.display_url, attempt, %failure, ?retry_in, "attempt failed; will retry");
        self.reporter.report(
            event,
            Outcome::AttemptFailed {
                attempt,
                failure,
                retry_in,
            },
        );
        let timer = ctx.run_later(retry_in, move |worker, ctx| {
            if let Some(active) = worker.active.get_mut(&ticket) {
                active.step = Step::Ready;
                worker.ready.push_back(ticket);
            }
            worker.pump(ctx);
        });
        if let Some(active) = self.active.get_mut(&ticket) {
            active.step = Step::Waiting(timer);
        }
    }

    fn give_up(&mut self, ticket: Ticket, event: Arc<Event>, attempts: u32, failure: Failure) {
        self.active.remove(&ticket);
        self.queue.fail(ticket);
        tracing::error!(emitter = self.id(), event = event.name(), request_id = %event.request_id(), url = %self.config.display_url, attempts, %failure, "event dead-lettered");
        let reason = match failure {
            Failure::Blocked(_) => DeadLetterReason::NotRetryable { failure },
            last_failure => DeadLetterReason::AttemptsExhausted { last_failure },
        };
        self.dead_letter(event.clone(), attempts, reason);
        self.consecutive_dead_letters = self.consecutive_dead_letters.saturating_add(1);
        if let Some(limit) = self.config.auto_disable.dead_letters {
            if !self.paused && self.consecutive_dead_letters >= limit {
                self.pause_self(&event, PauseReason::ConsecutiveDeadLetters(limit));
            }
        }
    }

    fn dead_letter(&mut self, event: Arc<Event>, attempts: u32, reason: DeadLetterReason) {
        self.counters.dead_lettered += 1;
        self.reporter.report(
            &event,
            Outcome::DeadLettered {
                attempts,
                reason: reason.clone(),
            },
        );
        self.dead_letters.push(event, attempts, reason);
    }

    fn pause_self(&mut self, event: &Arc<Event>, reason: PauseReason) {
        self.paused = true;
        tracing::warn!(emitter = self.id(), url = %self.config.display_url, ?reason, "emitter paused itself; restart it to resume");
        self.reporter
            .report(event, Outcome::EmitterPaused { reason });
        self.registry
            .do_send(SelfPaused(self.reporter.emitter_id().clone()));
    }

    fn count(&self, pick: fn(&Step) -> bool) -> usize {
        self.active.values().filter(|a| pick(&a.step)).count()
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

/// The result of one attempt, from the driver.
#[derive(Message)]
#[rtype(result = "()")]
struct AttemptDone {
    ticket: Ticket,
    result: Result<u16, Failure>,
    latency: Duration,
}

impl Handler<AttemptDone> for Worker {
    type Result = ();

    fn handle(&mut self, done: AttemptDone, ctx: &mut Context<Self>) {
        self.on_attempt_done(done.ticket, done.result, done.latency, ctx);
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
        if !paused {
            // A restart is a fresh start for auto-disable.
            self.consecutive_dead_letters = 0;
            self.failing_since = None;
        }
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
        self.ready.clear();
        for (_, active) in std::mem::take(&mut self.active) {
            if let Step::Waiting(timer) = active.step {
                ctx.cancel_future(timer);
            }
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

/// Resolve once the queue is empty.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Drain;

impl Handler<Drain> for Worker {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        let (done, wait) = oneshot::channel();
        if self.queue.len() == 0 {
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
        let body = delivery::body_for(&self.config, &event);
        let (client, config) = (self.client.clone(), self.config.clone());
        let send = async move {
            let started = Instant::now();
            let outcome = match client {
                Some(client) => delivery::attempt(&client, &config, &event, body).await,
                None => Err(Failure::Request("emitter not started".into())),
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
