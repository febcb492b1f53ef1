//! `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP date.

use std::time::{Duration, SystemTime};

use awc::http::header::{HeaderMap, RETRY_AFTER};

/// `Retry-After` as a wait: delay-seconds or an HTTP date (past dates are 0).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
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
