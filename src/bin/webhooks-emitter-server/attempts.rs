//! Recent attempts per endpoint, from the emitter's delivery reports, and
//! the console's live feed: each one is also published on the SSE topic
//! [`CONSOLE_TOPIC`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;
use webhooks_emitter::{DeadLetterReason, DeliveryReport, Outcome, WebhooksEmitter};

/// The SSE topic of the console's feed. It has a space, which no event name
/// can have, so it never mixes with emitted events.
pub const CONSOLE_TOPIC: &str = "console deliveries";
/// Attempts kept per endpoint.
pub const KEPT: usize = 200;

/// One attempt (or final outcome) of one event at one endpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttemptView {
    pub endpoint: String,
    pub request_id: String,
    pub event: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// `delivered`, `failed` (will be retried), `dead_lettered`, `paused`, `dropped` or `not_stored`.
    pub outcome: &'static str,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
    /// Of a delivered or failed attempt, in milliseconds.
    pub latency_ms: Option<f64>,
    /// The first 4 KiB of what the endpoint answered (UTF-8, invalid bytes
    /// replaced), when it answered with a body.
    pub response_body: Option<String>,
    /// RFC 3339.
    pub at: String,
}

/// The last [`KEPT`] attempts of every endpoint, newest last.
#[derive(Default)]
pub struct Attempts(Mutex<HashMap<Arc<str>, VecDeque<AttemptView>>>);

fn view(report: &DeliveryReport) -> Option<AttemptView> {
    let (attempt, outcome, status, error, latency_ms) = match &report.outcome {
        Outcome::Delivered {
            status,
            attempts,
            latency,
        } => (
            *attempts,
            "delivered",
            Some(*status),
            None,
            Some(latency.as_secs_f64() * 1e3),
        ),
        Outcome::AttemptFailed {
            attempt, failure, ..
        } => (
            *attempt,
            "failed",
            failure.status(),
            Some(failure.to_string()),
            None,
        ),
        Outcome::DeadLettered { attempts, reason } => {
            let status = match reason {
                DeadLetterReason::AttemptsExhausted { last_failure } => last_failure.status(),
                _ => None,
            };
            let error = Some(reason.to_string());
            (*attempts, "dead_lettered", status, error, None)
        }
        Outcome::EmitterPaused { reason } => (0, "paused", None, Some(format!("{reason:?}")), None),
        Outcome::Dropped { reason } => (0, "dropped", None, Some(format!("{reason:?}")), None),
        Outcome::NotStored { error } => (0, "not_stored", None, Some(error.to_string()), None),
        _ => return None,
    };
    let answer = report.attempt.as_ref();
    Some(AttemptView {
        latency_ms: latency_ms.or(answer.map(|a| a.latency.as_secs_f64() * 1e3)),
        response_body: answer
            .filter(|a| !a.response_body.is_empty())
            .map(|a| String::from_utf8_lossy(&a.response_body).into_owned()),
        endpoint: report.emitter_id.to_string(),
        request_id: report.event.request_id().to_string(),
        event: report.event.name().to_owned(),
        attempt,
        outcome,
        status,
        error,
        at: rfc3339(report.at),
    })
}

pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

impl Attempts {
    fn record(&self, attempt: AttemptView) {
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let kept = all.entry(Arc::from(attempt.endpoint.as_str())).or_default();
        if kept.len() >= KEPT {
            kept.pop_front();
        }
        kept.push_back(attempt);
    }

    /// The newest `limit` attempts of `endpoint`, newest first.
    pub fn recent(&self, endpoint: &str, limit: usize) -> Vec<AttemptView> {
        let all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        all.get(endpoint)
            .map(|kept| kept.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets a deleted endpoint's attempts.
    pub fn forget(&self, endpoint: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(endpoint);
    }

    /// Follows the emitter's reports until it stops.
    pub async fn follow(self: Arc<Self>, emitter: WebhooksEmitter) {
        let mut reports = emitter.reports();
        loop {
            match reports.recv().await {
                Ok(report) => {
                    if let Some(attempt) = view(&report) {
                        if let Err(error) = emitter.broadcast(CONSOLE_TOPIC, "attempt", &attempt) {
                            tracing::debug!(%error, "console feed not published");
                        }
                        self.record(attempt);
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "attempt log fell behind the reports; some attempts are not listed"
                    );
                }
                Err(RecvError::Closed) => return,
            }
        }
    }
}
