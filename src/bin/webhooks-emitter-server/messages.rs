//! The message log: every event an application accepted, in the server's
//! store (namespace `messages/<app>`, keyed by time; `message-ids/<app>`
//! finds one by request id), written beside the event, in the same group
//! commit. Read newest first in pages, found by request id, read in order
//! through a time window (`recover`), and its payloads dropped once their
//! retention is over, in bounded batches.

use webhooks_emitter::{subscription_covers, RecordChange};

use crate::message::{key, millisecond_of, needs_index, time_bound, MessageRecord};
use crate::problem::Problem;
use crate::records::ServerStore;

/// Where each application's retention work stopped, so that a pass does not
/// read again what the last one expired.
const PROGRESS: &str = "retention";
/// Records read at once by a scan.
const BATCH: usize = 250;
/// A key greater than every message's: where the newest page starts.
const PAST_THE_END: &str = "~";

fn messages(app: &str) -> String {
    format!("messages/{app}")
}

fn ids(app: &str) -> String {
    format!("message-ids/{app}")
}

/// Which messages a list shows.
#[derive(Debug, Default)]
pub struct Filter {
    /// An event name or pattern (`order.*`).
    pub event: Option<String>,
    /// Only messages sent to this channel.
    pub channel: Option<String>,
    /// Accepted at or after (Unix µs).
    pub since: Option<u64>,
    /// Accepted before (Unix µs).
    pub until: Option<u64>,
}

impl Filter {
    fn admits(&self, message: &MessageRecord) -> bool {
        self.event
            .as_deref()
            .is_none_or(|event| subscription_covers(event, &message.event))
            && self
                .channel
                .as_deref()
                .is_none_or(|channel| message.channels.iter().any(|c| c == channel))
    }
}

/// A page of messages, newest first, and where the next starts.
pub struct Page {
    pub messages: Vec<MessageRecord>,
    pub next: Option<String>,
}

/// The log, on the server's store.
pub struct Messages {
    store: ServerStore,
}

fn decode(key: &str, bytes: &[u8]) -> Option<MessageRecord> {
    match serde_json::from_slice(bytes) {
        Ok(record) => Some(record),
        Err(error) => {
            tracing::error!(%key, %error, "stored message unreadable; skipped");
            None
        }
    }
}

impl Messages {
    pub fn new(store: ServerStore) -> Self {
        Messages { store }
    }

    /// Writes `accepted` messages of `app`; returns once they are stored
    /// (beside their events, when called with their emits).
    pub async fn log(&self, app: &str, accepted: &[MessageRecord]) -> Result<(), Problem> {
        let mut changes = Vec::with_capacity(accepted.len() * 2);
        for message in accepted {
            let key = key(message.accepted_at, &message.request_id);
            let value = serde_json::to_vec(message)
                .map_err(|e| Problem::bad_request(format!("message not storable: {e}")))?;
            if needs_index(message.accepted_at, &message.request_id) {
                changes.push(RecordChange::Put {
                    namespace: ids(app),
                    key: message.request_id.clone(),
                    value: key.clone().into_bytes(),
                });
            }
            changes.push(RecordChange::Put {
                namespace: messages(app),
                key,
                value,
            });
        }
        // In the commit of the events logged: no transaction of their own
        // (one per event would cost a PostgreSQL server half its rate).
        Ok(self.store.group_records(changes).await?)
    }

    /// Takes back messages logged for events that were then not emitted (the
    /// store failed): the log shows what was accepted, nothing else.
    pub async fn unlog(&self, app: &str, refused: &[MessageRecord]) {
        let changes = refused
            .iter()
            .flat_map(|message| {
                [
                    RecordChange::Delete {
                        namespace: messages(app),
                        key: key(message.accepted_at, &message.request_id),
                    },
                    RecordChange::Delete {
                        namespace: ids(app),
                        key: message.request_id.clone(),
                    },
                ]
            })
            .collect();
        if let Err(error) = self.store.change_records(changes).await {
            tracing::error!(%error, app, "messages of refused events not taken back from the log");
        }
    }

    /// The newest message of `app` with this request id.
    pub async fn get(&self, app: &str, request_id: &str) -> Result<Option<MessageRecord>, Problem> {
        if let Some(ms) = millisecond_of(request_id) {
            if let Some(found) = self.in_millisecond(app, ms, request_id).await? {
                return Ok(Some(found));
            }
        }
        let Some(key) = self.store.record(&ids(app), request_id).await? else {
            return Ok(None);
        };
        let key = String::from_utf8_lossy(&key).into_owned();
        let found = self.store.record(&messages(app), &key).await?;
        Ok(found.and_then(|bytes| decode(&key, &bytes)))
    }

    /// The message with `request_id` among those of `app` accepted in the
    /// millisecond `ms` (the newest first, as `get` promises).
    async fn in_millisecond(
        &self,
        app: &str,
        ms: u64,
        request_id: &str,
    ) -> Result<Option<MessageRecord>, Problem> {
        let start = time_bound(ms.saturating_mul(1_000));
        let mut before = time_bound(ms.saturating_add(1).saturating_mul(1_000));
        loop {
            let batch = self
                .store
                .records_before(&messages(app), &before, BATCH)
                .await?;
            let full = batch.len() == BATCH;
            for (key, bytes) in batch {
                if key < start {
                    return Ok(None);
                }
                // `<20 digits>-<request id>`: the id whole, not a suffix of
                // another.
                if key.get(21..) == Some(request_id) {
                    return Ok(decode(&key, &bytes));
                }
                before = key;
            }
            if !full {
                return Ok(None);
            }
        }
    }

    /// Up to `limit` messages of `app` that `filter` admits, newest first,
    /// from `cursor` (the previous page's `next`). Reads at most
    /// `scan` records: a page of a rare filter may hold fewer, and say
    /// where to go on.
    pub async fn page(
        &self,
        app: &str,
        filter: &Filter,
        cursor: Option<&str>,
        limit: usize,
        scan: usize,
    ) -> Result<Page, Problem> {
        let until = filter.until.map(time_bound);
        let mut before = match (cursor, until) {
            (Some(cursor), Some(until)) => cursor.min(until.as_str()).to_owned(),
            (Some(cursor), None) => cursor.to_owned(),
            (None, Some(until)) => until,
            (None, None) => PAST_THE_END.to_owned(),
        };
        let since = filter.since.map(time_bound);
        let mut found = Vec::new();
        let mut scanned = 0;
        loop {
            let batch = self
                .store
                .records_before(&messages(app), &before, BATCH)
                .await?;
            let full = batch.len() == BATCH;
            for (key, bytes) in batch {
                if since.as_deref().is_some_and(|since| key.as_str() < since) {
                    return Ok(Page {
                        messages: found,
                        next: None,
                    });
                }
                scanned += 1;
                if let Some(message) = decode(&key, &bytes).filter(|m| filter.admits(m)) {
                    found.push(message);
                }
                before = key;
                if found.len() == limit || scanned == scan {
                    return Ok(Page {
                        messages: found,
                        next: Some(before),
                    });
                }
            }
            if !full {
                return Ok(Page {
                    messages: found,
                    next: None,
                });
            }
        }
    }

    /// The messages of `app` accepted from `since` (inclusive) to `until`
    /// (exclusive), oldest first, after `after` (a key this returned), at
    /// most `limit`; with the key of each.
    pub async fn window(
        &self,
        app: &str,
        since: u64,
        until: u64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, MessageRecord)>, Problem> {
        let start = after.map_or_else(|| time_bound(since), str::to_owned);
        let end = time_bound(until);
        let batch = self
            .store
            .records_after(&messages(app), Some(&start), limit)
            .await?;
        Ok(batch
            .into_iter()
            .take_while(|(key, _)| *key < end)
            .filter_map(|(key, bytes)| decode(&key, &bytes).map(|m| (key, m)))
            .collect())
    }

    /// Drops the payloads of `app`'s messages accepted before `cutoff`
    /// (Unix µs), up to `limit` records read; how many it read (less than
    /// `limit`: none is left to expire). Goes on from where the last call
    /// stopped, kept in the store.
    pub async fn expire(&self, app: &str, cutoff: u64, limit: usize) -> Result<usize, Problem> {
        let progress = self
            .store
            .record(PROGRESS, &messages(app))
            .await?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        let end = time_bound(cutoff);
        let batch = self
            .store
            .records_after(&messages(app), progress.as_deref(), limit)
            .await?;
        let mut changes = Vec::new();
        let mut read = 0;
        let mut last = None;
        for (key, bytes) in batch {
            if key >= end {
                break;
            }
            read += 1;
            if let Some(mut message) = decode(&key, &bytes) {
                if message.payload.take().is_some() {
                    if let Ok(value) = serde_json::to_vec(&message) {
                        changes.push(RecordChange::Put {
                            namespace: messages(app),
                            key: key.clone(),
                            value,
                        });
                    }
                }
            }
            last = Some(key);
        }
        if let Some(last) = last {
            changes.push(RecordChange::Put {
                namespace: PROGRESS.to_owned(),
                key: messages(app),
                value: last.into_bytes(),
            });
        }
        self.store.change_records(changes).await?;
        Ok(read)
    }

    /// Deletes every message of `app` (being deleted), `BATCH` at a time.
    pub async fn forget(&self, app: &str) -> Result<(), Problem> {
        for namespace in [messages(app), ids(app)] {
            loop {
                let batch = self.store.records_after(&namespace, None, BATCH).await?;
                let full = batch.len() == BATCH;
                let changes = batch
                    .into_iter()
                    .map(|(key, _)| RecordChange::Delete {
                        namespace: namespace.clone(),
                        key,
                    })
                    .collect();
                self.store.change_records(changes).await?;
                if !full {
                    break;
                }
            }
        }
        self.store.delete_record(PROGRESS, &messages(app)).await?;
        Ok(())
    }
}
