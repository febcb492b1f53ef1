//! Jittered exponential backoff between attempts.

use std::time::Duration;

/// Delays that start at `start`, double after each consecutive failure and stop
/// growing at `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    start: Duration,
    limit: Duration,
}

impl Backoff {
    pub(crate) fn new(start: Duration, limit: Duration) -> Self {
        Backoff { start, limit }
    }

    /// The delay before the next attempt after `failures` consecutive failures
    /// (1 or more), without jitter.
    pub(crate) fn nominal(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.start
            .checked_mul(1u32 << doublings)
            .map_or(self.limit, |d| d.min(self.limit))
    }

    /// The nominal delay with "equal jitter": between half of it and all of it,
    /// at `jitter` (0 to 1) of the way. Jitter spreads the retries of many
    /// emitters that failed at once; keeping half keeps the backoff meaningful.
    pub(crate) fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let nominal = self.nominal(failures);
        let half = nominal / 2;
        let fraction = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        // Float rounding can push a product past `Duration::MAX` (where
        // `mul_f64` would panic): convert with a check, and cap at `half`.
        let extra = Duration::try_from_secs_f64(half.as_secs_f64() * fraction)
            .unwrap_or(half)
            .min(half);
        half.saturating_add(extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let secs: Vec<u64> = (1..=8).map(|n| b.nominal(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.nominal(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_within_half_and_whole() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        for n in 1..10 {
            for jitter in [0.0, 0.3, 1.0] {
                let d = b.delay(n, jitter);
                assert!(d >= b.nominal(n) / 2 && d <= b.nominal(n), "{d:?}");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_config())]

        /// Any start, limit, count and jitter: no overflow, and the delay stays
        /// between half of the nominal delay and all of it.
        #[test]
        fn any_setting_stays_in_range(
            start_ns in 1u64..=u64::MAX,
            limit_secs in 0u64..=u64::MAX,
            failures in 0u32..=u32::MAX,
            jitter in proptest::num::f64::ANY,
        ) {
            let start = Duration::from_nanos(start_ns);
            let limit = start.max(Duration::from_secs(limit_secs));
            let b = Backoff::new(start, limit);
            let delay = b.delay(failures, jitter);
            proptest::prop_assert!(delay <= b.nominal(failures) && delay >= b.nominal(failures) / 2);
            proptest::prop_assert!(b.nominal(failures) <= limit);
        }
    }
}
