//! `POST /api/v1/events/batch` over real HTTP: partial failure, limits,
//! idempotency per event, and order.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use awc::http::Method;
use serde_json::{json, Value};
use support::server::{problem, ServerProcess};
use support::{Receiver, ScratchDir};

const BATCH: &str = "/api/v1/events/batch";

/// A server with endpoint `crm` subscribed to `order.created` on `receiver`,
/// events of at most 1,000 bytes.
async fn server(dir: &ScratchDir, receiver: &Receiver) -> ServerProcess {
    let server = ServerProcess::start(&dir.file("j.redb"), &["--max-payload-bytes", "1000"]);
    server
        .create(json!({
            "id": "crm",
            "url": receiver.url("/hooks"),
            "events": ["order.created"],
            "backoff_ms": {"start": 10, "limit": 20},
        }))
        .await;
    server
}

fn order(n: i64) -> Value {
    json!({"event": "order.created", "payload": {"n": n}})
}

/// Each event gets its own result, in order; the bad ones a problem, and
/// the good ones are delivered in the order sent.
#[actix_web::test]
async fn a_batch_accepts_the_good_events_and_says_why_each_bad_one_is_refused() {
    let dir = ScratchDir::new("server-batch");
    let mut receiver = Receiver::start();
    let server = server(&dir, &receiver).await;
    let events = json!([
        order(1),
        {"event": "bad*name", "payload": {}},
        {"event": "order.created", "payload": {"n": 2, "pad": "x".repeat(2000)}},
        {"event": "order.created"},
        {"event": "order.created", "payload": {"n": 3}, "request_id": "batch-3"},
        {"event": "order.created", "payload": {"n": 4}, "request_id": "has space"},
        {"event": "nobody.listens", "payload": {}},
        order(5),
    ]);
    let answer = server
        .api(Method::POST, BATCH, Some(json!({ "events": events })))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let results = answer.json["results"].as_array().unwrap();
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [202, 400, 413, 400, 202, 400, 202, 202]);
    assert_eq!(answer.json["accepted"], 4);
    assert_eq!(results[4]["request_id"], "batch-3");
    assert_eq!(results[0]["endpoints"], 1);
    assert_eq!(results[6]["endpoints"], 0, "accepted, routed nowhere");
    for refused in [1, 2, 3, 5] {
        let problem = &results[refused]["problem"];
        assert_eq!(problem["status"], results[refused]["status"], "{problem}");
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{problem}");
        assert!(results[refused].get("request_id").is_none());
    }
    assert!(results[3]["problem"]["detail"]
        .as_str()
        .unwrap()
        .contains("payload"));
    let got = receiver.take(3).await;
    let ns: Vec<i64> = got.iter().map(|g| g.n()).collect();
    assert_eq!(ns, [1, 3, 5]);
    assert_eq!(got[1].header("x-webhooks-delivery"), Some("batch-3"));
}

/// 100 events in one request arrive in the order sent.
#[actix_web::test]
async fn the_events_of_a_batch_are_delivered_in_order() {
    let dir = ScratchDir::new("server-batch-order");
    let mut receiver = Receiver::start();
    let server = server(&dir, &receiver).await;
    for round in 0..3 {
        let events: Vec<Value> = (0..100).map(|n| order(round * 100 + n)).collect();
        let answer = server
            .api(Method::POST, BATCH, Some(json!({ "events": events })))
            .await;
        assert_eq!(answer.json["accepted"], 100, "{answer:?}");
    }
    assert_eq!(receiver.numbers(300).await, (0..300).collect::<Vec<i64>>());
}

/// A whole batch is refused only for what makes it unreadable: not JSON,
/// no events or too many, a body over the limit.
#[actix_web::test]
async fn a_batch_out_of_bounds_is_refused_whole() {
    let dir = ScratchDir::new("server-batch-limits");
    let receiver = Receiver::start();
    let server = server(&dir, &receiver).await;
    let too_many: Vec<Value> = (0..1001).map(order).collect();
    for (body, status, says) in [
        (json!({"events": []}), 400, "1 to 1000"),
        (json!({ "events": too_many }), 400, "not 1001"),
        (
            json!({"events": [order(1)], "extra": 1}),
            400,
            "unknown field",
        ),
        (json!([order(1)]), 400, "invalid JSON body"),
    ] {
        let answer = server.api(Method::POST, BATCH, Some(body)).await;
        assert!(problem(&answer, status).contains(says), "{answer:?}");
    }
    // Over 16 MiB: refused from its Content-Length, before it is read.
    let huge = format!(
        r#"{{"events":[{{"event":"a","payload":"{}"}}]}}"#,
        "x".repeat(17 << 20)
    );
    let answer = server
        .send_raw(
            Method::POST,
            BATCH,
            Some(&huge),
            Some(support::server::TOKEN),
            &[],
        )
        .await;
    assert_eq!(answer.status, 413, "{answer:?}");
    let answer = server
        .call(Method::POST, BATCH, None, Some(support::server::TOKEN), &[])
        .await;
    assert_eq!(answer.status, 415, "no JSON content type: {answer:?}");
    let answer = server
        .call(
            Method::POST,
            BATCH,
            Some(json!({"events": [order(1)]})),
            None,
            &[],
        )
        .await;
    assert_eq!(answer.status, 401, "{answer:?}");
}

/// An event with an `idempotency_key` is emitted once: repeated (in the
/// same batch, or in another), it is answered with its first request id and
/// `replayed`; the key with another event is refused, that event alone.
#[actix_web::test]
async fn idempotency_keys_hold_per_event() {
    let dir = ScratchDir::new("server-batch-keys");
    let mut receiver = Receiver::start();
    let server = server(&dir, &receiver).await;
    let keyed = |n: i64, key: &str| json!({"event": "order.created", "payload": {"n": n}, "idempotency_key": key});
    let first = server
        .api(
            Method::POST,
            BATCH,
            Some(json!({"events": [keyed(1, "k-1"), keyed(2, "k-2")]})),
        )
        .await;
    assert_eq!(first.json["accepted"], 2, "{first:?}");
    let ids: Vec<&Value> = first.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["request_id"])
        .collect();
    assert_eq!(receiver.numbers(2).await, [1, 2]);

    let again = server
        .api(
            Method::POST,
            BATCH,
            Some(json!({"events": [keyed(2, "k-2"), keyed(9, "k-1"), keyed(3, "k-3")]})),
        )
        .await;
    let results = again.json["results"].as_array().unwrap();
    assert_eq!(
        (results[0]["status"].as_u64(), &results[0]["request_id"]),
        (Some(202), ids[1])
    );
    assert_eq!(results[0]["replayed"], true);
    assert!(results[0].get("endpoints").is_none());
    assert_eq!(
        results[1]["status"], 422,
        "k-1 with another event: {again:?}"
    );
    assert_eq!(
        (results[2]["status"].as_u64(), results[2].get("replayed")),
        (Some(202), None)
    );
    // Nothing was emitted again: the next delivery is event 3.
    assert_eq!(receiver.next().await.n(), 3);

    // Twice in one batch: the second waits on the first (409), never emits.
    let twice = server
        .api(
            Method::POST,
            BATCH,
            Some(json!({"events": [keyed(4, "k-4"), keyed(4, "k-4")]})),
        )
        .await;
    let statuses: Vec<u64> = twice.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [202, 409], "{twice:?}");
    // A keyed event on the single route is a different request: its own key.
    let single = server
        .call(
            Method::POST,
            "/api/v1/events",
            Some(order(5)),
            Some(support::server::TOKEN),
            &[("idempotency-key", "k-5")],
        )
        .await;
    assert_eq!(single.status, 202);
    assert_eq!(receiver.numbers(2).await, [4, 5]);
}
