//! attach, attach_many, detach, pause, restart, list, shutdown, invalid input.
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use support::{fast_config, n_of, Harness, Receiver, Reply};
use webhooks_emitter::{
    AttachError, Config, ConfigError, ControlError, DropReason, EmitError, Outcome, WebhooksEmitter,
};

#[actix_web::test]
async fn many_emitters_on_one_event_each_get_it() {
    let mut receivers: Vec<Receiver> = (0..4).map(|_| Receiver::start()).collect();
    let emitter = WebhooksEmitter::start();
    for (i, r) in receivers.iter().enumerate() {
        emitter
            .attach(format!("e{i}"), "order.created", fast_config(r.url("/")))
            .await
            .unwrap();
    }
    let id = emitter
        .emit("order.created", &json!({"n": 1}), None)
        .unwrap();
    for r in &mut receivers {
        let request = r.next().await;
        assert_eq!(request.header("x-webhooks-delivery"), Some(id.as_str()));
    }
    assert_eq!(emitter.list_emitters().await, ["e0", "e1", "e2", "e3"]);
}

#[actix_web::test]
async fn attach_many_routes_each_event_once() {
    let mut h = Harness::start();
    let events = ["invoice.paid", "invoice.failed", "invoice.paid"];
    h.emitter
        .attach_many("billing", events, h.config())
        .await
        .unwrap();
    h.emit_numbers("invoice.paid", [1]);
    h.emit_numbers("order.created", [2]); // not attached: goes nowhere
    h.emit_numbers("invoice.failed", [3]);
    let got = h.receiver.take(2).await;
    let names: Vec<_> = got
        .iter()
        .map(|r| r.header("x-webhooks-event").unwrap().to_owned())
        .collect();
    assert_eq!(names, ["invoice.paid", "invoice.failed"]);
    // The duplicate name in the list did not make a second delivery.
    // Deliveries are ordered, so a second copy of 4 would arrive before 5.
    h.emit_numbers("invoice.paid", [4]);
    h.emit_numbers("invoice.failed", [5]);
    assert_eq!(h.receiver.numbers(2).await, [4, 5]);
}

#[actix_web::test]
async fn emitting_with_no_emitter_attached_is_fine() {
    let emitter = WebhooksEmitter::start();
    assert!(emitter.emit("nobody.listens", &json!({}), None).is_ok());
}

#[actix_web::test]
async fn duplicate_ids_are_refused_until_detached() {
    let h = Harness::start();
    h.attach("dup", "a", h.config()).await;
    let err = h.emitter.attach("dup", "b", h.config()).await.unwrap_err();
    assert_eq!(err, AttachError::AlreadyExists { id: "dup".into() });
    assert!(err.to_string().contains("dup"));
    h.emitter.detach("dup").await.unwrap();
    h.attach("dup", "b", h.config()).await;
    assert!(h.emitter.is_started("dup").await);
}

#[actix_web::test]
async fn refused_attachments_name_the_emitter_and_register_nothing() {
    // Each rule of config validation is unit-tested in `src/emitter/config`;
    // here: how `attach` reports a refusal.
    let emitter = WebhooksEmitter::start();
    let ok = || Config::new("http://127.0.0.1:1/");
    match emitter.attach("bad", "ping", ok().max_retries(0)).await {
        Err(AttachError::InvalidConfig { id, source }) => {
            assert_eq!(id, "bad");
            assert_eq!(
                source,
                ConfigError::Zero {
                    setting: "max_retries"
                }
            );
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    assert!(matches!(
        emitter.attach("", "ping", ok()).await,
        Err(AttachError::EmptyId)
    ));
    assert!(matches!(
        emitter
            .attach_many("none", Vec::<String>::new(), ok())
            .await,
        Err(AttachError::NoEvents { .. })
    ));
    assert!(matches!(
        emitter.attach("x", "bad\nname", ok()).await,
        Err(AttachError::InvalidEventName(_))
    ));
    assert!(emitter.list_emitters().await.is_empty());
}

#[actix_web::test]
async fn invalid_emits_are_refused_and_nothing_is_sent() {
    let mut h = Harness::with(WebhooksEmitter::builder().max_payload_bytes(64));
    h.attach("e", "ping", h.config()).await;
    let emitter = &h.emitter;
    assert!(matches!(
        emitter.emit("", &1, None),
        Err(EmitError::InvalidEventName(_))
    ));
    for bad_id in ["a\r\nb", ""] {
        assert!(matches!(
            emitter.emit("ping", &1, Some(bad_id.into())),
            Err(EmitError::InvalidRequestId { .. })
        ));
    }
    let big = "x".repeat(100);
    assert_eq!(
        emitter.emit("ping", &big, None),
        Err(EmitError::PayloadTooLarge {
            size: 102,
            limit: 64
        })
    );
    let mut unserializable = std::collections::HashMap::new();
    unserializable.insert((1, 2), "tuple keys are not JSON");
    assert!(matches!(
        emitter.emit("ping", &unserializable, None),
        Err(EmitError::Serialize(_))
    ));

    emitter.emit("ping", &json!({"n": "valid"}), None).unwrap();
    assert_eq!(h.receiver.next().await.json()["n"], "valid");
    assert!(h.receiver.try_next().is_none());
}

#[actix_web::test]
async fn pause_keeps_queueing_and_restart_resumes_in_order() {
    let mut h = Harness::start();
    h.attach("p", "ping", h.config()).await;
    h.emitter.pause("p").await.unwrap();
    assert!(!h.emitter.is_started("p").await);
    assert!(h.emitter.list_emitters().await.is_empty());
    h.emit_numbers("ping", 1..=3);
    // Round-trip through the registry and the worker: the emits above were handled.
    assert!(h.emitter.dead_letters("p").await.unwrap().is_empty());
    assert!(
        h.receiver.try_next().is_none(),
        "a paused emitter delivered"
    );
    assert!(h.reports.try_recv().is_err(), "a paused emitter reported");

    h.emitter.restart("p").await.unwrap();
    assert!(h.emitter.is_started("p").await);
    assert_eq!(h.receiver.numbers(3).await, [1, 2, 3]);
    assert_eq!(h.finals(3).await.len(), 3);

    let unknown = Err(ControlError::UnknownEmitter { id: "nope".into() });
    assert_eq!(h.emitter.pause("nope").await, unknown);
    assert_eq!(h.emitter.restart("nope").await, unknown);
}

#[actix_web::test]
async fn detach_stops_deliveries_and_reports_what_was_queued() {
    let mut h = Harness::start();
    h.attach("d", "ping", h.config()).await;
    h.emit_numbers("ping", [1]);
    assert!(matches!(
        h.next_final().await.outcome,
        Outcome::Delivered { .. }
    ));
    assert_eq!(h.receiver.next().await.n(), 1);

    h.emitter.pause("d").await.unwrap();
    h.emit_numbers("ping", [2, 3]);
    let dropped = h.emitter.detach("d").await.unwrap();
    let numbers: Vec<i64> = dropped.iter().map(|e| n_of(e)).collect();
    assert_eq!(numbers, [2, 3]);
    for _ in 0..2 {
        assert_eq!(
            h.next_outcome().await,
            Outcome::Dropped {
                reason: DropReason::Detached
            }
        );
    }
    assert!(!h.emitter.is_started("d").await);
    assert_eq!(
        h.emitter.detach("d").await.unwrap_err(),
        ControlError::UnknownEmitter { id: "d".into() }
    );

    // After detach, the event goes nowhere.
    h.emit_numbers("ping", [4]);
    assert!(h.emitter.list_emitters().await.is_empty());
    assert!(h.receiver.try_next().is_none());
}

#[actix_web::test]
async fn shutdown_drains_queues_then_refuses_events() {
    let mut h = Harness::start();
    h.receiver.script_statuses([500]);
    h.attach("s", "ping", h.config()).await;
    h.emit_numbers("ping", 1..=20);
    let report = h.emitter.shutdown(Duration::from_secs(30)).await;
    assert!(report.drained);
    assert!(report.undelivered.is_empty());
    let got: BTreeSet<i64> = h.receiver.numbers(21).await.into_iter().collect();
    assert_eq!(got, (1..=20).collect());
    assert_eq!(
        h.emitter.emit("ping", &1, None),
        Err(EmitError::ShuttingDown)
    );
    assert_eq!(
        h.emitter.attach("late", "ping", h.config()).await,
        Err(AttachError::ShutDown)
    );
}

#[actix_web::test]
async fn shutdown_reports_what_it_could_not_deliver() {
    let mut h = Harness::start();
    h.attach("held", "ping", h.config()).await;
    h.emitter.pause("held").await.unwrap();
    let ids: Vec<String> = h
        .emit_numbers("ping", 0..3)
        .iter()
        .map(|id| id.to_string())
        .collect();
    let report = h.emitter.shutdown(Duration::from_millis(100)).await;
    assert!(!report.drained);
    let left: Vec<String> = report
        .undelivered
        .iter()
        .map(|u| u.event.request_id().to_string())
        .collect();
    assert_eq!(left, ids);
    assert!(report.undelivered.iter().all(|u| &*u.emitter_id == "held"));
    for _ in 0..3 {
        assert_eq!(
            h.next_outcome().await,
            Outcome::Dropped {
                reason: DropReason::Shutdown
            }
        );
    }
}

#[actix_web::test]
async fn flush_waits_for_every_queue_without_stopping() {
    let mut h = Harness::start();
    h.receiver.script_statuses([500]);
    h.attach("f1", "ping", h.config()).await;
    h.attach("f2", "ping", h.config()).await;
    h.emit_numbers("ping", 0..10);
    assert!(h.emitter.flush(Duration::from_secs(30)).await);
    let stats = h.emitter.stats_all().await;
    let delivered: u64 = stats.iter().map(|s| s.delivered).sum();
    assert_eq!(
        delivered, 20,
        "flush returned only once every event was delivered"
    );
    assert_eq!(h.receiver.take(21).await.len(), 21);
    // Nothing was stopped.
    h.emit_numbers("ping", [10]);
    assert!(h.emitter.flush(Duration::from_secs(30)).await);

    h.emitter.pause("f1").await.unwrap();
    h.emit_numbers("ping", [11]);
    assert!(
        !h.emitter.flush(Duration::from_millis(50)).await,
        "a paused emitter holds its event"
    );
}

#[actix_web::test]
async fn detach_with_a_request_in_flight_reports_it_dropped() {
    let mut h = Harness::start();
    h.receiver.script([Reply::Delay(Duration::from_secs(2))]);
    h.attach("slow", "ping", h.config()).await;
    let ids = h.emit_numbers("ping", [1]);
    h.receiver.next().await; // the request is on the wire
    let dropped = h.emitter.detach("slow").await.unwrap();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].request_id(), &ids[0]);
}
