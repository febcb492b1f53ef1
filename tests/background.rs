//! Using the emitter from plain tokio, with its actors on a background thread.
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::Harness;
use webhooks_emitter::{EmitError, Outcome, WebhooksEmitter};

#[tokio::test]
async fn works_from_a_plain_tokio_test() {
    let mut h = Harness::around(WebhooksEmitter::start_in_background());
    h.receiver.script_statuses([500]);
    h.attach("bg", "ping", h.config().secret("s")).await;
    let emitter = h.emitter.clone();
    assert_eq!(emitter.list_emitters().await, ["bg"]);

    // The handle is Send + Sync: emit from another thread.
    let from_thread = emitter.clone();
    let id = std::thread::spawn(move || from_thread.emit("ping", &json!({"n": 1}), None).unwrap())
        .join()
        .unwrap();
    let report = h.next_final().await;
    assert_eq!(report.event.request_id(), &id);
    assert!(
        matches!(report.outcome, Outcome::Delivered { attempts: 2, .. }),
        "{report:?}"
    );
    assert_eq!(h.receiver.take(2).await.len(), 2);

    let shutdown = emitter.shutdown(Duration::from_secs(10)).await;
    assert!(shutdown.drained && shutdown.undelivered.is_empty());
    assert_eq!(emitter.emit("ping", &1, None), Err(EmitError::ShuttingDown));
}

#[test]
fn the_handle_is_send_sync_and_clone() {
    fn assert_traits<T: Send + Sync + Clone + 'static>() {}
    assert_traits::<WebhooksEmitter>();
}
