//! Per-emitter counters, for dashboards and health checks.

use std::time::Duration;

/// A snapshot of one emitter, from [`WebhooksEmitter::stats`](crate::WebhooksEmitter::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmitterStats {
    /// The emitter's id.
    pub id: String,
    /// Events waiting to be started.
    pub queued: usize,
    /// Requests on the wire now.
    pub in_flight: usize,
    /// Started events waiting for their next attempt (backoff, or paused).
    pub retrying: usize,
    /// Events delivered since attach.
    pub delivered: u64,
    /// Failed attempts since attach.
    pub failed_attempts: u64,
    /// Events dead-lettered since attach.
    pub dead_lettered: u64,
    /// Dead letters kept now.
    pub dead_letters: usize,
    /// Status of the last response, if any.
    pub last_status: Option<u16>,
    /// Latency of the last successful attempt, if any.
    pub last_latency: Option<Duration>,
    /// Whether deliveries are paused.
    pub paused: bool,
    /// Events held in the durable store (0 in memory mode).
    pub stored: usize,
    /// The rate limit, if one is set ([`Config::rate_limit`](crate::emitter::Config::rate_limit)).
    pub rate_limit: Option<crate::emitter::RateLimit>,
    /// Whether the circuit is open: after [`Config::circuit_breaker`](crate::emitter::Config::circuit_breaker)
    /// consecutive failures, one request at a time until one succeeds.
    pub circuit_open: bool,
}
