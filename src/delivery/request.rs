//! One HTTP attempt: build the signed request, send it, classify the answer.

use std::time::Duration;

use awc::error::{ConnectError, SendRequestError};
use awc::http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use bytes::Bytes;

use crate::delivery::retry_after::retry_after;
use crate::delivery::ssrf::BlockedTarget;
use crate::delivery::template::RequestTemplate;
use crate::model::Event;
use crate::model::Failure;
use crate::signing::headers::{
    HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP, USER_AGENT_VALUE,
};
use crate::signing::legacy::{sign, sign_timestamped};
use crate::signing::standard::sign_standard;
use crate::signing::unix_now;

/// Most of a response body that is read (then discarded) so the connection can
/// be reused; a larger body just closes it.
const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// How much of a response body a report keeps.
pub(crate) const KEPT_RESPONSE_BODY: usize = 4 * 1024;

/// Sends `event` once; `Ok(status)` for a 2xx, the failure otherwise, and
/// the first [`KEPT_RESPONSE_BODY`] bytes of what the endpoint answered
/// (empty without an answer).
pub(crate) async fn attempt(
    client: &awc::Client,
    config: &RequestTemplate,
    event: &Event,
    body: Bytes,
) -> (Result<u16, Failure>, Bytes) {
    let timeout = config.request_timeout;
    let response = match signed_request(client, config, event, &body)
        .send_body(body)
        .await
    {
        Ok(response) => response,
        Err(e) => return (Err(classify(e, timeout)), Bytes::new()),
    };
    let status = response.status();
    let retry_after = match status.as_u16() {
        429 | 503 => retry_after(response.headers()),
        _ => None,
    };
    // Read what the endpoint sent so that keep-alive can reuse the connection;
    // its content does not change the outcome, and its start is kept for the
    // report (copied: the rest of the buffer is not held).
    let answer = response
        .timeout(timeout)
        .body()
        .limit(MAX_RESPONSE_BODY)
        .await
        .map(|all| Bytes::copy_from_slice(&all[..all.len().min(KEPT_RESPONSE_BODY)]))
        .unwrap_or_default();
    let result = if status.is_success() {
        Ok(status.as_u16())
    } else {
        Err(Failure::Status {
            status: status.as_u16(),
            retry_after,
        })
    };
    (result, answer)
}

/// The POST with every header: wire format, signatures, credentials, extras.
fn signed_request(
    client: &awc::Client,
    config: &RequestTemplate,
    event: &Event,
    body: &[u8],
) -> awc::ClientRequest {
    let id = event.request_id().as_str();
    let mut request = client
        .post(config.url.clone())
        .timeout(config.request_timeout)
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .insert_header((USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE)))
        .insert_header((config.headers.event.clone(), event.name()))
        .insert_header((config.headers.delivery.clone(), id));
    if let Some(host) = &config.host_header {
        request = request.insert_header((HOST, host.clone()));
    }
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
                sign_timestamped(secret.expose(), timestamp, body)
            }
            None => sign(secret.expose(), body),
        };
        request = request.insert_header((config.headers.signature.clone(), signature));
    }
    if !config.standard_keys.is_empty() {
        let signatures: Vec<String> = config
            .standard_keys
            .iter()
            .map(|key| sign_standard(key.expose(), id, timestamp, body))
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
    request
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
