//! Per-emitter configuration: an infallible, consuming builder whose values are
//! checked once, by `attach`, into a [`ValidatedConfig`] the worker can trust.
//!
//! - `mod.rs`: the public builder and its defaults.
//! - [`validated`]: the checks, and what a request needs, prepared once.
//! - [`url`]: parsing, joining and redacting target URLs.

mod url;
mod validated;

use std::time::Duration;

use crate::delivery::SsrfGuard;
use crate::emitter::retry_policy::AutoDisable;
use crate::error::ConfigError;
use crate::redact::Redacted;
use crate::signing::headers::DEFAULT_HEADER_IDENTIFIER;

pub use url::redacted_url;
pub(crate) use validated::ValidatedConfig;
/// Default number of attempts per event, the first one included.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Default time allowed for connecting, sending and receiving the response head.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Default first backoff delay.
pub const DEFAULT_BACKOFF_START: Duration = Duration::from_secs(1);
/// Default largest backoff delay.
pub const DEFAULT_BACKOFF_LIMIT: Duration = Duration::from_secs(60);
/// Default bound of an emitter's queue (events waiting, the one in flight included).
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Default bound of an emitter's queue with a durable store: events wait on
/// disk, and only a window of them in memory.
pub const DEFAULT_DURABLE_QUEUE_CAPACITY: usize = 1_000_000;
/// Default number of dead letters kept per emitter.
pub const DEFAULT_DEAD_LETTER_CAPACITY: usize = 1_000;
/// Default longest wait a `Retry-After` header can impose.
pub const DEFAULT_RETRY_AFTER_LIMIT: Duration = Duration::from_secs(10 * 60);
/// Environment variable read by [`Config::from_env`] for the URL.
pub const ENV_WEBHOOK_URL: &str = "WEBHOOK_URL";
/// Environment variable read by [`Config::from_env`] for a bearer token.
pub const ENV_WEBHOOK_API_KEY: &str = "WEBHOOK_API_KEY";

/// How one emitter delivers: where, signed with what, how patiently.
///
/// Every setter is infallible; `attach` validates the whole and returns an
/// [`AttachError`](crate::AttachError) naming what is wrong. `Debug` never shows
/// the secret nor the values of additional headers (they are often credentials).
///
/// ```
/// use std::time::Duration;
/// use webhooks_emitter::Config;
///
/// let config = Config::new("https://example.com/hooks")
///     .secret("supersecret")
///     .header_identifier("Yourapp")
///     .request_timeout(Duration::from_secs(5))
///     .max_retries(3)
///     .backoff(Duration::from_secs(1), Duration::from_secs(60))
///     .additional_header("authorization", "bearer 4242");
/// assert!(!format!("{config:?}").contains("supersecret"));
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    url: url::RawUrl,
    secret: Option<Redacted<String>>,
    header_identifier: String,
    request_timeout: Duration,
    max_retries: u32,
    backoff_start: Duration,
    backoff_limit: Duration,
    additional_headers: Vec<(String, Redacted<String>)>,
    allow_insecure: bool,
    /// `None`: the default of the store in use.
    queue_capacity: Option<usize>,
    dead_letter_capacity: usize,
    standard_secrets: Vec<Redacted<String>>,
    timestamped_signature: bool,
    auth: Option<Auth>,
    max_in_flight: usize,
    retry_after_limit: Duration,
    auto_disable: AutoDisable,
    envelope: bool,
    ssrf_guard: Option<SsrfGuard>,
    /// Requests per second and burst, checked at attach.
    rate_limit: Option<(u32, u32)>,
    circuit_breaker: Option<u32>,
    channels: Vec<String>,
    tenant: Option<String>,
}

/// What the whole [`WebhooksEmitter`](crate::WebhooksEmitter) adds to each
/// config at `attach`: a base URL for relative URLs, a default SSRF guard.
#[derive(Debug, Clone, Default)]
pub(crate) struct Defaults {
    pub base_url: Option<String>,
    pub ssrf_guard: Option<SsrfGuard>,
    /// A durable store is in use (larger default queue bound).
    pub durable: bool,
}

/// Credentials sent in the `authorization` header.
#[derive(Clone, Debug)]
enum Auth {
    Bearer(Redacted<String>),
    Basic {
        user: String,
        password: Redacted<String>,
    },
}

impl Config {
    /// A configuration that POSTs to `url` with every default (see the crate docs' table).
    pub fn new(url: impl Into<String>) -> Self {
        Config {
            url: url::RawUrl(url.into()),
            secret: None,
            header_identifier: DEFAULT_HEADER_IDENTIFIER.to_owned(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            backoff_start: DEFAULT_BACKOFF_START,
            backoff_limit: DEFAULT_BACKOFF_LIMIT,
            additional_headers: Vec::new(),
            allow_insecure: false,
            queue_capacity: None,
            dead_letter_capacity: DEFAULT_DEAD_LETTER_CAPACITY,
            standard_secrets: Vec::new(),
            timestamped_signature: false,
            auth: None,
            max_in_flight: 1,
            retry_after_limit: DEFAULT_RETRY_AFTER_LIMIT,
            auto_disable: AutoDisable::default(),
            envelope: false,
            ssrf_guard: None,
            rate_limit: None,
            circuit_breaker: None,
            channels: Vec::new(),
            tenant: None,
        }
    }

    /// A configuration from the environment, for twelve-factor deployments:
    /// `WEBHOOK_URL` (required) and `WEBHOOK_API_KEY` (optional, sent as a
    /// bearer token). Other settings keep their defaults and can be chained.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_with(|var| std::env::var(var).ok())
    }

    /// [`from_env`](Self::from_env) with another source of variables.
    pub fn from_env_with(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let url = lookup(ENV_WEBHOOK_URL).ok_or(ConfigError::MissingEnv {
            var: ENV_WEBHOOK_URL,
        })?;
        let config = Config::new(url);
        Ok(match lookup(ENV_WEBHOOK_API_KEY) {
            Some(key) => config.bearer_token(key),
            None => config,
        })
    }

    /// Lets up to `n` requests of this emitter be in flight at once (default 1).
    /// Above 1, events are no longer delivered in emit order: each keeps its own
    /// attempts and backoff, and a failing event no longer holds back the others.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// At most `per_second` requests a second on average, up to `burst` at
    /// once after a quiet spell (off by default; each from 1 to 1,000,000,
    /// checked at attach: see [`RateLimit`](crate::emitter::RateLimit)). Events above it wait in the queue, in order; none is
    /// dropped, and other emitters are not slowed. Retries count.
    pub fn rate_limit(mut self, per_second: u32, burst: u32) -> Self {
        self.rate_limit = Some((per_second, burst));
        self
    }

    /// After `failures` consecutive failed attempts (of any events), sends
    /// one request at a time until one succeeds, instead of as many as
    /// `max_in_flight` allows (off by default). The retry backoff paces those
    /// probes; the first success closes the circuit again. Shown in stats
    /// (`circuit_open`) and the `webhooks_circuit_open` gauge.
    pub fn circuit_breaker(mut self, failures: u32) -> Self {
        self.circuit_breaker = Some(failures);
        self
    }

    /// The channels this emitter is on (none by default; at most 10, each 1
    /// to 128 letters, digits, `.`, `-`, `_` or `:`, checked at attach). An
    /// event emitted with channels ([`emit_in`](crate::WebhooksEmitter::emit_in))
    /// reaches only the emitters its name reaches that share one of them; an
    /// event without channels reaches them all, on channels or not.
    pub fn channels<I, S>(mut self, channels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.channels = channels.into_iter().map(Into::into).collect();
        self
    }

    /// The tenant this emitter belongs to (none by default; 1 to 128
    /// letters, digits, `.`, `-`, `_` or `:`, checked at attach). Tenants
    /// never mix: an emitter of a tenant gets only the events emitted for
    /// it, through a handle from
    /// [`for_tenant`](crate::WebhooksEmitter::for_tenant), whatever their
    /// names and channels; an emitter without a tenant gets only events
    /// emitted without one.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Longest wait a `Retry-After` header (on 429 or 503) can impose before the
    /// next attempt (default 10 minutes). The wait is never shorter than the
    /// scheduled backoff.
    pub fn retry_after_limit(mut self, limit: Duration) -> Self {
        self.retry_after_limit = limit;
        self
    }

    /// Pauses the emitter after `n` consecutive dead letters (off by default).
    /// It is reported as [`Outcome::EmitterPaused`](crate::Outcome::EmitterPaused);
    /// `restart` resumes it.
    pub fn auto_disable_after_dead_letters(mut self, n: u32) -> Self {
        self.auto_disable.dead_letters = Some(n);
        self
    }

    /// Pauses the emitter once it has failed for `duration` without a single
    /// success (off by default). Reported like
    /// [`auto_disable_after_dead_letters`](Self::auto_disable_after_dead_letters).
    pub fn auto_disable_after_failing_for(mut self, duration: Duration) -> Self {
        self.auto_disable.failing_for = Some(duration);
        self
    }

    /// Wraps each payload as `{"id": <request id>, "timestamp": <RFC 3339 emit
    /// time>, "event": <name>, "data": <payload>}` instead of sending it as is.
    pub fn envelope(mut self) -> Self {
        self.envelope = true;
        self
    }

    /// Refuses targets on non-public addresses (see [`SsrfGuard`]). Overrides a
    /// guard set on the whole emitter.
    pub fn ssrf_guard(mut self, guard: SsrfGuard) -> Self {
        self.ssrf_guard = Some(guard);
        self
    }

    /// Signs each request the Standard Webhooks way with `secret`
    /// (`whsec_<base64>`): headers `webhook-id` (the request id, unchanged),
    /// `webhook-timestamp` (the attempt's Unix time) and `webhook-signature`
    /// (`v1,<base64>`). Call it again to add a key: every key signs and the
    /// signatures are space-separated, so a receiver can rotate keys without
    /// downtime. Combines with [`secret`](Self::secret): both sets of headers are sent.
    pub fn standard_webhooks(mut self, secret: impl Into<String>) -> Self {
        self.standard_secrets.push(Redacted::new(secret.into()));
        self
    }

    /// Adds `x-<identifier>-timestamp` (Unix seconds, the attempt's) to each
    /// request and makes the legacy signature cover `"{timestamp}.{body}"`, so
    /// receivers can refuse replays. Off by default: the Elixir original signs
    /// the body alone. Needs [`secret`](Self::secret) to have an effect.
    pub fn timestamped_signature(mut self) -> Self {
        self.timestamped_signature = true;
        self
    }

    /// Sends `authorization: Bearer <token>`. Replaces a previous `basic_auth`.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.auth = Some(Auth::Bearer(Redacted::new(token.into())));
        self
    }

    /// Sends `authorization: Basic <base64(user:password)>`. Replaces a previous
    /// `bearer_token`.
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some(Auth::Basic {
            user: user.into(),
            password: Redacted::new(password.into()),
        });
        self
    }

    /// Signs each body with HMAC-SHA256 under this secret, sent as
    /// `x-<identifier>-signature: sha256:<base32hex>`. No signature header without it.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(Redacted::new(secret.into()));
        self
    }

    /// The `<identifier>` in `x-<identifier>-event` and its siblings (default `Webhooks`).
    /// Header names are sent lowercase, as HTTP/2 requires.
    pub fn header_identifier(mut self, identifier: impl Into<String>) -> Self {
        self.header_identifier = identifier.into();
        self
    }

    /// Time allowed for one attempt to get a response head (default 5 s); past it
    /// the attempt fails with a timeout.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Attempts per event in total, the first one included (default 3). After the
    /// last failed attempt the event becomes a dead letter.
    pub fn max_retries(mut self, attempts: u32) -> Self {
        self.max_retries = attempts;
        self
    }

    /// Backoff between attempts: `start`, doubling after each consecutive failure,
    /// capped at `limit`, with jitter (each delay is between half and all of its
    /// nominal value). Reset after a success. Default 1 s to 60 s.
    pub fn backoff(mut self, start: Duration, limit: Duration) -> Self {
        self.backoff_start = start;
        self.backoff_limit = limit;
        self
    }

    /// Adds a header to every request, e.g. `authorization`. It may replace
    /// `content-type` or `user-agent`, but not the `x-<identifier>-*` headers,
    /// `host`, `content-length`, `transfer-encoding` or `connection`, nor the
    /// Standard Webhooks headers when they are used, nor `authorization` when
    /// [`bearer_token`](Self::bearer_token) or [`basic_auth`](Self::basic_auth) sets it.
    pub fn additional_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.additional_headers
            .push((name.into(), Redacted::new(value.into())));
        self
    }

    /// Accepts invalid TLS certificates (self-signed, expired, wrong host).
    /// For development only: it removes the protection TLS gives.
    pub fn allow_insecure(mut self) -> Self {
        self.allow_insecure = true;
        self
    }

    /// Bound of this emitter's queue (default 10,000; 1,000,000 with a durable
    /// store, which keeps only a window in memory). An event that arrives when
    /// it is full becomes a dead letter with reason "queue full".
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = Some(capacity);
        self
    }

    /// How many dead letters this emitter keeps (default 1,000); the oldest is
    /// evicted, with a warning, to make room. `0` keeps none (each is still reported).
    pub fn dead_letter_capacity(mut self, capacity: usize) -> Self {
        self.dead_letter_capacity = capacity;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn from_env_reads_url_and_api_key() {
        let vars = HashMap::from([
            ("WEBHOOK_URL", "https://hooks.example/in"),
            ("WEBHOOK_API_KEY", "k-123"),
        ]);
        let config = Config::from_env_with(|v| vars.get(v).map(|s| s.to_string()))
            .unwrap_or_else(|e| panic!("{e}"));
        let debug = format!("{config:?}");
        assert!(
            debug.contains("hooks.example")
                && debug.contains("Bearer([redacted])")
                && !debug.contains("k-123"),
            "{debug}"
        );
        assert_eq!(
            Config::from_env_with(|_| None).err(),
            Some(ConfigError::MissingEnv { var: "WEBHOOK_URL" })
        );
    }

    #[test]
    fn debug_shows_settings_but_no_secret() {
        let config = Config::new("https://user:pw-77@example.com/hooks")
            .secret("s3cret-1")
            .standard_webhooks("whsec_c2VjcmV0LWtleS1vZi0yNC1ieXRlcyE=")
            .basic_auth("aladdin", "opensesame")
            .additional_header("authorization-extra", "tok-9");
        let debug = format!("{config:?} {config:#?}");
        for secret in ["pw-77", "s3cret-1", "c2VjcmV0", "opensesame", "tok-9"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert!(debug.contains("https://***@example.com/hooks"), "{debug}");
        assert!(debug.contains("authorization-extra"), "{debug}");
    }
}
