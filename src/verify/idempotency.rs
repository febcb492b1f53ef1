//! A bounded, time-limited record of delivery ids, so that a receiver can ignore
//! the duplicates that retries cause (a response lost on the way back makes the
//! sender deliver again).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Why a delivery id could not be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlreadySeen {
    /// It was processed already: answer 2xx and do nothing.
    Processed,
    /// Another request with this id is being processed now: answer so the sender
    /// retries later (the extractor answers 409).
    InProgress,
}

/// Delivery ids seen recently. Cheap to clone; clones share the record.
///
/// A [`Claim`] marks an id as in progress; [`Claim::done`] records it as
/// processed. A claim dropped without `done` (the handler failed) releases the
/// id, so the sender's retry is processed: nothing is lost to deduplication.
///
/// ```
/// use std::time::Duration;
/// use webhooks_emitter::verify::{AlreadySeen, IdempotencyStore};
///
/// let seen = IdempotencyStore::new(10_000, Duration::from_secs(24 * 3600));
/// let claim = seen.claim("req-42").unwrap();
/// assert_eq!(seen.claim("req-42").unwrap_err(), AlreadySeen::InProgress);
/// claim.done();
/// assert_eq!(seen.claim("req-42").unwrap_err(), AlreadySeen::Processed);
/// drop(seen.claim("req-43").unwrap()); // failed: released
/// assert!(seen.claim("req-43").is_ok());
/// ```
#[derive(Clone)]
pub struct IdempotencyStore {
    record: Arc<Mutex<Record>>,
}

struct Record {
    capacity: usize,
    ttl: Duration,
    entries: HashMap<String, Entry>,
    /// Ids in the order they were claimed; an item whose stamp no longer
    /// matches its entry (released, then claimed again) is stale and skipped.
    order: VecDeque<(String, Instant)>,
}

#[derive(Clone, Copy)]
struct Entry {
    processed: bool,
    stamped: Instant,
}

impl IdempotencyStore {
    /// Remembers up to `capacity` ids (the oldest forgotten first), each for `ttl`.
    /// Pick a `ttl` longer than the sender's whole retry schedule.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        IdempotencyStore {
            record: Arc::new(Mutex::new(Record {
                capacity: capacity.max(1),
                ttl,
                entries: HashMap::new(),
                order: VecDeque::new(),
            })),
        }
    }

    /// Claims `id` for processing, unless it was processed or is in progress.
    pub fn claim(&self, id: &str) -> Result<Claim, AlreadySeen> {
        let mut record = self.lock();
        let now = Instant::now();
        record.prune(now);
        if let Some(entry) = record.entries.get(id) {
            return Err(if entry.processed {
                AlreadySeen::Processed
            } else {
                AlreadySeen::InProgress
            });
        }
        record.claim(id, now);
        Ok(Claim {
            store: self.clone(),
            id: id.to_owned(),
            done: false,
        })
    }

    /// Whether `id` is recorded as processed (and not expired).
    pub fn is_processed(&self, id: &str) -> bool {
        let mut record = self.lock();
        record.prune(Instant::now());
        record.entries.get(id).is_some_and(|e| e.processed)
    }

    /// Ids remembered now (processed or in progress).
    pub fn len(&self) -> usize {
        let mut record = self.lock();
        record.prune(Instant::now());
        record.entries.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        // The record stays consistent even if a holder panicked: every update
        // is a single insert or remove.
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Record {
    fn claim(&mut self, id: &str, now: Instant) {
        self.entries.insert(
            id.to_owned(),
            Entry {
                processed: false,
                stamped: now,
            },
        );
        self.order.push_back((id.to_owned(), now));
        self.prune(now);
    }

    /// Forgets expired ids, and the oldest ones beyond the capacity. Released
    /// ids leave stale items in `order`; they are bounded at twice the capacity.
    fn prune(&mut self, now: Instant) {
        while let Some((_, stamped)) = self.order.front() {
            let expired = now.duration_since(*stamped) > self.ttl;
            let over = self.entries.len() > self.capacity
                || self.order.len() > self.capacity.saturating_mul(2);
            if !expired && !over {
                break;
            }
            if let Some((id, stamped)) = self.order.pop_front() {
                if self.entries.get(&id).is_some_and(|e| e.stamped == stamped) {
                    self.entries.remove(&id);
                }
            }
        }
    }
}

impl fmt::Debug for IdempotencyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let record = self.lock();
        f.debug_struct("IdempotencyStore")
            .field("capacity", &record.capacity)
            .field("ttl", &record.ttl)
            .field("remembered", &record.entries.len())
            .finish()
    }
}

/// A delivery id being processed. Call [`done`](Self::done) once the work is
/// committed; dropping it otherwise releases the id for a retry.
#[derive(Debug)]
#[must_use = "a claim dropped without `done` releases the id at once"]
pub struct Claim {
    store: IdempotencyStore,
    id: String,
    done: bool,
}

impl Claim {
    /// The claimed delivery id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Records the id as processed: later deliveries with it are duplicates
    /// until the time-to-live, counted from the claim, runs out.
    pub fn done(mut self) {
        self.done = true;
        if let Some(entry) = self.store.lock().entries.get_mut(&self.id) {
            entry.processed = true;
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.done {
            self.store.lock().entries.remove(&self.id);
        }
    }
}
