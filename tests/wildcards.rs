//! Emitters attached to patterns: `*` (every event) and `order.*` (every
//! event under `order.`), beside exact names; an event covered twice for one
//! emitter reaches it once; detach and reconfigure move patterns too; bad
//! patterns are refused.
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{fast_config, Receiver, ScratchDir};
use webhooks_emitter::{AttachError, Journal, WebhooksEmitter};

#[actix_web::test]
async fn patterns_cover_their_names_and_an_event_reaches_each_emitter_once() {
    let (mut orders, mut all, mut both) = (Receiver::start(), Receiver::start(), Receiver::start());
    let emitter = WebhooksEmitter::start();
    emitter
        .attach("orders", "order.*", fast_config(orders.url("/")))
        .await
        .unwrap();
    emitter
        .attach("all", "*", fast_config(all.url("/")))
        .await
        .unwrap();
    // Covered by an exact name and a pattern, and by `*`: still once.
    emitter
        .attach_many(
            "both",
            ["order.created", "order.*", "*"],
            fast_config(both.url("/")),
        )
        .await
        .unwrap();
    for name in ["order.created", "order", "order.line.added", "user.deleted"] {
        emitter.emit(name, &json!({"name": name}), None).unwrap();
    }
    assert_eq!(
        orders.event_names(2).await,
        ["order.created", "order.line.added"]
    );
    let every = ["order.created", "order", "order.line.added", "user.deleted"];
    assert_eq!(all.event_names(4).await, every);
    assert_eq!(both.event_names(4).await, every);
    // Nothing more came: a second copy of any would arrive before this one.
    emitter.emit("order.paid", &json!({}), None).unwrap();
    assert_eq!(orders.event_names(1).await, ["order.paid"]);
    assert_eq!(both.event_names(1).await, ["order.paid"]);
}

#[actix_web::test]
async fn durable_emits_through_patterns_wait_for_every_copy() {
    let dir = ScratchDir::new("wildcards-durable");
    let (mut a, mut b) = (Receiver::start(), Receiver::start());
    let emitter = WebhooksEmitter::builder()
        .store(Journal::open(dir.file("j.redb")).unwrap())
        .start();
    emitter
        .attach("a", "order.*", fast_config(a.url("/")))
        .await
        .unwrap();
    emitter
        .attach("b", "*", fast_config(b.url("/")))
        .await
        .unwrap();
    let id = emitter
        .emit_durable("order.created", &json!(1), None)
        .await
        .unwrap();
    for receiver in [&mut a, &mut b] {
        let request = receiver.next().await;
        assert_eq!(request.header("x-webhooks-delivery"), Some(id.as_str()));
    }
    // Both copies are stored before the answer: the stats of each show it.
    let stats = emitter.stats_all().await;
    assert_eq!(stats.len(), 2, "{stats:?}");
}

#[actix_web::test]
async fn detach_and_reconfigure_move_patterns_too() {
    let (mut first, mut second) = (Receiver::start(), Receiver::start());
    let emitter = WebhooksEmitter::start();
    emitter
        .attach("p", "order.*", fast_config(first.url("/")))
        .await
        .unwrap();
    emitter
        .attach("q", "order.*", fast_config(second.url("/")))
        .await
        .unwrap();
    emitter.detach("p").await.unwrap();
    emitter.emit("order.created", &json!(1), None).unwrap();
    assert_eq!(second.event_names(1).await, ["order.created"]);
    // From a pattern to one name.
    emitter
        .reconfigure("q", ["order.paid"], fast_config(second.url("/")))
        .await
        .unwrap();
    emitter.emit("order.created", &json!(2), None).unwrap();
    emitter.emit("order.paid", &json!(3), None).unwrap();
    assert_eq!(second.next().await.json(), json!(3));
    // The detached emitter's receiver got nothing after the detach: the
    // next request there is from a new emitter, for an event emitted later.
    emitter
        .attach("r", "order.*", fast_config(first.url("/")))
        .await
        .unwrap();
    emitter.emit("order.shipped", &json!(4), None).unwrap();
    assert_eq!(first.event_names(1).await, ["order.shipped"]);
}

#[actix_web::test]
async fn patterns_other_than_star_and_prefix_dot_star_are_refused() {
    let receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    for bad in ["order*", "*.created", "a.*.b", "**", ".*", "order.**"] {
        let refused = emitter
            .attach("x", bad, fast_config(receiver.url("/")))
            .await;
        match refused {
            Err(AttachError::InvalidEventName(error)) => {
                assert!(error.to_string().contains('*'), "{error}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert!(emitter.list_emitters().await.is_empty());
    // An emitted name never holds `*`.
    assert!(emitter.emit("order.*", &json!(1), None).is_err());
}
