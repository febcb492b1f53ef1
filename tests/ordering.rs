//! Many events through one emitter: all arrive, in order, once each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{fast_config, finals, Receiver};
use webhooks_emitter::{Outcome, WebhooksEmitter};

#[actix_web::test]
async fn a_thousand_events_arrive_in_order_none_lost_none_doubled() {
    let mut receiver = Receiver::start();
    // A few failures on the way must not reorder or duplicate anything.
    receiver.script_statuses([200, 500, 200, 200, 503]);
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    emitter
        .attach("o", "tick", fast_config(receiver.url("/")).secret("s"))
        .await
        .unwrap();
    for n in 0..1000 {
        emitter.emit("tick", &json!({"n": n}), None).unwrap();
    }
    let outcomes = finals(&mut reports, 1000).await;
    assert!(outcomes
        .iter()
        .all(|r| matches!(r.outcome, Outcome::Delivered { .. })));

    let requests = receiver.take(1002).await;
    let delivered: Vec<i64> = requests
        .iter()
        .map(|r| r.json()["n"].as_i64().unwrap())
        .collect();
    // Requests 2 and 5 failed, so events 1 and 3 were sent twice, each retry
    // right after its failure; everything else exactly once, in order.
    let mut expected = vec![0, 1, 1, 2, 3, 3];
    expected.extend(4..1000);
    assert_eq!(delivered, expected);
    assert!(receiver.try_next().is_none());
}

#[actix_web::test]
async fn the_same_order_on_every_emitter_of_an_event() {
    let mut a = Receiver::start();
    let mut b = Receiver::start();
    let emitter = WebhooksEmitter::start();
    emitter
        .attach("a", "tick", fast_config(a.url("/")))
        .await
        .unwrap();
    emitter
        .attach("b", "tick", fast_config(b.url("/")))
        .await
        .unwrap();
    for n in 0..200 {
        emitter.emit("tick", &json!({"n": n}), None).unwrap();
    }
    for receiver in [&mut a, &mut b] {
        let got: Vec<i64> = receiver
            .take(200)
            .await
            .iter()
            .map(|r| r.json()["n"].as_i64().unwrap())
            .collect();
        assert_eq!(got, (0..200).collect::<Vec<_>>());
    }
}
