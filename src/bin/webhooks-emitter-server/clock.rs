//! The server's times: Unix seconds and microseconds as records keep them,
//! RFC 3339 as the API shows them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Unix microseconds: where record numbers that must grow across restarts
/// (and across nodes) start.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A time as the API shows every time: RFC 3339, milliseconds, UTC.
pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// Unix seconds (how records keep times) as RFC 3339.
pub fn unix_rfc3339(secs: u64) -> String {
    rfc3339(UNIX_EPOCH + Duration::from_secs(secs))
}
