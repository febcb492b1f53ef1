//! Recent attempts per endpoint, kept in the journal (the last
//! `--attempts-kept` of each, default 1,000, across restarts), from the
//! emitter's delivery reports; and the console's live feed: each one is
//! also published on the SSE topic [`CONSOLE_TOPIC`].
//!
//! Each attempt is a record in the namespace `attempts/<endpoint>`, keyed by
//! a zero-padded number that grows (unix microseconds at least, so that
//! several nodes on one database agree), so the store lists them in order. The
//! follower writes what arrived together in one transaction (one fsync for a
//! batch, not one per attempt), with the deletions that keep the bound.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;
use webhooks_emitter::{DeadLetterReason, DeliveryReport, Outcome, RecordChange, WebhooksEmitter};

use crate::clock::{rfc3339, unix_micros};
use crate::problem::Problem;
use crate::records::{numbered_key as key, ServerStore};

/// The SSE topic of the console's feed. It has a space, which no event name
/// can have, so it never mixes with emitted events.
pub const CONSOLE_TOPIC: &str = "console deliveries";
/// Default of `--attempts-kept`.
pub const DEFAULT_KEPT: usize = 1_000;
/// Most reports written in one transaction.
const BATCH: usize = 1_024;
/// How long reports are gathered for one write.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);

/// One attempt (or final outcome) of one event at one endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    pub endpoint: String,
    pub request_id: String,
    pub event: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// `delivered`, `failed` (will be retried), `dead_lettered`, `paused`, `dropped` or `not_stored`.
    pub outcome: String,
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

/// The attempt log: where it is, its bound, and the keys it holds.
pub struct Attempts {
    store: ServerStore,
    kept: usize,
    /// Per endpoint, the numbers of its stored attempts, oldest first (read
    /// from the journal the first time the endpoint is seen).
    index: Mutex<HashMap<String, VecDeque<u64>>>,
}

fn namespace(endpoint: &str) -> String {
    format!("attempts/{endpoint}")
}

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
        outcome: outcome.to_owned(),
        latency_ms: latency_ms.or(answer.map(|a| a.latency.as_secs_f64() * 1e3)),
        response_body: answer
            .filter(|a| !a.response_body.is_empty())
            .map(|a| String::from_utf8_lossy(&a.response_body).into_owned()),
        endpoint: report.emitter_id.to_string(),
        request_id: report.event.request_id().to_string(),
        event: report.event.name().to_owned(),
        attempt,
        status,
        error,
        at: rfc3339(report.at),
    })
}

impl Attempts {
    /// A log in `journal` keeping the last `kept` attempts of each endpoint.
    pub fn new(store: ServerStore, kept: usize) -> Self {
        Attempts {
            store,
            kept: kept.max(1),
            index: Mutex::new(HashMap::new()),
        }
    }

    fn index(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<u64>>> {
        self.index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The stored attempts of `endpoint`, oldest first, by number.
    async fn stored(&self, endpoint: &str) -> Result<Vec<(u64, Vec<u8>)>, Problem> {
        let records = self.store.records(&namespace(endpoint)).await?;
        Ok(records
            .into_iter()
            .filter_map(|(key, value)| Some((key.parse().ok()?, value)))
            .collect())
    }

    /// The newest `limit` attempts of `endpoint` (an emitter id), newest
    /// first, each naming the endpoint by its id in its application.
    pub async fn recent(&self, endpoint: &str, limit: usize) -> Result<Vec<AttemptView>, Problem> {
        let stored = self.stored(endpoint).await?;
        Ok(stored
            .iter()
            .rev()
            .filter_map(|(_, value)| serde_json::from_slice::<AttemptView>(value).ok())
            .take(limit)
            .map(|mut attempt| {
                attempt.endpoint = crate::ids::endpoint_of(&attempt.endpoint).to_owned();
                attempt
            })
            .collect())
    }

    /// The stored attempts of `endpoint` (an emitter id) at sending the
    /// event `request_id`, oldest first.
    pub async fn of_request(
        &self,
        endpoint: &str,
        request_id: &str,
    ) -> Result<Vec<AttemptView>, Problem> {
        let mut found: Vec<AttemptView> = self
            .recent(endpoint, usize::MAX)
            .await?
            .into_iter()
            .filter(|attempt| attempt.request_id == request_id)
            .collect();
        found.reverse();
        Ok(found)
    }

    /// Deletes the attempts of `endpoint` (an emitter id) made before
    /// `cutoff` (Unix µs: their numbers are at least the time they were
    /// written); how many.
    pub async fn expire(&self, endpoint: &str, cutoff: u64) -> Result<usize, Problem> {
        let old: Vec<u64> = self
            .stored(endpoint)
            .await?
            .into_iter()
            .map(|(number, _)| number)
            .take_while(|number| *number < cutoff)
            .collect();
        if old.is_empty() {
            return Ok(0);
        }
        if let Some(numbers) = self.index().get_mut(endpoint) {
            numbers.retain(|number| *number >= cutoff);
        }
        let changes = old
            .iter()
            .map(|number| RecordChange::Delete {
                namespace: namespace(endpoint),
                key: key(*number),
            })
            .collect();
        self.store.change_records(changes).await?;
        Ok(old.len())
    }

    /// Deletes every stored attempt of `endpoint` (deleted, or created anew
    /// under an id that was used before).
    pub async fn forget(&self, endpoint: &str) -> Result<(), Problem> {
        self.index().remove(endpoint);
        let changes = self
            .stored(endpoint)
            .await?
            .into_iter()
            .map(|(number, _)| RecordChange::Delete {
                namespace: namespace(endpoint),
                key: key(number),
            })
            .collect();
        Ok(self.store.change_records(changes).await?)
    }

    /// Adds `attempt` to `changes`: its record, and the deletion of the
    /// oldest beyond the bound.
    async fn log(&self, attempt: &AttemptView, changes: &mut Vec<RecordChange>) {
        let endpoint = attempt.endpoint.as_str();
        if !self.index().contains_key(endpoint) {
            // First seen in this process: what earlier runs stored.
            let numbers = match self.stored(endpoint).await {
                Ok(stored) => stored.into_iter().map(|(n, _)| n).collect(),
                Err(problem) => {
                    tracing::error!(endpoint, %problem, "stored attempts unreadable");
                    VecDeque::new()
                }
            };
            self.index().entry(endpoint.to_owned()).or_insert(numbers);
        }
        let Ok(value) = serde_json::to_vec(attempt) else {
            return;
        };
        let mut index = self.index();
        let numbers = index.entry(endpoint.to_owned()).or_default();
        // Unix microseconds at least: on a shared store, the node that takes
        // an endpoint over goes on after the previous one's numbers.
        let number = numbers.back().map_or(1, |last| last + 1).max(unix_micros());
        numbers.push_back(number);
        changes.push(RecordChange::Put {
            namespace: namespace(endpoint),
            key: key(number),
            value,
        });
        while numbers.len() > self.kept {
            if let Some(oldest) = numbers.pop_front() {
                changes.push(RecordChange::Delete {
                    namespace: namespace(endpoint),
                    key: key(oldest),
                });
            }
        }
    }

    /// Follows the emitter's reports until it stops: each attempt to the
    /// console's feed at once, and to the store with the others that arrive
    /// within [`GATHER`] (one transaction for them all: a delivering server
    /// writes a few dozen a second, not one per attempt).
    pub async fn follow(self: std::sync::Arc<Self>, emitter: WebhooksEmitter) {
        let mut reports = emitter.reports();
        loop {
            let mut changes = Vec::new();
            let mut taken = 0;
            let first = match reports.recv().await {
                Ok(report) => report,
                Err(RecvError::Lagged(missed)) => {
                    lagged(missed);
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            self.take(&emitter, &first, &mut changes).await;
            let until = tokio::time::Instant::now() + GATHER;
            while taken < BATCH {
                match tokio::time::timeout_at(until, reports.recv()).await {
                    Ok(Ok(report)) => {
                        taken += 1;
                        self.take(&emitter, &report, &mut changes).await;
                    }
                    Ok(Err(RecvError::Lagged(missed))) => lagged(missed),
                    Ok(Err(RecvError::Closed)) | Err(_) => break,
                }
            }
            if changes.is_empty() {
                continue;
            }
            if let Err(error) = self.store.change_records(changes).await {
                tracing::error!(%error, "attempts not stored");
            }
        }
    }

    /// One report: to the console's feed now, to the store's next write.
    async fn take(
        &self,
        emitter: &WebhooksEmitter,
        report: &DeliveryReport,
        changes: &mut Vec<RecordChange>,
    ) {
        if let Some(attempt) = view(report) {
            if let Err(error) = emitter.broadcast(CONSOLE_TOPIC, "attempt", &attempt) {
                tracing::debug!(%error, "console feed not published");
            }
            self.log(&attempt, changes).await;
        }
    }
}

fn lagged(missed: u64) {
    tracing::warn!(
        missed,
        "attempt log fell behind the reports; some attempts are not listed"
    );
}
