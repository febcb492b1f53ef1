//! What every request to one endpoint needs, prepared once when `attach`
//! validates its configuration: the parsed URL, header names and values,
//! keys, the timeout, the SSRF policy and the TLS configuration.

use std::sync::Arc;
use std::time::Duration;

use awc::http::header::{HeaderName, HeaderValue};
use awc::http::Uri;

use crate::delivery::TargetPolicy;
use crate::redact::Redacted;

/// A signing key.
pub(crate) type Key = Redacted<Arc<[u8]>>;

/// The `x-<identifier>-*` headers, as header names.
#[derive(Debug, Clone)]
pub(crate) struct SenderHeaders {
    pub event: HeaderName,
    pub delivery: HeaderName,
    pub signature: HeaderName,
    pub timestamp: HeaderName,
}

/// How to send to one endpoint.
#[derive(Debug)]
pub(crate) struct RequestTemplate {
    /// What awc requests: `http://host:port/…` (TLS is below awc).
    pub url: Uri,
    /// For https targets: the `Host` header (awc would derive `host:443`).
    pub host_header: Option<HeaderValue>,
    /// The URL with credentials redacted, for logs.
    pub display_url: String,
    pub secret: Option<Key>,
    pub headers: SenderHeaders,
    pub request_timeout: Duration,
    /// Values marked sensitive: they are often credentials.
    pub additional_headers: Vec<(HeaderName, HeaderValue)>,
    /// Standard Webhooks keys; each signs every request.
    pub standard_keys: Vec<Key>,
    /// `x-<identifier>-timestamp`, when the legacy signature is timestamped.
    pub timestamp_header: Option<HeaderName>,
    /// The `authorization` value from `bearer_token` or `basic_auth`.
    pub authorization: Option<HeaderValue>,
    pub envelope: bool,
    /// Set when an SSRF guard applies.
    pub target_policy: Option<TargetPolicy>,
    /// Set for https targets.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}
