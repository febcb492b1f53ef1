//! Failures, retries, backoff and what happens to the events behind a failing one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::{fast_config, finals, next_final, next_report, refused_addr, Receiver, Reply};
use webhooks_emitter::{Config, DeadLetterReason, Failure, Outcome, WebhooksEmitter};

fn numbers(requests: &[support::Received]) -> Vec<i64> {
    requests
        .iter()
        .map(|r| r.json()["n"].as_i64().unwrap())
        .collect()
}

#[actix_web::test]
async fn three_attempts_by_default_then_the_next_event_proceeds() {
    let mut receiver = Receiver::start();
    receiver.script_statuses([500, 500, 500]);
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    // Default attempts; only the backoff is shortened for the test.
    let config =
        Config::new(receiver.url("/")).backoff(Duration::from_millis(5), Duration::from_millis(20));
    emitter.attach("e", "ping", config).await.unwrap();
    emitter.emit("ping", &json!({"n": 1}), None).unwrap();
    emitter.emit("ping", &json!({"n": 2}), None).unwrap();

    assert_eq!(numbers(&receiver.take(4).await), [1, 1, 1, 2]);
    for attempt in 1..=2 {
        let report = next_report(&mut reports).await;
        match report.outcome {
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
    let dead = next_report(&mut reports).await;
    assert_eq!(
        dead.outcome,
        Outcome::DeadLettered {
            attempts: 3,
            reason: DeadLetterReason::AttemptsExhausted {
                last_failure: Failure::status_code(500)
            }
        }
    );
    let next = next_final(&mut reports).await;
    assert_eq!(
        next.event.payload_json::<serde_json::Value>().unwrap()["n"],
        2
    );
    assert!(matches!(
        next.outcome,
        Outcome::Delivered { attempts: 1, .. }
    ));

    let letters = emitter.dead_letters("e").await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 3);
    assert_eq!(
        letters[0]
            .event
            .payload_json::<serde_json::Value>()
            .unwrap()["n"],
        1
    );
}

#[actix_web::test]
async fn attempts_are_configurable() {
    let mut receiver = Receiver::start();
    receiver.script_statuses([503; 5]);
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    emitter
        .attach("e", "ping", fast_config(receiver.url("/")).max_retries(5))
        .await
        .unwrap();
    emitter.emit("ping", &json!({"n": 1}), None).unwrap();
    emitter.emit("ping", &json!({"n": 2}), None).unwrap();
    assert_eq!(numbers(&receiver.take(6).await), [1, 1, 1, 1, 1, 2]);
    let outcomes = finals(&mut reports, 2).await;
    assert!(matches!(
        outcomes[0].outcome,
        Outcome::DeadLettered { attempts: 5, .. }
    ));
    assert!(matches!(outcomes[1].outcome, Outcome::Delivered { .. }));

    // One attempt only: no retry at all.
    let receiver = Receiver::start();
    receiver.script_statuses([500]);
    emitter
        .attach(
            "once",
            "once",
            fast_config(receiver.url("/")).max_retries(1),
        )
        .await
        .unwrap();
    emitter.emit("once", &json!({"n": 7}), None).unwrap();
    let report = next_report(&mut reports).await;
    assert!(
        matches!(report.outcome, Outcome::DeadLettered { attempts: 1, .. }),
        "{report:?}"
    );
}

#[actix_web::test]
async fn no_interleaving_while_an_event_is_retried() {
    let mut receiver = Receiver::start();
    receiver.script_statuses([500, 500]);
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    emitter
        .attach("e", "ping", fast_config(receiver.url("/")))
        .await
        .unwrap();
    for n in 1..=5 {
        emitter.emit("ping", &json!({"n": n}), None).unwrap();
    }
    assert_eq!(numbers(&receiver.take(7).await), [1, 1, 1, 2, 3, 4, 5]);
    let delivered = finals(&mut reports, 5).await;
    assert!(matches!(
        delivered[0].outcome,
        Outcome::Delivered { attempts: 3, .. }
    ));
    assert!(delivered
        .iter()
        .all(|r| matches!(r.outcome, Outcome::Delivered { .. })));
}

#[actix_web::test]
async fn a_timeout_is_a_failed_attempt() {
    let mut receiver = Receiver::start();
    receiver.script([Reply::Delay(Duration::from_secs(3))]);
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    let config = fast_config(receiver.url("/")).request_timeout(Duration::from_millis(300));
    emitter.attach("slow", "ping", config).await.unwrap();
    emitter.emit("ping", &json!({"n": 1}), None).unwrap();
    let first = next_report(&mut reports).await;
    assert!(
        matches!(first.outcome, Outcome::AttemptFailed { attempt: 1, failure: Failure::Timeout(t), .. } if t == Duration::from_millis(300)),
        "{first:?}"
    );
    let second = next_report(&mut reports).await;
    assert!(
        matches!(second.outcome, Outcome::Delivered { attempts: 2, .. }),
        "{second:?}"
    );
    assert_eq!(receiver.take(2).await.len(), 2);
}

#[actix_web::test]
async fn redirects_are_not_followed_and_fail() {
    let mut receiver = Receiver::start();
    receiver.script([Reply::Redirect, Reply::Redirect]);
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    emitter
        .attach("r", "ping", fast_config(receiver.url("/")).max_retries(2))
        .await
        .unwrap();
    emitter.emit("ping", &json!({"n": 1}), None).unwrap();
    let first = next_report(&mut reports).await;
    assert!(
        matches!(
            first.outcome,
            Outcome::AttemptFailed {
                failure: Failure::Status { status: 302, .. },
                ..
            }
        ),
        "{first:?}"
    );
    let second = next_report(&mut reports).await;
    assert!(
        matches!(second.outcome, Outcome::DeadLettered { attempts: 2, .. }),
        "{second:?}"
    );
    // Both attempts went to the receiver itself, never to the Location.
    assert_eq!(
        receiver
            .take(2)
            .await
            .iter()
            .filter(|r| r.path == "/")
            .count(),
        2
    );
}

#[actix_web::test]
async fn connection_refused_fails_each_attempt_then_dead_letters() {
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    let url = format!("http://{}/", refused_addr());
    emitter
        .attach("down", "ping", fast_config(url).max_retries(2))
        .await
        .unwrap();
    emitter.emit("ping", &json!({"n": 1}), None).unwrap();
    let first = next_report(&mut reports).await;
    assert!(
        matches!(
            first.outcome,
            Outcome::AttemptFailed {
                failure: Failure::Connect(_),
                ..
            }
        ),
        "{first:?}"
    );
    let last = next_report(&mut reports).await;
    assert!(
        matches!(
            &last.outcome,
            Outcome::DeadLettered {
                attempts: 2,
                reason: DeadLetterReason::AttemptsExhausted {
                    last_failure: Failure::Connect(_)
                }
            }
        ),
        "{last:?}"
    );
}

#[actix_web::test]
async fn a_receiver_that_goes_away_and_comes_back_gets_the_event() {
    // Without keep-alive, no pooled connection outlives the receiver.
    let mut receiver = Receiver::start_without_keep_alive();
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    emitter
        .attach(
            "flaky",
            "ping",
            fast_config(receiver.url("/")).max_retries(10_000),
        )
        .await
        .unwrap();
    emitter.emit("ping", &json!({"n": 1}), None).unwrap();
    assert_eq!(numbers(&[receiver.next().await]), [1]);
    assert!(matches!(
        next_final(&mut reports).await.outcome,
        Outcome::Delivered { .. }
    ));

    let addr = receiver.stop().await;
    emitter.emit("ping", &json!({"n": 2}), None).unwrap();
    let failed = next_report(&mut reports).await;
    assert!(
        matches!(failed.outcome, Outcome::AttemptFailed { .. }),
        "{failed:?}"
    );

    let mut receiver = Receiver::start_on(addr);
    let delivered = next_final(&mut reports).await;
    assert!(
        matches!(delivered.outcome, Outcome::Delivered { attempts, .. } if attempts >= 2),
        "{delivered:?}"
    );
    assert_eq!(numbers(&[receiver.next().await]), [2]);
}
