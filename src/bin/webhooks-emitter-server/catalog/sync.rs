//! Several nodes on one database: each node takes up what the others change
//! in the stored endpoints, and knows whether it is current.
//!
//! Every [`SYNC_EVERY`] a node reads the stored endpoints and attaches,
//! reconfigures or detaches what differs. It is *current* while its last
//! read started less than [`STALE_AFTER`] ago; a node that is not refuses
//! events (503) rather than route them with a stale catalog. A change made
//! on one node answers after [`STALE_AFTER`] when other nodes are live: by
//! then each of them has read the change, or refuses events.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use webhooks_emitter::AttachError;

use super::{Catalog, NAMESPACE};
use crate::endpoint::{unix_now, EndpointRecord};
use crate::problem::Problem;

/// How often a node reads the stored endpoints.
pub const SYNC_EVERY: Duration = Duration::from_millis(200);
/// How old a node's last read may be before it refuses events.
pub const STALE_AFTER: Duration = Duration::from_secs(1);

impl Catalog {
    /// Whether this node may route events: always on the journal; on a
    /// shared store, while its last read is recent.
    pub fn current(&self) -> bool {
        if !self.store.shared() {
            return true;
        }
        self.read_at().is_some_and(|at| at.elapsed() < STALE_AFTER)
    }

    fn read_at(&self) -> Option<Instant> {
        *self
            .synced_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads the stored endpoints and takes up what changed elsewhere.
    pub async fn sync(&self) -> Result<(), Problem> {
        // Locked before the read: a change made here meanwhile (it holds the
        // lock until stored) must not be undone by a read from before it.
        let mut records = self.records.lock().await;
        let started = Instant::now();
        let stored = self.store.records(NAMESPACE).await?;
        let now = unix_now();
        let mut present = HashSet::new();
        let mut changed = false;
        for (id, bytes) in stored {
            let Ok(record) = serde_json::from_slice::<EndpointRecord>(&bytes) else {
                tracing::error!(endpoint = %id, "stored endpoint unreadable; skipped");
                continue;
            };
            present.insert(id.clone());
            let same = records.get(&id).is_some_and(|local| {
                serde_json::to_value(local).ok() == serde_json::to_value(&record).ok()
            });
            if same {
                continue;
            }
            let (events, config) = (record.spec.events.clone(), record.config(now));
            let attached = match self
                .emitter
                .reconfigure(id.clone(), events.clone(), config)
                .await
            {
                Err(AttachError::UnknownEmitter { .. }) => {
                    self.emitter
                        .attach_many(id.clone(), events, record.config(now))
                        .await
                }
                other => other,
            };
            match attached {
                Ok(()) => tracing::info!(endpoint = %id, "endpoint taken up from another node"),
                Err(error) => {
                    tracing::error!(endpoint = %id, %error, "stored endpoint not attached")
                }
            }
            records.insert(id, record);
            changed = true;
        }
        let gone: Vec<String> = records
            .keys()
            .filter(|id| !present.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            records.remove(&id);
            let _ = self.emitter.detach(&id).await;
            tracing::info!(endpoint = %id, "endpoint deleted on another node");
            changed = true;
        }
        if changed {
            self.reindex(&records);
        }
        *self
            .synced_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(started);
        Ok(())
    }

    /// After a change on a shared store: waits until every other live node
    /// has read it or refuses events.
    pub async fn propagated(&self) {
        if self.store.other_live_nodes().await != Some(0) {
            tokio::time::sleep(STALE_AFTER).await;
        }
    }
}

/// Keeps this node's catalog current, for as long as the server runs.
pub async fn follow(catalog: std::sync::Arc<Catalog>) {
    let mut failing = false;
    loop {
        match catalog.sync().await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("endpoints readable again; events accepted");
            }
            Ok(()) => {}
            Err(problem) => {
                if !failing {
                    tracing::error!(%problem, "endpoints unreadable; events refused until they are");
                }
                failing = true;
            }
        }
        tokio::time::sleep(SYNC_EVERY).await;
    }
}
