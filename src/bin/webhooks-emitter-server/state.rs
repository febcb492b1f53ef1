//! What every request handler shares.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use webhooks_emitter::WebhooksEmitter;

use crate::attempts::Attempts;
use crate::catalog::Catalog;
use crate::idempotency::IdempotencyKeys;
use crate::records::ServerStore;

pub struct AppState {
    pub emitter: WebhooksEmitter,
    /// The server's own records and the emitter's queues.
    pub store: ServerStore,
    pub catalog: Arc<Catalog>,
    pub keys: IdempotencyKeys,
    pub attempts: Arc<Attempts>,
    pub metrics: PrometheusHandle,
    pub rotation_grace: Duration,
    /// Largest request body.
    pub body_limit: usize,
    /// Set on SIGTERM/SIGINT: `/ready` answers 503.
    pub draining: AtomicBool,
}
