//! The scoped API keys: kept in the server's store (namespace `api-keys`,
//! the secrets' hashes only), held in memory for every request's check. On a
//! shared store each node takes up the others' keys and revocations with its
//! endpoints (`sync`), so that a revoked key is refused on every node once
//! the revocation has answered.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use tokio::sync::Mutex;

use crate::api_key::{parse, ApiKeyRecord, ApiKeySpec, ApiKeyView, NewApiKey, Scope};
use crate::clock::unix_now;
use crate::problem::Problem;
use crate::records::ServerStore;

/// Where keys live in the store.
const NAMESPACE: &str = "api-keys";

/// Every key, by id.
pub struct ApiKeys {
    store: ServerStore,
    /// Serializes changes, so that a sync does not undo one half-made.
    changing: Mutex<()>,
    keys: RwLock<HashMap<String, ApiKeyRecord>>,
}

async fn read_all(store: &ServerStore) -> Result<HashMap<String, ApiKeyRecord>, Problem> {
    Ok(store.read_records(NAMESPACE).await?.into_iter().collect())
}

impl ApiKeys {
    /// Reads the stored keys.
    pub async fn load(store: ServerStore) -> Result<Self, String> {
        let keys = read_all(&store)
            .await
            .map_err(|p| format!("cannot read the API keys: {}", p.detail))?;
        Ok(ApiKeys {
            store,
            changing: Mutex::new(()),
            keys: RwLock::new(keys),
        })
    }

    /// Reads the stored keys again (on a shared store, other nodes' changes).
    pub async fn sync(&self) -> Result<(), Problem> {
        let _changing = self.changing.lock().await;
        let stored = read_all(&self.store).await?;
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = stored;
        Ok(())
    }

    /// Makes a key; the answer holds it, shown this once.
    pub async fn create(&self, spec: ApiKeySpec) -> Result<NewApiKey, Problem> {
        let (record, key) = spec.issue(unix_now())?;
        let _changing = self.changing.lock().await;
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| Problem::bad_request(format!("API key not storable: {e}")))?;
        // 64 random bits of id: a clash is as good as impossible, but one
        // would not replace the other key.
        if !self
            .store
            .insert_record(NAMESPACE, &record.id, bytes)
            .await?
        {
            return Err(Problem::unavailable(
                "a new key's id was taken; make the key again",
            ));
        }
        let view = ApiKeyView::from(&record);
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(record.id.clone(), record);
        Ok(NewApiKey { view, key })
    }

    /// Every key, newest last (no secrets).
    pub fn list(&self) -> Vec<ApiKeyView> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let mut views: Vec<(u64, ApiKeyView)> = keys
            .values()
            .map(|record| (record.created_at, ApiKeyView::from(record)))
            .collect();
        views.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        views.into_iter().map(|(_, view)| view).collect()
    }

    /// Revokes (deletes) key `id`: refused from then on.
    pub async fn revoke(&self, id: &str) -> Result<(), Problem> {
        let _changing = self.changing.lock().await;
        if !self.store.delete_record(NAMESPACE, id).await? {
            return Err(Problem::not_found(format!("no API key with id `{id}`")));
        }
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        Ok(())
    }

    /// What `offered` (a bearer token that is not the admin token) may do,
    /// if it is one of our keys; `None` for anything else (revoked, made
    /// up, or not shaped like a key).
    pub fn grant(&self, offered: &str) -> Option<Grant> {
        let (id, secret) = parse(offered)?;
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.get(id)
            .filter(|record| record.matches(secret))
            .map(|record| Grant {
                scopes: record.scopes.iter().copied().collect(),
                app: record.app.clone(),
            })
    }

    /// Revokes every key bound to application `app` (being deleted: an
    /// application made again with its id must not inherit them).
    pub async fn revoke_bound_to(&self, app: &str) -> Result<(), Problem> {
        let bound: Vec<String> = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|record| record.app.as_deref() == Some(app))
            .map(|record| record.id.clone())
            .collect();
        for id in bound {
            match self.revoke(&id).await {
                // Revoked meanwhile, here or on another node.
                Ok(()) => {}
                Err(problem) if problem.status == 404 => {}
                Err(problem) => return Err(problem),
            }
        }
        Ok(())
    }
}

/// What a key may do: its scopes, and the application it is bound to.
pub struct Grant {
    pub scopes: Vec<Scope>,
    pub app: Option<String>,
}
