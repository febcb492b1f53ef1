//! `attach`'s checks, and what every request needs, prepared once: parsed URL,
//! header names and values, keys, the retry policy, the TLS configuration.

use std::sync::Arc;

use awc::http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::url::{check_literal_target, parse, Target};
use super::{Auth, Config, Defaults, DEFAULT_DURABLE_QUEUE_CAPACITY, DEFAULT_QUEUE_CAPACITY};
use crate::delivery::template::{RequestTemplate, SenderHeaders};
use crate::delivery::{tls, TargetPolicy};
use crate::emitter::backoff::Backoff;
use crate::emitter::rate_limit::RateLimit;
use crate::emitter::retry_policy::{DeliveryOrder, RetryPolicy};
use crate::error::ConfigError;
use crate::model::subscription::{validate_channels, validate_tenant};
use crate::redact::Redacted;
use crate::signing::headers::{LegacyHeaders, STANDARD_HEADERS};
use crate::signing::standard::parse_standard_secret;

/// Headers a config may never set: HTTP framing.
const FRAMING_HEADERS: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

/// A configuration `attach` has accepted.
#[derive(Debug)]
pub(crate) struct ValidatedConfig {
    /// What every request needs, prepared once.
    pub request: RequestTemplate,
    pub retry: RetryPolicy,
    pub queue_capacity: usize,
    pub dead_letter_capacity: usize,
    pub pacing: Pacing,
    /// The channels it is on (see `Config::channels`).
    pub channels: Arc<[Arc<str>]>,
    /// The tenant it belongs to (see `Config::tenant`).
    pub tenant: Option<Arc<str>>,
}

/// What holds requests back besides the retry policy: a rate limit, and a
/// circuit breaker that sends one request at a time after a run of failures.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Pacing {
    pub rate_limit: Option<RateLimit>,
    /// Consecutive failed attempts that open the circuit.
    pub circuit_breaker: Option<u32>,
}

impl ValidatedConfig {
    /// A digest of everything that decides what is sent where (secrets
    /// included, hashed): two nodes attaching one id differently differ.
    #[cfg(feature = "postgres")]
    pub(crate) fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut digest = Sha256::new();
        let mut text = |part: &[u8]| {
            digest.update((part.len() as u64).to_le_bytes());
            digest.update(part);
        };
        let request = &self.request;
        text(request.url.to_string().as_bytes());
        for key in request.secret.iter().chain(&request.standard_keys) {
            text(key.expose());
        }
        for (name, value) in &request.additional_headers {
            text(name.as_str().as_bytes());
            text(value.as_bytes());
        }
        if let Some(authorization) = &request.authorization {
            text(authorization.as_bytes());
        }
        let settings = format!(
            "{:?} {:?} {:?} {:?} {} {} {} {:?} {:?}",
            request.headers,
            request.timestamp_header,
            request.request_timeout,
            self.retry,
            request.envelope,
            self.queue_capacity,
            self.dead_letter_capacity,
            self.channels,
            self.tenant
        );
        text(settings.as_bytes());
        digest
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// Where and how an emitter connects.
struct Route {
    target: Target,
    host_header: Option<HeaderValue>,
    policy: Option<TargetPolicy>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Config {
    /// Checks every setting and prepares what each request needs.
    pub(crate) fn validate(self, defaults: &Defaults) -> Result<ValidatedConfig, ConfigError> {
        let route = self.route(defaults)?;
        self.check_numbers()?;
        let names = LegacyHeaders::validated(&self.header_identifier)?;
        let headers = sender_headers(&names)?;
        let secret = match self.secret.as_ref().map(Redacted::expose) {
            Some(s) if s.is_empty() => return Err(ConfigError::EmptySecret),
            Some(s) => Some(Redacted::new(Arc::from(s.as_bytes()))),
            None => None,
        };
        let standard_keys = self
            .standard_secrets
            .iter()
            .map(|s| parse_standard_secret(s.expose()).map(|key| Redacted::new(Arc::from(key))))
            .collect::<Result<Vec<_>, _>>()?;
        let authorization = self.auth.as_ref().map(Auth::header_value).transpose()?;
        let reserved = Reserved {
            names: &names,
            standard: !standard_keys.is_empty(),
            authorization: authorization.is_some(),
        };
        let additional_headers = self
            .additional_headers
            .iter()
            .map(|(name, value)| reserved.check(name, value.expose()))
            .collect::<Result<Vec<_>, _>>()?;
        let timestamp_header = match (self.timestamped_signature, &secret) {
            (true, Some(_)) => Some(headers.timestamp.clone()),
            _ => None,
        };
        Ok(ValidatedConfig {
            request: RequestTemplate {
                url: route.target.uri,
                host_header: route.host_header,
                display_url: route.target.display,
                secret,
                headers,
                request_timeout: self.request_timeout,
                additional_headers,
                standard_keys,
                timestamp_header,
                authorization,
                envelope: self.envelope,
                target_policy: route.policy,
                tls: route.tls,
            },
            retry: self.retry_policy(),
            queue_capacity: self.queue_capacity.unwrap_or(if defaults.durable {
                DEFAULT_DURABLE_QUEUE_CAPACITY
            } else {
                DEFAULT_QUEUE_CAPACITY
            }),
            dead_letter_capacity: self.dead_letter_capacity,
            pacing: Pacing {
                rate_limit: self
                    .rate_limit
                    .map(|(per_second, burst)| RateLimit::new(per_second, burst))
                    .transpose()?,
                circuit_breaker: self.circuit_breaker,
            },
            channels: validate_channels(&self.channels)
                .map_err(|(channel, reason)| ConfigError::InvalidChannel { channel, reason })?,
            tenant: self
                .tenant
                .as_deref()
                .map(validate_tenant)
                .transpose()
                .map_err(|(tenant, reason)| ConfigError::InvalidTenant { tenant, reason })?,
        })
    }

    /// The target URL, the SSRF guard that applies, and TLS for https.
    fn route(&self, defaults: &Defaults) -> Result<Route, ConfigError> {
        let target = parse(&self.url.0, defaults.base_url.as_deref())?;
        let policy = match self.ssrf_guard.as_ref().or(defaults.ssrf_guard.as_ref()) {
            Some(guard) => Some(guard.validate()?),
            None => None,
        };
        if let Some(policy) = &policy {
            check_literal_target(policy, &target)?;
        }
        let (host_header, tls) = match &target.https_host {
            None => (None, None),
            Some(host) => {
                let header = HeaderValue::from_str(host).map_err(|e| ConfigError::InvalidUrl {
                    url: target.display.clone(),
                    reason: e.to_string(),
                })?;
                let tls = tls::client_config(self.allow_insecure).map_err(ConfigError::Tls)?;
                (Some(header), Some(tls))
            }
        };
        Ok(Route {
            target,
            host_header,
            policy,
            tls,
        })
    }

    /// Counts and durations that must be positive, and the backoff's order.
    fn check_numbers(&self) -> Result<(), ConfigError> {
        for (setting, zero) in [
            ("request_timeout", self.request_timeout.is_zero()),
            ("max_retries", self.max_retries == 0),
            ("backoff start", self.backoff_start.is_zero()),
            ("queue_capacity", self.queue_capacity == Some(0)),
            ("max_in_flight", self.max_in_flight == 0),
            (
                "auto_disable_after_dead_letters",
                self.auto_disable.dead_letters == Some(0),
            ),
            ("circuit_breaker", self.circuit_breaker == Some(0)),
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
        Ok(())
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_retries,
            backoff: Backoff::new(self.backoff_start, self.backoff_limit),
            retry_after_limit: self.retry_after_limit,
            auto_disable: self.auto_disable,
            order: DeliveryOrder::from_max_in_flight(self.max_in_flight),
        }
    }
}

fn sender_headers(names: &LegacyHeaders) -> Result<SenderHeaders, ConfigError> {
    let name = |text: &str| {
        HeaderName::from_bytes(text.as_bytes()).map_err(|_| ConfigError::InvalidHeaderIdentifier {
            identifier: text.escape_debug().to_string(),
        })
    };
    Ok(SenderHeaders {
        event: name(&names.event)?,
        delivery: name(&names.delivery)?,
        signature: name(&names.signature)?,
        timestamp: name(&names.timestamp)?,
    })
}

impl Auth {
    fn header_value(&self) -> Result<HeaderValue, ConfigError> {
        let (what, text) = match self {
            Auth::Bearer(token) => {
                if token.expose().is_empty() {
                    return Err(ConfigError::InvalidCredentials {
                        what: "bearer token",
                        reason: "it is empty",
                    });
                }
                ("bearer token", format!("Bearer {}", token.expose()))
            }
            Auth::Basic { user, password } => {
                if user.contains(':') {
                    return Err(ConfigError::InvalidCredentials {
                        what: "basic auth",
                        reason: "the user name must not contain `:`",
                    });
                }
                let encoded = BASE64.encode(format!("{user}:{}", password.expose()));
                ("basic auth", format!("Basic {encoded}"))
            }
        };
        sensitive_value(&text).ok_or(ConfigError::InvalidCredentials {
            what,
            reason: "only visible ASCII, space and tab are allowed",
        })
    }
}

/// A header value marked sensitive, which keeps it out of awc's debug output
/// and HTTP/2 header tables; `None` if HTTP forbids it (CR, LF, …).
fn sensitive_value(text: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(text).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The header names an additional header may not take.
struct Reserved<'a> {
    names: &'a LegacyHeaders,
    /// Standard Webhooks headers are in use.
    standard: bool,
    /// `authorization` is set by `bearer_token` or `basic_auth`.
    authorization: bool,
}

impl Reserved<'_> {
    fn check(&self, name: &str, value: &str) -> Result<(HeaderName, HeaderValue), ConfigError> {
        let shown = name.escape_debug().to_string();
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ConfigError::InvalidHeaderName {
                name: shown.clone(),
                reason: "header names are tokens: letters, digits and !#$%&'*+-.^_`|~",
            }
        })?;
        let lower = header.as_str();
        let reserved = self.names.all().contains(&lower)
            || FRAMING_HEADERS.contains(&lower)
            || (self.standard && STANDARD_HEADERS.contains(&lower))
            || (self.authorization && header == AUTHORIZATION);
        if reserved {
            return Err(ConfigError::ReservedHeader { name: shown });
        }
        let value =
            sensitive_value(value).ok_or(ConfigError::InvalidHeaderValue { name: shown })?;
        Ok((header, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::SsrfGuard;
    use std::time::Duration;

    fn refusal(config: Config) -> ConfigError {
        match config.validate(&Defaults::default()) {
            Err(e) => e,
            Ok(v) => panic!("accepted: {v:?}"),
        }
    }

    #[test]
    fn every_rule_refuses_with_a_reason() {
        let ok = || Config::new("http://127.0.0.1:1/");
        type Expect = fn(&ConfigError) -> bool;
        let cases: Vec<(Config, Expect)> = vec![
            (
                Config::new("ftp://127.0.0.1/"),
                |e| matches!(e, ConfigError::InvalidUrl { reason, .. } if reason.contains("ftp")),
            ),
            (Config::new("not a url"), |e| {
                matches!(e, ConfigError::InvalidUrl { .. })
            }),
            (Config::new("/relative/path"), |e| {
                matches!(e, ConfigError::InvalidUrl { .. })
            }),
            (Config::new("http:///nohost"), |e| {
                matches!(e, ConfigError::InvalidUrl { .. })
            }),
            (ok().additional_header("x-bad\r\nname", "v"), |e| {
                matches!(e, ConfigError::InvalidHeaderName { .. })
            }),
            (
                ok().additional_header("x-evil", "v\r\nx-injected: 1"),
                |e| matches!(e, ConfigError::InvalidHeaderValue { name } if name == "x-evil"),
            ),
            (
                ok().additional_header("x-webhooks-signature", "forged"),
                |e| matches!(e, ConfigError::ReservedHeader { .. }),
            ),
            (ok().additional_header("Host", "elsewhere"), |e| {
                matches!(e, ConfigError::ReservedHeader { .. })
            }),
            (ok().header_identifier("bad id"), |e| {
                matches!(e, ConfigError::InvalidHeaderIdentifier { .. })
            }),
            (ok().header_identifier(""), |e| {
                matches!(e, ConfigError::InvalidHeaderIdentifier { .. })
            }),
            (ok().request_timeout(Duration::ZERO), |e| {
                *e == ConfigError::Zero {
                    setting: "request_timeout",
                }
            }),
            (ok().max_retries(0), |e| {
                *e == ConfigError::Zero {
                    setting: "max_retries",
                }
            }),
            (ok().queue_capacity(0), |e| {
                *e == ConfigError::Zero {
                    setting: "queue_capacity",
                }
            }),
            (ok().max_in_flight(0), |e| {
                *e == ConfigError::Zero {
                    setting: "max_in_flight",
                }
            }),
            (ok().backoff(Duration::ZERO, Duration::from_secs(1)), |e| {
                matches!(e, ConfigError::Zero { .. })
            }),
            (
                ok().backoff(Duration::from_secs(2), Duration::from_secs(1)),
                |e| matches!(e, ConfigError::BackoffLimitBelowStart { .. }),
            ),
            (ok().secret(""), |e| *e == ConfigError::EmptySecret),
        ];
        for (i, (config, expected)) in cases.into_iter().enumerate() {
            let error = refusal(config);
            assert!(expected(&error), "case {i}: unexpected error {error:?}");
            assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn bad_secrets_and_credentials_are_refused_without_showing_them() {
        const KEY: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        let url = "http://127.0.0.1:1/";
        for (config, expected) in [
            (
                Config::new(url).standard_webhooks("C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
                "whsec_",
            ),
            (
                Config::new(url).standard_webhooks("whsec_not*base64!"),
                "base64",
            ),
            (
                Config::new(url).standard_webhooks("whsec_c2hvcnQ="),
                "at least 16",
            ),
        ] {
            let error = refusal(config);
            let text = error.to_string();
            assert!(
                matches!(error, ConfigError::InvalidStandardSecret { .. }),
                "{error:?}"
            );
            assert!(text.contains(expected), "{text}");
            assert!(
                !text.contains("C2FVsBQIhrscChlQIMV") && !text.contains("c2hvcnQ"),
                "{text}"
            );
        }
        let error = refusal(Config::new(url).bearer_token("zq9-secret\r\nx: y"));
        assert!(matches!(error, ConfigError::InvalidCredentials { .. }));
        assert!(!format!("{error} {error:?}").contains("zq9-secret"));
        let error = refusal(Config::new(url).basic_auth("a:b", "p"));
        assert!(matches!(error, ConfigError::InvalidCredentials { .. }));
        for reserved in [
            Config::new(url)
                .bearer_token("t")
                .additional_header("Authorization", "other"),
            Config::new(url)
                .standard_webhooks(KEY)
                .additional_header("webhook-id", "x"),
        ] {
            assert!(matches!(
                refusal(reserved),
                ConfigError::ReservedHeader { .. }
            ));
        }
        // Without Standard Webhooks keys, `webhook-id` is an ordinary header.
        assert!(Config::new(url)
            .additional_header("webhook-id", "x")
            .validate(&Defaults::default())
            .is_ok());
    }

    #[test]
    fn the_ssrf_guard_refuses_private_ip_literals() {
        for url in [
            "http://127.0.0.1:8080/",
            "http://10.1.2.3/hooks",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:8080/",
            "http://[::ffff:192.168.0.1]/",
        ] {
            let error = refusal(Config::new(url).ssrf_guard(SsrfGuard::new()));
            assert!(
                matches!(&error, ConfigError::BlockedTarget { reason, .. } if !reason.is_empty()),
                "{url}: {error:?}"
            );
        }
        let bad_subnet =
            Config::new("http://example.com/").ssrf_guard(SsrfGuard::new().allow_subnet("nope"));
        assert!(matches!(
            refusal(bad_subnet),
            ConfigError::InvalidSubnet { .. }
        ));
        let allowed = Config::new("http://127.0.0.1:8080/")
            .ssrf_guard(SsrfGuard::new().allow_subnet("127.0.0.0/8"));
        assert!(allowed.validate(&Defaults::default()).is_ok());
        // The emitter-wide guard applies to configs without their own.
        let defaults = Defaults {
            ssrf_guard: Some(SsrfGuard::new()),
            ..Defaults::default()
        };
        assert!(Config::new("http://10.0.0.1/").validate(&defaults).is_err());
    }

    #[test]
    fn relative_urls_need_the_base_url() {
        match refusal(Config::new("/api/hooks")) {
            ConfigError::InvalidUrl { reason, .. } => {
                assert!(reason.contains("base_url"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let defaults = Defaults {
            base_url: Some("http://internal:8080/v1/".into()),
            ..Defaults::default()
        };
        let config = Config::new("/api/hooks").validate(&defaults);
        assert_eq!(
            config.map(|c| c.request.url.to_string()).ok().as_deref(),
            Some("http://internal:8080/v1/api/hooks")
        );
        let https = Config::new("https://example.com/in").validate(&Defaults::default());
        let https = https.unwrap_or_else(|e| panic!("{e}"));
        assert!(https.request.tls.is_some());
        assert_eq!(
            https.request.host_header.as_ref().map(|h| h.as_bytes()),
            Some(&b"example.com"[..])
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::proptest_config())]

        /// Any additional header: refused, or accepted with a value that
        /// cannot break the request (no CR, LF or NUL).
        #[test]
        fn any_additional_header_is_checked(name in ".{0,20}", value in ".{0,40}") {
            let config = Config::new("http://127.0.0.1:1/").additional_header(name, value);
            if let Ok(valid) = config.validate(&Defaults::default()) {
                for (_, value) in &valid.request.additional_headers {
                    prop_assert!(!value.as_bytes().iter().any(|b| matches!(b, b'\r' | b'\n' | 0)));
                }
            }
        }

        /// Any header identifier, secret and credentials: checked, never a panic.
        #[test]
        fn any_identifier_secret_and_credentials(
            identifier in ".{0,12}",
            secret in ".{0,40}",
            token in ".{0,20}",
        ) {
            let _ = Config::new("http://127.0.0.1:1/")
                .header_identifier(identifier)
                .standard_webhooks(secret.clone())
                .secret(secret)
                .bearer_token(token)
                .validate(&Defaults::default());
        }
    }
}
