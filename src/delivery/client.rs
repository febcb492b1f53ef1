//! One awc client per emitter, created on the worker's own thread (awc clients
//! are `!Send`).

use crate::delivery::connector::Connector;
use crate::delivery::template::RequestTemplate;

/// A client for one emitter. Redirects are not followed: a 3xx is a failure,
/// as in the Elixir original, and following one could leak the signed body.
/// Connections come from our own [`Connector`]: TCP through the SSRF guard,
/// TLS for https, interim responses skipped.
pub(crate) fn build_client(config: &RequestTemplate) -> awc::Client {
    let connector = Connector::new(config.target_policy.as_ref(), config.tls.clone());
    let connector = awc::Connector::new()
        .connector(connector)
        .timeout(config.request_timeout);
    awc::Client::builder()
        .disable_redirects()
        .no_default_headers()
        .timeout(config.request_timeout)
        .connector(connector)
        .finish()
}
