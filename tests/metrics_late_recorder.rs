//! A recorder installed after an emitter started (this binary installs it
//! mid-test; a process has one global recorder): the emitter's per-delivery
//! metrics, whose handles it looks up once, reach it from the next refresh
//! of the gauges on (within a second).
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde_json::json;
use support::{eventually, fast_config, Receiver};
use webhooks_emitter::WebhooksEmitter;

#[actix_web::test]
async fn a_recorder_installed_later_gets_the_deliveries_after_the_next_refresh() {
    let mut receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    emitter
        .attach("late", "late.event", fast_config(receiver.url("/")))
        .await
        .unwrap();
    emitter.emit("late.event", &json!(1), None).unwrap();
    receiver.next().await; // delivered, with no recorder yet

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("no other recorder in this binary");
    let mut delivered = 0u64;
    eventually("deliveries counted by the late recorder", || {
        emitter.emit("late.event", &json!(2), None).unwrap();
        for (composite, _, _, value) in snapshotter.snapshot().into_vec() {
            let (_, key) = composite.into_parts();
            let ours = key
                .labels()
                .any(|l| l.key() == "emitter" && l.value() == "late");
            if let (true, "webhooks_deliveries_total", DebugValue::Counter(n)) =
                (ours, key.name(), value)
            {
                delivered += n;
            }
        }
        let seen = delivered > 0;
        async move { seen }
    })
    .await;
}
