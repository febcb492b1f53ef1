//! One HTTP attempt: build the signed request, send it, classify the answer.

use std::time::Duration;

use awc::error::{ConnectError, SendRequestError};
use std::time::{SystemTime, UNIX_EPOCH};

use awc::http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};

use crate::config::ValidatedConfig;
use crate::event::Event;
use crate::report::Failure;
use crate::signature::{sign, sign_timestamped};
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
    let connector = awc::Connector::new()
        .timeout(config.request_timeout)
        .rustls_0_23(config.tls.clone());
    awc::Client::builder()
        .connector(connector)
        .disable_redirects()
        .no_default_headers()
        .timeout(config.request_timeout)
        .finish()
}

/// Sends `event` once; `Ok(status)` for a 2xx, the failure otherwise.
pub(crate) async fn attempt(
    client: &awc::Client,
    config: &ValidatedConfig,
    event: &Event,
) -> Result<u16, Failure> {
    let timeout = config.request_timeout;
    let mut request = client
        .post(config.url.clone())
        .timeout(timeout)
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .insert_header((USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE)))
        .insert_header((config.headers.event.clone(), event.name()))
        .insert_header((config.headers.delivery.clone(), event.request_id().as_str()));
    let timestamp = unix_now();
    if let Some(secret) = &config.secret {
        let signature = match &config.timestamp_header {
            Some(header) => {
                request = request.insert_header((header.clone(), timestamp.to_string()));
                sign_timestamped(secret.expose(), timestamp, event.payload())
            }
            None => sign(secret.expose(), event.payload()),
        };
        request = request.insert_header((config.headers.signature.clone(), signature));
    }
    if !config.standard_keys.is_empty() {
        let id = event.request_id().as_str();
        let signatures: Vec<String> = config
            .standard_keys
            .iter()
            .map(|key| sign_standard(key.expose(), id, timestamp, event.payload()))
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
        .send_body(event.payload_bytes())
        .await
        .map_err(|e| classify(e, timeout))?;
    let status = response.status();
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
        })
    }
}

fn classify(error: SendRequestError, timeout: Duration) -> Failure {
    match error {
        SendRequestError::Timeout | SendRequestError::Connect(ConnectError::Timeout) => {
            Failure::Timeout(timeout)
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
