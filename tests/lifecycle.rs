//! attach, attach_many, detach, pause, restart, list, shutdown, invalid input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use support::{fast_config, finals, next_final, next_report, Receiver};
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
    let mut receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    emitter
        .attach_many(
            "billing",
            ["invoice.paid", "invoice.failed", "invoice.paid"],
            fast_config(receiver.url("/")),
        )
        .await
        .unwrap();
    emitter
        .emit("invoice.paid", &json!({"n": 1}), None)
        .unwrap();
    emitter
        .emit("order.created", &json!({"n": 2}), None)
        .unwrap(); // not attached: goes nowhere
    emitter
        .emit("invoice.failed", &json!({"n": 3}), None)
        .unwrap();
    let got = receiver.take(2).await;
    let names: Vec<_> = got
        .iter()
        .map(|r| r.header("x-webhooks-event").unwrap().to_owned())
        .collect();
    assert_eq!(names, ["invoice.paid", "invoice.failed"]);
    // The duplicate name in the list did not make a second delivery.
    // Deliveries are ordered, so a second copy of 4 would arrive before 5.
    emitter
        .emit("invoice.paid", &json!({"n": 4}), None)
        .unwrap();
    emitter
        .emit("invoice.failed", &json!({"n": 5}), None)
        .unwrap();
    let got: Vec<_> = receiver
        .take(2)
        .await
        .iter()
        .map(|r| r.json()["n"].clone())
        .collect();
    assert_eq!(got, [4, 5]);
}

#[actix_web::test]
async fn emitting_with_no_emitter_attached_is_fine() {
    let emitter = WebhooksEmitter::start();
    assert!(emitter.emit("nobody.listens", &json!({}), None).is_ok());
}

#[actix_web::test]
async fn duplicate_ids_are_refused_until_detached() {
    let receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    emitter
        .attach("dup", "a", fast_config(receiver.url("/")))
        .await
        .unwrap();
    let err = emitter
        .attach("dup", "b", fast_config(receiver.url("/")))
        .await
        .unwrap_err();
    assert_eq!(err, AttachError::AlreadyExists { id: "dup".into() });
    assert!(err.to_string().contains("dup"));
    emitter.detach("dup").await.unwrap();
    emitter
        .attach("dup", "b", fast_config(receiver.url("/")))
        .await
        .unwrap();
    assert!(emitter.is_started("dup").await);
}

#[actix_web::test]
async fn invalid_configs_are_refused_with_a_reason() {
    let emitter = WebhooksEmitter::start();
    let ok = || Config::new("http://127.0.0.1:1/");
    type Expect = fn(&ConfigError) -> bool;
    let cases: Vec<(Config, Expect)> = vec![
        (
            Config::new("ftp://127.0.0.1/"),
            |e| matches!(e, ConfigError::InvalidUrl { reason, .. } if reason.contains("ftp")),
        ),
        (Config::new("not a url"), |e| {
            matches!(e, ConfigError::InvalidUrl { .. })
        }),
        (Config::new("/relative/path"), |e| {
            matches!(e, ConfigError::InvalidUrl { .. })
        }),
        (Config::new("http:///nohost"), |e| {
            matches!(e, ConfigError::InvalidUrl { .. })
        }),
        (ok().additional_header("x-bad\r\nname", "v"), |e| {
            matches!(e, ConfigError::InvalidHeaderName { .. })
        }),
        (
            ok().additional_header("x-evil", "v\r\nx-injected: 1"),
            |e| matches!(e, ConfigError::InvalidHeaderValue { name } if name == "x-evil"),
        ),
        (
            ok().additional_header("x-webhooks-signature", "forged"),
            |e| matches!(e, ConfigError::ReservedHeader { .. }),
        ),
        (ok().additional_header("Host", "elsewhere"), |e| {
            matches!(e, ConfigError::ReservedHeader { .. })
        }),
        (ok().header_identifier("bad id"), |e| {
            matches!(e, ConfigError::InvalidHeaderIdentifier { .. })
        }),
        (ok().header_identifier(""), |e| {
            matches!(e, ConfigError::InvalidHeaderIdentifier { .. })
        }),
        (ok().request_timeout(Duration::ZERO), |e| {
            *e == ConfigError::Zero {
                setting: "request_timeout",
            }
        }),
        (ok().max_retries(0), |e| {
            *e == ConfigError::Zero {
                setting: "max_retries",
            }
        }),
        (ok().queue_capacity(0), |e| {
            *e == ConfigError::Zero {
                setting: "queue_capacity",
            }
        }),
        (ok().backoff(Duration::ZERO, Duration::from_secs(1)), |e| {
            matches!(e, ConfigError::Zero { .. })
        }),
        (
            ok().backoff(Duration::from_secs(2), Duration::from_secs(1)),
            |e| matches!(e, ConfigError::BackoffLimitBelowStart { .. }),
        ),
        (ok().secret(""), |e| *e == ConfigError::EmptySecret),
    ];
    for (i, (config, expected)) in cases.into_iter().enumerate() {
        match emitter.attach(format!("bad{i}"), "ping", config).await {
            Err(AttachError::InvalidConfig { id, source }) => {
                assert_eq!(id, format!("bad{i}"));
                assert!(expected(&source), "case {i}: unexpected error {source:?}");
                assert!(!source.to_string().is_empty());
            }
            other => panic!("case {i}: expected InvalidConfig, got {other:?}"),
        }
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
    // Nothing invalid was registered.
    assert!(emitter.list_emitters().await.is_empty());
}

#[actix_web::test]
async fn invalid_emits_are_refused_and_nothing_is_sent() {
    let mut receiver = Receiver::start();
    let emitter = WebhooksEmitter::builder().max_payload_bytes(64).start();
    emitter
        .attach("e", "ping", fast_config(receiver.url("/")))
        .await
        .unwrap();

    assert!(matches!(
        emitter.emit("", &1, None),
        Err(EmitError::InvalidEventName(_))
    ));
    assert!(matches!(
        emitter.emit("ping", &1, Some("a\r\nb".into())),
        Err(EmitError::InvalidRequestId { .. })
    ));
    assert!(matches!(
        emitter.emit("ping", &1, Some(String::new())),
        Err(EmitError::InvalidRequestId { .. })
    ));
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
    assert_eq!(receiver.next().await.json()["n"], "valid");
    assert!(receiver.try_next().is_none());
}

#[actix_web::test]
async fn pause_keeps_queueing_and_restart_resumes_in_order() {
    let mut receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    emitter
        .attach("p", "ping", fast_config(receiver.url("/")))
        .await
        .unwrap();
    emitter.pause("p").await.unwrap();
    assert!(!emitter.is_started("p").await);
    assert!(emitter.list_emitters().await.is_empty());
    for n in 1..=3 {
        emitter.emit("ping", &json!({"n": n}), None).unwrap();
    }
    // Round-trip through the registry and the worker: the emits above were handled.
    assert!(emitter.dead_letters("p").await.unwrap().is_empty());
    assert!(receiver.try_next().is_none(), "a paused emitter delivered");
    assert!(reports.try_recv().is_err(), "a paused emitter reported");

    emitter.restart("p").await.unwrap();
    assert!(emitter.is_started("p").await);
    let got: Vec<i64> = receiver
        .take(3)
        .await
        .iter()
        .map(|r| r.json()["n"].as_i64().unwrap())
        .collect();
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(finals(&mut reports, 3).await.len(), 3);

    assert_eq!(
        emitter.pause("nope").await,
        Err(ControlError::UnknownEmitter { id: "nope".into() })
    );
    assert_eq!(
        emitter.restart("nope").await,
        Err(ControlError::UnknownEmitter { id: "nope".into() })
    );
}

#[actix_web::test]
async fn detach_stops_deliveries_and_reports_what_was_queued() {
    let mut receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    emitter
        .attach("d", "ping", fast_config(receiver.url("/")))
        .await
        .unwrap();
    emitter.emit("ping", &json!({"n": 1}), None).unwrap();
    assert!(matches!(
        next_final(&mut reports).await.outcome,
        Outcome::Delivered { .. }
    ));
    assert_eq!(receiver.next().await.json()["n"], 1);

    emitter.pause("d").await.unwrap();
    emitter.emit("ping", &json!({"n": 2}), None).unwrap();
    emitter.emit("ping", &json!({"n": 3}), None).unwrap();
    let dropped = emitter.detach("d").await.unwrap();
    let numbers: Vec<i64> = dropped
        .iter()
        .map(|e| {
            e.payload_json::<serde_json::Value>().unwrap()["n"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(numbers, [2, 3]);
    for _ in 0..2 {
        let report = next_report(&mut reports).await;
        assert_eq!(
            report.outcome,
            Outcome::Dropped {
                reason: DropReason::Detached
            }
        );
    }
    assert!(!emitter.is_started("d").await);
    assert_eq!(
        emitter.detach("d").await.unwrap_err(),
        ControlError::UnknownEmitter { id: "d".into() }
    );

    // After detach, the event goes nowhere.
    emitter.emit("ping", &json!({"n": 4}), None).unwrap();
    assert!(emitter.list_emitters().await.is_empty());
    assert!(receiver.try_next().is_none());
}

#[actix_web::test]
async fn shutdown_drains_queues_then_refuses_events() {
    let mut receiver = Receiver::start();
    receiver.script_statuses([500]);
    let emitter = WebhooksEmitter::start();
    emitter
        .attach("s", "ping", fast_config(receiver.url("/")))
        .await
        .unwrap();
    for n in 1..=20 {
        emitter.emit("ping", &json!({"n": n}), None).unwrap();
    }
    let report = emitter.shutdown(Duration::from_secs(30)).await;
    assert!(report.drained);
    assert!(report.undelivered.is_empty());
    let got: BTreeSet<i64> = receiver
        .take(21)
        .await
        .iter()
        .map(|r| r.json()["n"].as_i64().unwrap())
        .collect();
    assert_eq!(got, (1..=20).collect());
    assert_eq!(emitter.emit("ping", &1, None), Err(EmitError::ShuttingDown));
    assert_eq!(
        emitter
            .attach("late", "ping", fast_config(receiver.url("/")))
            .await,
        Err(AttachError::ShutDown)
    );
}

#[actix_web::test]
async fn shutdown_reports_what_it_could_not_deliver() {
    let receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    emitter
        .attach("held", "ping", fast_config(receiver.url("/")))
        .await
        .unwrap();
    emitter.pause("held").await.unwrap();
    let ids: Vec<String> = (0..3)
        .map(|n| emitter.emit("ping", &n, None).unwrap().to_string())
        .collect();
    let report = emitter.shutdown(Duration::from_millis(100)).await;
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
            next_report(&mut reports).await.outcome,
            Outcome::Dropped {
                reason: DropReason::Shutdown
            }
        );
    }
}

#[actix_web::test]
async fn flush_waits_for_every_queue_without_stopping() {
    let mut receiver = Receiver::start();
    receiver.script_statuses([500]);
    let emitter = WebhooksEmitter::start();
    emitter
        .attach("f1", "ping", fast_config(receiver.url("/")))
        .await
        .unwrap();
    emitter
        .attach("f2", "ping", fast_config(receiver.url("/")))
        .await
        .unwrap();
    for n in 0..10 {
        emitter.emit("ping", &json!({"n": n}), None).unwrap();
    }
    assert!(emitter.flush(Duration::from_secs(30)).await);
    let delivered: u64 = emitter.stats_all().await.iter().map(|s| s.delivered).sum();
    assert_eq!(
        delivered, 20,
        "flush returned only once every event was delivered"
    );
    assert_eq!(receiver.take(21).await.len(), 21);
    // Nothing was stopped.
    emitter.emit("ping", &json!({"n": 10}), None).unwrap();
    assert!(emitter.flush(Duration::from_secs(30)).await);

    emitter.pause("f1").await.unwrap();
    emitter.emit("ping", &json!({"n": 11}), None).unwrap();
    assert!(
        !emitter.flush(Duration::from_millis(50)).await,
        "a paused emitter holds its event"
    );
}

#[actix_web::test]
async fn detach_with_a_request_in_flight_reports_it_dropped() {
    let mut receiver = Receiver::start();
    receiver.script([support::Reply::Delay(Duration::from_secs(2))]);
    let emitter = WebhooksEmitter::start();
    emitter
        .attach("slow", "ping", fast_config(receiver.url("/")))
        .await
        .unwrap();
    let id = emitter.emit("ping", &json!({"n": 1}), None).unwrap();
    receiver.next().await; // the request is on the wire
    let dropped = emitter.detach("slow").await.unwrap();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].request_id(), &id);
}
