//! Channels: an event emitted to channels reaches, of the emitters its name
//! reaches, only those on one of them; an event without channels reaches
//! them all; bad channels are refused at attach and at emit.
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{fast_config, Receiver, ScratchDir};
use webhooks_emitter::{AttachError, ConfigError, EmitError, Journal, WebhooksEmitter};

#[actix_web::test]
async fn events_with_channels_reach_only_emitters_that_share_one() {
    let (mut eu, mut us, mut none) = (Receiver::start(), Receiver::start(), Receiver::start());
    let emitter = WebhooksEmitter::start();
    let attach = |id: &'static str, receiver: &Receiver, channels: &'static [&'static str]| {
        let config = fast_config(receiver.url("/")).channels(channels.iter().copied());
        let emitter = emitter.clone();
        async move { emitter.attach(id, "order.*", config).await.unwrap() }
    };
    attach("eu", &eu, &["eu", "all-regions"]).await;
    attach("us", &us, &["us", "all-regions"]).await;
    attach("none", &none, &[]).await;

    emitter
        .emit_in(&["eu"], "order.created", &json!(1), None)
        .unwrap();
    emitter
        .emit_in(&["us", "apac"], "order.created", &json!(2), None)
        .unwrap();
    emitter
        .emit_in(&["all-regions"], "order.created", &json!(3), None)
        .unwrap();
    emitter.emit("order.created", &json!(4), None).unwrap();
    emitter
        .emit_in(&[], "order.created", &json!(5), None)
        .unwrap();

    assert_eq!(
        eu.take(3)
            .await
            .iter()
            .map(|r| r.json())
            .collect::<Vec<_>>(),
        [json!(1), json!(3), json!(4)]
    );
    assert_eq!(
        us.take(3)
            .await
            .iter()
            .map(|r| r.json())
            .collect::<Vec<_>>(),
        [json!(2), json!(3), json!(4)]
    );
    // Without channels of its own, it gets only what is sent to none.
    assert_eq!(
        none.take(2)
            .await
            .iter()
            .map(|r| r.json())
            .collect::<Vec<_>>(),
        [json!(4), json!(5)]
    );
    assert_eq!(eu.next().await.json(), json!(5));
}

#[actix_web::test]
async fn durable_emits_in_channels_wait_for_their_copies_only() {
    let dir = ScratchDir::new("channels-durable");
    let (mut eu, mut us) = (Receiver::start(), Receiver::start());
    let emitter = WebhooksEmitter::builder()
        .store(Journal::open(dir.file("j.redb")).unwrap())
        .start();
    emitter
        .attach("eu", "e", fast_config(eu.url("/")).channels(["eu"]))
        .await
        .unwrap();
    emitter
        .attach("us", "e", fast_config(us.url("/")).channels(["us"]))
        .await
        .unwrap();
    emitter
        .emit_durable_in(&["eu"], "e", &json!(1), None)
        .await
        .unwrap();
    let results = emitter
        .emit_all_durable_in([
            (&["us"][..], "e", &json!(2), None),
            (&[][..], "e", &json!(3), None),
        ])
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        eu.take(2)
            .await
            .iter()
            .map(|r| r.json())
            .collect::<Vec<_>>(),
        [json!(1), json!(3)]
    );
    assert_eq!(
        us.take(2)
            .await
            .iter()
            .map(|r| r.json())
            .collect::<Vec<_>>(),
        [json!(2), json!(3)]
    );
}

#[actix_web::test]
async fn bad_channels_are_refused_at_attach_and_at_emit() {
    let receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    let eleven: Vec<String> = (0..11).map(|n| format!("c{n}")).collect();
    for bad in [
        vec!["".to_owned()],
        vec!["a b".to_owned()],
        vec!["x".repeat(129)],
        eleven.clone(),
    ] {
        let refused = emitter
            .attach(
                "x",
                "e",
                fast_config(receiver.url("/")).channels(bad.clone()),
            )
            .await;
        assert!(
            matches!(
                refused,
                Err(AttachError::InvalidConfig {
                    source: ConfigError::InvalidChannel { .. },
                    ..
                })
            ),
            "{bad:?}: {refused:?}"
        );
        let channels: Vec<&str> = bad.iter().map(String::as_str).collect();
        let emitted = emitter.emit_in(&channels, "e", &json!(1), None);
        assert!(
            matches!(emitted, Err(EmitError::InvalidChannel { .. })),
            "{bad:?}: {emitted:?}"
        );
    }
    assert!(emitter.list_emitters().await.is_empty());
}
