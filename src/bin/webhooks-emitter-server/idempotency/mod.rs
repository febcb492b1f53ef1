//! `Idempotency-Key` on `POST /api/v1/events`: a repeat within 24 hours gets
//! the first answer and emits nothing. Keys are kept in the store (namespace
//! `idempotency`), so a restart remembers them: on the journal with an index
//! in memory (here), on PostgreSQL in the database only, cluster-wide
//! ([`shared`]).
//!
//! A key is reserved before the event is emitted, so two requests racing
//! with one key emit once: the second is told the first is in progress (409).
//!
//! On the journal, a key's record is stored under a number that grows (not
//! under the key itself), so that the records a commit writes sit side by
//! side at the end of the table: a client's random keys would otherwise
//! touch a page of the table each, and every commit would sync dozens. The
//! key is in the record; the index in memory maps it to its number.
//!
//! The key's record is written beside the event, in the same group commit,
//! not after it: it is written as *promised* with the request
//! id the event is emitted with, then answered without waiting. After a
//! crash, a promised key is emitted again, with that same request id, on its
//! next repeat: a receiver sees at most a duplicate with the same id (as
//! after any crash), never an event lost behind an answered key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::clock::{unix_micros, unix_now};
use crate::problem::Problem;
use crate::records::{numbered_key, ServerStore};

mod rules;
mod shared;

pub use rules::{fingerprint, KEY_TTL_SECS};
use rules::{in_app, reused, MAX_KEY_LEN, NAMESPACE};
use shared::SharedClaim;

/// The first answer to a key, and what it was for.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Answered {
    /// SHA-256 of the request body, hex: the same key with another body is refused.
    fingerprint: String,
    request_id: String,
    /// Unix seconds.
    at: u64,
    /// Written before its event was known to be stored: a repeat emits it
    /// again, with this request id.
    #[serde(default)]
    promised: bool,
    /// The key; absent in records written before keys were stored under a
    /// number (their record's name is the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

enum Entry {
    InProgress {
        fingerprint: String,
    },
    Answered {
        answered: Answered,
        /// The name of its record in the store.
        record: String,
    },
}

/// What to do with a request carrying a key.
pub enum Claim<'a> {
    /// Go on, then `finish` the reservation; dropped unfinished (the request
    /// failed, or its client went away mid-way), it frees the key.
    Fresh(Reservation<'a>),
    /// Answer with this request id again.
    Replay(String),
}

/// A key held for a request in progress.
pub struct Reservation<'a> {
    keys: &'a IdempotencyKeys,
    key: String,
    fingerprint: String,
    finished: bool,
    /// The request id a promised key was written with: the event is
    /// emitted again with it.
    promised_id: Option<String>,
    /// The name of the key's record on the journal (a number that grows);
    /// empty on PostgreSQL, where the record is named by the key.
    record: String,
}

impl Reservation<'_> {
    /// The request id the event must be emitted with (a key promised before
    /// a crash), if any.
    pub fn request_id(&self) -> Option<&str> {
        self.promised_id.as_deref()
    }

    /// Writes the key as promised with `request_id`, beside the event
    /// (journal); on PostgreSQL the reservation is in the database already.
    pub async fn promise(&self, request_id: &str) -> Result<(), Problem> {
        if self.keys.store.shared() {
            return Ok(());
        }
        let promised = Answered {
            fingerprint: self.fingerprint.clone(),
            request_id: request_id.to_owned(),
            at: unix_now(),
            promised: true,
            key: Some(self.key.clone()),
        };
        let bytes = serde_json::to_vec(&promised).unwrap_or_default();
        self.keys
            .store
            .put_record(NAMESPACE, &self.record, bytes)
            .await?;
        Ok(())
    }

    /// The answer to remember for the key: in memory at once, then in the
    /// store without waiting (the promise is on disk already); on
    /// PostgreSQL, in the database only, waited for.
    pub async fn finish(mut self, request_id: String) {
        self.finished = true;
        let fingerprint = std::mem::take(&mut self.fingerprint);
        let keys = self.keys;
        if let ServerStore::Postgres(store) = &keys.store {
            return shared::finish(store, &self.key, fingerprint, request_id).await;
        }
        let answered = Answered {
            fingerprint,
            request_id,
            at: unix_now(),
            promised: false,
            key: Some(self.key.clone()),
        };
        let bytes = serde_json::to_vec(&answered).unwrap_or_default();
        let record = std::mem::take(&mut self.record);
        keys.lock().insert(
            self.key.clone(),
            Entry::Answered {
                answered,
                record: record.clone(),
            },
        );
        // The promise is on disk: the answer rides on the next commit.
        if let ServerStore::Journal(journal) = &keys.store {
            if let Err(error) = journal.put_record_soon(NAMESPACE, &record, bytes) {
                tracing::error!(%error, "idempotency key's answer not stored; a repeat after a restart emits its event again, with the same request id");
            }
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        match &self.keys.store {
            ServerStore::Postgres(store) => {
                let (store, key) = (store.clone(), std::mem::take(&mut self.key));
                actix_web::rt::spawn(async move { shared::release(&store, &key).await });
            }
            ServerStore::Journal(_) => {
                self.keys.lock().remove(&self.key);
            }
        }
    }
}

pub struct IdempotencyKeys {
    store: ServerStore,
    entries: Mutex<HashMap<String, Entry>>,
    /// The next record's name, as a number (journal).
    next_record: AtomicU64,
}

impl IdempotencyKeys {
    /// The keys stored within the last 24 hours (older ones are deleted); on
    /// PostgreSQL none: each claim asks the database.
    pub async fn load(store: ServerStore) -> Result<Self, String> {
        // Numbers start at the clock in microseconds, past every stored one.
        let keys = IdempotencyKeys {
            store,
            entries: Mutex::new(HashMap::new()),
            next_record: AtomicU64::new(unix_micros()),
        };
        if keys.store.shared() {
            return Ok(keys);
        }
        let stored = keys
            .store
            .records(NAMESPACE)
            .await
            .map_err(|e| format!("cannot read the idempotency keys: {e}"))?;
        let now = unix_now();
        for (record, bytes) in stored {
            let answered = match serde_json::from_slice::<Answered>(&bytes) {
                Ok(answered) if now.saturating_sub(answered.at) < KEY_TTL_SECS => answered,
                _ => {
                    let _ = keys.store.delete_record(NAMESPACE, &record).await;
                    continue;
                }
            };
            keys.load_one(record, answered).await;
        }
        Ok(keys)
    }

    /// Indexes a stored key; of two records of one key (a promised key
    /// emitted again after a crash is stored anew), the later stays and the
    /// other is deleted.
    async fn load_one(&self, record: String, answered: Answered) {
        // Only records that carry their key are named by a number; an
        // earlier version's are named by the client's key, whatever it is.
        let key = match &answered.key {
            Some(key) => {
                if let Ok(number) = record.parse::<u64>() {
                    self.next_record
                        .fetch_max(number.saturating_add(1), Ordering::Relaxed);
                }
                key.clone()
            }
            None => record.clone(),
        };
        let replaced = {
            let mut entries = self.lock();
            match entries.get(&key) {
                Some(Entry::Answered { answered: kept, .. }) if kept.at > answered.at => {
                    Some(record)
                }
                _ => match entries.insert(key, Entry::Answered { answered, record }) {
                    Some(Entry::Answered { record, .. }) => Some(record),
                    _ => None,
                },
            }
        };
        if let Some(stale) = replaced {
            let _ = self.store.delete_record(NAMESPACE, &stale).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves `key` of application `app` for a request with this body
    /// fingerprint.
    pub async fn claim(
        &self,
        app: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<Claim<'_>, Problem> {
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Problem::bad_request(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
            )));
        }
        let key = &in_app(app, key);
        if let ServerStore::Postgres(store) = &self.store {
            return Ok(match shared::claim(store, key, fingerprint).await? {
                SharedClaim::Replay(request_id) => Claim::Replay(request_id),
                SharedClaim::Fresh => self.reservation(key, fingerprint, None, String::new()),
            });
        }
        self.claim_here(key, fingerprint)
    }

    /// A reservation of `key`, whose record on the journal is `record`.
    fn reservation(
        &self,
        key: &str,
        fingerprint: &str,
        promised_id: Option<String>,
        record: String,
    ) -> Claim<'_> {
        Claim::Fresh(Reservation {
            keys: self,
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            finished: false,
            promised_id,
            record,
        })
    }

    /// With the journal: the index in memory decides.
    fn claim_here(&self, key: &str, fingerprint: &str) -> Result<Claim<'_>, Problem> {
        let now = unix_now();
        let mut entries = self.lock();
        let reused = |first: &str| reused(first, fingerprint);
        let mut promised_id = None;
        match entries.get(key) {
            Some(Entry::Answered { answered: a, .. })
                if a.promised && now.saturating_sub(a.at) < KEY_TTL_SECS =>
            {
                // Promised before a crash: emitted again, with its request id.
                if let Some(problem) = reused(&a.fingerprint) {
                    return Err(problem);
                }
                promised_id = Some(a.request_id.clone());
            }
            Some(Entry::Answered { answered: a, .. })
                if now.saturating_sub(a.at) < KEY_TTL_SECS =>
            {
                if let Some(problem) = reused(&a.fingerprint) {
                    return Err(problem);
                }
                return Ok(Claim::Replay(a.request_id.clone()));
            }
            Some(Entry::InProgress { fingerprint: first }) => {
                if let Some(problem) = reused(first) {
                    return Err(problem);
                }
                return Err(Problem::conflict(
                    "a request with this Idempotency-Key is in progress; retry later",
                ));
            }
            _ => {}
        }
        let replaced = entries.insert(
            key.to_owned(),
            Entry::InProgress {
                fingerprint: fingerprint.to_owned(),
            },
        );
        drop(entries);
        // A promised or expired key's record is written over, not left behind.
        let record = match replaced {
            Some(Entry::Answered { record, .. }) => record,
            _ => numbered_key(self.next_record.fetch_add(1, Ordering::Relaxed)),
        };
        Ok(self.reservation(key, fingerprint, promised_id, record))
    }

    /// Forgets keys older than 24 hours.
    pub async fn prune(&self) {
        if let ServerStore::Postgres(store) = &self.store {
            return shared::prune(store).await;
        }
        let now = unix_now();
        let expired: Vec<String> = {
            let mut entries = self.lock();
            let mut records = Vec::new();
            entries.retain(|_, entry| match entry {
                Entry::Answered { answered, record }
                    if now.saturating_sub(answered.at) >= KEY_TTL_SECS =>
                {
                    records.push(std::mem::take(record));
                    false
                }
                _ => true,
            });
            records
        };
        for record in expired {
            let _ = self.store.delete_record(NAMESPACE, &record).await;
        }
    }
}
