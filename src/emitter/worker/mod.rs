//! The emitter actor: one per attached emitter id. It owns a FIFO queue and
//! keeps up to `max_in_flight` of its events active (default 1). An active
//! event is in flight, waiting out its backoff, or ready to be sent again.
//! With one active event (strict order), events reach the endpoint in emit
//! order and a failing event holds back the ones behind it until it succeeds
//! or runs out of attempts.
//!
//! This file is the state machine; [`messages`] holds what other actors ask of
//! it. What follows a failed attempt is decided by the pure
//! [`RetryPolicy`](crate::emitter::retry_policy::RetryPolicy); the worker only
//! carries it out.

mod cluster;
mod crash;
mod messages;
mod pacing;
mod reconfigure;
mod store;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use std::panic::AssertUnwindSafe;

use actix::prelude::*;
use bytes::Bytes;
use futures_util::FutureExt;
use tokio::sync::oneshot;

use crate::delivery::{client, driver, envelope, request};
use crate::emitter::config::ValidatedConfig;
use crate::emitter::dead_letters::DeadLetters;
use crate::emitter::rate_limit::TokenBucket;
use crate::emitter::report::{AttemptAnswer, Outcome, PauseReason, Reporter};
use crate::emitter::retry_policy::{Decision, FailedAttempt};
use crate::model::DeadLetterReason;
use crate::model::Event;
use crate::model::Failure;
use crate::store::durable::DurableAck;
use crate::store::memory::MemoryQueue;
use crate::store::queue::{EventQueue, Started, Ticket};
use crate::store::Store;

pub(crate) use crash::WorkerGone;
#[cfg(feature = "test-util")]
pub(crate) use crash::{ArmRequestPanic, Crash};
pub(crate) use messages::{
    Drain, Enqueue, IsPaused, ListDeadLetters, Redeliver, SendTest, SetPaused, Stats, Stop,
    Stopped, WhenRecovered,
};
pub(crate) use reconfigure::Reconfigure;

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

/// An event the worker has started on. The worker is the one owner of
/// started events, from `start_next` to ack or fail.
struct Active {
    event: Arc<Event>,
    /// The bytes sent (and signed), built once so retries send the same body.
    body: Bytes,
    attempts: u32,
    step: Step,
}

/// The counters behind [`EmitterStats`](crate::EmitterStats).
#[derive(Debug, Default)]
struct Counters {
    delivered: u64,
    failed_attempts: u64,
    dead_lettered: u64,
    last_status: Option<u16>,
    last_latency: Option<Duration>,
}

/// Failures since the last success, for the retry policy.
#[derive(Debug, Default)]
struct Streak {
    /// Failed attempts, across events: drives the backoff in strict order.
    failures: u32,
    dead_letters: u32,
    /// When the current run of failures began.
    since: Option<Instant>,
}

/// The actor behind one emitter id.
pub(crate) struct Worker {
    config: Arc<ValidatedConfig>,
    /// Created in `started`, on the actor's own thread: awc clients are `!Send`.
    client: Option<awc::Client>,
    queue: Box<dyn EventQueue>,
    /// Started events by ticket, so the oldest comes first.
    active: BTreeMap<Ticket, Active>,
    paused: bool,
    streak: Streak,
    dead_letters: DeadLetters,
    counters: Counters,
    reporter: Reporter,
    /// Its metric handles, looked up once (and again with every gauge refresh).
    meters: crate::telemetry::Meters,
    /// Every log line of this worker carries the emitter id through it.
    span: tracing::Span,
    /// `Drain` callers waiting for an empty queue.
    drain_waiters: Vec<oneshot::Sender<()>>,
    /// Told if this actor stops without being asked to (a panic).
    registry: Recipient<WorkerGone>,
    /// Which of the workers ever started for this id this one is.
    generation: u64,
    /// Set by `Stop`: the actor is going away on purpose.
    stopping: bool,
    /// Test hook: the next request future panics.
    #[cfg(feature = "test-util")]
    panic_next_attempt: bool,
    /// Where the queue lives; a journal's queue is made in `started`.
    store: Store,
    /// Paused or resumed by a call since start: stored state must not undo it.
    paused_by_call: bool,
    /// The store's state (paused, dead letters) is known: in memory from the
    /// start, with a store once it has been read back.
    recovered: bool,
    /// `WhenRecovered` callers (attach) waiting for the store's state.
    recovery_waiters: Vec<oneshot::Sender<()>>,
    /// The rate limit's tokens, if it has one.
    bucket: Option<TokenBucket>,
    /// Sends held events when a token is due.
    pacing_timer: Option<SpawnHandle>,
}

/// What a worker hands to its successor when it crashes: what lives only in
/// its memory and is not an event (events are reported as dropped).
pub(crate) struct Inheritance {
    pub paused: bool,
    pub dead_letters: DeadLetters,
}

impl Worker {
    pub(crate) fn new(
        config: Arc<ValidatedConfig>,
        reporter: Reporter,
        registry: Recipient<WorkerGone>,
        generation: u64,
        store: Store,
    ) -> Self {
        // At error level, so that the id shows with every event a subscriber
        // records, whatever its level.
        let span = tracing::error_span!("emitter", id = %reporter.emitter_id());
        let meters = crate::telemetry::Meters::new(reporter.emitter_id());
        Worker {
            meters,
            queue: Box::new(MemoryQueue::new(config.queue_capacity)),
            dead_letters: DeadLetters::new(config.dead_letter_capacity),
            config,
            client: None,
            active: BTreeMap::new(),
            paused: false,
            streak: Streak::default(),
            counters: Counters::default(),
            reporter,
            span,
            drain_waiters: Vec::new(),
            registry,
            generation,
            stopping: false,
            #[cfg(feature = "test-util")]
            panic_next_attempt: false,
            store,
            paused_by_call: false,
            recovered: false,
            recovery_waiters: Vec::new(),
            bucket: None,
            pacing_timer: None,
        }
        .with_rate_limit()
    }

    fn with_rate_limit(mut self) -> Self {
        self.set_rate_limit();
        self
    }

    /// Takes over what a crashed predecessor held.
    pub(crate) fn inherit(mut self, inheritance: Inheritance) -> Self {
        self.paused = inheritance.paused;
        self.dead_letters = inheritance.dead_letters;
        self
    }

    fn id(&self) -> &str {
        self.reporter.emitter_id()
    }

    /// Starts new events up to the limit (or wakes `Drain` callers when there
    /// is nothing left). Events already started are sent again by whoever
    /// makes them ready: their retry timer, or `resume`.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.queue.is_idle() {
            self.drain_waiters.drain(..).for_each(|waiter| {
                let _ = waiter.send(());
            });
            return;
        }
        if self.paused {
            return;
        }
        while self.active.len() < self.config.retry.order.max_active() {
            let Some(started) = self.queue.start_next() else {
                break;
            };
            self.start(started, ctx);
        }
    }

    /// After a pause: sends the started events that were held, oldest first,
    /// then new ones.
    fn resume(&mut self, ctx: &mut Context<Self>) {
        if self.paused {
            return;
        }
        let ready: Vec<Ticket> = self
            .active
            .iter()
            .filter(|(_, a)| matches!(a.step, Step::Ready))
            .map(|(ticket, _)| *ticket)
            .collect();
        for ticket in ready {
            self.send(ticket, ctx);
        }
        self.pump(ctx);
    }

    fn start(&mut self, started: Started, ctx: &mut Context<Self>) {
        let Started {
            ticket,
            event,
            attempts,
            retry_at,
        } = started;
        let body = match envelope::body_for(self.config.request.envelope, &event) {
            Ok(body) => body,
            Err(error) => {
                // Only a payload that is not JSON gets here (a damaged stored
                // record): `emit` lets none through.
                let failure = Failure::Request(format!("payload is not JSON: {error}"));
                let reason = DeadLetterReason::NotRetryable { failure };
                self.dead_letter(Some(ticket), event, attempts, reason, None, None);
                return;
            }
        };
        let active = Active {
            event,
            body,
            attempts,
            step: Step::Ready,
        };
        self.active.insert(ticket, active);
        // A stored event whose backoff had not run out when the process
        // stopped waits for the rest of it: a restart is no reason to retry
        // a failing receiver early.
        let wait = retry_at.and_then(|due| due.duration_since(SystemTime::now()).ok());
        match wait {
            Some(wait) if !wait.is_zero() => self.retry_after(ticket, wait, ctx),
            _ => self.send(ticket, ctx),
        }
    }

    /// Sends `ticket` again once `after` has passed (unless paused then).
    fn retry_after(&mut self, ticket: Ticket, after: Duration, ctx: &mut Context<Self>) {
        let timer = ctx.run_later(after, move |worker, ctx| {
            worker.set_step(ticket, Step::Ready);
            if !worker.paused {
                worker.send(ticket, ctx);
            }
        });
        self.set_step(ticket, Step::Waiting(timer));
    }

    fn send(&mut self, ticket: Ticket, ctx: &mut Context<Self>) {
        if !self.queue.may_deliver() {
            // Not this node's to send (a lapsed or lost lease): held ready
            // until the lease is renewed, or dropped when it is lost.
            self.set_step(ticket, Step::Ready);
            return;
        }
        if !self.active.contains_key(&ticket) {
            return;
        }
        match self.hold() {
            None => {}
            Some(hold) => {
                self.set_step(ticket, Step::Ready);
                if let pacing::Hold::Rate(wait) = hold {
                    self.wake_after(wait, ctx);
                }
                return;
            }
        }
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
        #[cfg(feature = "test-util")]
        let panic_now = std::mem::take(&mut self.panic_next_attempt);
        #[cfg(not(feature = "test-util"))]
        let panic_now = false;
        driver::submit(Box::pin(async move {
            let started = Instant::now();
            let attempt = async {
                if panic_now {
                    panic!("test hook: a request future panics");
                }
                request::attempt(&client, &config.request, &event, body).await
            };
            // A panic in one request fails that attempt only: the worker gets
            // its result like any other, and the driver goes on.
            let (result, response_body) = AssertUnwindSafe(attempt)
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    (Err(Failure::Request(panic_message(&panic))), Bytes::new())
                });
            // A stopped worker (detached) no longer wants the result.
            worker.do_send(messages::AttemptDone {
                ticket,
                result,
                answer: AttemptAnswer {
                    latency: started.elapsed(),
                    response_body,
                },
            });
        }));
    }

    fn on_attempt_done(
        &mut self,
        ticket: Ticket,
        result: Result<u16, Failure>,
        answer: AttemptAnswer,
        ctx: &mut Context<Self>,
    ) {
        let Some(active) = self.active.get_mut(&ticket) else {
            return;
        };
        active.attempts = active.attempts.saturating_add(1);
        self.meters
            .attempt(self.reporter.emitter_id(), &result, answer.latency);
        let was_open = self.circuit_open();
        match result {
            Ok(status) => self.delivered(ticket, status, answer),
            Err(failure) => self.failed(ticket, failure, answer, ctx),
        }
        self.circuit_changed(was_open);
        self.release_when_idle(ctx);
        if self.paused {
            self.pump(ctx);
        } else {
            // Events held while this one was in flight (an open circuit) go now.
            self.resume(ctx);
        }
    }

    fn delivered(&mut self, ticket: Ticket, status: u16, answer: AttemptAnswer) {
        let latency = answer.latency;
        let Some(active) = self.active.remove(&ticket) else {
            return;
        };
        self.queue.ack(ticket);
        self.streak = Streak::default();
        self.counters.delivered += 1;
        self.counters.last_status = Some(status);
        self.counters.last_latency = Some(latency);
        let (event, attempts) = (active.event, active.attempts);
        let lag = SystemTime::now()
            .duration_since(event.emitted_at())
            .unwrap_or_default();
        self.meters.delivered(lag);
        tracing::debug!(parent: &self.span, event = event.name(), request_id = %event.request_id(), status, attempts, "delivered");
        let outcome = Outcome::Delivered {
            status,
            attempts,
            latency,
        };
        self.reporter.report_with(&event, outcome, Some(answer));
    }

    /// Asks the retry policy what follows this failure, and does it.
    fn failed(
        &mut self,
        ticket: Ticket,
        failure: Failure,
        answer: AttemptAnswer,
        ctx: &mut Context<Self>,
    ) {
        let Some(active) = self.active.get(&ticket) else {
            return;
        };
        let (event, attempts) = (active.event.clone(), active.attempts);
        self.counters.failed_attempts += 1;
        self.counters.last_status = failure.status().or(self.counters.last_status);
        self.streak.failures = self.streak.failures.saturating_add(1);
        let now = Instant::now();
        let since = *self.streak.since.get_or_insert(now);
        let decision = self.config.retry.decide(FailedAttempt {
            failure: &failure,
            attempts,
            consecutive_failures: self.streak.failures,
            consecutive_dead_letters: self.streak.dead_letters,
            failing_for: now.duration_since(since),
            jitter: fastrand::f64(),
        });
        match decision {
            Decision::HoldAndPause(reason) => {
                self.set_step(ticket, Step::Ready);
                self.pause_self(&event, reason);
            }
            Decision::Retry { after, pause } => {
                let now = SystemTime::now();
                let due = now.checked_add(after).unwrap_or(now);
                self.queue.attempted(ticket, attempts, due);
                tracing::warn!(parent: &self.span, event = event.name(), request_id = %event.request_id(), url = %self.config.request.display_url, attempt = attempts, %failure, retry_in = ?after, "attempt failed; will retry");
                let outcome = Outcome::AttemptFailed {
                    attempt: attempts,
                    failure,
                    retry_in: after,
                };
                self.reporter.report_with(&event, outcome, Some(answer));
                self.retry_after(ticket, after, ctx);
                self.pause_if(&event, pause);
            }
            Decision::DeadLetter { reason, pause } => {
                self.active.remove(&ticket);
                tracing::error!(parent: &self.span, event = event.name(), request_id = %event.request_id(), url = %self.config.request.display_url, attempts, %failure, "event dead-lettered");
                self.streak.dead_letters = self.streak.dead_letters.saturating_add(1);
                self.dead_letter(
                    Some(ticket),
                    event.clone(),
                    attempts,
                    reason,
                    None,
                    Some(answer),
                );
                self.pause_if(&event, pause);
            }
        }
    }

    fn set_step(&mut self, ticket: Ticket, step: Step) {
        if let Some(active) = self.active.get_mut(&ticket) {
            active.step = step;
        }
    }

    /// Gives up on an event: a started one (`ticket`) or one that never got in.
    fn dead_letter(
        &mut self,
        ticket: Option<Ticket>,
        event: Arc<Event>,
        attempts: u32,
        reason: DeadLetterReason,
        durable: Option<DurableAck>,
        answer: Option<AttemptAnswer>,
    ) {
        self.counters.dead_lettered += 1;
        crate::telemetry::dead_lettered(self.reporter.emitter_id(), &reason);
        let outcome = Outcome::DeadLettered {
            attempts,
            reason: reason.clone(),
        };
        self.reporter.report_with(&event, outcome, answer);
        let (letter, evicted) = self.dead_letters.push(event, attempts, reason);
        self.queue.fail(ticket, letter.as_ref(), durable);
        self.queue.evict_dead_letters(evicted.into_iter().collect());
    }

    fn pause_if(&mut self, event: &Arc<Event>, reason: Option<PauseReason>) {
        if let Some(reason) = reason {
            if !self.paused {
                self.pause_self(event, reason);
            }
        }
    }

    fn pause_self(&mut self, event: &Arc<Event>, reason: PauseReason) {
        self.paused = true;
        self.queue.set_paused(true);
        tracing::warn!(parent: &self.span, url = %self.config.request.display_url, ?reason, "emitter paused itself; restart it to resume");
        self.reporter
            .report(event, Outcome::EmitterPaused { reason });
    }

    fn count(&self, pick: fn(&Step) -> bool) -> usize {
        self.active.values().filter(|a| pick(&a.step)).count()
    }
}

/// What a caught panic said, for the failure it becomes.
fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    format!("internal error: the request panicked: {text}")
}

impl Actor for Worker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.client = Some(client::build_client(&self.config.request));
        self.open_store(ctx);
        tracing::info!(parent: &self.span, url = %self.config.request.display_url, "emitter started");
        self.pump(ctx);
        #[cfg(feature = "metrics")]
        {
            // Set at once, then refreshed: a scrape right after the attach
            // (or after deliveries) finds the gauges of every emitter.
            let gauges = |worker: &mut Worker| {
                let depth = worker.queue.waiting() + worker.active.len();
                crate::telemetry::emitter_state(worker.reporter.emitter_id(), depth, worker.paused);
                worker.meters.refresh(worker.reporter.emitter_id());
            };
            gauges(self);
            ctx.run_interval(crate::telemetry::GAUGE_INTERVAL, move |worker, _| {
                gauges(worker)
            });
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        crate::telemetry::emitter_state(self.reporter.emitter_id(), 0, false);
    }
}
