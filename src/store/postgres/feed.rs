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
use sqlx::{PgPool, Postgres, Row, Transaction};
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

/// One transaction: take the ids, note each row's predecessor on its topic,
/// insert, prune, wake the nodes.
async fn append(pool: &PgPool, batch: &[FeedItem]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let count = i64::try_from(batch.len()).unwrap_or(i64::MAX);
    // The row lock is held until commit: the next append waits, so ids
    // become visible in order.
    let last: i64 = sqlx::query_scalar(
        "UPDATE webhooks_emitter_feed_head SET last_id = last_id + $1 RETURNING last_id",
    )
    .bind(count)
    .fetch_one(&mut *tx)
    .await?;
    let first = last - count + 1;
    let mut previous = topic_heads(&mut tx, batch).await?;
    let (mut ids, mut prevs, mut topics, mut events, mut data, mut json) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (id, item) in (first..).zip(batch) {
        let prev = previous.insert(item.topic.to_string(), id).unwrap_or(0);
        ids.push(id);
        prevs.push(prev);
        topics.push(item.topic.to_string());
        events.push(item.event.to_string());
        data.push(item.data.to_vec());
        json.push(item.json);
    }
    sqlx::query(
        "INSERT INTO webhooks_emitter_feed (id, prev, topic, event, data, json) \
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bytea[], $6::bool[])",
    )
    .bind(&ids)
    .bind(&prevs)
    .bind(&topics)
    .bind(&events)
    .bind(&data)
    .bind(&json)
    .execute(&mut *tx)
    .await?;
    let (names, heads): (Vec<String>, Vec<i64>) = previous.into_iter().unzip();
    sqlx::query(
        "INSERT INTO webhooks_emitter_feed_topics (topic, last_id) \
         SELECT * FROM UNNEST($1::text[], $2::bigint[]) \
         ON CONFLICT (topic) DO UPDATE SET last_id = EXCLUDED.last_id",
    )
    .bind(&names)
    .bind(&heads)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM webhooks_emitter_feed WHERE id <= $1")
        .bind(last - KEEP_ROWS)
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(FEED_CHANNEL)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// The last id of each topic in `batch`, as stored.
async fn topic_heads(
    tx: &mut Transaction<'_, Postgres>,
    batch: &[FeedItem],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let mut names: Vec<String> = batch.iter().map(|item| item.topic.to_string()).collect();
    names.sort();
    names.dedup();
    let rows = sqlx::query(
        "SELECT topic, last_id FROM webhooks_emitter_feed_topics WHERE topic = ANY($1)",
    )
    .bind(&names)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("topic")?, row.try_get("last_id")?)))
        .collect()
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
    loop {
        match read_after(&pool, last).await {
            Ok(records) => {
                backoff = Duration::from_millis(100);
                let full = records.len() as i64 >= READ_ROWS;
                for record in records {
                    last = i64::try_from(record.id).unwrap_or(i64::MAX);
                    sink.send(record);
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

async fn read_after(pool: &PgPool, after: i64) -> Result<Vec<FeedRecord>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, prev, topic, event, data, json FROM webhooks_emitter_feed \
         WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(READ_ROWS)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            let prev: i64 = row.try_get("prev")?;
            let topic: String = row.try_get("topic")?;
            let event: String = row.try_get("event")?;
            let data: Vec<u8> = row.try_get("data")?;
            Ok(FeedRecord {
                item: FeedItem {
                    topic: Arc::from(topic),
                    event: Arc::from(event),
                    data: Bytes::from(data),
                    json: row.try_get("json")?,
                },
                id: u64::try_from(id).unwrap_or(0),
                prev: u64::try_from(prev).unwrap_or(0),
            })
        })
        .collect()
}
