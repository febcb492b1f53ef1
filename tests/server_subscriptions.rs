//! Endpoints subscribed with patterns over the server's API: `order.*` and
//! `*` beside exact names (also sent as `filter_types`), the 202's endpoint
//! count, one delivery per endpoint however many of its names cover an
//! event, a change of subscription, and a restart that keeps them.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use awc::http::Method;
use serde_json::{json, Value};
use support::server::ServerProcess;
use support::{Receiver, ScratchDir};

fn endpoint(id: &str, receiver: &Receiver, subscriptions: Value) -> Value {
    json!({"id": id, "url": receiver.url("/h"), "events": subscriptions, "max_retries": 1})
}

/// Emits `event`; how many endpoints the 202 says it went to.
async fn routed(server: &ServerProcess, event: &str) -> Value {
    let answer = server.emit_raw(event, json!({"e": event})).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    answer.json["endpoints"].clone()
}

#[actix_web::test]
async fn patterns_route_events_and_the_answer_counts_each_endpoint_once() {
    let dir = ScratchDir::new("subscriptions");
    let journal = dir.file("j.redb");
    let server = ServerProcess::start(&journal, &[]);
    let (mut orders, mut all, mut both) = (Receiver::start(), Receiver::start(), Receiver::start());
    server
        .create(endpoint("orders", &orders, json!(["order.*"])))
        .await;
    server.create(endpoint("all", &all, json!(["*"]))).await;
    let mut both_spec = endpoint("both", &both, json!(null));
    both_spec.as_object_mut().unwrap().remove("events");
    both_spec["filter_types"] = json!(["order.created", "order.*"]);
    let created = server.create(both_spec).await;
    assert_eq!(created.json["events"], json!(["order.created", "order.*"]));

    assert_eq!(routed(&server, "order.created").await, 3);
    assert_eq!(routed(&server, "order").await, 1);
    assert_eq!(routed(&server, "user.deleted").await, 1);
    assert_eq!(
        orders.event_names(1).await,
        ["order.created"],
        "`order` is not under `order.`"
    );
    assert_eq!(
        all.event_names(3).await,
        ["order.created", "order", "user.deleted"]
    );
    assert_eq!(both.event_names(1).await, ["order.created"]);

    // A change of subscription, by PATCH (as `filter_types` too).
    let changed = server
        .api(
            Method::PATCH,
            "/api/v1/endpoints/orders",
            Some(json!({"filter_types": ["user.*"]})),
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    assert_eq!(routed(&server, "user.created").await, 2);
    assert_eq!(orders.event_names(1).await, ["user.created"]);
    assert_eq!(all.event_names(1).await, ["user.created"]);

    // Kept across a restart (a graceful one: after a SIGKILL, the last
    // deliveries could come again, as at-least-once allows).
    assert!(server.terminate().success());
    let server = ServerProcess::start(&journal, &[]);
    assert_eq!(routed(&server, "order.paid").await, 2);
    assert_eq!(all.event_names(1).await, ["order.paid"]);
    assert_eq!(both.event_names(1).await, ["order.paid"]);
}

#[actix_web::test]
async fn events_with_channels_reach_only_endpoints_that_share_one() {
    let dir = ScratchDir::new("channels");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let (mut eu, mut none) = (Receiver::start(), Receiver::start());
    let mut spec = endpoint("eu", &eu, json!(["order.*"]));
    spec["channels"] = json!(["eu", "all"]);
    let created = server.create(spec).await;
    assert_eq!(created.json["channels"], json!(["eu", "all"]));
    server
        .create(endpoint("none", &none, json!(["order.created"])))
        .await;

    let send = |channels: Value, n: i64| {
        let body = json!({"event": "order.created", "payload": n, "channels": channels});
        server.api(Method::POST, "/api/v1/events", Some(body))
    };
    let to_eu = send(json!(["eu"]), 1).await;
    assert_eq!((to_eu.status, &to_eu.json["endpoints"]), (202, &json!(1)));
    let to_us = send(json!(["us"]), 2).await;
    assert_eq!((to_us.status, &to_us.json["endpoints"]), (202, &json!(0)));
    let to_all = send(json!([]), 3).await;
    assert_eq!(to_all.json["endpoints"], 2);
    let batch = json!({"events": [
        {"event": "order.created", "payload": 4, "channels": ["all"]},
        {"event": "order.created", "payload": 5, "channels": ["bad channel"]},
    ]});
    let batched = server
        .api(Method::POST, "/api/v1/events/batch", Some(batch))
        .await;
    assert_eq!(batched.json["results"][0]["endpoints"], 1, "{batched:?}");
    assert_eq!(batched.json["results"][1]["status"], 400, "{batched:?}");
    let eu_got: Vec<Value> = eu.take(3).await.iter().map(|r| r.json()).collect();
    assert_eq!(eu_got, [json!(1), json!(3), json!(4)]);
    assert_eq!(none.next().await.json(), json!(3));

    // Bad channels are refused, at create and at emit; a PATCH moves it.
    let mut bad = endpoint("bad", &none, json!(["x"]));
    bad["channels"] = json!(["no spaces allowed"]);
    let refused = server
        .api(Method::POST, "/api/v1/endpoints", Some(bad))
        .await;
    assert!(support::server::problem(&refused, 400).contains("invalid channel"));
    let refused = send(json!(["a/b"]), 6).await;
    assert!(support::server::problem(&refused, 400).contains("invalid channel"));
    let moved = server
        .api(
            Method::PATCH,
            "/api/v1/endpoints/eu",
            Some(json!({"channels": ["us"]})),
        )
        .await;
    assert_eq!(moved.json["channels"], json!(["us"]), "{moved:?}");
    assert_eq!(send(json!(["us"]), 7).await.json["endpoints"], 1);
    assert_eq!(eu.next().await.json(), json!(7));
}
