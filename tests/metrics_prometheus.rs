//! The metrics as Prometheus sees them: rendered by
//! `metrics-exporter-prometheus` and read back by an independent parser
//! (`prometheus-parse`); the counters match the deliveries made. A test binary
//! of its own, since a recorder is installed once per process.
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use metrics_exporter_prometheus::PrometheusBuilder;
use prometheus_parse::{Scrape, Value};
use support::{Harness, Reply};
use webhooks_emitter::Outcome;

/// The value of the sample named `name` with exactly `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == name
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
                && s.labels.len() == labels.len()
        })
        .and_then(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
            _ => None,
        })
}

#[actix_web::test]
async fn the_rendered_text_parses_and_counts_what_happened() {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .expect("no other recorder in this process");
    let mut h = Harness::start();
    h.receiver.script([Reply::Status(500)]);
    h.attach("prom-ok", "prom.ok", h.config()).await;
    h.emit_numbers("prom.ok", 1..=3);
    let mut delivered = 0;
    while delivered < 3 {
        if let Outcome::Delivered { .. } = h.next_final().await.outcome {
            delivered += 1;
        }
    }

    let text = handle.render();
    let scrape =
        Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("not Prometheus text");
    assert!(
        scrape
            .samples
            .iter()
            .all(|s| s.metric.starts_with("webhooks_")),
        "{text}"
    );
    let emitter = ("emitter", "prom-ok");
    assert_eq!(
        value(
            &scrape,
            "webhooks_events_emitted_total",
            &[("event", "prom.ok")]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(&scrape, "webhooks_deliveries_total", &[emitter]),
        Some(3.0)
    );
    assert_eq!(
        value(
            &scrape,
            "webhooks_attempts_total",
            &[emitter, ("outcome", "success")]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &scrape,
            "webhooks_attempts_total",
            &[emitter, ("outcome", "http_error")]
        ),
        Some(1.0)
    );
    // Histograms render as summaries; their counts, read off the text: every
    // attempt is timed (one failure, three successes), every delivery's lag.
    for (line, count) in [
        (
            "webhooks_attempt_duration_seconds_count{emitter=\"prom-ok\"}",
            4,
        ),
        (
            "webhooks_delivery_lag_seconds_count{emitter=\"prom-ok\"}",
            3,
        ),
    ] {
        let found = text
            .lines()
            .find_map(|l| l.strip_prefix(line))
            .map(str::trim);
        assert_eq!(found, Some(count.to_string().as_str()), "{line}:\n{text}");
    }
}
