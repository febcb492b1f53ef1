//! What `shutdown` returns.

use std::sync::Arc;

use crate::emitter::event::Event;

/// The result of [`WebhooksEmitter::shutdown`](crate::WebhooksEmitter::shutdown).
#[derive(Debug, Clone)]
#[must_use = "a shutdown report says which events were not delivered"]
pub struct ShutdownReport {
    /// Every queue emptied before the deadline.
    pub drained: bool,
    /// Events still queued at the deadline, per emitter; each was also reported
    /// as [`Outcome::Dropped`](crate::Outcome::Dropped).
    pub undelivered: Vec<Undelivered>,
}

/// One event that shutdown left undelivered.
#[derive(Debug, Clone)]
pub struct Undelivered {
    /// The emitter it was queued at.
    pub emitter_id: Arc<str>,
    /// The event.
    pub event: Arc<Event>,
}
