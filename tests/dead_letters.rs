//! Queue bound, dead letters, redelivery: nothing is dropped without a report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{fast_config, finals, next_final, next_report, Receiver};
use webhooks_emitter::{ControlError, DeadLetterReason, Outcome, WebhooksEmitter};

fn n_of(event: &webhooks_emitter::Event) -> i64 {
    event.payload_json::<serde_json::Value>().unwrap()["n"]
        .as_i64()
        .unwrap()
}

#[actix_web::test]
async fn a_full_queue_turns_overflow_into_dead_letters() {
    let mut receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    emitter
        .attach(
            "bounded",
            "ping",
            fast_config(receiver.url("/")).queue_capacity(3),
        )
        .await
        .unwrap();
    emitter.pause("bounded").await.unwrap();
    for n in 1..=5 {
        emitter.emit("ping", &json!({"n": n}), None).unwrap();
    }
    for expected in [4, 5] {
        let report = next_report(&mut reports).await;
        assert_eq!(n_of(&report.event), expected);
        assert_eq!(
            report.outcome,
            Outcome::DeadLettered {
                attempts: 0,
                reason: DeadLetterReason::QueueFull
            }
        );
    }
    let letters = emitter.dead_letters("bounded").await.unwrap();
    assert_eq!(
        letters.iter().map(|l| n_of(&l.event)).collect::<Vec<_>>(),
        [4, 5]
    );
    assert!(letters
        .iter()
        .all(|l| l.reason == DeadLetterReason::QueueFull));

    emitter.restart("bounded").await.unwrap();
    let delivered: Vec<i64> = receiver
        .take(3)
        .await
        .iter()
        .map(|r| r.json()["n"].as_i64().unwrap())
        .collect();
    assert_eq!(delivered, [1, 2, 3]);

    // Redeliver them all: they go to the tail, with fresh attempts.
    assert_eq!(emitter.redeliver_all("bounded").await.unwrap(), 2);
    let redelivered: Vec<i64> = receiver
        .take(2)
        .await
        .iter()
        .map(|r| r.json()["n"].as_i64().unwrap())
        .collect();
    assert_eq!(redelivered, [4, 5]);
    assert!(emitter.dead_letters("bounded").await.unwrap().is_empty());
    let outcomes = finals(&mut reports, 5).await;
    assert!(outcomes
        .iter()
        .all(|r| matches!(r.outcome, Outcome::Delivered { .. })));
}

#[actix_web::test]
async fn one_dead_letter_can_be_redelivered_by_id() {
    let mut receiver = Receiver::start();
    receiver.script_statuses([500, 500]);
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    emitter
        .attach("r", "ping", fast_config(receiver.url("/")).max_retries(2))
        .await
        .unwrap();
    let id = emitter
        .emit("ping", &json!({"n": 1}), Some("order-1".into()))
        .unwrap();
    assert!(matches!(
        next_final(&mut reports).await.outcome,
        Outcome::DeadLettered { attempts: 2, .. }
    ));

    let letters = emitter.dead_letters("r").await.unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.event.request_id(), &id);
    assert!(matches!(
        letter.reason,
        DeadLetterReason::AttemptsExhausted { .. }
    ));

    assert_eq!(
        emitter.redeliver("r", letter.id + 100).await,
        Err(ControlError::UnknownDeadLetter {
            id: "r".into(),
            dead_letter: letter.id + 100
        })
    );
    emitter.redeliver("r", letter.id).await.unwrap();
    let report = next_final(&mut reports).await;
    assert!(
        matches!(report.outcome, Outcome::Delivered { attempts: 1, .. }),
        "{report:?}"
    );
    assert_eq!(report.event.request_id().as_str(), "order-1");
    let requests = receiver.take(3).await;
    assert!(requests
        .iter()
        .all(|r| r.header("x-webhooks-delivery") == Some("order-1")));
    assert!(emitter.dead_letters("r").await.unwrap().is_empty());
    assert_eq!(
        emitter.dead_letters("missing").await.unwrap_err(),
        ControlError::UnknownEmitter {
            id: "missing".into()
        }
    );
}

#[actix_web::test]
async fn redelivery_into_a_full_queue_keeps_the_dead_letter() {
    let receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    emitter
        .attach(
            "f",
            "ping",
            fast_config(receiver.url("/")).queue_capacity(1),
        )
        .await
        .unwrap();
    emitter.pause("f").await.unwrap();
    emitter.emit("ping", &json!({"n": 1}), None).unwrap();
    emitter.emit("ping", &json!({"n": 2}), None).unwrap();
    assert!(matches!(
        next_report(&mut reports).await.outcome,
        Outcome::DeadLettered { .. }
    ));
    let letter = emitter.dead_letters("f").await.unwrap().remove(0);
    assert_eq!(
        emitter.redeliver("f", letter.id).await,
        Err(ControlError::QueueFull { id: "f".into() })
    );
    assert_eq!(
        emitter.redeliver_all("f").await,
        Err(ControlError::QueueFull { id: "f".into() })
    );
    let kept = emitter.dead_letters("f").await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].id, letter.id);
}

#[actix_web::test]
async fn the_dead_letter_store_is_bounded_and_keeps_the_newest() {
    let receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    let config = fast_config(receiver.url("/"))
        .queue_capacity(1)
        .dead_letter_capacity(2);
    emitter.attach("b", "ping", config).await.unwrap();
    emitter.pause("b").await.unwrap();
    for n in 0..=5 {
        emitter.emit("ping", &json!({"n": n}), None).unwrap();
    }
    for _ in 1..=5 {
        assert!(matches!(
            next_report(&mut reports).await.outcome,
            Outcome::DeadLettered { .. }
        ));
    }
    let kept: Vec<i64> = emitter
        .dead_letters("b")
        .await
        .unwrap()
        .iter()
        .map(|l| n_of(&l.event))
        .collect();
    assert_eq!(kept, [4, 5]);
}
