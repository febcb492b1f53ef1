//! Where the server keeps its own state (applications, endpoints, event types,
//! API keys, idempotency keys, messages, attempts): application records on
//! the journal, or on PostgreSQL, behind one interface, so that every table
//! the server adds exists on both.

use std::collections::HashMap;

use serde::de::DeserializeOwned;

use webhooks_emitter::{Journal, RecordChange, Records, Store, StoreError, StoredCounters};

/// The name of a record numbered `number`: zero-padded, so that the store
/// lists records in the order of their numbers.
pub fn numbered_key(number: u64) -> String {
    format!("{number:020}")
}

/// The server's store: the journal's file, or a PostgreSQL database shared
/// by every node.
#[derive(Clone, Debug)]
pub enum ServerStore {
    Journal(Journal),
    Postgres(webhooks_emitter::PgStore),
}

/// Calls one method of whichever store it is.
macro_rules! on_store {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            ServerStore::Journal($s) => $call,
            ServerStore::Postgres($s) => $call,
        }
    };
}

impl ServerStore {
    /// The same store, for the emitter's queues.
    pub fn queues(&self) -> Store {
        on_store!(self, s => Store::from(s.clone()))
    }

    /// Whether other processes share it (PostgreSQL): then what one node
    /// changes, the others must take up.
    pub fn shared(&self) -> bool {
        !matches!(self, ServerStore::Journal(_))
    }

    /// Every emitter's counters as a shared store keeps them (none on the
    /// journal, whose node's own stats are the whole story, nor when the
    /// database does not answer).
    pub async fn counters(&self) -> HashMap<String, StoredCounters> {
        match self {
            ServerStore::Journal(_) => HashMap::new(),
            ServerStore::Postgres(store) => store.counters().await.unwrap_or_default(),
        }
    }

    /// At the end of a graceful stop, after the emitter's shutdown: on
    /// PostgreSQL, this node's leases go back and it leaves the live nodes
    /// at once, so that a node started again with its name is not refused
    /// and the others take its endpoints without waiting out the lease. (The
    /// journal commits every write as it comes; nothing is left to do.)
    pub async fn close(&self) {
        if let ServerStore::Postgres(store) = self {
            store.close().await;
        }
    }

    /// After an endpoint is deleted and every node has detached it: its
    /// stored rows go too (on the journal, `detach` removed them already).
    pub async fn discard(&self, id: &str) {
        if let ServerStore::Postgres(store) = self {
            match store.discard(id).await {
                Ok(true) => {
                    tracing::info!(endpoint = %id, "stored rows of the deleted endpoint removed")
                }
                Ok(false) => {
                    tracing::warn!(endpoint = %id, "a live node still attaches the deleted endpoint; its rows stay")
                }
                Err(error) => {
                    tracing::warn!(endpoint = %id, %error, "stored rows of the deleted endpoint not removed")
                }
            }
        }
    }

    pub async fn put_record(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), StoreError> {
        on_store!(self, s => s.put_record(namespace, key, value).await)
    }

    /// Stores only if the key is free; whether it stored.
    pub async fn insert_record(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<bool, StoreError> {
        on_store!(self, s => s.insert_record(namespace, key, value).await)
    }

    pub async fn delete_record(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        on_store!(self, s => s.delete_record(namespace, key).await)
    }

    pub async fn change_records(&self, changes: Vec<RecordChange>) -> Result<(), StoreError> {
        on_store!(self, s => s.change_records(changes).await)
    }

    /// `changes` in the store's next group commit, with the events sent
    /// beside them: on PostgreSQL in their transaction (`group_records`),
    /// on the journal as every write is.
    pub async fn group_records(&self, changes: Vec<RecordChange>) -> Result<(), StoreError> {
        match self {
            ServerStore::Journal(journal) => journal.change_records(changes).await,
            ServerStore::Postgres(store) => store.group_records(changes).await,
        }
    }

    pub async fn records(&self, namespace: &str) -> Result<Records, StoreError> {
        on_store!(self, s => s.records(namespace).await)
    }

    pub async fn record(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        on_store!(self, s => s.record(namespace, key).await)
    }

    /// Up to `limit` records after `after`, by key.
    pub async fn records_after(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Records, StoreError> {
        on_store!(self, s => s.records_after(namespace, after, limit).await)
    }

    /// Up to `limit` records before `before`, the greatest key first.
    pub async fn records_before(
        &self,
        namespace: &str,
        before: &str,
        limit: usize,
    ) -> Result<Records, StoreError> {
        on_store!(self, s => s.records_before(namespace, before, limit).await)
    }

    /// The records of `namespace` read as JSON `T`, in the store's order.
    /// One that does not read is logged and skipped: the server writes only
    /// readable ones, so it came from elsewhere.
    pub async fn read_records<T: DeserializeOwned>(
        &self,
        namespace: &str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let mut read = Vec::new();
        for (key, bytes) in self.records(namespace).await? {
            match serde_json::from_slice(&bytes) {
                Ok(value) => read.push((key, value)),
                Err(error) => {
                    tracing::error!(namespace, %key, %error, "stored record unreadable; skipped")
                }
            }
        }
        Ok(read)
    }
}
