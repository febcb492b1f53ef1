//! The journal's tables, and what each operation does to them inside one write
//! transaction. Reads happen in the same transaction, so they see every
//! operation sent before them.
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `format` | `"version"` | 1 |
//! | `events` | (emitter id, sequence number) | event record (`records`) |
//! | `dead_letters` | (emitter id, dead letter id) | dead letter record |
//! | `emitters` | emitter id | `Meta` as JSON: counts, next ids, paused |
//! | `app_records` | (namespace, key) | an application's bytes (`Journal::put_record`) |

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use redb::{
    Database, ReadableTable, ReadableTableMetadata, Table, TableDefinition, TableHandle,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};

use super::Recovery;
use crate::error::StoreError;
use crate::model::DeadLetter;
use crate::model::Event;
use crate::store::app_records::{Page, Start};
use crate::store::records::{self, StoredCounters, StoredEvent};

const FORMAT: TableDefinition<&str, u64> = TableDefinition::new("format");
const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events");
const DEAD: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("dead_letters");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("emitters");
const APP: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("app_records");

/// The layout this code reads and writes.
const VERSION: u64 = 1;

/// What the journal keeps about an emitter besides its events.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(super) struct Meta {
    pub paused: bool,
    pub events: u64,
    pub dead_letters: u64,
    pub next_seq: u64,
    pub next_dead_letter: u64,
    /// Counters since the emitter was first attached (absent in files
    /// written before they were kept: 0).
    #[serde(default)]
    pub counters: StoredCounters,
}

/// Opens or creates the file and checks that it is a journal.
pub(super) fn open(path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    let fail = |e: redb::Error| StoreError::from_redb(path, e);
    let database = Database::builder()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(|e| fail(e.into()))?;
    let txn = database.begin_write().map_err(|e| fail(e.into()))?;
    let others = txn
        .list_tables()
        .map_err(|e| fail(e.into()))?
        .filter(|t| t.name() != FORMAT.name())
        .count();
    {
        let mut format = txn.open_table(FORMAT).map_err(|e| fail(e.into()))?;
        let version = format
            .get("version")
            .map_err(|e| fail(e.into()))?
            .map(|v| v.value());
        match version {
            Some(VERSION) => {}
            Some(other) => {
                return Err(StoreError::NotAJournal {
                    path: path.display().to_string(),
                    detail: format!("journal format {other}; this version reads format {VERSION}"),
                })
            }
            None if others > 0 => {
                return Err(StoreError::NotAJournal {
                    path: path.display().to_string(),
                    detail: "a redb database of another program".into(),
                })
            }
            None => {
                format
                    .insert("version", VERSION)
                    .map_err(|e| fail(e.into()))?;
            }
        }
    }
    txn.commit().map_err(|e| fail(e.into()))?;
    Ok(database)
}

/// The tables of one write transaction, and the emitters' metadata as the
/// batch changes it (written back once, at the end).
pub(super) struct Tables<'txn> {
    events: Table<'txn, (&'static str, u64), &'static [u8]>,
    dead: Table<'txn, (&'static str, u64), &'static [u8]>,
    meta: Table<'txn, &'static str, &'static [u8]>,
    app: Table<'txn, (&'static str, &'static str), &'static [u8]>,
    metas: HashMap<Arc<str>, Meta>,
    /// Delivered events, removed together before anything reads: runs of
    /// consecutive sequence numbers (strict order makes long ones) go in one
    /// range removal, a few times cheaper than key by key.
    acked: HashMap<Arc<str>, Vec<u64>>,
}

type DbResult<T> = std::result::Result<T, redb::Error>;

impl<'txn> Tables<'txn> {
    pub(super) fn open(txn: &'txn WriteTransaction) -> DbResult<Self> {
        Ok(Tables {
            events: txn.open_table(EVENTS)?,
            dead: txn.open_table(DEAD)?,
            meta: txn.open_table(META)?,
            app: txn.open_table(APP)?,
            metas: HashMap::new(),
            acked: HashMap::new(),
        })
    }

    fn meta(&mut self, emitter: &Arc<str>) -> DbResult<&mut Meta> {
        if !self.metas.contains_key(emitter) {
            let stored = self
                .meta
                .get(&**emitter)?
                .and_then(|v| serde_json::from_slice(v.value()).ok())
                .unwrap_or_default();
            self.metas.insert(emitter.clone(), stored);
        }
        Ok(self.metas.entry(emitter.clone()).or_default())
    }

    /// Writes back the metadata the batch changed.
    pub(super) fn finish(mut self) -> DbResult<()> {
        self.remove_acked()?;
        for (emitter, meta) in std::mem::take(&mut self.metas) {
            let is_empty = meta.events == 0
                && meta.dead_letters == 0
                && !meta.paused
                && meta.counters == StoredCounters::default();
            if is_empty {
                self.meta.remove(&*emitter)?;
            } else {
                let json = serde_json::to_vec(&meta).unwrap_or_default();
                self.meta.insert(&*emitter, json.as_slice())?;
            }
        }
        Ok(())
    }

    pub(super) fn append(&mut self, emitter: &Arc<str>, seq: u64, event: &Event) -> DbResult<()> {
        let value = records::encode_event(event, 0);
        let existed = self
            .events
            .insert((&**emitter, seq), value.as_slice())?
            .is_some();
        let meta = self.meta(emitter)?;
        if !existed {
            meta.events += 1;
        }
        meta.next_seq = meta.next_seq.max(seq.saturating_add(1));
        Ok(())
    }

    /// A sequence number used by an event that never reached the table.
    pub(super) fn note_seq(&mut self, emitter: &Arc<str>, seq: u64) -> DbResult<()> {
        let meta = self.meta(emitter)?;
        meta.next_seq = meta.next_seq.max(seq.saturating_add(1));
        Ok(())
    }

    pub(super) fn attempted(
        &mut self,
        emitter: &Arc<str>,
        seq: u64,
        attempts: u32,
        retry_at: Option<std::time::SystemTime>,
    ) -> DbResult<()> {
        let updated = match self.events.get((&**emitter, seq))? {
            Some(value) => records::with_attempts(value.value(), attempts, retry_at),
            None => None,
        };
        if let Some(updated) = updated {
            self.events.insert((&**emitter, seq), updated.as_slice())?;
        }
        Ok(())
    }

    /// A delivered event; removed with the others at the next read or at the end.
    pub(super) fn ack(&mut self, emitter: &Arc<str>, seq: u64) {
        self.acked.entry(emitter.clone()).or_default().push(seq);
    }

    /// Counts what an operation reports (a delivery, a failed attempt, a
    /// dead letter) in the emitter's stored counters.
    pub(super) fn count(
        &mut self,
        emitter: &Arc<str>,
        change: impl FnOnce(&mut StoredCounters),
    ) -> DbResult<()> {
        change(&mut self.meta(emitter)?.counters);
        Ok(())
    }

    fn remove_acked(&mut self) -> DbResult<()> {
        for (emitter, mut seqs) in std::mem::take(&mut self.acked) {
            seqs.sort_unstable();
            seqs.dedup();
            let mut removed = 0u64;
            let mut start = 0;
            while start < seqs.len() {
                let mut end = start;
                while end + 1 < seqs.len() && seqs[end + 1] == seqs[end] + 1 {
                    end += 1;
                }
                let range = (&*emitter, seqs[start])..=(&*emitter, seqs[end]);
                self.events.retain_in(range, |_, _| {
                    removed += 1;
                    false
                })?;
                start = end + 1;
            }
            let meta = self.meta(&emitter)?;
            meta.events = meta.events.saturating_sub(removed);
        }
        Ok(())
    }

    pub(super) fn remove_event(&mut self, emitter: &Arc<str>, seq: u64) -> DbResult<()> {
        if self.events.remove((&**emitter, seq))?.is_some() {
            let meta = self.meta(emitter)?;
            meta.events = meta.events.saturating_sub(1);
        }
        Ok(())
    }

    pub(super) fn put_dead_letter(
        &mut self,
        emitter: &Arc<str>,
        letter: &DeadLetter,
    ) -> DbResult<()> {
        let value = records::encode_dead_letter(letter);
        let existed = self
            .dead
            .insert((&**emitter, letter.id), value.as_slice())?
            .is_some();
        let meta = self.meta(emitter)?;
        if !existed {
            meta.dead_letters += 1;
            meta.counters.dead_lettered += 1;
            // Its last attempt failed too (a queue-full letter had none).
            if letter.attempts > 0 {
                meta.counters.failed_attempts += 1;
            }
        }
        meta.next_dead_letter = meta.next_dead_letter.max(letter.id.saturating_add(1));
        Ok(())
    }

    pub(super) fn remove_dead_letter(&mut self, emitter: &Arc<str>, id: u64) -> DbResult<()> {
        if self.dead.remove((&**emitter, id))?.is_some() {
            let meta = self.meta(emitter)?;
            meta.dead_letters = meta.dead_letters.saturating_sub(1);
        }
        Ok(())
    }

    pub(super) fn set_paused(&mut self, emitter: &Arc<str>, paused: bool) -> DbResult<()> {
        self.meta(emitter)?.paused = paused;
        Ok(())
    }

    /// Stored events with sequence numbers in `(after, through]`, at most `limit`.
    pub(super) fn load(
        &mut self,
        emitter: &str,
        after: u64,
        through: u64,
        limit: usize,
    ) -> DbResult<Vec<StoredEvent>> {
        let mut loaded = Vec::new();
        if after >= through {
            return Ok(loaded);
        }
        self.remove_acked()?;
        for item in self
            .events
            .range((emitter, after + 1)..=(emitter, through))?
        {
            if loaded.len() >= limit {
                break;
            }
            let (key, value) = item?;
            match records::decode_event(key.value().1, value.value()) {
                Some(stored) => loaded.push(stored),
                None => {
                    tracing::error!(emitter, seq = key.value().1, "damaged event record skipped")
                }
            }
        }
        Ok(loaded)
    }

    /// An emitter's state, for its worker.
    pub(super) fn recover(&mut self, emitter: &Arc<str>, window: usize) -> DbResult<Recovery> {
        self.remove_acked()?;
        let meta = self.meta(emitter)?.clone();
        let last_seq = self
            .events
            .range((&**emitter, 0)..=(&**emitter, u64::MAX))?
            .next_back()
            .transpose()?
            .map_or(0, |(key, _)| key.value().1);
        let head = self.load(emitter, 0, last_seq, window)?;
        let mut dead_letters = Vec::new();
        for item in self.dead.range((&**emitter, 0)..=(&**emitter, u64::MAX))? {
            let (key, value) = item?;
            if let Some(letter) = records::decode_dead_letter(key.value().1, value.value()) {
                dead_letters.push(letter);
            }
        }
        Ok(Recovery {
            head,
            stored: usize::try_from(meta.events).unwrap_or(usize::MAX),
            last_seq,
            next_seq: meta.next_seq.max(last_seq.saturating_add(1)).max(1),
            next_dead_letter: meta.next_dead_letter.max(1),
            dead_letters,
            paused: meta.paused,
            counters: meta.counters,
        })
    }

    /// Deletes everything of an emitter; returns its queued events, oldest first.
    pub(super) fn drain(&mut self, emitter: &Arc<str>) -> DbResult<Vec<Arc<Event>>> {
        let all = self.load(emitter, 0, u64::MAX, usize::MAX)?;
        self.delete(emitter)?;
        Ok(all.into_iter().map(|stored| stored.event).collect())
    }

    /// Deletes everything of an emitter; returns how many records went.
    pub(super) fn delete(&mut self, emitter: &Arc<str>) -> DbResult<usize> {
        self.remove_acked()?;
        let mut removed = 0usize;
        let range = (&**emitter, 0)..=(&**emitter, u64::MAX);
        self.events.retain_in(range.clone(), |_, _| {
            removed += 1;
            false
        })?;
        self.dead.retain_in(range, |_, _| {
            removed += 1;
            false
        })?;
        self.metas.insert(emitter.clone(), Meta::default());
        Ok(removed)
    }

    /// Emitter ids with stored events or dead letters, and how many, except
    /// those in `attached`.
    pub(super) fn orphans(&mut self, attached: &[String]) -> DbResult<Vec<(String, usize)>> {
        self.remove_acked()?;
        let mut found = Vec::new();
        for item in self.meta.iter()? {
            let (key, value) = item?;
            let id = key.value();
            let meta: Meta = serde_json::from_slice(value.value()).unwrap_or_default();
            // Changes of this batch not written back yet win.
            let meta = self.metas.get(id).cloned().unwrap_or(meta);
            let stored = meta.events.saturating_add(meta.dead_letters);
            if stored > 0 && !attached.iter().any(|a| a == id) {
                found.push((id.to_owned(), usize::try_from(stored).unwrap_or(usize::MAX)));
            }
        }
        found.sort();
        Ok(found)
    }

    /// Stores an application record.
    pub(super) fn put_app(&mut self, namespace: &str, key: &str, value: &[u8]) -> DbResult<()> {
        self.app.insert((namespace, key), value)?;
        Ok(())
    }

    /// Stores an application record unless one is there; whether it did.
    pub(super) fn insert_app(
        &mut self,
        namespace: &str,
        key: &str,
        value: &[u8],
    ) -> DbResult<bool> {
        if self.app.get((namespace, key))?.is_some() {
            return Ok(false);
        }
        self.app.insert((namespace, key), value)?;
        Ok(true)
    }

    /// Deletes an application record; whether there was one.
    pub(super) fn delete_app(&mut self, namespace: &str, key: &str) -> DbResult<bool> {
        Ok(self.app.remove((namespace, key))?.is_some())
    }

    /// Up to `limit` of a namespace's application records, by key: those
    /// after `after` (from the first without it); or with `before`, those
    /// before it, newest key first.
    pub(super) fn list_app(
        &self,
        namespace: &str,
        page: &Page,
    ) -> DbResult<Vec<(String, Vec<u8>)>> {
        use std::ops::Bound;
        let range = match &page.start {
            Start::After(Some(after)) => (
                Bound::Excluded((namespace, after.as_str())),
                Bound::Unbounded,
            ),
            Start::After(None) => (Bound::Included((namespace, "")), Bound::Unbounded),
            Start::Before(before) => (
                Bound::Included((namespace, "")),
                Bound::Excluded((namespace, before.as_str())),
            ),
        };
        let items = self.app.range::<(&str, &str)>(range)?;
        let items: Box<dyn Iterator<Item = _>> = match page.start {
            Start::Before(_) => Box::new(items.rev()),
            Start::After(_) => Box::new(items),
        };
        let mut found = Vec::new();
        for item in items {
            if found.len() == page.limit {
                break;
            }
            let (key, value) = item?;
            let (space, key) = key.value();
            if space != namespace {
                break;
            }
            found.push((key.to_owned(), value.value().to_vec()));
        }
        Ok(found)
    }

    /// One application record.
    pub(super) fn get_app(&self, namespace: &str, key: &str) -> DbResult<Option<Vec<u8>>> {
        Ok(self.app.get((namespace, key))?.map(|v| v.value().to_vec()))
    }

    /// Records in all (for tests and the benchmark).
    #[allow(dead_code)]
    pub(super) fn total_events(&self) -> DbResult<u64> {
        Ok(self.events.len()?)
    }
}
