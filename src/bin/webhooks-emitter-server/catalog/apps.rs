//! The applications: kept in the server's store (namespace `apps`), held in
//! memory for every request that names one. `default` is stored at the first
//! start. On a shared store each node takes up the others' changes with its
//! endpoints (`sync`).

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock};

use tokio::sync::Mutex;

use crate::app::{check_spec, unknown_app, AppPatch, AppRecord, AppSpec, AppView};
use crate::clock::unix_now;
use crate::ids::DEFAULT_APP;
use crate::problem::Problem;
use crate::records::ServerStore;

/// Where applications live in the store.
const NAMESPACE: &str = "apps";

/// Every application, by id.
pub struct Apps {
    store: ServerStore,
    /// Serializes changes, so that a sync does not undo one half-made.
    changing: Mutex<()>,
    records: RwLock<BTreeMap<String, AppRecord>>,
}

async fn read_all(store: &ServerStore) -> Result<BTreeMap<String, AppRecord>, Problem> {
    Ok(store.read_records(NAMESPACE).await?.into_iter().collect())
}

fn encode(record: &AppRecord) -> Result<Vec<u8>, Problem> {
    serde_json::to_vec(record)
        .map_err(|e| Problem::bad_request(format!("application not storable: {e}")))
}

/// A page of the list, and the cursor of the next one.
pub struct Page {
    pub apps: Vec<AppView>,
    pub next: Option<String>,
}

impl Apps {
    /// Reads the stored applications; stores `default` if it is not there.
    pub async fn load(store: ServerStore) -> Result<Self, String> {
        let now = unix_now();
        let default = AppRecord {
            spec: AppSpec {
                id: DEFAULT_APP.into(),
                name: "Default application".into(),
                metadata: BTreeMap::new(),
            },
            created_at: now,
            updated_at: now,
        };
        let failed = |p: Problem| format!("cannot read the applications: {}", p.detail);
        // Where it is missing only: of several nodes starting at once, one
        // stores it.
        store
            .insert_record(NAMESPACE, DEFAULT_APP, encode(&default).map_err(failed)?)
            .await
            .map_err(|e| failed(e.into()))?;
        let records = read_all(&store).await.map_err(failed)?;
        Ok(Apps {
            store,
            changing: Mutex::new(()),
            records: RwLock::new(records),
        })
    }

    /// Reads the stored applications again (other nodes' changes).
    pub async fn sync(&self) -> Result<(), Problem> {
        let _changing = self.changing.lock().await;
        let stored = read_all(&self.store).await?;
        *self.records.write().unwrap_or_else(PoisonError::into_inner) = stored;
        Ok(())
    }

    /// Every application's id.
    pub fn ids(&self) -> Vec<String> {
        self.records
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    /// Whether application `app` exists.
    pub fn contains(&self, app: &str) -> bool {
        self.records
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(app)
    }

    /// Makes an application (409 if the id exists, on any node).
    pub async fn create(&self, spec: AppSpec) -> Result<AppView, Problem> {
        check_spec(&spec)?;
        let now = unix_now();
        let record = AppRecord {
            spec,
            created_at: now,
            updated_at: now,
        };
        let id = record.spec.id.clone();
        let _changing = self.changing.lock().await;
        if !self
            .store
            .insert_record(NAMESPACE, &id, encode(&record)?)
            .await?
        {
            return Err(Problem::conflict(format!(
                "an application with id `{id}` already exists"
            )));
        }
        let view = AppView::from(&record);
        self.records
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, record);
        Ok(view)
    }

    /// Up to `limit` applications by id, after the cursor `after`; with
    /// `only`, that one alone (a key bound to it sees no other).
    pub fn list(&self, after: Option<&str>, limit: usize, only: Option<&str>) -> Page {
        let records = self.records.read().unwrap_or_else(PoisonError::into_inner);
        let mut apps: Vec<AppView> = records
            .range::<str, _>((
                after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
                std::ops::Bound::Unbounded,
            ))
            .filter(|(id, _)| only.is_none_or(|only| only == id.as_str()))
            .take(limit.saturating_add(1))
            .map(|(_, record)| AppView::from(record))
            .collect();
        let next = (apps.len() > limit).then(|| {
            apps.truncate(limit);
            apps.last().map(|app| app.id.clone()).unwrap_or_default()
        });
        Page { apps, next }
    }

    pub fn get(&self, app: &str) -> Result<AppView, Problem> {
        self.records
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(app)
            .map(AppView::from)
            .ok_or_else(|| unknown_app(app))
    }

    pub async fn update(&self, app: &str, patch: AppPatch) -> Result<AppView, Problem> {
        let _changing = self.changing.lock().await;
        let old = self
            .records
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(app)
            .cloned()
            .ok_or_else(|| unknown_app(app))?;
        let record = patch.apply(old, unix_now())?;
        self.store
            .put_record(NAMESPACE, app, encode(&record)?)
            .await?;
        let view = AppView::from(&record);
        self.records
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(app.to_owned(), record);
        Ok(view)
    }

    /// Deletes the record only: the caller deletes what the application
    /// holds first, so that a delete cut short leaves the application, to
    /// be deleted again, never endpoints without one.
    pub async fn remove(&self, app: &str) -> Result<(), Problem> {
        let _changing = self.changing.lock().await;
        if !self.store.delete_record(NAMESPACE, app).await? {
            return Err(unknown_app(app));
        }
        self.records
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(app);
        Ok(())
    }
}
