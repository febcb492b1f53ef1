//! One HTTP attempt: build the signed request, send it, classify the answer.

use std::time::Duration;

use awc::error::{ConnectError, SendRequestError};
use awc::http::header::{HeaderValue, CONTENT_TYPE, USER_AGENT};

use crate::config::ValidatedConfig;
use crate::event::Event;
use crate::report::Failure;
use crate::signature::sign;

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
    if let Some(secret) = &config.secret {
        request = request.insert_header((
            config.headers.signature.clone(),
            sign(secret.expose(), event.payload()),
        ));
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
