//! The live feed shared by the nodes (opt-in: [`PgOptions::shared_live_updates`](super::PgOptions::shared_live_updates)):
//! every node's SSE and WebSocket publications go into one table, numbered
//! once for the cluster, and every node (this one too) reads them back in id
//! order and publishes them to its own clients with those ids. A client that
//! a load balancer moves to another node resumes with `Last-Event-ID` there.
//!
//! - [`write`]: gathers what this node publishes and appends it in batches,
//!   ids taken under the feed head's row lock (id order is commit order);
//! - [`tail`]: reads what follows the last row it saw, woken by `NOTIFY`
//!   and by a poll, and hands each row to the emitter.
//!
//! The feed is what live updates are: best effort, like a client's buffer.
//! A publication can be lost (a node killed before its batch commits, the
//! database unreachable); it is never reordered, and never shown with an id
//! that another node shows for something else.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sqlx::{PgPool, Row};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::NodeState;

/// The notification channel a feed commit wakes the nodes on.
pub(super) const FEED_CHANNEL: &str = "webhooks_emitter_feed";
/// How long a batch of publications waits for more before it is appended:
/// the delay live updates take in a cluster, against one commit per event.
const GATHER: Duration = Duration::from_millis(5);
/// Most publications in one append, and bytes of data in it.
const MAX_BATCH: usize = 1_000;
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Publications waiting to be appended at most; past it they are dropped
/// (live updates never hold up the node).
pub(super) const MAX_WAITING: usize = 65_536;
/// Rows kept in the table (for a starting node's replay rings, and for a
/// node that fell behind). Older rows are deleted as new ones come.
const KEEP_ROWS: i64 = 10_000;
/// Rows a starting node reads to fill its replay rings.
const WARM_ROWS: i64 = 1_000;
/// Rows read at a time, and how often a node looks without a notification.
const READ_ROWS: i64 = 1_000;
const POLL: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One publication, as the emitter hands it over.
#[derive(Debug, Clone)]
pub(crate) struct FeedItem {
    pub topic: Arc<str>,
    pub event: Arc<str>,
    pub data: Bytes,
    /// The data is JSON; else text.
    pub json: bool,
}

/// A publication read back with its cluster-wide id.
#[derive(Debug, Clone)]
pub(crate) struct FeedRecord {
    pub item: FeedItem,
    /// Its id, on its topic and on `*`.
    pub id: u64,
    /// The id before it on its topic (0: none kept).
    pub prev: u64,
}

/// Appends what `items` brings, in batches, until every sender is gone.
pub(super) async fn write(pool: PgPool, mut items: mpsc::Receiver<FeedItem>) {
    let mut backoff = Duration::from_millis(100);
    while let Some(first) = items.recv().await {
        let batch = gather(first, &mut items).await;
        match append(&pool, &batch).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(error) => {
                // Live updates are not queued across an outage: by the
                // time the database is back they would be news no longer.
                tracing::warn!(%error, dropped = batch.len(), retry_in = ?backoff, "live feed: publications not appended");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn gather(first: FeedItem, items: &mut mpsc::Receiver<FeedItem>) -> Vec<FeedItem> {
    let until = Instant::now() + GATHER;
    let mut bytes = first.data.len();
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
        match tokio::time::timeout_at(until, items.recv()).await {
            Ok(Some(item)) => {
                bytes += item.data.len();
                batch.push(item);
            }
            Ok(None) | Err(_) => break,
        }
    }
    batch
}

/// One statement, so one transaction: take the ids (the head's row lock is
/// held until it commits, so the next append waits and ids become visible in
/// order), insert, prune, wake the nodes. Only the head's value is read:
/// the statement's snapshot, older than the lock, sees nothing else.
async fn append(pool: &PgPool, batch: &[FeedItem]) -> Result<(), sqlx::Error> {
    let count = i64::try_from(batch.len()).unwrap_or(i64::MAX);
    let topics: Vec<&str> = batch.iter().map(|item| &*item.topic).collect();
    let events: Vec<&str> = batch.iter().map(|item| &*item.event).collect();
    let data: Vec<&[u8]> = batch.iter().map(|item| &item.data[..]).collect();
    let json: Vec<bool> = batch.iter().map(|item| item.json).collect();
    sqlx::query(
        "WITH head AS ( \
             UPDATE webhooks_emitter_feed_head SET last_id = last_id + $1 RETURNING last_id \
         ), appended AS ( \
             INSERT INTO webhooks_emitter_feed (id, topic, event, data, json) \
             SELECT head.last_id - $1 + t.n, t.topic, t.event, t.data, t.json FROM head, \
                 UNNEST($2::text[], $3::text[], $4::bytea[], $5::bool[]) \
                 WITH ORDINALITY AS t(topic, event, data, json, n) \
         ), pruned AS ( \
             DELETE FROM webhooks_emitter_feed WHERE id <= (SELECT last_id FROM head) - $6 \
         ) \
         SELECT pg_notify($7, '')",
    )
    .bind(count)
    .bind(&topics)
    .bind(&events)
    .bind(&data)
    .bind(&json)
    .bind(KEEP_ROWS)
    .bind(FEED_CHANNEL)
    .execute(pool)
    .await?;
    Ok(())
}

/// Reads the feed from a little before its end, then what follows, handing
/// each row to the emitter; runs until aborted. Starts once the emitter
/// follows the feed.
pub(super) async fn tail(pool: PgPool, shared: Arc<NodeState>) {
    let sink = loop {
        if let Some(sink) = shared.feed_sink() {
            break sink;
        }
        shared.feed_wake.notified().await;
    };
    let mut backoff = Duration::from_millis(100);
    let mut last = loop {
        match start_point(&pool).await {
            Ok(start) => break start,
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "live feed: not read");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    };
    let mut order = TopicOrder::starting_after(last);
    loop {
        match read_after(&pool, last).await {
            Ok(rows) => {
                backoff = Duration::from_millis(100);
                let full = rows.len() as i64 >= READ_ROWS;
                for (id, item) in rows {
                    last = id;
                    sink.send(order.record(id, item));
                }
                if !full {
                    // A notification since the last read left a permit:
                    // none is missed.
                    let _ = tokio::time::timeout(POLL, shared.feed_wake.notified()).await;
                }
            }
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "live feed: not read");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Where a starting node begins: a little before the end, for its rings.
async fn start_point(pool: &PgPool) -> Result<i64, sqlx::Error> {
    let last: i64 = sqlx::query_scalar("SELECT last_id FROM webhooks_emitter_feed_head")
        .fetch_one(pool)
        .await?;
    Ok((last - WARM_ROWS).max(0))
}

async fn read_after(pool: &PgPool, after: i64) -> Result<Vec<(i64, FeedItem)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, topic, event, data, json FROM webhooks_emitter_feed \
         WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(READ_ROWS)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let topic: String = row.try_get("topic")?;
            let event: String = row.try_get("event")?;
            let data: Vec<u8> = row.try_get("data")?;
            let item = FeedItem {
                topic: Arc::from(topic),
                event: Arc::from(event),
                data: Bytes::from(data),
                json: row.try_get("json")?,
            };
            Ok((row.try_get("id")?, item))
        })
        .collect()
}

/// Which id came before each row on its topic, as far as this node knows:
/// it has read every row since `known_since` (where it started, or where
/// rows it had not read were pruned), so a topic's previous row is the last
/// one it read, or else at most `known_since`. Said so, a client resuming
/// from before `known_since` is told that events may be lost, never that it
/// has them all.
struct TopicOrder {
    last_on_topic: HashMap<Arc<str>, i64>,
    known_since: i64,
    last_read: i64,
}

/// Topics remembered at most; past it, the node forgets them and starts
/// knowing afresh (clients resuming from before are told of a possible loss).
const MAX_TOPICS: usize = 10_000;

impl TopicOrder {
    fn starting_after(start: i64) -> Self {
        TopicOrder {
            last_on_topic: HashMap::new(),
            known_since: start,
            last_read: start,
        }
    }

    fn record(&mut self, id: i64, item: FeedItem) -> FeedRecord {
        if id != self.last_read + 1 {
            // Rows this node had not read were pruned: what came before is
            // unknown on every topic.
            self.last_on_topic.clear();
            self.known_since = id - 1;
        }
        if self.last_on_topic.len() >= MAX_TOPICS && !self.last_on_topic.contains_key(&item.topic) {
            self.last_on_topic.clear();
            self.known_since = id - 1;
        }
        self.last_read = id;
        let prev = self
            .last_on_topic
            .insert(item.topic.clone(), id)
            .unwrap_or(self.known_since)
            .max(self.known_since);
        FeedRecord {
            item,
            id: u64::try_from(id).unwrap_or(0),
            prev: u64::try_from(prev).unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(topic: &str) -> FeedItem {
        FeedItem {
            topic: Arc::from(topic),
            event: Arc::from("e"),
            data: Bytes::new(),
            json: true,
        }
    }

    #[test]
    fn each_row_names_the_previous_row_of_its_topic_as_far_as_known() {
        let mut order = TopicOrder::starting_after(100);
        let prev = |order: &mut TopicOrder, id, topic| order.record(id, item(topic)).prev;
        assert_eq!(prev(&mut order, 101, "a"), 100, "before the start: unknown");
        assert_eq!(prev(&mut order, 102, "b"), 100);
        assert_eq!(prev(&mut order, 103, "a"), 101);
        assert_eq!(prev(&mut order, 104, "a"), 103);
        // 105 to 109 were pruned unread: no topic knows what came before.
        assert_eq!(prev(&mut order, 110, "a"), 109);
        assert_eq!(prev(&mut order, 111, "b"), 109);
        assert_eq!(prev(&mut order, 112, "b"), 111);
    }
}
