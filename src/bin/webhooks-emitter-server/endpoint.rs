//! An endpoint as the API sees it: what a client sends (spec, patch), what
//! the journal keeps (record), what the API shows (view, secrets masked), and
//! the library `Config` it becomes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use webhooks_emitter::{Config, EmitterStats};

use crate::ids::{emitter_id, DEFAULT_APP};
use crate::problem::Problem;

/// What a masked secret shows.
pub const MASK: &str = "***";

/// Backoff between attempts, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BackoffMs {
    /// First delay (at least 1).
    #[schema(minimum = 1)]
    pub start: u64,
    /// Largest delay (at least `start`).
    #[schema(minimum = 1)]
    pub limit: u64,
}

/// Deliveries to an endpoint per second, with a burst.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Requests per second on average (1 to 1,000,000).
    #[schema(minimum = 1, maximum = 1000000)]
    pub per_second: u32,
    /// Requests at once after a quiet spell (1 to 1,000,000; default 1).
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 1000000)]
    pub burst: u32,
}

fn one() -> u32 {
    1
}

/// An endpoint: where events go and how (the body of `POST /api/v1/endpoints`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    /// 1 to 128 characters: letters, digits, `-`, `_`, `.` (not `.` or `..`).
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,128}$", min_length = 1, max_length = 128)]
    pub id: String,
    /// The target URL (https, or http), without whitespace.
    #[schema(pattern = r"^https?://\S+$", min_length = 8)]
    pub url: String,
    /// What this endpoint receives (also accepted as `filter_types`): event
    /// names (1 to 256 visible ASCII characters, no `*`), and patterns: `*`
    /// for every event, `order.*` for every event whose name starts with
    /// `order.`. An event that several of them cover is sent once.
    #[serde(alias = "filter_types")]
    #[schema(min_items = 1)]
    pub events: Vec<String>,
    /// Legacy (Elixir-compatible) HMAC-SHA256 secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Standard Webhooks key (`whsec_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standard_webhooks_secret: Option<String>,
    /// Extra request headers (values are treated as secrets).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Attempts per event, the first included (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_retries: Option<u32>,
    /// Request timeout in milliseconds (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub timeout_ms: Option<u64>,
    /// Backoff between attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_ms: Option<BackoffMs>,
    /// Events in flight at once (1 keeps strict order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_in_flight: Option<usize>,
    /// Wrap payloads as `{id, timestamp, event, data}`.
    #[serde(default)]
    pub envelope: bool,
    /// At most this many requests a second; events above it wait, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSpec>,
    /// After this many consecutive failed attempts, one request at a time
    /// until one succeeds (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub circuit_breaker: Option<u32>,
    /// The channels it is on (at most 10; each 1 to 128 letters, digits,
    /// `.`, `-`, `_` or `:`). An event sent with channels reaches it only if
    /// they share one; an event without channels reaches it as any other.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 10)]
    pub channels: Vec<String>,
}

/// A change to an endpoint (`PATCH`): only the fields given change; `null`
/// removes an optional one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    #[serde(default, deserialize_with = "not_null")]
    pub url: Option<String>,
    /// Names and patterns, as at create (also accepted as `filter_types`).
    #[serde(default, deserialize_with = "not_null", alias = "filter_types")]
    pub events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub secret: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub standard_webhooks_secret: Option<Option<String>>,
    #[serde(default, deserialize_with = "not_null")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    pub max_retries: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>)]
    pub timeout_ms: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<BackoffMs>)]
    pub backoff_ms: Option<Option<BackoffMs>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<usize>)]
    pub max_in_flight: Option<Option<usize>>,
    #[serde(default, deserialize_with = "not_null")]
    pub envelope: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<RateLimitSpec>)]
    pub rate_limit: Option<Option<RateLimitSpec>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    pub circuit_breaker: Option<Option<u32>>,
    /// A new set of channels (`[]`: none).
    #[serde(default, deserialize_with = "not_null")]
    #[schema(max_items = 10)]
    pub channels: Option<Vec<String>>,
}

/// A required field: absent leaves it as it is, `null` is refused (it
/// cannot be removed), rather than read as "absent" and answered 200.
fn not_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    match Option::<T>::deserialize(d)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom(
            "null for a required field: it cannot be removed, only changed",
        )),
    }
}

/// A field that is present (`null` included) becomes `Some`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A rotated-out Standard Webhooks key that keeps signing until `until`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetiringKey {
    pub secret: String,
    /// Unix seconds.
    pub until: u64,
}

/// What the journal keeps per endpoint (JSON, in the `endpoints` records,
/// under its emitter id: see [`emitter_id`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// Its application (records from before applications: `default`).
    #[serde(default = "default_app")]
    pub app: String,
    pub spec: EndpointSpec,
    #[serde(default)]
    pub retiring_keys: Vec<RetiringKey>,
    /// Unix seconds.
    pub created_at: u64,
}

fn default_app() -> String {
    DEFAULT_APP.to_owned()
}

/// An endpoint as a route names it: its id, and its id in the emitter and
/// the store, which holds its application's.
#[derive(Debug, Clone)]
pub struct EndpointAt {
    pub id: String,
    /// `emitter_id(app, id)`.
    pub key: String,
}

impl EndpointAt {
    pub fn new(app: &str, id: &str) -> Self {
        EndpointAt {
            id: id.to_owned(),
            key: emitter_id(app, id),
        }
    }

    /// The 404 for it: named as the client named it.
    pub fn unknown(&self) -> Problem {
        Problem::unknown_endpoint(&self.id)
    }
}

impl EndpointPatch {
    /// The spec with this change made.
    pub fn apply(self, mut spec: EndpointSpec) -> EndpointSpec {
        fn set<T>(field: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *field = value;
            }
        }
        set(&mut spec.url, self.url);
        set(&mut spec.events, self.events);
        set(&mut spec.secret, self.secret);
        set(
            &mut spec.standard_webhooks_secret,
            self.standard_webhooks_secret,
        );
        set(&mut spec.headers, self.headers);
        set(&mut spec.max_retries, self.max_retries);
        set(&mut spec.timeout_ms, self.timeout_ms);
        set(&mut spec.backoff_ms, self.backoff_ms);
        set(&mut spec.max_in_flight, self.max_in_flight);
        set(&mut spec.envelope, self.envelope);
        set(&mut spec.rate_limit, self.rate_limit);
        set(&mut spec.circuit_breaker, self.circuit_breaker);
        set(&mut spec.channels, self.channels);
        spec
    }
}

impl EndpointRecord {
    /// Its id in the emitter and the store.
    pub fn key(&self) -> String {
        emitter_id(&self.app, &self.spec.id)
    }

    /// The library config: every key still signing, current first; in its
    /// application's tenant (none for `default`).
    pub fn config(&self, now: u64) -> Config {
        let spec = &self.spec;
        let mut config = Config::new(spec.url.clone());
        if self.app != DEFAULT_APP {
            config = config.tenant(self.app.clone());
        }
        if let Some(secret) = &spec.secret {
            config = config.secret(secret.clone());
        }
        if let Some(key) = &spec.standard_webhooks_secret {
            config = config.standard_webhooks(key.clone());
        }
        for key in self.retiring_keys.iter().filter(|k| k.until > now) {
            config = config.standard_webhooks(key.secret.clone());
        }
        for (name, value) in &spec.headers {
            config = config.additional_header(name.clone(), value.clone());
        }
        if let Some(attempts) = spec.max_retries {
            config = config.max_retries(attempts);
        }
        if let Some(ms) = spec.timeout_ms {
            config = config.request_timeout(Duration::from_millis(ms));
        }
        if let Some(b) = spec.backoff_ms {
            config = config.backoff(
                Duration::from_millis(b.start),
                Duration::from_millis(b.limit),
            );
        }
        if let Some(n) = spec.max_in_flight {
            config = config.max_in_flight(n);
        }
        if spec.envelope {
            config = config.envelope();
        }
        if let Some(limit) = spec.rate_limit {
            config = config.rate_limit(limit.per_second, limit.burst);
        }
        if let Some(failures) = spec.circuit_breaker {
            config = config.circuit_breaker(failures);
        }
        config.channels(spec.channels.iter().cloned())
    }

    /// Drops the retiring keys past their time; whether any was.
    pub fn retire_expired(&mut self, now: u64) -> bool {
        let before = self.retiring_keys.len();
        self.retiring_keys.retain(|k| k.until > now);
        self.retiring_keys.len() != before
    }
}

/// An endpoint as the API shows it: secrets and header values masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: String,
    /// The URL, a user name and password in it masked.
    pub url: String,
    pub events: Vec<String>,
    /// `***` when set.
    pub secret: Option<&'static str>,
    /// `***` when set.
    pub standard_webhooks_secret: Option<&'static str>,
    /// Header names; values masked.
    pub headers: BTreeMap<String, &'static str>,
    pub max_retries: Option<u32>,
    pub timeout_ms: Option<u64>,
    pub backoff_ms: Option<BackoffMs>,
    pub max_in_flight: Option<usize>,
    pub envelope: bool,
    pub rate_limit: Option<RateLimitSpec>,
    pub circuit_breaker: Option<u32>,
    pub channels: Vec<String>,
    /// Rotated-out keys still signing: when each stops (RFC 3339).
    pub retiring_keys_until: Vec<String>,
    /// RFC 3339, like every time the API shows.
    pub created_at: String,
    /// `active`, `paused`, or `detached` (its config no longer attaches).
    pub state: &'static str,
    /// Live counters, when attached.
    pub stats: Option<StatsView>,
}

/// The library's stats of one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    pub queued: usize,
    pub in_flight: usize,
    pub retrying: usize,
    pub delivered: u64,
    pub failed_attempts: u64,
    pub dead_lettered: u64,
    pub dead_letters: usize,
    pub last_status: Option<u16>,
    pub last_latency_ms: Option<f64>,
    pub paused: bool,
    pub stored: usize,
    /// One request at a time after a run of failures, until one succeeds.
    pub circuit_open: bool,
}

impl From<EmitterStats> for StatsView {
    fn from(s: EmitterStats) -> Self {
        StatsView {
            queued: s.queued,
            in_flight: s.in_flight,
            retrying: s.retrying,
            delivered: s.delivered,
            failed_attempts: s.failed_attempts,
            dead_lettered: s.dead_lettered,
            dead_letters: s.dead_letters,
            last_status: s.last_status,
            last_latency_ms: s.last_latency.map(|l| l.as_secs_f64() * 1000.0),
            paused: s.paused,
            stored: s.stored,
            circuit_open: s.circuit_open,
        }
    }
}

impl EndpointView {
    pub fn new(record: &EndpointRecord, stats: Option<EmitterStats>) -> Self {
        let spec = &record.spec;
        let state = match &stats {
            None => "detached",
            Some(s) if s.paused => "paused",
            Some(_) => "active",
        };
        EndpointView {
            id: spec.id.clone(),
            url: webhooks_emitter::redacted_url(&spec.url),
            events: spec.events.clone(),
            secret: spec.secret.as_ref().map(|_| MASK),
            standard_webhooks_secret: spec.standard_webhooks_secret.as_ref().map(|_| MASK),
            headers: spec.headers.keys().map(|k| (k.clone(), MASK)).collect(),
            max_retries: spec.max_retries,
            timeout_ms: spec.timeout_ms,
            backoff_ms: spec.backoff_ms,
            max_in_flight: spec.max_in_flight,
            envelope: spec.envelope,
            rate_limit: spec.rate_limit,
            circuit_breaker: spec.circuit_breaker,
            channels: spec.channels.clone(),
            retiring_keys_until: record
                .retiring_keys
                .iter()
                .map(|k| crate::clock::unix_rfc3339(k.until))
                .collect(),
            created_at: crate::clock::unix_rfc3339(record.created_at),
            state,
            stats: stats.map(StatsView::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::proptest_config())]

        #[test]
        fn a_url_password_never_shows(password in "[^@/#?\\\\\\s]{1,40}", host in "[a-z]{1,10}") {
            let raw = format!("https://user:{password}@{host}.example/hook");
            let shown = webhooks_emitter::redacted_url(&raw);
            let escaped = url::form_urlencoded::byte_serialize(password.as_bytes()).collect::<String>();
            prop_assert!(shown.contains("***@") && !shown.contains("user:"), "{}", shown);
            prop_assert!(password == MASK || (!shown.contains(&format!(":{password}@")) && !shown.contains(&format!(":{escaped}@"))), "{}", shown);
        }

        #[test]
        fn any_patch_keeps_the_id(url in "\\PC{0,30}", envelope in any::<bool>()) {
            let spec: EndpointSpec = serde_json::from_value(serde_json::json!({
                "id": "a", "url": "https://x.example", "events": ["e"]
            })).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let patch = EndpointPatch { url: Some(url.clone()), envelope: Some(envelope), ..EndpointPatch::default() };
            let changed = patch.apply(spec);
            prop_assert_eq!(changed.id, "a");
            prop_assert_eq!(changed.url, url);
            prop_assert_eq!(changed.envelope, envelope);
        }
    }

    #[test]
    fn null_removes_and_absent_keeps() {
        let spec: EndpointSpec = serde_json::from_value(serde_json::json!({
            "id": "a", "url": "https://x.example", "events": ["e"], "secret": "s", "max_retries": 5
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let patch: EndpointPatch =
            serde_json::from_str(r#"{"secret": null}"#).unwrap_or_else(|e| panic!("{e}"));
        let changed = patch.apply(spec);
        assert_eq!(changed.secret, None);
        assert_eq!(changed.max_retries, Some(5));
    }
}
