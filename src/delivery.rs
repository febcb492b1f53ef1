//! One HTTP attempt: build the signed request, send it, classify the answer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_tls::connect::{Connector as TcpConnector, Resolver};
use awc::error::{ConnectError, SendRequestError};
use awc::http::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, USER_AGENT,
};
use bytes::Bytes;

use crate::config::ValidatedConfig;
use crate::event::Event;
use crate::report::Failure;
use crate::signature::{sign, sign_timestamped};
use crate::ssrf::{BlockedTarget, GuardedResolver};
use crate::standard_webhooks::{
    sign_standard, HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP,
};

/// `WebHooks-Emitter/<crate version>`, as the Elixir original sends it.
pub const USER_AGENT_VALUE: &str = concat!("WebHooks-Emitter/", env!("CARGO_PKG_VERSION"));

/// Most of a response body that is read (then discarded) so the connection can
/// be reused; a larger body just closes it.
const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// A client for one emitter. Redirects are not followed: a 3xx is a failure,
/// as in the Elixir original, and following one could leak the signed body.
pub(crate) fn build_client(config: &ValidatedConfig) -> awc::Client {
    let builder = awc::Client::builder()
        .disable_redirects()
        .no_default_headers()
        .timeout(config.request_timeout);
    let connector = awc::Connector::new();
    // With an SSRF guard, host names resolve through the guard, so the address
    // connected to is the address checked.
    match &config.target_policy {
        Some(policy) => {
            let resolver = Resolver::custom(GuardedResolver(policy.clone()));
            let connector = connector
                .connector(TcpConnector::new(resolver).service())
                .timeout(config.request_timeout)
                .rustls_0_23(config.tls.clone());
            builder.connector(connector).finish()
        }
        None => {
            let connector = connector
                .timeout(config.request_timeout)
                .rustls_0_23(config.tls.clone());
            builder.connector(connector).finish()
        }
    }
}

/// The body sent for `event`: its payload, or the payload in an envelope.
pub(crate) fn body_for(config: &ValidatedConfig, event: &Event) -> Bytes {
    if !config.envelope {
        return event.payload_bytes();
    }
    let json_string = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    let timestamp = humantime::format_rfc3339_millis(event.emitted_at()).to_string();
    let mut body = Vec::with_capacity(event.payload().len() + 160);
    body.extend_from_slice(b"{\"id\":");
    body.extend_from_slice(json_string(event.request_id().as_str()).as_bytes());
    body.extend_from_slice(b",\"timestamp\":");
    body.extend_from_slice(json_string(&timestamp).as_bytes());
    body.extend_from_slice(b",\"event\":");
    body.extend_from_slice(json_string(event.name()).as_bytes());
    body.extend_from_slice(b",\"data\":");
    body.extend_from_slice(event.payload());
    body.push(b'}');
    Bytes::from(body)
}

/// Sends `event` once; `Ok(status)` for a 2xx, the failure otherwise.
pub(crate) async fn attempt(
    client: &awc::Client,
    config: &ValidatedConfig,
    event: &Event,
    body: Bytes,
) -> Result<u16, Failure> {
    let timeout = config.request_timeout;
    let mut request = client
        .post(config.url.clone())
        .timeout(timeout)
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .insert_header((USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE)))
        .insert_header((config.headers.event.clone(), event.name()))
        .insert_header((config.headers.delivery.clone(), event.request_id().as_str()));
    // Read the clock only when a scheme signs a timestamp.
    let timestamp = if config.timestamp_header.is_some() || !config.standard_keys.is_empty() {
        unix_now()
    } else {
        0
    };
    if let Some(secret) = &config.secret {
        let signature = match &config.timestamp_header {
            Some(header) => {
                request = request.insert_header((header.clone(), timestamp.to_string()));
                sign_timestamped(secret.expose(), timestamp, &body)
            }
            None => sign(secret.expose(), &body),
        };
        request = request.insert_header((config.headers.signature.clone(), signature));
    }
    if !config.standard_keys.is_empty() {
        let id = event.request_id().as_str();
        let signatures: Vec<String> = config
            .standard_keys
            .iter()
            .map(|key| sign_standard(key.expose(), id, timestamp, &body))
            .collect();
        request = request
            .insert_header((HEADER_WEBHOOK_ID, id))
            .insert_header((HEADER_WEBHOOK_TIMESTAMP, timestamp.to_string()))
            .insert_header((HEADER_WEBHOOK_SIGNATURE, signatures.join(" ")));
    }
    if let Some(authorization) = &config.authorization {
        request = request.insert_header((AUTHORIZATION, authorization.clone()));
    }
    for (name, value) in &config.additional_headers {
        request = request.insert_header((name.clone(), value.clone()));
    }
    let response = request
        .send_body(body)
        .await
        .map_err(|e| classify(e, timeout))?;
    let status = response.status();
    let retry_after = match status.as_u16() {
        429 | 503 => retry_after(response.headers()),
        _ => None,
    };
    // Read what the endpoint sent so that keep-alive can reuse the connection;
    // its content does not change the outcome.
    let _ = response
        .timeout(timeout)
        .body()
        .limit(MAX_RESPONSE_BODY)
        .await;
    if status.is_success() {
        Ok(status.as_u16())
    } else {
        Err(Failure::Status {
            status: status.as_u16(),
            retry_after,
        })
    }
}

/// `Retry-After` as a wait: delay-seconds or an HTTP date (past dates are 0).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn classify(error: SendRequestError, timeout: Duration) -> Failure {
    match error {
        SendRequestError::Timeout | SendRequestError::Connect(ConnectError::Timeout) => {
            Failure::Timeout(timeout)
        }
        SendRequestError::Connect(ConnectError::Resolver(e)) if e.is::<BlockedTarget>() => {
            Failure::Blocked(e.to_string())
        }
        SendRequestError::Connect(e) => Failure::Connect(e.to_string()),
        other => Failure::Request(other.to_string()),
    }
}

/// Seconds since the Unix epoch, as signed timestamps carry them.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
