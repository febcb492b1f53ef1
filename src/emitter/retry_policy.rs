//! What to do after a failed attempt. A pure function of the failure, the
//! counts so far and the emitter's policy, so that every rule (attempts,
//! backoff, `Retry-After`, `410 Gone`, auto-disable) is tested on its own and
//! the worker only carries out the decision.

use std::time::Duration;

use crate::emitter::backoff::Backoff;
use crate::emitter::report::PauseReason;
use crate::model::DeadLetterReason;
use crate::model::Failure;

/// How an emitter orders its deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeliveryOrder {
    /// One event at a time, in emit order; a failing event holds back the
    /// others, and the backoff grows across events until a success (Elixir).
    Strict,
    /// Up to this many events in flight at once, each with its own attempts
    /// and backoff; emit order is not kept.
    Parallel(usize),
}

impl DeliveryOrder {
    /// `Config::max_in_flight(n)`: 1 is strict order.
    pub(crate) fn from_max_in_flight(n: usize) -> Self {
        if n <= 1 {
            DeliveryOrder::Strict
        } else {
            DeliveryOrder::Parallel(n)
        }
    }

    /// How many events may be active (in flight or waiting to retry) at once.
    pub(crate) fn max_active(self) -> usize {
        match self {
            DeliveryOrder::Strict => 1,
            DeliveryOrder::Parallel(n) => n,
        }
    }
}

/// When an emitter pauses itself because its endpoint keeps failing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AutoDisable {
    pub dead_letters: Option<u32>,
    pub failing_for: Option<Duration>,
}

/// One emitter's rules for failed attempts.
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    /// Attempts per event in total (`max_retries`), at least 1.
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub retry_after_limit: Duration,
    pub auto_disable: AutoDisable,
    pub order: DeliveryOrder,
}

/// What the worker knows when an attempt has failed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FailedAttempt<'a> {
    pub failure: &'a Failure,
    /// Attempts made at this event, the failed one included.
    pub attempts: u32,
    /// Failed attempts since the last success, across events, this one included.
    pub consecutive_failures: u32,
    /// Dead letters in a row before this failure.
    pub consecutive_dead_letters: u32,
    /// From the first failure since the last success to this one.
    pub failing_for: Duration,
    /// Where in the jitter range the delay falls (0 to 1), drawn by the caller
    /// so that the decision itself is deterministic.
    pub jitter: f64,
}

/// What the worker does with the event and the emitter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// `410 Gone`: keep the event first in line and pause the emitter.
    HoldAndPause(PauseReason),
    /// Send it again after `after`; pause the emitter first if auto-disable says so.
    Retry {
        after: Duration,
        pause: Option<PauseReason>,
    },
    /// Give up: it becomes a dead letter; pause the emitter if auto-disable says so.
    DeadLetter {
        reason: DeadLetterReason,
        pause: Option<PauseReason>,
    },
}

impl RetryPolicy {
    /// The decision after `attempt` failed.
    pub(crate) fn decide(&self, attempt: FailedAttempt<'_>) -> Decision {
        let failure = attempt.failure;
        if failure.status() == Some(410) {
            return Decision::HoldAndPause(PauseReason::Gone);
        }
        let failing_too_long = self
            .auto_disable
            .failing_for
            .filter(|limit| attempt.failing_for >= *limit)
            .map(PauseReason::FailingFor);
        let retryable = !matches!(failure, Failure::Blocked(_));
        if retryable && attempt.attempts < self.max_attempts {
            return Decision::Retry {
                after: self.retry_delay(&attempt),
                pause: failing_too_long,
            };
        }
        let reason = if retryable {
            DeadLetterReason::AttemptsExhausted {
                last_failure: failure.clone(),
            }
        } else {
            DeadLetterReason::NotRetryable {
                failure: failure.clone(),
            }
        };
        let too_many_dead_letters = self
            .auto_disable
            .dead_letters
            .filter(|limit| attempt.consecutive_dead_letters.saturating_add(1) >= *limit)
            .map(PauseReason::ConsecutiveDeadLetters);
        Decision::DeadLetter {
            reason,
            pause: too_many_dead_letters.or(failing_too_long),
        }
    }

    /// The backoff (per event in parallel mode, across events in strict
    /// order), lengthened by a `Retry-After` up to its limit.
    fn retry_delay(&self, attempt: &FailedAttempt<'_>) -> Duration {
        let level = match self.order {
            DeliveryOrder::Strict => attempt.consecutive_failures,
            DeliveryOrder::Parallel(_) => attempt.attempts,
        };
        let backoff = self.backoff.delay(level, attempt.jitter);
        match attempt.failure {
            Failure::Status {
                retry_after: Some(wait),
                ..
            } => backoff.max((*wait).min(self.retry_after_limit)),
            _ => backoff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy(order: DeliveryOrder, auto_disable: AutoDisable) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            backoff: Backoff::new(100 * MS, 1000 * MS),
            retry_after_limit: 5000 * MS,
            auto_disable,
            order,
        }
    }

    fn failed(failure: &Failure, attempts: u32, consecutive: u32) -> FailedAttempt<'_> {
        FailedAttempt {
            failure,
            attempts,
            consecutive_failures: consecutive,
            consecutive_dead_letters: 0,
            failing_for: Duration::ZERO,
            jitter: 1.0,
        }
    }

    fn retry(after: Duration) -> Decision {
        Decision::Retry { after, pause: None }
    }

    #[test]
    fn a_table_of_failures_and_what_follows() {
        let strict = policy(DeliveryOrder::Strict, AutoDisable::default());
        let parallel = policy(DeliveryOrder::Parallel(8), AutoDisable::default());
        let e500 = Failure::status_code(500);
        let gone = Failure::status_code(410);
        let blocked = Failure::Blocked("10.0.0.1".into());
        let retry_after = |secs| Failure::Status {
            status: 503,
            retry_after: Some(Duration::from_secs(secs)),
        };
        let (ra_2s, ra_hour, ra_zero) = (retry_after(2), retry_after(3600), retry_after(0));
        let exhausted = |f: &Failure| Decision::DeadLetter {
            reason: DeadLetterReason::AttemptsExhausted {
                last_failure: f.clone(),
            },
            pause: None,
        };
        let not_retryable = Decision::DeadLetter {
            reason: DeadLetterReason::NotRetryable {
                failure: blocked.clone(),
            },
            pause: None,
        };
        #[rustfmt::skip]
        let cases: Vec<(&str, &RetryPolicy, FailedAttempt<'_>, Decision)> = vec![
            ("first failure", &strict, failed(&e500, 1, 1), retry(100 * MS)),
            ("strict: backoff grows across events", &strict, failed(&e500, 1, 3), retry(400 * MS)),
            ("parallel: backoff per event", &parallel, failed(&e500, 1, 3), retry(100 * MS)),
            ("capped at the limit", &strict, failed(&e500, 2, 30), retry(1000 * MS)),
            ("last attempt", &strict, failed(&e500, 3, 3), exhausted(&e500)),
            ("beyond the last attempt", &strict, failed(&e500, 9, 9), exhausted(&e500)),
            ("410 holds and pauses", &strict, failed(&gone, 3, 3), Decision::HoldAndPause(PauseReason::Gone)),
            ("blocked is not retried", &strict, failed(&blocked, 1, 1), not_retryable),
            ("Retry-After lengthens", &strict, failed(&ra_2s, 1, 1), retry(2000 * MS)),
            ("Retry-After is clamped", &strict, failed(&ra_hour, 1, 1), retry(5000 * MS)),
            ("Retry-After never shortens", &strict, failed(&ra_zero, 1, 2), retry(200 * MS)),
        ];
        for (name, policy, attempt, expected) in cases {
            assert_eq!(policy.decide(attempt), expected, "{name}");
        }
    }

    #[test]
    fn auto_disable_rules() {
        let auto = AutoDisable {
            dead_letters: Some(2),
            failing_for: Some(1000 * MS),
        };
        let policy = policy(DeliveryOrder::Strict, auto);
        let e500 = Failure::status_code(500);
        let mut attempt = failed(&e500, 1, 1);
        attempt.failing_for = 999 * MS;
        assert_eq!(policy.decide(attempt), retry(100 * MS));
        attempt.failing_for = 1000 * MS;
        assert_eq!(
            policy.decide(attempt),
            Decision::Retry {
                after: 100 * MS,
                pause: Some(PauseReason::FailingFor(1000 * MS))
            }
        );
        // The second dead letter in a row pauses, and that reason wins.
        attempt.attempts = 3;
        attempt.consecutive_dead_letters = 1;
        assert!(matches!(
            policy.decide(attempt),
            Decision::DeadLetter {
                pause: Some(PauseReason::ConsecutiveDeadLetters(2)),
                ..
            }
        ));
        attempt.consecutive_dead_letters = 0;
        attempt.failing_for = Duration::ZERO;
        assert!(matches!(
            policy.decide(attempt),
            Decision::DeadLetter { pause: None, .. }
        ));
    }

    #[test]
    fn extreme_settings_do_not_overflow() {
        let extreme = RetryPolicy {
            max_attempts: u32::MAX,
            backoff: Backoff::new(Duration::MAX / 2, Duration::MAX),
            retry_after_limit: Duration::MAX,
            auto_disable: AutoDisable {
                dead_letters: Some(u32::MAX),
                failing_for: Some(Duration::MAX),
            },
            order: DeliveryOrder::Strict,
        };
        let failure = Failure::Status {
            status: 503,
            retry_after: Some(Duration::MAX),
        };
        let mut attempt = failed(&failure, u32::MAX - 1, u32::MAX);
        attempt.consecutive_dead_letters = u32::MAX;
        assert!(matches!(extreme.decide(attempt), Decision::Retry { .. }));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            Just(Duration::ZERO),
            Just(Duration::MAX),
            (0u64..=u64::MAX, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
            (0u64..100_000).prop_map(Duration::from_millis),
        ]
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        /// Any settings, any counts, any `Retry-After`: a decision, never a
        /// panic, and a wait within the backoff limit or the `Retry-After` limit.
        #[test]
        fn any_input_gives_a_bounded_decision(
            max_attempts in 1u32..=u32::MAX,
            start in duration(),
            extra in duration(),
            retry_after_limit in duration(),
            retry_after in proptest::option::of(duration()),
            status in 0u16..1000,
            attempts in 0u32..=u32::MAX,
            consecutive_failures in 0u32..=u32::MAX,
            consecutive_dead_letters in 0u32..=u32::MAX,
            failing_for in duration(),
            jitter in proptest::num::f64::ANY,
            parallel in 0usize..=usize::MAX,
            dead_letters in proptest::option::of(1u32..=u32::MAX),
            failing_limit in proptest::option::of(duration()),
        ) {
            let start = start.max(Duration::from_nanos(1));
            let limit = start.saturating_add(extra);
            let policy = RetryPolicy {
                max_attempts,
                backoff: Backoff::new(start, limit),
                retry_after_limit,
                auto_disable: AutoDisable { dead_letters, failing_for: failing_limit },
                order: DeliveryOrder::from_max_in_flight(parallel),
            };
            let failure = Failure::Status { status, retry_after };
            let decision = policy.decide(FailedAttempt {
                failure: &failure,
                attempts,
                consecutive_failures,
                consecutive_dead_letters,
                failing_for,
                jitter,
            });
            if let Decision::Retry { after, .. } = decision {
                prop_assert!(after <= limit.max(retry_after_limit));
            }
        }
    }
}
