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

/// The event names of the next `n` requests at `receiver`.
async fn names(receiver: &mut Receiver, n: usize) -> Vec<String> {
    receiver
        .take(n)
        .await
        .iter()
        .map(|r| r.header("x-webhooks-event").unwrap().to_owned())
        .collect()
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
        names(&mut orders, 1).await,
        ["order.created"],
        "`order` is not under `order.`"
    );
    assert_eq!(
        names(&mut all, 3).await,
        ["order.created", "order", "user.deleted"]
    );
    assert_eq!(names(&mut both, 1).await, ["order.created"]);

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
    assert_eq!(names(&mut orders, 1).await, ["user.created"]);
    assert_eq!(names(&mut all, 1).await, ["user.created"]);

    // Kept across a restart (a graceful one: after a SIGKILL, the last
    // deliveries could come again, as at-least-once allows).
    assert!(server.terminate().success());
    let server = ServerProcess::start(&journal, &[]);
    assert_eq!(routed(&server, "order.paid").await, 2);
    assert_eq!(names(&mut all, 1).await, ["order.paid"]);
    assert_eq!(names(&mut both, 1).await, ["order.paid"]);
}
