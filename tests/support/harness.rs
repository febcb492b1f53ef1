//! An emitter, a receiver and a report subscription, set up in one line.

use tokio::sync::broadcast;
use webhooks_emitter::{
    Config, DeliveryReport, Event, Outcome, RequestId, WebhooksEmitter, WebhooksEmitterBuilder,
};

use super::{Receiver, DEADLINE};

/// A config with test-friendly timings: 10–40 ms backoff, 10 s timeout.
pub fn fast_config(url: impl Into<String>) -> Config {
    Config::new(url)
        .backoff(
            std::time::Duration::from_millis(10),
            std::time::Duration::from_millis(40),
        )
        .request_timeout(std::time::Duration::from_secs(10))
}

/// An emitter in the running actix System, a receiver on loopback, and a
/// subscription to reports taken before anything happens.
pub struct Harness {
    pub emitter: WebhooksEmitter,
    pub receiver: Receiver,
    pub reports: broadcast::Receiver<DeliveryReport>,
}

impl Harness {
    /// With default options.
    pub fn start() -> Self {
        Self::with(WebhooksEmitter::builder())
    }

    /// With the builder's options.
    pub fn with(builder: WebhooksEmitterBuilder) -> Self {
        Self::around(builder.start())
    }

    /// Around an emitter started elsewhere (e.g. in the background).
    pub fn around(emitter: WebhooksEmitter) -> Self {
        let reports = emitter.reports();
        Harness {
            emitter,
            receiver: Receiver::start(),
            reports,
        }
    }

    /// [`fast_config`] to the receiver's `/`.
    pub fn config(&self) -> Config {
        fast_config(self.receiver.url("/"))
    }

    /// Attaches `id` to `event` with `config`; the test fails if it is refused.
    pub async fn attach(&self, id: &str, event: &str, config: Config) {
        self.emitter
            .attach(id, event, config)
            .await
            .unwrap_or_else(|e| panic!("attach {id}: {e}"));
    }

    /// Emits `{"n": n}` under `event` for each `n`; returns the request ids.
    pub fn emit_numbers(
        &self,
        event: &str,
        numbers: impl IntoIterator<Item = i64>,
    ) -> Vec<RequestId> {
        numbers
            .into_iter()
            .map(|n| {
                self.emitter
                    .emit(event, &serde_json::json!({ "n": n }), None)
                    .unwrap()
            })
            .collect()
    }

    /// The next report.
    pub async fn next_report(&mut self) -> DeliveryReport {
        next_report(&mut self.reports).await
    }

    /// The next outcome of the next report.
    pub async fn next_outcome(&mut self) -> Outcome {
        self.next_report().await.outcome
    }

    /// The failure of the next report, which must be a failed attempt.
    pub async fn next_failure(&mut self) -> webhooks_emitter::Failure {
        match self.next_outcome().await {
            Outcome::AttemptFailed { failure, .. } => failure,
            other => panic!("expected a failed attempt, got {other:?}"),
        }
    }

    /// The attempts and reason of the next report, which must be a dead letter.
    pub async fn next_dead_letter(&mut self) -> (u32, webhooks_emitter::DeadLetterReason) {
        match self.next_outcome().await {
            Outcome::DeadLettered { attempts, reason } => (attempts, reason),
            other => panic!("expected a dead letter, got {other:?}"),
        }
    }

    /// The next final report (failed attempts skipped).
    pub async fn next_final(&mut self) -> DeliveryReport {
        next_final(&mut self.reports).await
    }

    /// The next `n` final reports, in arrival order.
    pub async fn finals(&mut self, n: usize) -> Vec<DeliveryReport> {
        finals(&mut self.reports, n).await
    }
}

/// The `n` field of an event's `{"n": …}` payload.
pub fn n_of(event: &Event) -> i64 {
    event.payload_json::<serde_json::Value>().unwrap()["n"]
        .as_i64()
        .expect("payload has no integer `n`")
}

/// The next report, failing the test after [`DEADLINE`] or if reports were lost.
pub async fn next_report(reports: &mut broadcast::Receiver<DeliveryReport>) -> DeliveryReport {
    tokio::time::timeout(DEADLINE, reports.recv())
        .await
        .expect("no report in time")
        .expect("report channel lagged or closed")
}

/// The next report whose outcome is final for its event (delivered,
/// dead-lettered or dropped), skipping failed attempts.
pub async fn next_final(reports: &mut broadcast::Receiver<DeliveryReport>) -> DeliveryReport {
    loop {
        let report = next_report(reports).await;
        if !matches!(report.outcome, Outcome::AttemptFailed { .. }) {
            return report;
        }
    }
}

/// Waits for `n` final reports and returns them in arrival order.
pub async fn finals(
    reports: &mut broadcast::Receiver<DeliveryReport>,
    n: usize,
) -> Vec<DeliveryReport> {
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        all.push(next_final(reports).await);
    }
    all
}

/// Whether every report is a delivery.
pub fn all_delivered(reports: &[DeliveryReport]) -> bool {
    reports
        .iter()
        .all(|r| matches!(r.outcome, Outcome::Delivered { .. }))
}
