//! The wire format's signatures and header names, in one place for both sides:
//! the sender (`emitter`) signs with these functions and names its headers with
//! these constants, and the receiver (`verify`) checks with the same ones.
//!
//! - [`legacy`]: the Elixir-compatible `x-<identifier>-signature:
//!   sha256:<base32hex>`, optionally over `"{timestamp}.{body}"`.
//! - [`standard`]: Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature: v1,<base64>`), keys written `whsec_<base64>`.
//! - [`headers`]: the header names, the header identifier rule, the user agent.

pub(crate) mod headers;
pub(crate) mod legacy;
pub(crate) mod standard;

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, as signed timestamps carry them.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
