//! `emit_all_durable_to`: events sent to one emitter alone, whatever its
//! names, channels and tenant, in order, after what was emitted before; an
//! unknown emitter or one bad event refuses the call and sends nothing.
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{fast_config, Receiver, ScratchDir};
use webhooks_emitter::{EmitError, Journal, WebhooksEmitter};

#[actix_web::test]
async fn events_go_to_one_emitter_alone_in_order_with_their_ids() {
    let dir = ScratchDir::new("emit-to");
    let (mut target, mut other) = (Receiver::start(), Receiver::start());
    let emitter = WebhooksEmitter::builder()
        .store(Journal::open(dir.file("j.redb")).unwrap())
        .start();
    let narrow = fast_config(target.url("/")).channels(["eu"]).tenant("acme");
    emitter
        .attach("target", "order.created", narrow)
        .await
        .unwrap();
    emitter
        .attach("other", "*", fast_config(other.url("/")))
        .await
        .unwrap();
    let payloads = [json!({"n": 1}), json!({"n": 2}), json!({"n": 3})];
    let sent = emitter
        .emit_all_durable_to(
            "target",
            [
                ("order.created", &payloads[0], Some("first".to_owned())),
                ("user.deleted", &payloads[1], Some("second".to_owned())),
                ("order.paid", &payloads[2], None),
            ],
        )
        .await
        .unwrap();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0].as_str(), "first");
    let got = target.take(3).await;
    assert_eq!(
        got.iter().map(|r| r.n()).collect::<Vec<_>>(),
        [1, 2, 3],
        "in order, names and channels aside"
    );
    assert_eq!(got[1].header("x-webhooks-event"), Some("user.deleted"));
    assert_eq!(got[1].header("x-webhooks-delivery"), Some("second"));
    assert_eq!(got[2].header("x-webhooks-delivery"), Some(sent[2].as_str()));
    // The emitter attached to `*` got none of them: its next is this one.
    emitter.emit("marker", &json!({"n": 9}), None).unwrap();
    assert_eq!(other.numbers(1).await, [9]);
}

#[actix_web::test]
async fn an_unknown_emitter_or_a_bad_event_sends_nothing() {
    let mut target = Receiver::start();
    let emitter = WebhooksEmitter::start();
    emitter
        .attach("target", "e", fast_config(target.url("/")))
        .await
        .unwrap();
    let one = json!({"n": 1});
    let unknown = emitter
        .emit_all_durable_to("nobody", [("e", &one, None)])
        .await;
    assert!(
        matches!(&unknown, Err(EmitError::UnknownEmitter { id }) if id == "nobody"),
        "{unknown:?}"
    );
    let bad = emitter
        .emit_all_durable_to("target", [("e", &one, None), ("bad name", &one, None)])
        .await;
    assert!(
        matches!(bad, Err(EmitError::InvalidEventName(_))),
        "{bad:?}"
    );
    let none: [(&str, &serde_json::Value, Option<String>); 0] = [];
    assert_eq!(
        emitter.emit_all_durable_to("target", none).await.unwrap(),
        []
    );
    emitter.emit("e", &json!({"n": 2}), None).unwrap();
    assert_eq!(
        target.numbers(1).await,
        [2],
        "the refused calls sent nothing"
    );
}
