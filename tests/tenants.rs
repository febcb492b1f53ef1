//! Tenants: an event emitted for a tenant reaches only that tenant's
//! emitters, whatever its name and channels; one emitted without a tenant
//! reaches only emitters of none; tenant events stay off SSE topics; bad
//! tenants are refused at attach and at `for_tenant`.
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{fast_config, Receiver, ScratchDir};
use webhooks_emitter::{AttachError, ConfigError, EmitError, Journal, WebhooksEmitter};

/// The JSON bodies of the next `n` requests.
async fn bodies(receiver: &mut Receiver, n: usize) -> Vec<serde_json::Value> {
    receiver.take(n).await.iter().map(|r| r.json()).collect()
}

#[actix_web::test]
async fn tenants_never_mix_whatever_the_names_and_channels() {
    let (mut acme, mut globex, mut shared) =
        (Receiver::start(), Receiver::start(), Receiver::start());
    let emitter = WebhooksEmitter::start();
    // The same names, patterns and channels in each tenant.
    for (id, receiver, tenant) in [
        ("acme-crm", &acme, Some("acme")),
        ("globex-crm", &globex, Some("globex")),
        ("crm", &shared, None),
    ] {
        let mut config = fast_config(receiver.url("/")).channels(["eu"]);
        if let Some(tenant) = tenant {
            config = config.tenant(tenant);
        }
        emitter
            .attach_many(id, ["order.*", "*", "order.created"], config)
            .await
            .unwrap();
    }
    let for_acme = emitter.for_tenant("acme").unwrap();
    let for_globex = emitter.for_tenant("globex").unwrap();
    for_acme.emit("order.created", &json!("a1"), None).unwrap();
    for_globex
        .emit_in(&["eu"], "order.created", &json!("g1"), None)
        .unwrap();
    emitter.emit("order.created", &json!("s1"), None).unwrap();
    for_acme
        .emit_in(&["eu"], "user.deleted", &json!("a2"), None)
        .unwrap();
    // A tenant no emitter has: nobody.
    emitter
        .for_tenant("initech")
        .unwrap()
        .emit("order.created", &json!("i1"), None)
        .unwrap();
    emitter.emit("user.deleted", &json!("s2"), None).unwrap();
    for_globex.emit("user.deleted", &json!("g2"), None).unwrap();

    // Each emitter delivers in order, one at a time: a foreign event would
    // show up between its own.
    assert_eq!(bodies(&mut acme, 2).await, [json!("a1"), json!("a2")]);
    assert_eq!(bodies(&mut globex, 2).await, [json!("g1"), json!("g2")]);
    assert_eq!(bodies(&mut shared, 2).await, [json!("s1"), json!("s2")]);
    // And nothing after them: one more event each, and it comes next.
    for_acme.emit("end", &json!("a3"), None).unwrap();
    emitter.emit("end", &json!("s3"), None).unwrap();
    for_globex.emit("end", &json!("g3"), None).unwrap();
    assert_eq!(bodies(&mut acme, 1).await, [json!("a3")]);
    assert_eq!(bodies(&mut shared, 1).await, [json!("s3")]);
    assert_eq!(bodies(&mut globex, 1).await, [json!("g3")]);
}

#[actix_web::test]
async fn durable_emits_for_a_tenant_wait_for_its_copies_and_follow_a_reconfigure() {
    let dir = ScratchDir::new("tenants-durable");
    let (mut acme, mut other) = (Receiver::start(), Receiver::start());
    let emitter = WebhooksEmitter::builder()
        .store(Journal::open(dir.file("j.redb")).unwrap())
        .start();
    emitter
        .attach("acme", "e", fast_config(acme.url("/")).tenant("acme"))
        .await
        .unwrap();
    emitter
        .attach("other", "e", fast_config(other.url("/")))
        .await
        .unwrap();
    // Reattached with another tenant: its routes follow.
    emitter
        .reconfigure("other", ["e"], fast_config(other.url("/")).tenant("globex"))
        .await
        .unwrap();
    let for_acme = emitter.for_tenant("acme").unwrap();
    for_acme.emit_durable("e", &json!(1), None).await.unwrap();
    let results = for_acme
        .emit_all_durable_in([(&[][..], "e", &json!(2), None)])
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    emitter
        .emit_durable("e", &json!("nobody"), None)
        .await
        .unwrap();
    emitter
        .for_tenant("globex")
        .unwrap()
        .emit_durable("e", &json!("g"), None)
        .await
        .unwrap();
    assert_eq!(bodies(&mut acme, 2).await, [json!(1), json!(2)]);
    assert_eq!(bodies(&mut other, 1).await, [json!("g")]);
}

#[actix_web::test]
async fn bad_tenants_are_refused_at_attach_and_at_for_tenant() {
    let receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    for bad in ["", "a~b", "a/b", "a b", &"t".repeat(129)] {
        let refused = emitter
            .attach("x", "e", fast_config(receiver.url("/")).tenant(bad))
            .await;
        assert!(
            matches!(
                refused,
                Err(AttachError::InvalidConfig {
                    source: ConfigError::InvalidTenant { .. },
                    ..
                })
            ),
            "{bad:?}: {refused:?}"
        );
        assert!(
            matches!(
                emitter.for_tenant(bad),
                Err(EmitError::InvalidTenant { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(
        emitter.list_emitters().await.is_empty(),
        "nothing was attached"
    );
}

#[cfg(feature = "sse")]
#[actix_web::test]
async fn tenant_events_stay_off_sse_topics() {
    use support::live::{next, serve, subscribe, wait_for_clients};
    let live = serve(webhooks_emitter::sse::SseOptions::default());
    let (status, _, mut every) = subscribe(&format!("{}/*", live.sse), &[]).await;
    assert_eq!(status, 200);
    let (_, _, mut named) = subscribe(&format!("{}/order.created", live.sse), &[]).await;
    wait_for_clients(&live.emitter, "order.created", 1).await;
    live.emitter
        .for_tenant("acme")
        .unwrap()
        .emit("order.created", &json!("secret"), None)
        .unwrap();
    live.emitter
        .emit("order.created", &json!("public"), None)
        .unwrap();
    assert_eq!(next(&mut every).await.data, "\"public\"");
    assert_eq!(next(&mut named).await.data, "\"public\"");
}
