//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`): install any recorder (for Prometheus,
//! `metrics-exporter-prometheus`) and these appear. Without the feature every
//! function here is empty.
//!
//! | name | kind | labels |
//! | --- | --- | --- |
//! | `webhooks_events_emitted_total` | counter | `event` (`_unrouted` for names no emitter is attached to) |
//! | `webhooks_attempts_total` | counter | `emitter`, `outcome` |
//! | `webhooks_deliveries_total` | counter | `emitter` |
//! | `webhooks_dead_letters_total` | counter | `emitter`, `reason` |
//! | `webhooks_attempt_duration_seconds` | histogram | `emitter` |
//! | `webhooks_delivery_lag_seconds` | histogram | `emitter` (emit to 2xx) |
//! | `webhooks_queue_depth` | gauge | `emitter` (queued, in flight and retrying) |
//! | `webhooks_emitter_paused` | gauge | `emitter` (1 or 0) |
//! | `webhooks_circuit_open` | gauge | `emitter` (1 while one request at a time goes after a run of failures) |
//! | `webhooks_sse_clients` | gauge | `topic` |
//!
//! Label values are emitter ids, event names and topics, which configuration
//! bounds, and fixed words: never request ids or URLs. `outcome` is
//! `success`, `http_error`, `timeout`, `connect_error`, `request_error` or
//! `blocked`; `reason` is `attempts_exhausted`, `queue_full` or
//! `not_retryable`. Gauges are refreshed every second (emitters) or every
//! quarter heartbeat (SSE topics), and zeroed when an emitter stops.

#[cfg(feature = "metrics")]
use metrics::SharedString;
use std::sync::Arc;
use std::time::Duration;

use crate::model::DeadLetterReason;
use crate::model::Failure;

/// How often an emitter refreshes its gauges.
#[cfg(feature = "metrics")]
pub(crate) const GAUGE_INTERVAL: Duration = Duration::from_secs(1);

#[cfg(feature = "metrics")]
fn shared(value: &Arc<str>) -> SharedString {
    SharedString::from_shared(value.clone())
}

/// The `outcome` label of an attempt answered 2xx (kept in [`Meters`]).
#[cfg(feature = "metrics")]
const SUCCESS: &str = "success";

/// The `event` label of an event no emitter is attached to.
#[cfg(feature = "metrics")]
pub(crate) const UNROUTED: &str = "_unrouted";

/// An event was emitted (before fan-out to emitters); `event` is its name if
/// an emitter is attached to it, `None` otherwise (counted as `_unrouted`).
pub(crate) fn emitted(event: Option<Arc<str>>) {
    #[cfg(feature = "metrics")]
    {
        let label = match &event {
            Some(name) => shared(name),
            None => SharedString::const_str(UNROUTED),
        };
        metrics::counter!("webhooks_events_emitted_total", "event" => label).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = event;
}

/// One attempt ended, with a status or a failure, after `latency`.
pub(crate) fn attempt(emitter: &Arc<str>, result: &Result<u16, Failure>, latency: Duration) {
    #[cfg(feature = "metrics")]
    {
        let outcome = match result {
            Ok(_) => SUCCESS,
            Err(Failure::Status { .. }) => "http_error",
            Err(Failure::Timeout(_)) => "timeout",
            Err(Failure::Connect(_)) => "connect_error",
            Err(Failure::Request(_)) => "request_error",
            Err(Failure::Blocked(_)) => "blocked",
        };
        metrics::counter!("webhooks_attempts_total", "emitter" => shared(emitter), "outcome" => outcome)
            .increment(1);
        metrics::histogram!("webhooks_attempt_duration_seconds", "emitter" => shared(emitter))
            .record(latency.as_secs_f64());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (emitter, result, latency);
}

/// One emitter's handles for what is recorded at every delivery, looked up
/// once rather than at each attempt: a lookup hashes the metric's name and
/// labels, which cost the 64-emitter bench (row 2) 6–9% of its rate. They
/// are looked up again with every refresh of the gauges ([`GAUGE_INTERVAL`]),
/// so a recorder installed after an emitter started is used from the next
/// refresh on. Failed attempts, rarer, look their handles up each time.
pub(crate) struct Meters {
    #[cfg(feature = "metrics")]
    handles: Handles,
}

#[cfg(feature = "metrics")]
struct Handles {
    successes: metrics::Counter,
    attempt_duration: metrics::Histogram,
    deliveries: metrics::Counter,
    lag: metrics::Histogram,
}

impl Meters {
    pub(crate) fn new(emitter: &Arc<str>) -> Self {
        #[cfg(not(feature = "metrics"))]
        let _ = emitter;
        Meters {
            #[cfg(feature = "metrics")]
            handles: Handles {
                successes: metrics::counter!("webhooks_attempts_total", "emitter" => shared(emitter), "outcome" => SUCCESS),
                attempt_duration: metrics::histogram!("webhooks_attempt_duration_seconds", "emitter" => shared(emitter)),
                deliveries: metrics::counter!("webhooks_deliveries_total", "emitter" => shared(emitter)),
                lag: metrics::histogram!("webhooks_delivery_lag_seconds", "emitter" => shared(emitter)),
            },
        }
    }

    /// Looks the handles up again (the recorder may have changed).
    #[cfg(feature = "metrics")]
    pub(crate) fn refresh(&mut self, emitter: &Arc<str>) {
        *self = Meters::new(emitter);
    }

    /// One attempt ended, with a status or a failure, after `latency`.
    pub(crate) fn attempt(
        &self,
        emitter: &Arc<str>,
        result: &Result<u16, Failure>,
        latency: Duration,
    ) {
        #[cfg(feature = "metrics")]
        if result.is_ok() {
            self.handles.successes.increment(1);
            self.handles.attempt_duration.record(latency.as_secs_f64());
            return;
        }
        attempt(emitter, result, latency);
    }

    /// An event was delivered, `lag` after it was emitted.
    pub(crate) fn delivered(&self, lag: Duration) {
        #[cfg(feature = "metrics")]
        {
            self.handles.deliveries.increment(1);
            self.handles.lag.record(lag.as_secs_f64());
        }
        #[cfg(not(feature = "metrics"))]
        let _ = lag;
    }
}

/// An event became a dead letter.
pub(crate) fn dead_lettered(emitter: &Arc<str>, reason: &DeadLetterReason) {
    #[cfg(feature = "metrics")]
    {
        let reason = match reason {
            DeadLetterReason::AttemptsExhausted { .. } => "attempts_exhausted",
            DeadLetterReason::QueueFull => "queue_full",
            DeadLetterReason::NotRetryable { .. } => "not_retryable",
        };
        metrics::counter!("webhooks_dead_letters_total", "emitter" => shared(emitter), "reason" => reason)
            .increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (emitter, reason);
}

/// An emitter's queue depth and paused state, now.
pub(crate) fn emitter_state(emitter: &Arc<str>, queue_depth: usize, paused: bool) {
    #[cfg(feature = "metrics")]
    {
        metrics::gauge!("webhooks_queue_depth", "emitter" => shared(emitter))
            .set(queue_depth as f64);
        metrics::gauge!("webhooks_emitter_paused", "emitter" => shared(emitter)).set(if paused {
            1.0
        } else {
            0.0
        });
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (emitter, queue_depth, paused);
}

/// Whether an emitter's circuit is open.
pub(crate) fn circuit(emitter: &Arc<str>, open: bool) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("webhooks_circuit_open", "emitter" => shared(emitter)).set(if open {
        1.0
    } else {
        0.0
    });
    #[cfg(not(feature = "metrics"))]
    let _ = (emitter, open);
}

/// The live clients of an SSE topic, now.
#[cfg(all(feature = "sse", feature = "metrics"))]
pub(crate) fn sse_clients(topic: &Arc<str>, clients: usize) {
    metrics::gauge!("webhooks_sse_clients", "topic" => shared(topic)).set(clients as f64);
}
