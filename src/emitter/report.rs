//! Delivery reports: every outcome of every event at every emitter, published
//! on a broadcast channel so that users and tests wait on facts, not on sleeps.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;

use crate::model::DeadLetterReason;
use crate::model::Event;
use crate::model::Failure;

/// What happened to one event at one emitter.
#[derive(Debug, Clone)]
pub struct DeliveryReport {
    /// The emitter's id.
    pub emitter_id: Arc<str>,
    /// The event (name, payload, request id).
    pub event: Arc<Event>,
    /// What happened.
    pub outcome: Outcome,
    /// When it happened.
    pub at: SystemTime,
    /// The attempt this report ends, if it ends one (`Delivered`,
    /// `AttemptFailed`, and `DeadLettered` after its last attempt): how long
    /// it took and the start of what the endpoint answered.
    pub attempt: Option<AttemptAnswer>,
}

/// One attempt's time and answer, in a [`DeliveryReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptAnswer {
    /// From sending the request to the response head, or to the failure
    /// (a 500 in 2 ms, a timeout in the request timeout).
    pub latency: Duration,
    /// The first 4 KiB of the response body (empty without a response, or
    /// for an empty body). What receivers answer is often the only clue to
    /// why they refused.
    pub response_body: bytes::Bytes,
}

/// The outcome in a [`DeliveryReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The endpoint answered 2xx.
    Delivered {
        /// The 2xx status.
        status: u16,
        /// Attempts it took, this one included.
        attempts: u32,
        /// Time of the successful attempt, from sending to the response head.
        latency: Duration,
    },
    /// An attempt failed; the event will be tried again after `retry_in`.
    AttemptFailed {
        /// Which attempt failed (1 is the first).
        attempt: u32,
        /// Why.
        failure: Failure,
        /// Backoff before the next attempt.
        retry_in: Duration,
    },
    /// The event was given up and stored as a dead letter.
    DeadLettered {
        /// Attempts made (0 when the queue was full).
        attempts: u32,
        /// Why it was given up.
        reason: DeadLetterReason,
    },
    /// The event was still queued when its emitter went away; it was not delivered,
    /// or (if it was in flight) its outcome is unknown.
    Dropped {
        /// Why the emitter went away.
        reason: DropReason,
    },
    /// The event could not be written to the store (disk full, I/O error). It
    /// stays queued in memory and is delivered as usual; the write is tried
    /// again until the store recovers, but a crash before then loses it.
    NotStored {
        /// What the store said.
        error: crate::error::StoreError,
    },
    /// The emitter paused itself; the report's event is the one that caused
    /// it, kept in the queue. `restart` resumes deliveries.
    EmitterPaused {
        /// Why.
        reason: PauseReason,
    },
}

/// Why an emitter paused itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PauseReason {
    /// The endpoint answered `410 Gone`: it asked not to be called again.
    Gone,
    /// `auto_disable_after_dead_letters`: this many dead letters in a row.
    ConsecutiveDeadLetters(u32),
    /// `auto_disable_after_failing_for`: no success for at least this long.
    FailingFor(Duration),
}

/// Why queued events were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// The emitter was detached.
    Detached,
    /// `shutdown` reached its deadline before the queue drained, or the actor
    /// system stopped (the last handle of a background emitter was dropped).
    Shutdown,
    /// The emitter's actor panicked (a bug; see the logs). It was restarted;
    /// in memory, what it held is lost, and each event is reported so.
    Crashed,
}

/// Publishes reports for one emitter.
#[derive(Debug, Clone)]
pub(crate) struct Reporter {
    emitter_id: Arc<str>,
    sender: broadcast::Sender<DeliveryReport>,
}

impl Reporter {
    pub(crate) fn new(emitter_id: Arc<str>, sender: broadcast::Sender<DeliveryReport>) -> Self {
        Reporter { emitter_id, sender }
    }

    pub(crate) fn emitter_id(&self) -> &Arc<str> {
        &self.emitter_id
    }

    pub(crate) fn report(&self, event: &Arc<Event>, outcome: Outcome) {
        self.report_with(event, outcome, None);
    }

    /// A report, with the attempt it ends (if it ends one).
    pub(crate) fn report_with(
        &self,
        event: &Arc<Event>,
        outcome: Outcome,
        attempt: Option<AttemptAnswer>,
    ) {
        // No subscriber is fine: reports are an observation channel, not a
        // queue. Without one, do not even build the report.
        if self.sender.receiver_count() == 0 {
            return;
        }
        let _ = self.sender.send(DeliveryReport {
            emitter_id: self.emitter_id.clone(),
            event: event.clone(),
            outcome,
            at: SystemTime::now(),
            attempt,
        });
    }
}
