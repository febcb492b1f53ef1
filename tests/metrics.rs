//! Metrics (feature `metrics`) as a recorder sees them: a `metrics-util`
//! debugging recorder installed for this test binary. Each test uses emitter
//! ids, events and topics of its own, since the recorder is shared.
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use support::{Harness, Reply, DEADLINE};
use webhooks_emitter::sse::SseOptions;
use webhooks_emitter::{Outcome, WebhooksEmitter};

/// The recorder's snapshots reset what they read: counters and histogram
/// counts are summed here across snapshots.
struct Recorded {
    snapshotter: Snapshotter,
    totals: Mutex<HashMap<String, f64>>,
}

fn recorded() -> &'static Recorded {
    static RECORDED: OnceLock<Recorded> = OnceLock::new();
    RECORDED.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("a recorder was already installed");
        Recorded {
            snapshotter,
            totals: Mutex::new(HashMap::new()),
        }
    })
}

/// `name{a="x",b="y"}`, labels sorted.
fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

/// Reads the recorder: adds counters and histogram counts to the totals;
/// returns the gauges set since the last read.
fn read() -> HashMap<String, f64> {
    let recorded = recorded();
    let mut totals = recorded.totals.lock().unwrap();
    let mut gauges = HashMap::new();
    for (composite, _, _, value) in recorded.snapshotter.snapshot().into_vec() {
        let (_, key_) = composite.into_parts();
        let labels: Vec<(&str, &str)> = key_.labels().map(|l| (l.key(), l.value())).collect();
        let name = key(key_.name(), &labels);
        match value {
            DebugValue::Counter(n) => *totals.entry(name).or_default() += n as f64,
            DebugValue::Histogram(values) => {
                let count = key(&format!("{}:count", key_.name()), &labels);
                *totals.entry(count).or_default() += values.len() as f64;
            }
            DebugValue::Gauge(value) => {
                gauges.insert(name, value.into_inner());
            }
        }
    }
    gauges
}

fn total(name: &str, labels: &[(&str, &str)]) -> f64 {
    read();
    let totals = recorded().totals.lock().unwrap();
    totals.get(&key(name, labels)).copied().unwrap_or(0.0)
}

/// Waits until the gauge is set to `expected` (gauges refresh every second).
async fn gauge_becomes(name: &str, labels: &[(&str, &str)], expected: f64) {
    let wanted = key(name, labels);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut last = None;
    loop {
        if let Some(value) = read().get(&wanted) {
            if *value == expected {
                return;
            }
            last = Some(*value);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{wanted} never became {expected} (last {last:?})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await; // polling an observable
    }
}

#[actix_web::test]
async fn deliveries_attempts_and_lag_are_counted() {
    recorded();
    let mut h = Harness::start();
    h.attach("metrics-ok", "metrics.ok", h.config()).await;
    h.emit_numbers("metrics.ok", 1..=3);
    for _ in 0..3 {
        assert!(matches!(
            h.next_final().await.outcome,
            Outcome::Delivered { .. }
        ));
    }
    // Emitted counts emits, whether or not an emitter listens; a name no
    // emitter is attached to is counted under one label, so callers cannot
    // grow the label set.
    h.emitter.emit("metrics.nobody", &1, None).unwrap();
    assert!(h.emitter.flush(DEADLINE).await);

    let emitter = [("emitter", "metrics-ok")];
    assert_eq!(
        total("webhooks_events_emitted_total", &[("event", "metrics.ok")]),
        3.0
    );
    assert_eq!(
        total(
            "webhooks_events_emitted_total",
            &[("event", "metrics.nobody")]
        ),
        0.0
    );
    // Other tests of this binary may emit unrouted events too.
    assert!(total("webhooks_events_emitted_total", &[("event", "_unrouted")]) >= 1.0);
    assert_eq!(total("webhooks_deliveries_total", &emitter), 3.0);
    assert_eq!(
        total(
            "webhooks_attempts_total",
            &[("emitter", "metrics-ok"), ("outcome", "success")]
        ),
        3.0
    );
    assert_eq!(
        total("webhooks_attempt_duration_seconds:count", &emitter),
        3.0
    );
    assert_eq!(total("webhooks_delivery_lag_seconds:count", &emitter), 3.0);
}

/// An event that only a pattern covers is counted under the pattern, not
/// under its own name: label sets stay as small as the subscriptions.
#[actix_web::test]
async fn events_only_a_pattern_covers_are_labelled_with_the_pattern() {
    recorded();
    let mut h = Harness::start();
    h.attach("metrics-pattern", "metrics.pattern.*", h.config())
        .await;
    h.emit_numbers("metrics.pattern.a", [1]);
    h.emit_numbers("metrics.pattern.b", [2]);
    for _ in 0..2 {
        h.next_final().await;
    }
    assert!(h.emitter.flush(DEADLINE).await);
    let by_pattern = [("event", "metrics.pattern.*")];
    assert_eq!(total("webhooks_events_emitted_total", &by_pattern), 2.0);
    for name in ["metrics.pattern.a", "metrics.pattern.b"] {
        let by_name = [("event", name)];
        assert_eq!(
            total("webhooks_events_emitted_total", &by_name),
            0.0,
            "{name}"
        );
    }
}

#[actix_web::test]
async fn failed_attempts_and_dead_letters_are_counted_by_kind() {
    recorded();
    let mut h = Harness::start();
    h.receiver.script([Reply::Status(500), Reply::Status(503)]);
    h.attach("metrics-fail", "metrics.fail", h.config().max_retries(2))
        .await;
    h.emit_numbers("metrics.fail", [1]);
    let (attempts, _) = loop {
        if let Outcome::DeadLettered { attempts, reason } = h.next_outcome().await {
            break (attempts, reason);
        }
    };
    assert_eq!(attempts, 2);
    let labels = |outcome| [("emitter", "metrics-fail"), ("outcome", outcome)];
    assert_eq!(total("webhooks_attempts_total", &labels("http_error")), 2.0);
    assert_eq!(total("webhooks_attempts_total", &labels("success")), 0.0);
    assert_eq!(
        total(
            "webhooks_dead_letters_total",
            &[
                ("emitter", "metrics-fail"),
                ("reason", "attempts_exhausted")
            ]
        ),
        1.0
    );
    assert_eq!(
        total("webhooks_deliveries_total", &[("emitter", "metrics-fail")]),
        0.0
    );
}

#[actix_web::test]
async fn queue_depth_and_paused_are_gauges() {
    recorded();
    let mut h = Harness::start();
    h.attach("metrics-gauge", "metrics.gauge", h.config()).await;
    h.emitter.pause("metrics-gauge").await.unwrap();
    h.emit_numbers("metrics.gauge", 1..=5);
    let emitter = [("emitter", "metrics-gauge")];
    gauge_becomes("webhooks_emitter_paused", &emitter, 1.0).await;
    gauge_becomes("webhooks_queue_depth", &emitter, 5.0).await;

    h.emitter.restart("metrics-gauge").await.unwrap();
    for _ in 0..5 {
        h.next_final().await;
    }
    gauge_becomes("webhooks_emitter_paused", &emitter, 0.0).await;
    gauge_becomes("webhooks_queue_depth", &emitter, 0.0).await;
}

#[actix_web::test]
async fn sse_clients_per_topic_is_a_gauge() {
    recorded();
    let options = SseOptions::default().heartbeat(Duration::from_millis(40));
    let live = support::live::serve(options);
    let emitter: &WebhooksEmitter = &live.emitter;
    let (_, _, events) =
        support::live::subscribe(&format!("{}/metrics-topic", live.sse), &[]).await;
    support::live::wait_for_clients(emitter, "metrics-topic", 1).await;
    gauge_becomes("webhooks_sse_clients", &[("topic", "metrics-topic")], 1.0).await;
    drop(events);
    gauge_becomes("webhooks_sse_clients", &[("topic", "metrics-topic")], 0.0).await;
}
