//! Idempotency keys on PostgreSQL, checked cluster-wide: each key is one
//! record, reserved by an insert that only one node's request can win, then
//! answered; expired keys are deleted in the database by age, so the bound
//! is time, not memory.
//!
//! A reservation whose node died mid-request (its record stays "in
//! progress") is taken over after [`STALE_RESERVATION_SECS`] by a compare
//! and swap, which again only one request can win.

use serde::{Deserialize, Serialize};
use webhooks_emitter::PgStore;

use super::rules::{reused, KEY_TTL_SECS, NAMESPACE};
use crate::clock::unix_now;
use crate::problem::Problem;

/// Longer than any request takes (the body has 10 s to arrive, the emit a
/// few more): a reservation this old belongs to a request that is gone.
pub const STALE_RESERVATION_SECS: u64 = 60;

/// A key as stored: in progress until it has a request id.
#[derive(Debug, Serialize, Deserialize)]
struct KeyRecord {
    /// SHA-256 of the request body, hex.
    fingerprint: String,
    request_id: Option<String>,
    /// Unix seconds of the reservation, then of the answer.
    at: u64,
}

impl KeyRecord {
    fn bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// What a claim found.
pub enum SharedClaim {
    /// Reserved for this request.
    Fresh,
    /// Answered before: this request id.
    Replay(String),
}

/// Reserves `key` for a request with this body `fingerprint`, on every node.
pub async fn claim(store: &PgStore, key: &str, fingerprint: &str) -> Result<SharedClaim, Problem> {
    let now = unix_now();
    let mine = KeyRecord {
        fingerprint: fingerprint.to_owned(),
        request_id: None,
        at: now,
    }
    .bytes();
    // A few rounds: a key can be answered, expire or be released between
    // the insert and the read.
    for _ in 0..3 {
        if store.insert_record(NAMESPACE, key, mine.clone()).await? {
            return Ok(SharedClaim::Fresh);
        }
        let Some(found) = store.record(NAMESPACE, key).await? else {
            continue; // released meanwhile
        };
        let record: Option<KeyRecord> = serde_json::from_slice(&found).ok();
        let age = record
            .as_ref()
            .map_or(u64::MAX, |r| now.saturating_sub(r.at));
        let expired = match &record {
            None => true, // unreadable: treat as free
            Some(KeyRecord {
                request_id: Some(_),
                ..
            }) => age >= KEY_TTL_SECS,
            Some(_) => age >= STALE_RESERVATION_SECS,
        };
        if expired {
            if store
                .replace_record(NAMESPACE, key, found, mine.clone())
                .await?
            {
                return Ok(SharedClaim::Fresh);
            }
            continue; // another request took it over first
        }
        let Some(record) = record else { continue };
        if let Some(problem) = reused(&record.fingerprint, fingerprint) {
            return Err(problem);
        }
        return match record.request_id {
            Some(request_id) => Ok(SharedClaim::Replay(request_id)),
            None => Err(in_progress()),
        };
    }
    Err(in_progress())
}

fn in_progress() -> Problem {
    Problem::conflict("a request with this Idempotency-Key is in progress; retry later")
}

/// Stores the answer to a reserved key.
pub async fn finish(store: &PgStore, key: &str, fingerprint: String, request_id: String) {
    let answered = KeyRecord {
        fingerprint,
        request_id: Some(request_id),
        at: unix_now(),
    };
    if let Err(error) = store.put_record(NAMESPACE, key, answered.bytes()).await {
        tracing::error!(%error, "idempotency key not answered in the database; a repeat gets 409 until it is stale");
    }
}

/// Frees a key whose request failed.
pub async fn release(store: &PgStore, key: &str) {
    if let Err(error) = store.delete_record(NAMESPACE, key).await {
        tracing::warn!(%error, "idempotency key not released; it frees itself when stale");
    }
}

/// Deletes the keys older than 24 hours, in the database.
pub async fn prune(store: &PgStore) {
    match store
        .prune_records(NAMESPACE, std::time::Duration::from_secs(KEY_TTL_SECS))
        .await
    {
        Ok(0) => {}
        Ok(pruned) => tracing::debug!(pruned, "expired idempotency keys deleted"),
        Err(error) => tracing::warn!(%error, "expired idempotency keys not deleted; next round"),
    }
}
