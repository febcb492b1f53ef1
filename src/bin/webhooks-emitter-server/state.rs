//! What every request handler shares.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use webhooks_emitter::WebhooksEmitter;

use crate::attempts::Attempts;
use crate::catalog::Catalog;
use crate::endpoint::EndpointAt;
use crate::idempotency::IdempotencyKeys;
use crate::ids::DEFAULT_APP;
use crate::messages::Messages;
use crate::portal_link::PortalLinks;
use crate::problem::Problem;
use crate::records::ServerStore;

pub struct AppState {
    pub emitter: WebhooksEmitter,
    /// The server's own records and the emitter's queues.
    pub store: ServerStore,
    pub catalog: Arc<Catalog>,
    pub keys: IdempotencyKeys,
    pub attempts: Arc<Attempts>,
    /// Every accepted event, per application.
    pub messages: Messages,
    pub metrics: PrometheusHandle,
    pub rotation_grace: Duration,
    /// How long messages keep their payloads (`--retention`).
    pub retention: Duration,
    pub portal: Portal,
    /// Largest request body.
    pub body_limit: usize,
    /// Set on SIGTERM/SIGINT: `/ready` answers 503.
    pub draining: AtomicBool,
}

/// The customer portal's settings.
pub struct Portal {
    pub links: PortalLinks,
    /// `--public-url`, for the links' address.
    pub public_url: Option<String>,
    /// `--portal-frame-ancestors`.
    pub frame_ancestors: String,
}

impl AppState {
    /// The emitter's handle for the events of application `app`: its
    /// tenant (`default` has none, as before applications).
    pub fn emitter_for(&self, app: &str) -> Result<WebhooksEmitter, Problem> {
        if app == DEFAULT_APP {
            return Ok(self.emitter.clone());
        }
        Ok(self.emitter.for_tenant(app)?)
    }

    /// Removes endpoints: their records, attempts, queued events and dead
    /// letters; gone on every node when this returns.
    pub async fn remove_endpoints(&self, endpoints: &[EndpointAt]) -> Result<(), Problem> {
        for at in endpoints {
            self.catalog.delete(at).await?;
            self.attempts.forget(&at.key).await?;
        }
        // Detached everywhere before their queues go: no node delivers
        // from a queue being deleted.
        self.catalog.propagated().await;
        for at in endpoints {
            self.store.discard(&at.key).await;
        }
        Ok(())
    }
}
