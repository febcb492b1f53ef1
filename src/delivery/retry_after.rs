//! `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP date.

use std::time::{Duration, SystemTime};

use awc::http::header::{HeaderMap, RETRY_AFTER};

/// `Retry-After` as a wait: delay-seconds or an HTTP date (past dates are 0).
/// A number of seconds too large for a `u64` is the longest wait there is:
/// the retry policy clamps it to `retry_after_limit`, rather than ignore it.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    parse(headers.get(RETRY_AFTER)?.to_str().ok()?, SystemTime::now())
}

fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: Duration = Duration::from_secs(u64::MAX);

    #[test]
    fn seconds_dates_and_nonsense() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse("99999999999999999999", now), Some(MAX));
        assert_eq!(parse(&"9".repeat(1000), now), Some(MAX));
        let in_a_minute = httpdate::fmt_http_date(now + Duration::from_secs(60));
        assert_eq!(parse(&in_a_minute, now), Some(Duration::from_secs(60)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(60));
        assert_eq!(parse(&past, now), Some(Duration::ZERO));
        for nonsense in ["", "-1", "1.5", "+3", "soon", "٣"] {
            assert_eq!(parse(nonsense, now), None, "{nonsense:?}");
        }
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        #[test]
        fn any_value_parses_or_is_ignored_without_panic(value in ".{0,64}", secs in any::<u64>()) {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(secs % 10_000_000_000);
            let _ = parse(&value, now);
        }

        #[test]
        fn any_digits_give_their_value_or_the_maximum(digits in "[0-9]{1,40}") {
            let expected = digits.parse::<u64>().map_or(MAX, Duration::from_secs);
            prop_assert_eq!(parse(&digits, SystemTime::now()), Some(expected));
        }
    }
}
