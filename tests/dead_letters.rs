//! Queue bound, dead letters, redelivery: nothing is dropped without a report.
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{all_delivered, n_of, Harness};
use webhooks_emitter::{ControlError, DeadLetterReason, Outcome};

#[actix_web::test]
async fn a_full_queue_turns_overflow_into_dead_letters() {
    let mut h = Harness::start();
    h.attach("bounded", "ping", h.config().queue_capacity(3))
        .await;
    h.emitter.pause("bounded").await.unwrap();
    h.emit_numbers("ping", 1..=5);
    for expected in [4, 5] {
        let report = h.next_report().await;
        assert_eq!(n_of(&report.event), expected);
        assert_eq!(
            report.outcome,
            Outcome::DeadLettered {
                attempts: 0,
                reason: DeadLetterReason::QueueFull
            }
        );
    }
    let letters = h.emitter.dead_letters("bounded").await.unwrap();
    assert_eq!(
        letters.iter().map(|l| n_of(&l.event)).collect::<Vec<_>>(),
        [4, 5]
    );
    assert!(letters
        .iter()
        .all(|l| l.reason == DeadLetterReason::QueueFull));

    h.emitter.restart("bounded").await.unwrap();
    assert_eq!(h.receiver.numbers(3).await, [1, 2, 3]);

    // Redeliver them all: they go to the tail, with fresh attempts.
    assert_eq!(h.emitter.redeliver_all("bounded").await.unwrap(), 2);
    assert_eq!(h.receiver.numbers(2).await, [4, 5]);
    assert!(h.emitter.dead_letters("bounded").await.unwrap().is_empty());
    assert!(all_delivered(&h.finals(5).await));
}

#[actix_web::test]
async fn one_dead_letter_can_be_redelivered_by_id() {
    let mut h = Harness::start();
    h.receiver.script_statuses([500, 500]);
    h.attach("r", "ping", h.config().max_retries(2)).await;
    let id = h
        .emitter
        .emit("ping", &serde_json::json!({"n": 1}), Some("order-1".into()))
        .unwrap();
    assert!(matches!(
        h.next_final().await.outcome,
        Outcome::DeadLettered { attempts: 2, .. }
    ));

    let letters = h.emitter.dead_letters("r").await.unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.event.request_id(), &id);
    assert!(matches!(
        letter.reason,
        DeadLetterReason::AttemptsExhausted { .. }
    ));

    assert_eq!(
        h.emitter.redeliver("r", letter.id + 100).await,
        Err(ControlError::UnknownDeadLetter {
            id: "r".into(),
            dead_letter: letter.id + 100
        })
    );
    h.emitter.redeliver("r", letter.id).await.unwrap();
    let report = h.next_final().await;
    assert!(
        matches!(report.outcome, Outcome::Delivered { attempts: 1, .. }),
        "{report:?}"
    );
    assert_eq!(report.event.request_id().as_str(), "order-1");
    let requests = h.receiver.take(3).await;
    assert!(requests
        .iter()
        .all(|r| r.header("x-webhooks-delivery") == Some("order-1")));
    assert!(h.emitter.dead_letters("r").await.unwrap().is_empty());
    assert_eq!(
        h.emitter.dead_letters("missing").await.unwrap_err(),
        ControlError::UnknownEmitter {
            id: "missing".into()
        }
    );
}

#[actix_web::test]
async fn redelivery_into_a_full_queue_keeps_the_dead_letter() {
    let mut h = Harness::start();
    h.attach("f", "ping", h.config().queue_capacity(1)).await;
    h.emitter.pause("f").await.unwrap();
    h.emit_numbers("ping", [1, 2]);
    assert!(matches!(
        h.next_outcome().await,
        Outcome::DeadLettered { .. }
    ));
    let letter = h.emitter.dead_letters("f").await.unwrap().remove(0);
    let full = Err(ControlError::QueueFull { id: "f".into() });
    assert_eq!(h.emitter.redeliver("f", letter.id).await, full);
    assert_eq!(h.emitter.redeliver_all("f").await, full.map(|()| 0));
    let kept = h.emitter.dead_letters("f").await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].id, letter.id);
}

#[actix_web::test]
async fn the_dead_letter_store_is_bounded_and_keeps_the_newest() {
    let mut h = Harness::start();
    let config = h.config().queue_capacity(1).dead_letter_capacity(2);
    h.attach("b", "ping", config).await;
    h.emitter.pause("b").await.unwrap();
    h.emit_numbers("ping", 0..=5);
    for _ in 1..=5 {
        assert!(matches!(
            h.next_outcome().await,
            Outcome::DeadLettered { .. }
        ));
    }
    let kept: Vec<i64> = h
        .emitter
        .dead_letters("b")
        .await
        .unwrap()
        .iter()
        .map(|l| n_of(&l.event))
        .collect();
    assert_eq!(kept, [4, 5]);
}
