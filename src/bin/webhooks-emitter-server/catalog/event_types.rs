//! The event-type catalog: kept in the server's store (namespace
//! `event-types`), each schema compiled once and read by every event the
//! server accepts. On a shared store each node takes up the others' changes
//! with its endpoints (`sync`), so that a node that routes events also checks
//! them against the current schemas.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use serde_json::value::RawValue;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::clock::unix_now;
use crate::event_type::{
    check_payload, check_spec, compile, EventTypePatch, EventTypeRecord, EventTypeSpec,
    EventTypeView,
};
use crate::problem::Problem;
use crate::records::ServerStore;

/// Where event types live in the store.
const NAMESPACE: &str = "event-types";

/// Every event type, and the compiled schemas of those that check events.
pub struct EventTypes {
    store: ServerStore,
    /// Changes are serialized by this lock (as the endpoints' are).
    records: Mutex<BTreeMap<String, EventTypeRecord>>,
    /// The schemas in force (types with a schema, not archived), read
    /// without the records' lock by every event.
    validators: RwLock<HashMap<String, Arc<jsonschema::Validator>>>,
}

fn unknown(name: &str) -> Problem {
    Problem::not_found(format!("no event type named `{name}`"))
}

async fn read_all(store: &ServerStore) -> Result<BTreeMap<String, EventTypeRecord>, Problem> {
    Ok(store.read_records(NAMESPACE).await?.into_iter().collect())
}

fn encode(record: &EventTypeRecord) -> Result<Vec<u8>, Problem> {
    serde_json::to_vec(record)
        .map_err(|e| Problem::bad_request(format!("event type not storable: {e}")))
}

impl EventTypes {
    /// Reads the stored event types and compiles their schemas.
    pub async fn load(store: ServerStore) -> Result<Self, String> {
        let records = read_all(&store)
            .await
            .map_err(|p| format!("cannot read the event types: {}", p.detail))?;
        let types = EventTypes {
            store,
            records: Mutex::new(BTreeMap::new()),
            validators: RwLock::new(HashMap::new()),
        };
        {
            let mut held = types.records.lock().await;
            types.take_up(&mut held, records);
        }
        Ok(types)
    }

    /// Reads the stored event types again and takes up what changed (on a
    /// shared store, other nodes' changes).
    pub async fn sync(&self) -> Result<(), Problem> {
        let mut records = self.records.lock().await;
        let stored = read_all(&self.store).await?;
        if *records != stored {
            self.take_up(&mut records, stored);
        }
        Ok(())
    }

    /// Makes `stored` the catalog, compiling only the schemas that changed.
    fn take_up(
        &self,
        records: &mut BTreeMap<String, EventTypeRecord>,
        stored: BTreeMap<String, EventTypeRecord>,
    ) {
        let mut validators = self
            .validators
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut next = HashMap::new();
        for (name, record) in &stored {
            let (false, Some(schema)) = (record.archived, &record.spec.schema) else {
                continue;
            };
            let unchanged = records
                .get(name)
                .is_some_and(|old| !old.archived && old.spec.schema.as_ref() == Some(schema));
            let validator = match validators.get(name) {
                Some(validator) if unchanged => Some(validator.clone()),
                _ => match compile(schema) {
                    Ok(validator) => Some(Arc::new(validator)),
                    Err(problem) => {
                        tracing::error!(event_type = %name, %problem, "stored schema not usable; its events are not checked");
                        None
                    }
                },
            };
            if let Some(validator) = validator {
                next.insert(name.clone(), validator);
            }
        }
        *validators = next;
        *records = stored;
    }

    /// After `record` is stored: the catalog and the schemas in force.
    fn keep(&self, records: &mut BTreeMap<String, EventTypeRecord>, record: EventTypeRecord) {
        let mut stored = records.clone();
        stored.insert(record.spec.name.clone(), record);
        self.take_up(records, stored);
    }

    /// Makes a type (409 if the name exists, on any node); in force at once.
    pub async fn create(&self, spec: EventTypeSpec) -> Result<EventTypeView, Problem> {
        check_spec(&spec)?;
        let mut records = self.records.lock().await;
        let now = unix_now();
        let record = EventTypeRecord {
            spec,
            archived: false,
            created_at: now,
            updated_at: now,
        };
        let name = record.spec.name.clone();
        let exists = || Problem::conflict(format!("an event type named `{name}` already exists"));
        if records.contains_key(&name) {
            return Err(exists());
        }
        // Stored only where no type is: of two nodes creating one name at
        // once, one stores it.
        if !self
            .store
            .insert_record(NAMESPACE, &name, encode(&record)?)
            .await?
        {
            return Err(exists());
        }
        let view = EventTypeView::from(&record);
        self.keep(&mut records, record);
        Ok(view)
    }

    /// Every event type by name; archived ones only if asked for.
    pub async fn list(&self, include_archived: bool) -> Vec<EventTypeView> {
        let records = self.records.lock().await;
        records
            .values()
            .filter(|record| include_archived || !record.archived)
            .map(EventTypeView::from)
            .collect()
    }

    /// One type, archived or not.
    pub async fn get(&self, name: &str) -> Result<EventTypeView, Problem> {
        let records = self.records.lock().await;
        records
            .get(name)
            .map(EventTypeView::from)
            .ok_or_else(|| unknown(name))
    }

    /// Changes what the patch sends; a new schema is in force at once.
    pub async fn update(
        &self,
        name: &str,
        patch: EventTypePatch,
    ) -> Result<EventTypeView, Problem> {
        let mut records = self.records.lock().await;
        let old = records.get(name).cloned().ok_or_else(|| unknown(name))?;
        let record = patch.apply(old, unix_now())?;
        self.store
            .put_record(NAMESPACE, name, encode(&record)?)
            .await?;
        let view = EventTypeView::from(&record);
        self.keep(&mut records, record);
        Ok(view)
    }

    /// Archives the type: hidden from the list, its schema no longer in
    /// force. `PATCH {"archived": false}` restores it.
    pub async fn archive(&self, name: &str) -> Result<(), Problem> {
        let patch = EventTypePatch {
            archived: Some(true),
            ..EventTypePatch::default()
        };
        self.update(name, patch).await.map(|_| ())
    }

    /// Refuses `payload` (422) if `event` has a schema in force that it
    /// does not match. Events of names without a type are not checked.
    pub fn check(&self, event: &str, payload: &RawValue) -> Result<(), Problem> {
        let validator = {
            let validators = self
                .validators
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            match validators.get(event) {
                Some(validator) => validator.clone(),
                None => return Ok(()),
            }
        };
        let payload: Value = serde_json::from_str(payload.get())
            .map_err(|e| Problem::bad_request(format!("invalid payload: {e}")))?;
        check_payload(event, &validator, &payload)
    }
}
