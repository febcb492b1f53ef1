//! Deliveries per second, with a burst: each emitter with a limit keeps a
//! token bucket, and a request that finds it empty waits (queued, never
//! dropped) until a token is due.

use std::time::{Duration, Instant};

use crate::error::ConfigError;

/// Most requests per second a limit may allow, and most in a burst.
pub const MAX_RATE: u32 = 1_000_000;

/// A limit on one emitter's requests (first attempts and retries alike):
/// `per_second` on average, up to `burst` at once after a quiet spell.
/// Events above it wait in the queue; none is dropped, and other emitters
/// are not slowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    per_second: u32,
    burst: u32,
}

impl RateLimit {
    /// `per_second` and `burst` from 1 to 1,000,000.
    pub fn new(per_second: u32, burst: u32) -> Result<Self, ConfigError> {
        for (setting, value) in [
            ("rate_limit per_second", per_second),
            ("rate_limit burst", burst),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { setting });
            }
            if value > MAX_RATE {
                return Err(ConfigError::OutOfRange {
                    setting,
                    detail: format!("{value} is above {MAX_RATE}"),
                });
            }
        }
        Ok(RateLimit { per_second, burst })
    }

    /// Requests per second on average.
    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    /// Requests at once after a quiet spell.
    pub fn burst(&self) -> u32 {
        self.burst
    }
}

/// Tokens for one emitter: one per request, `per_second` of them a second,
/// at most `burst` kept. Full at the start.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    pub(crate) fn new(limit: RateLimit, now: Instant) -> Self {
        TokenBucket {
            limit,
            tokens: f64::from(limit.burst),
            at: now,
        }
    }

    pub(crate) fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes a token for a request now, or says how long until one is due.
    pub(crate) fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let rate = f64::from(self.limit.per_second);
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(self.limit.burst));
        self.at = now.max(self.at);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            // At least a microsecond: a zero wait would spin.
            let wait = ((1.0 - self.tokens) / rate).max(1e-6);
            Err(Duration::from_secs_f64(wait))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn settings_out_of_range_are_refused() {
        assert!(matches!(
            RateLimit::new(0, 1),
            Err(ConfigError::Zero { .. })
        ));
        assert!(matches!(
            RateLimit::new(1, 0),
            Err(ConfigError::Zero { .. })
        ));
        assert!(matches!(
            RateLimit::new(MAX_RATE + 1, 1),
            Err(ConfigError::OutOfRange { .. })
        ));
        assert!(RateLimit::new(MAX_RATE, MAX_RATE).is_ok());
    }

    #[test]
    fn a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(
            RateLimit::new(10, 3).unwrap_or_else(|e| panic!("{e}")),
            start,
        );
        for _ in 0..3 {
            assert_eq!(bucket.take(start), Ok(()));
        }
        let Err(wait) = bucket.take(start) else {
            panic!("the burst is spent: a fourth request must wait");
        };
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        assert_eq!(bucket.take(start + Duration::from_millis(100)), Ok(()));
        // A long quiet spell refills only up to the burst.
        let later = start + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(bucket.take(later), Ok(()));
        }
        assert!(bucket.take(later).is_err());
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        /// Whatever the settings and the times asked at, over any span no
        /// more requests go than the burst plus the rate times the span,
        /// and a request refused is told a wait after which it goes.
        #[test]
        fn never_more_than_the_burst_plus_the_rate(
            per_second in 1u32..=MAX_RATE,
            burst in 1u32..=1000,
            steps in proptest::collection::vec(0u64..2_000_000, 1..200),
        ) {
            let limit = RateLimit::new(per_second, burst).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let start = Instant::now();
            let mut bucket = TokenBucket::new(limit, start);
            let mut now = start;
            let mut taken = 0u64;
            for step in steps {
                now += Duration::from_nanos(step);
                match bucket.take(now) {
                    Ok(()) => taken += 1,
                    Err(wait) => {
                        prop_assert!(!wait.is_zero());
                        prop_assert!(wait <= Duration::from_secs(1), "{:?}", wait);
                        prop_assert_eq!(bucket.take(now + wait), Ok(()));
                        taken += 1;
                        now += wait;
                    }
                }
                let span = now.duration_since(start).as_secs_f64();
                let allowed = f64::from(burst) + span * f64::from(per_second);
                prop_assert!(taken as f64 <= allowed + 1e-6, "{} > {}", taken, allowed);
            }
        }
    }
}
