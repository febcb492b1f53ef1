//! What every request handler shares.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use webhooks_emitter::{Journal, WebhooksEmitter};

use crate::attempts::Attempts;
use crate::catalog::Catalog;
use crate::idempotency::IdempotencyKeys;

pub struct AppState {
    pub emitter: WebhooksEmitter,
    pub journal: Journal,
    pub catalog: Catalog,
    pub keys: IdempotencyKeys,
    pub attempts: Arc<Attempts>,
    pub metrics: PrometheusHandle,
    pub rotation_grace: Duration,
    /// Largest request body.
    pub body_limit: usize,
    /// Set on SIGTERM/SIGINT: `/ready` answers 503.
    pub draining: AtomicBool,
}
