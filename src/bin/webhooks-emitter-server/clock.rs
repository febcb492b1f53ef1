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

/// Unix microseconds (how messages keep times) as a time.
pub fn from_micros(micros: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(micros)
}

/// An RFC 3339 time in UTC (`2026-12-05T10:00:00Z`, fractions allowed) as
/// Unix microseconds; an error that says what was expected.
pub fn parse_rfc3339_micros(text: &str) -> Result<u64, String> {
    let at = humantime::parse_rfc3339(text).map_err(|e| {
        format!(
            "`{}` is not an RFC 3339 time in UTC, like 2026-12-05T10:00:00Z: {e}",
            text.escape_debug()
        )
    })?;
    at.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .map_err(|_| format!("`{text}` is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::proptest_config())]

        /// Any text: a time or an error, never a panic; what the API shows
        /// reads back to the same millisecond.
        #[test]
        fn times_parse_or_are_refused(text in "\\PC{0,40}", ms in 0u64..253_402_300_799_000) {
            let _ = parse_rfc3339_micros(&text);
            let shown = rfc3339(UNIX_EPOCH + Duration::from_millis(ms));
            prop_assert_eq!(parse_rfc3339_micros(&shown), Ok(ms * 1000));
        }
    }
}
