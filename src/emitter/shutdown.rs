//! What `shutdown` returns.

use std::sync::Arc;

use crate::model::DeadLetter;
use crate::model::Event;

/// The result of [`WebhooksEmitter::shutdown`](crate::WebhooksEmitter::shutdown).
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use = "a shutdown report says which events were not delivered"]
pub struct ShutdownReport {
    /// Every queue emptied before the deadline.
    pub drained: bool,
    /// Events still queued at the deadline, per emitter; each was also reported
    /// as [`Outcome::Dropped`](crate::Outcome::Dropped).
    pub undelivered: Vec<Undelivered>,
    /// The dead letters the emitters held (each was reported as
    /// [`Outcome::DeadLettered`](crate::Outcome::DeadLettered) when it became
    /// one), oldest first per emitter: in memory, this is their last trace.
    pub dead_letters: Vec<EmitterDeadLetter>,
    /// With a durable store: events left in it, per emitter, for the next
    /// start (they are not in `undelivered`: nothing was dropped).
    pub stored: Vec<StoredEvents>,
}

/// Events an emitter left in the durable store at shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvents {
    /// The emitter.
    pub emitter_id: Arc<str>,
    /// How many events.
    pub events: usize,
}

/// One event that shutdown left undelivered.
#[derive(Debug, Clone)]
pub struct Undelivered {
    /// The emitter it was queued at.
    pub emitter_id: Arc<str>,
    /// The event.
    pub event: Arc<Event>,
}

/// One dead letter an emitter held at shutdown.
#[derive(Debug, Clone)]
pub struct EmitterDeadLetter {
    /// The emitter that gave up on it.
    pub emitter_id: Arc<str>,
    /// The dead letter.
    pub letter: DeadLetter,
}
