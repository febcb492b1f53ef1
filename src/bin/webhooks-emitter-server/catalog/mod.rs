//! The endpoints: kept in the server's store (namespace `endpoints`),
//! attached to the emitter, re-attached at start. Changes are serialized by
//! one lock, so the emitter and the store never disagree; a change that fails
//! half-way is undone, so nothing is half-created.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::sync::Mutex;
use webhooks_emitter::{
    channels_admit, subscription_covers, AttachError, EmitterStats, StoredCounters, WebhooksEmitter,
};

use crate::clock::unix_now;
use crate::endpoint::{
    EndpointAt, EndpointPatch, EndpointRecord, EndpointSpec, EndpointView, RetiringKey,
};
use crate::ids::check_id;
use crate::problem::Problem;
use crate::records::ServerStore;
use crate::secrets::new_standard_key;

mod api_keys;
mod apps;
mod event_types;
mod sync;
pub use api_keys::{ApiKeys, Grant};
use apps::Apps;
pub use event_types::EventTypes;
pub use sync::follow;

/// Where endpoint records live in the store.
const NAMESPACE: &str = "endpoints";

/// Writes `record` to the store; returns once it is committed.
async fn write_record(store: &ServerStore, record: &EndpointRecord) -> Result<(), Problem> {
    let bytes = serde_json::to_vec(record)
        .map_err(|e| Problem::bad_request(format!("endpoint not storable: {e}")))?;
    Ok(store.put_record(NAMESPACE, &record.key(), bytes).await?)
}

/// Every endpoint, in the emitter and in the store.
pub struct Catalog {
    emitter: WebhooksEmitter,
    store: ServerStore,
    /// By emitter id (see `ids::emitter_id`).
    records: Mutex<BTreeMap<String, EndpointRecord>>,
    /// Who gets which event, per application, for the answer to every
    /// event: read without the records' lock, rebuilt when an endpoint
    /// changes.
    subscribers: std::sync::RwLock<HashMap<String, SubscriberIndex>>,
    /// When the last read of the stored endpoints started (see `sync`).
    synced_at: std::sync::Mutex<Option<std::time::Instant>>,
    /// The event types, whose schemas check events, and the API keys; read
    /// with the endpoints, so that a current node has current schemas and
    /// knows every revocation.
    pub types: EventTypes,
    pub api_keys: ApiKeys,
    pub apps: Apps,
}

/// `stats` with the counters a shared store keeps for its emitter, where
/// they are ahead (they count every node's work; this node's own count can
/// be ahead of them by what it has not committed yet).
fn with_counters(
    mut stats: EmitterStats,
    stored: &HashMap<String, StoredCounters>,
) -> EmitterStats {
    if let Some(stored) = stored.get(&stats.id) {
        stats.delivered = stats.delivered.max(stored.delivered);
        stats.failed_attempts = stats.failed_attempts.max(stored.failed_attempts);
        stats.dead_lettered = stats.dead_lettered.max(stored.dead_lettered);
    }
    stats
}

/// Which endpoints an event reaches, for the answer to every event:
/// endpoints attached to names only and on no channel, counted per name;
/// the others (a pattern among their names, or channels), looked through
/// one by one.
#[derive(Default)]
struct SubscriberIndex {
    by_name: HashMap<String, usize>,
    others: Vec<(Vec<String>, Vec<String>)>,
}

impl SubscriberIndex {
    /// One index per application.
    fn per_app(records: &BTreeMap<String, EndpointRecord>) -> HashMap<String, Self> {
        let mut indexes: HashMap<String, SubscriberIndex> = HashMap::new();
        for record in records.values() {
            indexes.entry(record.app.clone()).or_default().add(record);
        }
        indexes
    }

    fn add(&mut self, record: &EndpointRecord) {
        let spec = &record.spec;
        if !spec.channels.is_empty() || spec.events.iter().any(|e| e.contains('*')) {
            self.others
                .push((spec.events.clone(), spec.channels.clone()));
            return;
        }
        let names: std::collections::HashSet<&String> = spec.events.iter().collect();
        for name in names {
            *self.by_name.entry(name.clone()).or_default() += 1;
        }
    }

    /// How many endpoints get an event named `event` sent to `channels`
    /// (each once): as the library routes it.
    fn count(&self, event: &str, channels: &[String]) -> usize {
        // Those endpoints are on no channel.
        let none: &[String] = &[];
        let by_name = if channels_admit(none, channels) {
            self.by_name.get(event).copied().unwrap_or(0)
        } else {
            0
        };
        let others = self
            .others
            .iter()
            .filter(|(names, on)| {
                names.iter().any(|n| subscription_covers(n, event)) && channels_admit(on, channels)
            })
            .count();
        by_name + others
    }
}

impl Catalog {
    /// Reads the stored endpoints and attaches each; one that no longer
    /// attaches is kept, shown as `detached`, and logged.
    pub async fn load(emitter: WebhooksEmitter, store: ServerStore) -> Result<Self, String> {
        let stored = store
            .read_records::<EndpointRecord>(NAMESPACE)
            .await
            .map_err(|e| format!("cannot read the endpoints: {e}"))?;
        let mut records = BTreeMap::new();
        let now = unix_now();
        for (id, mut record) in stored {
            // Keys past their grace period leave the file too.
            if record.retire_expired(now) {
                if let Err(problem) = write_record(&store, &record).await {
                    tracing::error!(endpoint = %id, %problem, "retired key not removed from the store");
                }
            }
            let spec = &record.spec;
            match emitter
                .attach_many(id.clone(), spec.events.clone(), record.config(now))
                .await
            {
                Ok(()) => tracing::info!(endpoint = %id, "endpoint re-attached"),
                Err(error) => {
                    tracing::error!(endpoint = %id, %error, "stored endpoint not attached")
                }
            }
            records.insert(id, record);
        }
        let types = EventTypes::load(store.clone()).await?;
        let api_keys = ApiKeys::load(store.clone()).await?;
        let apps = Apps::load(store.clone()).await?;
        Ok(Catalog {
            emitter,
            types,
            api_keys,
            apps,
            store,
            subscribers: std::sync::RwLock::new(SubscriberIndex::per_app(&records)),
            records: Mutex::new(records),
            synced_at: std::sync::Mutex::new(Some(std::time::Instant::now())),
        })
    }

    async fn save(&self, record: &EndpointRecord) -> Result<(), Problem> {
        write_record(&self.store, record).await
    }

    /// A view of one endpoint, with its live stats.
    async fn view(&self, record: &EndpointRecord) -> EndpointView {
        let stats = self.stats(&record.key()).await.ok();
        EndpointView::new(record, stats)
    }

    /// The stats of the endpoint whose emitter id is `id`: this node's,
    /// with the cluster's counters on a shared store (the same on every
    /// node).
    pub async fn stats(&self, id: &str) -> Result<EmitterStats, Problem> {
        let stats = self.emitter.stats(id).await?;
        let counters = self.store.counters().await;
        Ok(with_counters(stats, &counters))
    }

    /// Every endpoint of application `app` with its stats, asked of the
    /// emitter once for all.
    pub async fn list(&self, app: &str) -> Vec<EndpointView> {
        let counters = self.store.counters().await;
        let mut stats: HashMap<String, EmitterStats> = self
            .emitter
            .stats_all()
            .await
            .into_iter()
            .map(|s| (s.id.clone(), with_counters(s, &counters)))
            .collect();
        let records = self.records.lock().await;
        records
            .values()
            .filter(|record| record.app == app)
            .map(|record| EndpointView::new(record, stats.remove(&record.key())))
            .collect()
    }

    pub async fn get(&self, at: &EndpointAt) -> Result<EndpointView, Problem> {
        let records = self.records.lock().await;
        let record = records.get(&at.key).ok_or_else(|| at.unknown())?;
        Ok(self.view(record).await)
    }

    /// What the endpoint subscribes to: its names and patterns, and its
    /// channels.
    pub async fn subscription(
        &self,
        at: &EndpointAt,
    ) -> Result<(Vec<String>, Vec<String>), Problem> {
        let records = self.records.lock().await;
        let record = records.get(&at.key).ok_or_else(|| at.unknown())?;
        Ok((record.spec.events.clone(), record.spec.channels.clone()))
    }

    /// How many endpoints of `app` an event named `event`, sent to
    /// `channels`, reaches.
    pub fn subscribers(&self, app: &str, event: &str, channels: &[String]) -> usize {
        let indexes = self
            .subscribers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        indexes
            .get(app)
            .map_or(0, |index| index.count(event, channels))
    }

    /// After a change of `records`.
    fn reindex(&self, records: &BTreeMap<String, EndpointRecord>) {
        *self
            .subscribers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = SubscriberIndex::per_app(records);
    }

    /// Whether the endpoint exists (attached or not).
    pub async fn contains(&self, at: &EndpointAt) -> bool {
        self.records.lock().await.contains_key(&at.key)
    }

    /// Every endpoint's emitter id, in every application.
    pub async fn keys(&self) -> Vec<String> {
        self.records.lock().await.keys().cloned().collect()
    }

    /// The endpoints of application `app`.
    pub async fn endpoints_of(&self, app: &str) -> Vec<EndpointAt> {
        let records = self.records.lock().await;
        records
            .values()
            .filter(|record| record.app == app)
            .map(|record| EndpointAt::new(app, &record.spec.id))
            .collect()
    }

    pub async fn create(&self, app: &str, spec: EndpointSpec) -> Result<EndpointView, Problem> {
        check_id("endpoint", &spec.id).map_err(Problem::bad_request)?;
        let mut records = self.records.lock().await;
        let record = EndpointRecord {
            app: app.to_owned(),
            spec,
            retiring_keys: Vec::new(),
            created_at: unix_now(),
        };
        let id = record.key();
        if records.contains_key(&id) {
            return Err(Problem::conflict(format!(
                "an endpoint with id `{}` already exists",
                record.spec.id
            )));
        }
        self.emitter
            .attach_many(
                id.clone(),
                record.spec.events.clone(),
                record.config(unix_now()),
            )
            .await?;
        // Stored only where no endpoint is: of two nodes creating one id at
        // once, one stores it.
        let stored = match serde_json::to_vec(&record) {
            Ok(bytes) => self.store.insert_record(NAMESPACE, &id, bytes).await,
            Err(e) => return Err(Problem::bad_request(format!("endpoint not storable: {e}"))),
        };
        match stored {
            Ok(true) => {}
            Ok(false) => {
                let _ = self.emitter.detach(&id).await;
                return Err(Problem::conflict(format!(
                    "an endpoint with id `{}` already exists",
                    record.spec.id
                )));
            }
            Err(error) => {
                let _ = self.emitter.detach(&id).await;
                return Err(error.into());
            }
        }
        let view = self.view(&record).await;
        records.insert(id, record);
        self.reindex(&records);
        Ok(view)
    }

    pub async fn update(
        &self,
        at: &EndpointAt,
        patch: EndpointPatch,
    ) -> Result<EndpointView, Problem> {
        let mut records = self.records.lock().await;
        let old = records.get(&at.key).ok_or_else(|| at.unknown())?;
        let record = EndpointRecord {
            spec: patch.apply(old.spec.clone()),
            ..old.clone()
        };
        self.replace(&mut records, record).await
    }

    /// Attaches `record` in place of the stored one, then stores it; undone
    /// if it cannot be stored.
    async fn replace(
        &self,
        records: &mut BTreeMap<String, EndpointRecord>,
        record: EndpointRecord,
    ) -> Result<EndpointView, Problem> {
        let id = record.key();
        let now = unix_now();
        let events = record.spec.events.clone();
        match self
            .emitter
            .reconfigure(id.clone(), events.clone(), record.config(now))
            .await
        {
            // Stored but not attached (its old config failed at start).
            Err(AttachError::UnknownEmitter { .. }) => {
                self.emitter
                    .attach_many(id.clone(), events, record.config(now))
                    .await?
            }
            other => other?,
        }
        if let Err(problem) = self.save(&record).await {
            if let Some(old) = records.get(&id) {
                let _ = self
                    .emitter
                    .reconfigure(id.clone(), old.spec.events.clone(), old.config(now))
                    .await;
            }
            return Err(problem);
        }
        let view = self.view(&record).await;
        records.insert(id, record);
        self.reindex(records);
        Ok(view)
    }

    /// Removes the endpoint, its queued events and dead letters.
    pub async fn delete(&self, at: &EndpointAt) -> Result<(), Problem> {
        let id = at.key.as_str();
        let mut records = self.records.lock().await;
        if !records.contains_key(id) {
            return Err(at.unknown());
        }
        self.store.delete_record(NAMESPACE, id).await?;
        records.remove(id);
        self.reindex(&records);
        match self.emitter.detach(id).await {
            Ok(dropped) if !dropped.is_empty() => {
                tracing::warn!(endpoint = %id, dropped = dropped.len(), "endpoint deleted with events still queued");
            }
            _ => {}
        }
        Ok(())
    }

    /// A new Standard Webhooks key; the current one keeps signing for `grace`.
    /// Returns the key, and until when the previous one signs (if there was one).
    pub async fn rotate(
        &self,
        at: &EndpointAt,
        grace: Duration,
    ) -> Result<(String, Option<u64>), Problem> {
        let mut records = self.records.lock().await;
        let mut record = records.get(&at.key).cloned().ok_or_else(|| at.unknown())?;
        let key = new_standard_key()?;
        let until = unix_now().saturating_add(grace.as_secs());
        let old = record.spec.standard_webhooks_secret.replace(key.clone());
        let retiring = old.map(|secret| RetiringKey { secret, until });
        let until = retiring.as_ref().map(|k| k.until);
        record.retiring_keys.extend(retiring);
        self.replace(&mut records, record).await?;
        Ok((key, until))
    }

    /// Stops signing with the keys whose grace period is over.
    pub async fn retire_expired_keys(&self) {
        let mut records = self.records.lock().await;
        let now = unix_now();
        let expired: Vec<EndpointRecord> = records
            .values()
            .filter(|r| r.retiring_keys.iter().any(|k| k.until <= now))
            .cloned()
            .collect();
        for mut record in expired {
            record.retire_expired(now);
            let id = record.key();
            match self.replace(&mut records, record).await {
                Ok(_) => tracing::info!(endpoint = %id, "rotated-out signing key retired"),
                Err(problem) => {
                    tracing::error!(endpoint = %id, %problem, "could not retire a signing key")
                }
            }
        }
    }
}
