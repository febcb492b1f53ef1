//! A dead letter: an event an emitter gave up on, and why.

use std::sync::Arc;
use std::time::SystemTime;

use crate::model::{Event, Failure};

/// Why an event became a dead letter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// Every attempt failed; the last failure is kept.
    AttemptsExhausted {
        /// Why the last attempt failed.
        last_failure: Failure,
    },
    /// The emitter's queue was full when the event arrived.
    QueueFull,
    /// The failure cannot be cured by retrying (the SSRF guard refused the target).
    NotRetryable {
        /// The failure.
        failure: Failure,
    },
}

impl std::fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeadLetterReason::AttemptsExhausted { last_failure } => {
                write!(f, "attempts exhausted; last failure: {last_failure}")
            }
            DeadLetterReason::QueueFull => f.write_str("queue full"),
            DeadLetterReason::NotRetryable { failure } => write!(f, "not retryable: {failure}"),
        }
    }
}

/// An event an emitter gave up on.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Id of this dead letter within its emitter, for `redeliver`.
    pub id: u64,
    /// The event, with its payload and request id.
    pub event: Arc<Event>,
    /// Attempts made.
    pub attempts: u32,
    /// Why it was given up.
    pub reason: DeadLetterReason,
    /// When it was given up.
    pub at: SystemTime,
}
