//! Failures, retries, backoff and what happens to the events behind a failing one.
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{all_delivered, fast_config, refused_addr, Harness, Receiver, Reply};
use webhooks_emitter::{Config, DeadLetterReason, Failure, Outcome, WebhooksEmitter};

#[actix_web::test]
async fn three_attempts_by_default_then_the_next_event_proceeds() {
    let mut h = Harness::start();
    h.receiver.script_statuses([500, 500, 500]);
    // Default attempts; only the backoff is shortened for the test.
    let config = Config::new(h.receiver.url("/"))
        .backoff(Duration::from_millis(5), Duration::from_millis(20));
    h.attach("e", "ping", config).await;
    h.emit_numbers("ping", [1, 2]);

    assert_eq!(h.receiver.numbers(4).await, [1, 1, 1, 2]);
    for attempt in 1..=2 {
        match h.next_outcome().await {
            Outcome::AttemptFailed {
                attempt: a,
                failure,
                retry_in,
            } => {
                assert_eq!((a, failure), (attempt, Failure::status_code(500)));
                assert!(retry_in <= Duration::from_millis(20));
            }
            other => panic!("expected a failed attempt, got {other:?}"),
        }
    }
    assert_eq!(
        h.next_outcome().await,
        Outcome::DeadLettered {
            attempts: 3,
            reason: DeadLetterReason::AttemptsExhausted {
                last_failure: Failure::status_code(500)
            }
        }
    );
    let next = h.next_final().await;
    assert_eq!(support::n_of(&next.event), 2);
    assert!(matches!(
        next.outcome,
        Outcome::Delivered { attempts: 1, .. }
    ));

    let letters = h.emitter.dead_letters("e").await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 3);
    assert_eq!(support::n_of(&letters[0].event), 1);
}

#[actix_web::test]
async fn attempts_are_configurable() {
    let mut h = Harness::start();
    h.receiver.script_statuses([503; 5]);
    h.attach("e", "ping", h.config().max_retries(5)).await;
    h.emit_numbers("ping", [1, 2]);
    assert_eq!(h.receiver.numbers(6).await, [1, 1, 1, 1, 1, 2]);
    let outcomes = h.finals(2).await;
    assert!(matches!(
        outcomes[0].outcome,
        Outcome::DeadLettered { attempts: 5, .. }
    ));
    assert!(matches!(outcomes[1].outcome, Outcome::Delivered { .. }));

    // One attempt only: no retry at all.
    let receiver = Receiver::start();
    receiver.script_statuses([500]);
    let once = fast_config(receiver.url("/")).max_retries(1);
    h.attach("once", "once", once).await;
    h.emit_numbers("once", [7]);
    let outcome = h.next_outcome().await;
    assert!(
        matches!(outcome, Outcome::DeadLettered { attempts: 1, .. }),
        "{outcome:?}"
    );
}

#[actix_web::test]
async fn no_interleaving_while_an_event_is_retried() {
    let mut h = Harness::start();
    h.receiver.script_statuses([500, 500]);
    h.attach("e", "ping", h.config()).await;
    h.emit_numbers("ping", 1..=5);
    assert_eq!(h.receiver.numbers(7).await, [1, 1, 1, 2, 3, 4, 5]);
    let delivered = h.finals(5).await;
    assert!(matches!(
        delivered[0].outcome,
        Outcome::Delivered { attempts: 3, .. }
    ));
    assert!(all_delivered(&delivered));
}

#[actix_web::test]
async fn a_timeout_is_a_failed_attempt() {
    let mut h = Harness::start();
    h.receiver.script([Reply::Delay(Duration::from_secs(3))]);
    let config = h.config().request_timeout(Duration::from_millis(300));
    h.attach("slow", "ping", config).await;
    h.emit_numbers("ping", [1]);
    let first = h.next_outcome().await;
    assert!(
        matches!(first, Outcome::AttemptFailed { attempt: 1, failure: Failure::Timeout(t), .. } if t == Duration::from_millis(300)),
        "{first:?}"
    );
    let second = h.next_outcome().await;
    assert!(
        matches!(second, Outcome::Delivered { attempts: 2, .. }),
        "{second:?}"
    );
    assert_eq!(h.receiver.take(2).await.len(), 2);
}

#[actix_web::test]
async fn redirects_are_not_followed_and_fail() {
    let mut h = Harness::start();
    h.receiver.script([Reply::Redirect, Reply::Redirect]);
    h.attach("r", "ping", h.config().max_retries(2)).await;
    h.emit_numbers("ping", [1]);
    assert_eq!(h.next_failure().await.status(), Some(302));
    assert_eq!(h.next_dead_letter().await.0, 2);
    // Both attempts went to the receiver itself, never to the Location.
    let requests = h.receiver.take(2).await;
    assert_eq!(requests.iter().filter(|r| r.path == "/").count(), 2);
}

#[actix_web::test]
async fn connection_refused_fails_each_attempt_then_dead_letters() {
    let mut h = Harness::start();
    let url = format!("http://{}/", refused_addr());
    h.attach("down", "ping", fast_config(url).max_retries(2))
        .await;
    h.emit_numbers("ping", [1]);
    let first = h.next_failure().await;
    assert!(matches!(first, Failure::Connect(_)), "{first:?}");
    let (attempts, reason) = h.next_dead_letter().await;
    assert!(
        attempts == 2
            && matches!(
                &reason,
                DeadLetterReason::AttemptsExhausted {
                    last_failure: Failure::Connect(_)
                }
            ),
        "{reason:?}"
    );
}

#[actix_web::test]
async fn a_receiver_that_goes_away_and_comes_back_gets_the_event() {
    // Without keep-alive, no pooled connection outlives the receiver.
    let mut receiver = Receiver::start_without_keep_alive();
    let mut h = Harness::around(WebhooksEmitter::start());
    let config = fast_config(receiver.url("/")).max_retries(10_000);
    h.attach("flaky", "ping", config).await;
    h.emit_numbers("ping", [1]);
    assert_eq!(receiver.next().await.n(), 1);
    assert!(matches!(
        h.next_final().await.outcome,
        Outcome::Delivered { .. }
    ));

    let addr = receiver.stop().await;
    h.emit_numbers("ping", [2]);
    let failed = h.next_outcome().await;
    assert!(
        matches!(failed, Outcome::AttemptFailed { .. }),
        "{failed:?}"
    );

    let mut receiver = Receiver::start_on(addr);
    let delivered = h.next_final().await;
    assert!(
        matches!(delivered.outcome, Outcome::Delivered { attempts, .. } if attempts >= 2),
        "{delivered:?}"
    );
    assert_eq!(receiver.next().await.n(), 2);
}
