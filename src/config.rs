//! Per-emitter configuration: an infallible, consuming builder whose values are
//! checked once, by `attach`, into a [`ValidatedConfig`] the worker can trust.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use awc::http::header::{HeaderName, HeaderValue};
use awc::http::Uri;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use crate::backoff::Backoff;
use crate::error::ConfigError;
use crate::ssrf::{SsrfGuard, TargetPolicy};
use crate::standard_webhooks::{
    parse_standard_secret, HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP,
};
use crate::tls;

/// Default header identifier: headers are `x-webhooks-event`, `x-webhooks-delivery`, …
pub const DEFAULT_HEADER_IDENTIFIER: &str = "Webhooks";
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
#[derive(Clone)]
pub struct Config {
    url: String,
    secret: Option<String>,
    header_identifier: String,
    request_timeout: Duration,
    max_retries: u32,
    backoff_start: Duration,
    backoff_limit: Duration,
    additional_headers: Vec<(String, String)>,
    allow_insecure: bool,
    queue_capacity: usize,
    dead_letter_capacity: usize,
    standard_secrets: Vec<String>,
    timestamped_signature: bool,
    auth: Option<Auth>,
    max_in_flight: usize,
    retry_after_limit: Duration,
    auto_disable: AutoDisable,
    envelope: bool,
    ssrf_guard: Option<SsrfGuard>,
}

/// When an emitter pauses itself because its endpoint keeps failing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AutoDisable {
    pub dead_letters: Option<u32>,
    pub failing_for: Option<Duration>,
}

/// What the whole [`WebhooksEmitter`](crate::WebhooksEmitter) adds to each
/// config at `attach`: a base URL for relative URLs, a default SSRF guard.
#[derive(Debug, Clone, Default)]
pub(crate) struct Defaults {
    pub base_url: Option<String>,
    pub ssrf_guard: Option<SsrfGuard>,
}

/// Credentials sent in the `authorization` header.
#[derive(Clone)]
enum Auth {
    Bearer(String),
    Basic { user: String, password: String },
}

impl Config {
    /// A configuration that POSTs to `url` with every default (see the crate docs' table).
    pub fn new(url: impl Into<String>) -> Self {
        Config {
            url: url.into(),
            secret: None,
            header_identifier: DEFAULT_HEADER_IDENTIFIER.to_owned(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            backoff_start: DEFAULT_BACKOFF_START,
            backoff_limit: DEFAULT_BACKOFF_LIMIT,
            additional_headers: Vec::new(),
            allow_insecure: false,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            dead_letter_capacity: DEFAULT_DEAD_LETTER_CAPACITY,
            standard_secrets: Vec::new(),
            timestamped_signature: false,
            auth: None,
            max_in_flight: 1,
            retry_after_limit: DEFAULT_RETRY_AFTER_LIMIT,
            auto_disable: AutoDisable::default(),
            envelope: false,
            ssrf_guard: None,
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
        self.standard_secrets.push(secret.into());
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
        self.auth = Some(Auth::Bearer(token.into()));
        self
    }

    /// Sends `authorization: Basic <base64(user:password)>`. Replaces a previous
    /// `bearer_token`.
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some(Auth::Basic {
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// Signs each body with HMAC-SHA256 under this secret, sent as
    /// `x-<identifier>-signature: sha256:<base32hex>`. No signature header without it.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
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
        self.additional_headers.push((name.into(), value.into()));
        self
    }

    /// Accepts invalid TLS certificates (self-signed, expired, wrong host).
    /// For development only: it removes the protection TLS gives.
    pub fn allow_insecure(mut self) -> Self {
        self.allow_insecure = true;
        self
    }

    /// Bound of this emitter's queue (default 10,000). An event that arrives when
    /// it is full becomes a dead letter with reason "queue full".
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// How many dead letters this emitter keeps (default 1,000); the oldest is
    /// evicted, with a warning, to make room. `0` keeps none (each is still reported).
    pub fn dead_letter_capacity(mut self, capacity: usize) -> Self {
        self.dead_letter_capacity = capacity;
        self
    }

    /// Checks every setting and prepares what each request needs.
    pub(crate) fn validate(self, defaults: &Defaults) -> Result<ValidatedConfig, ConfigError> {
        let absolute = absolute_url(&self.url, defaults.base_url.as_deref())?;
        let (url, display_url) = parse_url(&absolute)?;
        let target_policy = match self.ssrf_guard.as_ref().or(defaults.ssrf_guard.as_ref()) {
            Some(guard) => Some(guard.validate()?),
            None => None,
        };
        if let Some(policy) = &target_policy {
            check_literal_target(policy, &url, &display_url)?;
        }
        let headers = HeaderNames::new(&self.header_identifier, !self.standard_secrets.is_empty())?;
        let secret = match self.secret {
            Some(s) if s.is_empty() => return Err(ConfigError::EmptySecret),
            Some(s) => Some(Secret(Arc::from(s.into_bytes()))),
            None => None,
        };
        for (setting, zero) in [
            ("request_timeout", self.request_timeout.is_zero()),
            ("max_retries", self.max_retries == 0),
            ("backoff start", self.backoff_start.is_zero()),
            ("queue_capacity", self.queue_capacity == 0),
            ("max_in_flight", self.max_in_flight == 0),
            (
                "auto_disable_after_dead_letters",
                self.auto_disable.dead_letters == Some(0),
            ),
        ] {
            if zero {
                return Err(ConfigError::Zero { setting });
            }
        }
        if self.backoff_limit < self.backoff_start {
            return Err(ConfigError::BackoffLimitBelowStart {
                start: self.backoff_start,
                limit: self.backoff_limit,
            });
        }
        let standard_keys = self
            .standard_secrets
            .iter()
            .map(|s| parse_standard_secret(s).map(|key| Secret(Arc::from(key))))
            .collect::<Result<Vec<_>, _>>()?;
        let authorization = self.auth.as_ref().map(Auth::header_value).transpose()?;
        let additional_headers = self
            .additional_headers
            .iter()
            .map(|(name, value)| validate_header(&headers, authorization.is_some(), name, value))
            .collect::<Result<Vec<_>, _>>()?;
        let timestamp_header = match (self.timestamped_signature, &secret) {
            (true, Some(_)) => Some(headers.timestamp.clone()),
            _ => None,
        };
        let tls = tls::client_config(self.allow_insecure).map_err(ConfigError::Tls)?;
        Ok(ValidatedConfig {
            url,
            display_url,
            secret,
            headers,
            request_timeout: self.request_timeout,
            max_retries: self.max_retries,
            backoff: Backoff::new(self.backoff_start, self.backoff_limit),
            additional_headers,
            standard_keys,
            timestamp_header,
            authorization,
            max_in_flight: self.max_in_flight,
            retry_after_limit: self.retry_after_limit,
            auto_disable: self.auto_disable,
            envelope: self.envelope,
            target_policy,
            tls,
            queue_capacity: self.queue_capacity,
            dead_letter_capacity: self.dead_letter_capacity,
        })
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self
            .additional_headers
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        f.debug_struct("Config")
            .field("url", &redact_url(&self.url))
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("header_identifier", &self.header_identifier)
            .field("request_timeout", &self.request_timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff", &(self.backoff_start..=self.backoff_limit))
            .field("additional_headers (values redacted)", &header_names)
            .field("standard_webhooks_keys", &self.standard_secrets.len())
            .field("timestamped_signature", &self.timestamped_signature)
            .field("auth", &self.auth)
            .field("max_in_flight", &self.max_in_flight)
            .field("retry_after_limit", &self.retry_after_limit)
            .field("auto_disable", &self.auto_disable)
            .field("envelope", &self.envelope)
            .field("ssrf_guard", &self.ssrf_guard)
            .field("allow_insecure", &self.allow_insecure)
            .field("queue_capacity", &self.queue_capacity)
            .field("dead_letter_capacity", &self.dead_letter_capacity)
            .finish()
    }
}

impl Auth {
    fn header_value(&self) -> Result<HeaderValue, ConfigError> {
        let (what, text) = match self {
            Auth::Bearer(token) => {
                if token.is_empty() {
                    return Err(ConfigError::InvalidCredentials {
                        what: "bearer token",
                        reason: "it is empty",
                    });
                }
                ("bearer token", format!("Bearer {token}"))
            }
            Auth::Basic { user, password } => {
                if user.contains(':') {
                    return Err(ConfigError::InvalidCredentials {
                        what: "basic auth",
                        reason: "the user name must not contain `:`",
                    });
                }
                let encoded = BASE64.encode(format!("{user}:{password}"));
                ("basic auth", format!("Basic {encoded}"))
            }
        };
        let mut value =
            HeaderValue::from_str(&text).map_err(|_| ConfigError::InvalidCredentials {
                what,
                reason: "only visible ASCII, space and tab are allowed",
            })?;
        // Keeps the value out of actix/awc debug output and HTTP/2 header tables.
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Auth::Bearer(_) => "Bearer([redacted])",
            Auth::Basic { .. } => "Basic([redacted])",
        })
    }
}

/// A signing key. Its `Debug` never shows the key.
#[derive(Clone)]
pub(crate) struct Secret(Arc<[u8]>);

impl Secret {
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The header names derived from the header identifier, and whether the
/// Standard Webhooks headers are in use (then they are reserved too).
#[derive(Debug, Clone)]
pub(crate) struct HeaderNames {
    pub event: HeaderName,
    pub delivery: HeaderName,
    pub signature: HeaderName,
    pub timestamp: HeaderName,
    standard: bool,
}

impl HeaderNames {
    fn new(identifier: &str, standard: bool) -> Result<Self, ConfigError> {
        let valid = !identifier.is_empty()
            && identifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let name = |suffix: &str| {
            let lower = identifier.to_ascii_lowercase();
            HeaderName::from_bytes(format!("x-{lower}-{suffix}").as_bytes())
        };
        match (
            valid,
            name("event"),
            name("delivery"),
            name("signature"),
            name("timestamp"),
        ) {
            (true, Ok(event), Ok(delivery), Ok(signature), Ok(timestamp)) => Ok(HeaderNames {
                event,
                delivery,
                signature,
                timestamp,
                standard,
            }),
            _ => Err(ConfigError::InvalidHeaderIdentifier {
                identifier: identifier.escape_debug().to_string(),
            }),
        }
    }

    fn contains(&self, name: &HeaderName) -> bool {
        [
            &self.event,
            &self.delivery,
            &self.signature,
            &self.timestamp,
        ]
        .contains(&name)
            || (self.standard
                && [
                    HEADER_WEBHOOK_ID,
                    HEADER_WEBHOOK_TIMESTAMP,
                    HEADER_WEBHOOK_SIGNATURE,
                ]
                .contains(&name.as_str()))
    }
}

/// A configuration `attach` has accepted: parsed URL, header names and values.
#[derive(Debug)]
pub(crate) struct ValidatedConfig {
    pub url: Uri,
    /// The URL with credentials redacted, for logs.
    pub display_url: String,
    pub secret: Option<Secret>,
    pub headers: HeaderNames,
    pub request_timeout: Duration,
    pub max_retries: u32,
    pub backoff: Backoff,
    pub additional_headers: Vec<(HeaderName, HeaderValue)>,
    /// Standard Webhooks keys; each signs every request.
    pub standard_keys: Vec<Secret>,
    /// `x-<identifier>-timestamp`, when the legacy signature is timestamped.
    pub timestamp_header: Option<HeaderName>,
    /// The `authorization` value from `bearer_token` or `basic_auth`.
    pub authorization: Option<HeaderValue>,
    pub max_in_flight: usize,
    pub retry_after_limit: Duration,
    pub auto_disable: AutoDisable,
    pub envelope: bool,
    /// Set when an SSRF guard applies.
    pub target_policy: Option<TargetPolicy>,
    pub tls: Arc<rustls::ClientConfig>,
    pub queue_capacity: usize,
    pub dead_letter_capacity: usize,
}

/// Joins a relative URL (`/api/hooks`) to the emitter's base URL, keeping the
/// base's path as a prefix: `http://h/v1` + `/hooks` = `http://h/v1/hooks`.
fn absolute_url(raw: &str, base: Option<&str>) -> Result<String, ConfigError> {
    if !raw.starts_with('/') {
        return Ok(raw.to_owned());
    }
    match base {
        Some(base) => Ok(format!("{}{raw}", base.trim_end_matches('/'))),
        None => Err(ConfigError::InvalidUrl {
            url: redact_url(raw),
            reason: "a relative URL needs a base URL: WebhooksEmitter::builder().base_url(…)"
                .into(),
        }),
    }
}

/// Refuses a URL whose host is an IP literal the guard refuses. Host names are
/// checked when they are resolved, on every connection.
fn check_literal_target(
    policy: &TargetPolicy,
    url: &Uri,
    display_url: &str,
) -> Result<(), ConfigError> {
    let host = url.host().unwrap_or_default();
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    match literal
        .parse::<std::net::IpAddr>()
        .ok()
        .and_then(|ip| policy.refuses(ip))
    {
        Some(reason) => Err(ConfigError::BlockedTarget {
            url: display_url.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

fn parse_url(raw: &str) -> Result<(Uri, String), ConfigError> {
    let display = redact_url(raw);
    let invalid = |reason: String| ConfigError::InvalidUrl {
        url: display.clone(),
        reason,
    };
    let uri: Uri = raw
        .parse()
        .map_err(|e: awc::http::uri::InvalidUri| invalid(e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => return Err(invalid(format!("scheme `{other}` is not http or https"))),
        None => return Err(invalid("no scheme; expected http:// or https://".into())),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("no host".into()));
    }
    Ok((uri, display))
}

/// Replaces the `user:password@` part of a URL, if any, with `***@`, so that
/// URLs can be logged and shown in errors.
pub(crate) fn redact_url(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://").map(|i| i + 3) else {
        return raw.escape_debug().to_string();
    };
    let authority_end = raw[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |i| scheme_end + i);
    match raw[scheme_end..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &raw[..scheme_end], &raw[scheme_end + at..])
            .escape_debug()
            .to_string(),
        None => raw.escape_debug().to_string(),
    }
}

const RESERVED_HEADERS: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

fn validate_header(
    reserved: &HeaderNames,
    auth_is_set: bool,
    name: &str,
    value: &str,
) -> Result<(HeaderName, HeaderValue), ConfigError> {
    let shown = name.escape_debug().to_string();
    let header =
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| ConfigError::InvalidHeaderName {
            name: shown.clone(),
            reason: "header names are tokens: letters, digits and !#$%&'*+-.^_`|~",
        })?;
    let set_by_auth = auth_is_set && header == awc::http::header::AUTHORIZATION;
    if set_by_auth || reserved.contains(&header) || RESERVED_HEADERS.contains(&header.as_str()) {
        return Err(ConfigError::ReservedHeader { name: shown });
    }
    let value = HeaderValue::from_str(value)
        .map_err(|_| ConfigError::InvalidHeaderValue { name: shown })?;
    Ok((header, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_in_urls() {
        assert_eq!(redact_url("https://u:p@host/x@y"), "https://***@host/x@y");
        assert_eq!(redact_url("https://host/path"), "https://host/path");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn header_identifier_is_lowercased() {
        let names = HeaderNames::new("Yourapp", false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(names.signature.as_str(), "x-yourapp-signature");
    }
}
