//! Several nodes on one database: each node takes up what the others change
//! in the stored endpoints, and knows whether it is current.
//!
//! Every [`SYNC_EVERY`] a node reads the stored endpoints and attaches,
//! reconfigures or detaches what differs; and the event types, whose schemas
//! check events, and the API keys. It is *current* while its last
//! read started less than [`STALE_AFTER`] ago; a node that is not refuses
//! events (503) rather than route them with a stale catalog.
//!
//! A change made on one node is announced to the others (`LISTEN/NOTIFY`,
//! with a token of its own); each reads the endpoints at once and answers
//! with the token (a record per node). The change answers once every other
//! live node has, or after [`STALE_AFTER`] at most: by then each of them has
//! read the change, or refuses events. The poll is the backstop of a missed
//! announcement.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use webhooks_emitter::AttachError;

use webhooks_emitter::PgStore;

use super::{Catalog, NAMESPACE};
use crate::clock::unix_now;
use crate::endpoint::EndpointRecord;
use crate::problem::Problem;
use crate::records::ServerStore;

/// How often a node reads the stored endpoints.
pub const SYNC_EVERY: Duration = Duration::from_millis(200);
/// How old a node's last read may be before it refuses events.
pub const STALE_AFTER: Duration = Duration::from_secs(1);
/// The topic of endpoint changes, and where each node says it read one.
const CHANGES: &str = "endpoints";
const READ_BY: &str = "endpoint-changes-read";
/// How often a change looks for the other nodes' answers.
const ACK_POLL: Duration = Duration::from_millis(10);

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
        let stored = self.store.read_records::<EndpointRecord>(NAMESPACE).await?;
        let now = unix_now();
        let mut present = HashSet::new();
        let mut changed = false;
        for (id, record) in stored {
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
        self.types.sync().await?;
        self.api_keys.sync().await?;
        self.apps.sync().await?;
        *self
            .synced_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(started);
        Ok(())
    }

    /// After a change on a shared store: waits until every other live node
    /// has read it or refuses events.
    pub async fn propagated(&self) {
        let ServerStore::Postgres(store) = &self.store else {
            return;
        };
        let deadline = tokio::time::Instant::now() + STALE_AFTER;
        let token = webhooks_emitter::RequestId::generate().to_string();
        if let Err(error) = store.announce(CHANGES, &token).await {
            tracing::warn!(%error, "endpoint change not announced; the other nodes poll");
        }
        while tokio::time::Instant::now() < deadline {
            if all_read(store, &token).await {
                return;
            }
            tokio::time::sleep(ACK_POLL).await;
        }
    }
}

/// Whether every other live node has read the change `token` names.
async fn all_read(store: &PgStore, token: &str) -> bool {
    let me = store.node_name();
    let (Ok(live), Ok(read)) = (store.live_nodes().await, store.records(READ_BY).await) else {
        return false;
    };
    live.iter().filter(|node| **node != me).all(|node| {
        read.iter()
            .any(|(reader, seen)| reader == node && seen.as_slice() == token.as_bytes())
    })
}

/// Keeps this node's catalog current, for as long as the server runs:
/// reads at once when a change is announced (and says so), and every
/// [`SYNC_EVERY`] anyway.
pub async fn follow(catalog: std::sync::Arc<Catalog>) {
    let mut failing = false;
    let mut changes = match &catalog.store {
        ServerStore::Postgres(store) => Some((store.clone(), store.announcements(CHANGES))),
        ServerStore::Journal(_) => None,
    };
    let mut announced: Option<String> = None;
    loop {
        let synced = catalog.sync().await;
        if let (Ok(()), Some(token), Some((store, _))) = (&synced, announced.take(), &changes) {
            if let Err(error) = store
                .put_record(READ_BY, &store.node_name(), token.into_bytes())
                .await
            {
                tracing::debug!(%error, "endpoint change read, not said");
            }
        }
        match synced {
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
        let Some((_, receiver)) = changes.as_mut() else {
            tokio::time::sleep(SYNC_EVERY).await;
            continue;
        };
        tokio::select! {
            () = tokio::time::sleep(SYNC_EVERY) => {}
            heard = receiver.recv() => match heard {
                Ok(token) => announced = Some(token),
                // Missed some: the next read takes them all up; their
                // changes wait out their second.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => changes = None,
            },
        }
    }
}
