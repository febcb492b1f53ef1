//! `reconfigure`: new events and settings for an attached emitter, with its
//! queue, dead letters and paused state kept; and the journal's application
//! records, which the server keeps its endpoints in.
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{fast_config, reopen, Harness, Receiver, ScratchDir};
use webhooks_emitter::{AttachError, Config, ConfigError, Journal};

#[actix_web::test]
async fn queued_events_go_to_the_new_url_with_the_new_secret_in_order() {
    let mut h = Harness::start();
    let mut second = Receiver::start();
    h.attach("crm", "order.created", h.config().secret("old"))
        .await;
    h.emitter.pause("crm").await.unwrap();
    h.emit_numbers("order.created", 1..=3);
    let new_config = fast_config(second.url("/v2")).secret("new");
    h.emitter
        .reconfigure("crm", ["order.created", "order.paid"], new_config)
        .await
        .unwrap();
    h.emitter
        .emit("order.paid", &json!({"n": 4}), None)
        .unwrap();
    h.emitter.restart("crm").await.unwrap();

    let finals = h.finals(4).await;
    assert!(support::all_delivered(&finals), "{finals:?}");
    let mut seen = Vec::new();
    for _ in 0..4 {
        let request = second.next().await;
        let expected = webhooks_emitter::sign(b"new", &request.body);
        assert_eq!(
            request.header("x-webhooks-signature"),
            Some(expected.as_str())
        );
        assert_eq!(request.path, "/v2");
        seen.push(request.n());
    }
    assert_eq!(seen, [1, 2, 3, 4], "the queue was kept, in order");
    assert!(
        h.receiver.try_next().is_none(),
        "nothing went to the old url"
    );
}

#[actix_web::test]
async fn a_refused_reconfigure_changes_nothing() {
    let mut h = Harness::start();
    h.attach("crm", "order.created", h.config()).await;
    let unknown = h
        .emitter
        .reconfigure("nope", ["order.created"], h.config())
        .await;
    assert_eq!(
        unknown,
        Err(AttachError::UnknownEmitter { id: "nope".into() })
    );
    let invalid = h
        .emitter
        .reconfigure("crm", ["order.paid"], Config::new("ftp://x"))
        .await;
    assert!(
        matches!(invalid, Err(AttachError::InvalidConfig { ref source, .. }) if matches!(source, ConfigError::InvalidUrl { .. })),
        "{invalid:?}"
    );
    // Still attached to the old name, with the old URL.
    h.emitter
        .emit("order.paid", &json!({"n": 1}), None)
        .unwrap();
    h.emitter
        .emit("order.created", &json!({"n": 2}), None)
        .unwrap();
    assert_eq!(h.receiver.next().await.n(), 2);
    assert!(support::all_delivered(&h.finals(1).await));
}

#[actix_web::test]
async fn lowering_the_dead_letter_bound_evicts_the_oldest() {
    let mut h = Harness::start();
    h.receiver.script_statuses([500; 3]);
    h.attach("crm", "e", h.config().max_retries(1)).await;
    h.emit_numbers("e", 1..=3);
    for _ in 0..3 {
        h.next_dead_letter().await;
    }
    h.emitter
        .reconfigure(
            "crm",
            ["e"],
            h.config().max_retries(1).dead_letter_capacity(1),
        )
        .await
        .unwrap();
    let kept = h.emitter.dead_letters("crm").await.unwrap();
    let kept: Vec<i64> = kept.iter().map(|l| support::n_of(&l.event)).collect();
    assert_eq!(kept, [3], "the newest stays");
}

#[tokio::test]
async fn app_records_survive_a_reopen_and_stay_in_their_namespace() {
    let dir = ScratchDir::new("app-records");
    let path = dir.file("webhooks.redb");
    {
        let journal = Journal::open(&path).unwrap();
        journal
            .put_record("endpoints", "b", b"2".to_vec())
            .await
            .unwrap();
        journal
            .put_record("endpoints", "a", b"1".to_vec())
            .await
            .unwrap();
        journal
            .put_record("endpoints", "a", b"1bis".to_vec())
            .await
            .unwrap();
        journal
            .put_record("endpointsx", "z", b"9".to_vec())
            .await
            .unwrap();
        journal
            .put_record("other", "a", b"x".to_vec())
            .await
            .unwrap();
        assert!(journal.delete_record("other", "a").await.unwrap());
        assert!(!journal.delete_record("other", "a").await.unwrap());
        // Insert only where nothing is: of racing inserts, one stores.
        let (one, two) = tokio::join!(
            journal.insert_record("endpoints", "c", b"3".to_vec()),
            journal.insert_record("endpoints", "c", b"3bis".to_vec())
        );
        assert!(one.unwrap() ^ two.unwrap(), "exactly one insert stores");
        assert!(!journal
            .insert_record("endpoints", "a", b"not stored".to_vec())
            .await
            .unwrap());
        assert!(journal.delete_record("endpoints", "c").await.unwrap());
    }
    let journal = reopen(&path);
    assert_eq!(
        journal.records("endpoints").await.unwrap(),
        [("a".into(), b"1bis".to_vec()), ("b".into(), b"2".to_vec())]
    );
    assert!(journal.records("other").await.unwrap().is_empty());
    assert_eq!(journal.records("endpointsx").await.unwrap().len(), 1);
}
