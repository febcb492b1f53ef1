//! Why one attempt failed.

use std::time::Duration;

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Failure {
    /// The endpoint answered with a status outside 2xx. Redirects (3xx) are not
    /// followed and land here too.
    #[error("endpoint answered HTTP {status}")]
    Status {
        /// The status code.
        status: u16,
        /// The `Retry-After` the endpoint sent with a 429 or 503, as a wait.
        retry_after: Option<Duration>,
    },
    /// The SSRF guard refused every address the host resolved to; not retried.
    #[error("target refused by the SSRF guard: {0}")]
    Blocked(String),
    /// No response head within the request timeout.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The connection could not be made (refused, DNS, TLS handshake).
    #[error("could not connect: {0}")]
    Connect(String),
    /// The request failed after connecting (connection reset, protocol error).
    #[error("request failed: {0}")]
    Request(String),
}

impl Failure {
    /// The HTTP status, for failures that got one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Failure::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A shorthand for a status failure without `Retry-After`.
    pub fn status_code(status: u16) -> Self {
        Failure::Status {
            status,
            retry_after: None,
        }
    }
}
