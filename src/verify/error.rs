//! Why a webhook failed verification.

use std::time::Duration;

/// A verification failure. Never includes the secret or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A header the scheme needs is absent (or not visible ASCII).
    #[error("missing header `{header}`")]
    MissingHeader {
        /// The header's name.
        header: String,
    },
    /// A header is present but malformed.
    #[error("malformed header `{header}`: {reason}")]
    BadFormat {
        /// The header's name.
        header: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No signature matches the body under any key.
    #[error("signature does not match")]
    BadSignature,
    /// The signed timestamp is older than the tolerance: possibly a replay.
    #[error("timestamp is {age_secs} s old, beyond the tolerance of {tolerance:?}")]
    TooOld {
        /// How old it is.
        age_secs: i64,
        /// The tolerance in force.
        tolerance: Duration,
    },
    /// The signed timestamp is ahead of the receiver's clock beyond the tolerance.
    #[error("timestamp is {ahead_secs} s in the future, beyond the tolerance of {tolerance:?}")]
    TooNew {
        /// How far ahead it is.
        ahead_secs: i64,
        /// The tolerance in force.
        tolerance: Duration,
    },
}

impl VerifyError {
    /// The HTTP status a receiver should answer: 400 for a malformed request,
    /// 401 for one that is not authentic or not fresh.
    pub fn status(&self) -> u16 {
        match self {
            VerifyError::BadFormat { .. } => 400,
            _ => 401,
        }
    }
}
