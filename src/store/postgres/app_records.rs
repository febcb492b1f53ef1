//! Application records on PostgreSQL, with the journal's API: one table,
//! `webhooks_emitter_records`, written each call in a transaction of its own
//! on the store's thread (its pool lives on that thread's runtime).

use sqlx::{PgPool, Row};
use tokio::sync::oneshot;

use super::errors::from_sqlx;
use super::reads::unsigned;
use super::{ClusterOp, PgStore};
use crate::error::StoreError;
use crate::store::app_records::{Page, RecordChange, Records, Start};
use crate::store::records::StoredCounters;

/// A call on application records, with the caller's answer.
pub(crate) enum RecordsOp {
    /// `only_new`: store it only if the key is free; the answer says whether
    /// it was stored.
    Put {
        namespace: String,
        key: String,
        value: Vec<u8>,
        only_new: bool,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// Replace the value only if it is `expected` (compare and swap).
    Replace {
        namespace: String,
        key: String,
        expected: Vec<u8>,
        value: Vec<u8>,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    Delete {
        namespace: String,
        key: String,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    Get {
        namespace: String,
        key: String,
        reply: oneshot::Sender<Result<Option<Vec<u8>>, StoreError>>,
    },
    /// Delete the records of `namespace` written longer ago than `age`.
    Prune {
        namespace: String,
        age: std::time::Duration,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
    List {
        namespace: String,
        page: Page,
        reply: oneshot::Sender<Result<Records, StoreError>>,
    },
    /// Delete everything stored for `emitter` unless a live node uses it.
    Discard {
        emitter: String,
        expiry: std::time::Duration,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// Every emitter's stored counters (not records, but read the same way).
    Counters {
        reply:
            oneshot::Sender<Result<std::collections::HashMap<String, StoredCounters>, StoreError>>,
    },
    /// The nodes seen within `expiry` (not a record, but read the same way).
    LiveNodes {
        expiry: std::time::Duration,
        reply: oneshot::Sender<Result<Vec<String>, StoreError>>,
    },
    Change {
        changes: Vec<RecordChange>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Send an announcement to every listening node.
    Announce {
        payload: String,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// Does one call and answers it.
pub(super) async fn perform(pool: PgPool, op: RecordsOp) {
    fn answer<T>(reply: oneshot::Sender<Result<T, StoreError>>, result: Result<T, sqlx::Error>) {
        let _ = reply.send(result.map_err(|e| from_sqlx(&e)));
    }
    match op {
        RecordsOp::Put {
            namespace,
            key,
            value,
            only_new,
            reply,
        } => answer(reply, put(&pool, &namespace, &key, &value, only_new).await),
        RecordsOp::Delete {
            namespace,
            key,
            reply,
        } => {
            let deleted = sqlx::query(
                "DELETE FROM webhooks_emitter_records WHERE namespace = $1 AND key = $2",
            )
            .bind(&namespace)
            .bind(&key)
            .execute(&pool)
            .await
            .map(|done| done.rows_affected() > 0);
            answer(reply, deleted);
        }
        RecordsOp::Replace {
            namespace,
            key,
            expected,
            value,
            reply,
        } => {
            let swapped = sqlx::query(
                "UPDATE webhooks_emitter_records SET value = $4, written_at = now() \
                 WHERE namespace = $1 AND key = $2 AND value = $3",
            )
            .bind(&namespace)
            .bind(&key)
            .bind(&expected)
            .bind(&value)
            .execute(&pool)
            .await
            .map(|done| done.rows_affected() > 0);
            answer(reply, swapped);
        }
        RecordsOp::Get {
            namespace,
            key,
            reply,
        } => {
            let found = sqlx::query_scalar(
                "SELECT value FROM webhooks_emitter_records WHERE namespace = $1 AND key = $2",
            )
            .bind(&namespace)
            .bind(&key)
            .fetch_optional(&pool)
            .await;
            answer(reply, found);
        }
        RecordsOp::Prune {
            namespace,
            age,
            reply,
        } => {
            let pruned = sqlx::query(
                "DELETE FROM webhooks_emitter_records \
                 WHERE namespace = $1 AND written_at < now() - $2",
            )
            .bind(&namespace)
            .bind(super::leases::interval(age))
            .execute(&pool)
            .await
            .map(|done| done.rows_affected());
            answer(reply, pruned);
        }
        RecordsOp::List {
            namespace,
            page,
            reply,
        } => answer(reply, list(&pool, &namespace, &page).await),
        RecordsOp::Counters { reply } => answer(reply, counters(&pool).await),
        RecordsOp::Discard {
            emitter,
            expiry,
            reply,
        } => answer(reply, discard(&pool, &emitter, expiry).await),
        RecordsOp::LiveNodes { expiry, reply } => {
            let names = sqlx::query_scalar(
                "SELECT name FROM webhooks_emitter_nodes WHERE seen_at > now() - $1 ORDER BY name",
            )
            .bind(super::leases::interval(expiry))
            .fetch_all(&pool)
            .await;
            answer(reply, names);
        }
        RecordsOp::Change { changes, reply } => answer(reply, change(&pool, &changes).await),
        RecordsOp::Announce { payload, reply } => {
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(super::announce::ANNOUNCE_CHANNEL)
                .bind(&payload)
                .execute(&pool)
                .await
                .map(|_| ());
            answer(reply, sent);
        }
    }
}

async fn put(
    pool: &PgPool,
    namespace: &str,
    key: &str,
    value: &[u8],
    only_new: bool,
) -> Result<bool, sqlx::Error> {
    let on_conflict = if only_new {
        "DO NOTHING"
    } else {
        "DO UPDATE SET value = EXCLUDED.value, written_at = now()"
    };
    let stored = sqlx::query(&format!(
        "INSERT INTO webhooks_emitter_records (namespace, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (namespace, key) {on_conflict}"
    ))
    .bind(namespace)
    .bind(key)
    .bind(value)
    .execute(pool)
    .await?;
    Ok(stored.rows_affected() > 0)
}

/// Deletes an emitter's rows (events, dead letters, lease, configurations,
/// counters) in one transaction, unless a live node still attaches it.
async fn discard(
    pool: &PgPool,
    emitter: &str,
    expiry: std::time::Duration,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Appends of other nodes wait for this (they lock the same row).
    sqlx::query("SELECT 1 FROM webhooks_emitter_emitters WHERE emitter = $1 FOR UPDATE")
        .bind(emitter)
        .execute(&mut *tx)
        .await?;
    let used: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM webhooks_emitter_configs c JOIN webhooks_emitter_nodes n ON n.name = c.node \
         WHERE c.emitter = $1 AND n.seen_at > now() - $2 LIMIT 1",
    )
    .bind(emitter)
    .bind(super::leases::interval(expiry))
    .fetch_optional(&mut *tx)
    .await?;
    if used.is_some() {
        return Ok(false);
    }
    for table in [
        "webhooks_emitter_events",
        "webhooks_emitter_dead_letters",
        "webhooks_emitter_configs",
        // The lease goes with it (ON DELETE CASCADE).
        "webhooks_emitter_emitters",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE emitter = $1"))
            .bind(emitter)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(true)
}

async fn counters(
    pool: &PgPool,
) -> Result<std::collections::HashMap<String, StoredCounters>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT emitter, delivered, failed_attempts, dead_lettered FROM webhooks_emitter_emitters",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let counters = StoredCounters {
                delivered: unsigned(row.try_get(1)?),
                failed_attempts: unsigned(row.try_get(2)?),
                dead_lettered: unsigned(row.try_get(3)?),
            };
            Ok((row.try_get(0)?, counters))
        })
        .collect()
}

/// A page of the records of `namespace` (see [`Page`]). Keys compare byte
/// by byte (`COLLATE "C"`), as the journal's do.
async fn list(pool: &PgPool, namespace: &str, page: &Page) -> Result<Records, sqlx::Error> {
    let limit = i64::try_from(page.limit).unwrap_or(i64::MAX);
    let query = match &page.start {
        Start::After(after) => sqlx::query(
            "SELECT key, value FROM webhooks_emitter_records \
             WHERE namespace = $1 AND ($2::text IS NULL OR key COLLATE \"C\" > $2) \
             ORDER BY key COLLATE \"C\" LIMIT $3",
        )
        .bind(namespace)
        .bind(after.as_deref()),
        Start::Before(before) => sqlx::query(
            "SELECT key, value FROM webhooks_emitter_records \
             WHERE namespace = $1 AND key COLLATE \"C\" < $2 \
             ORDER BY key COLLATE \"C\" DESC LIMIT $3",
        )
        .bind(namespace)
        .bind(before.as_str()),
    };
    let rows = query.bind(limit).fetch_all(pool).await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// Every change in order, in one transaction. When no key appears twice,
/// order cannot matter: the puts go in one statement and the deletes in
/// another (a batch of attempt records is two round trips, not hundreds).
async fn change(pool: &PgPool, changes: &[RecordChange]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    apply_changes(&mut tx, &changes.iter().collect::<Vec<_>>()).await?;
    tx.commit().await
}

/// `changes` in `tx`, with the effect of their order. Borrowed: the records
/// grouped with a batch are bound from where they wait, not copied.
pub(super) async fn apply_changes(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    changes: &[&RecordChange],
) -> Result<(), sqlx::Error> {
    if changes.is_empty() {
        return Ok(());
    }
    if keys_distinct(changes) {
        change_at_once(tx, changes).await
    } else {
        for change in changes {
            change_at_once(tx, std::slice::from_ref(change)).await?;
        }
        Ok(())
    }
}

fn keys_distinct(changes: &[&RecordChange]) -> bool {
    let mut seen = std::collections::HashSet::new();
    changes.iter().all(|change| {
        let (RecordChange::Put { namespace, key, .. } | RecordChange::Delete { namespace, key }) =
            change;
        seen.insert((namespace, key))
    })
}

/// `changes` (no key twice) in two statements: the puts, then the deletes.
async fn change_at_once(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    changes: &[&RecordChange],
) -> Result<(), sqlx::Error> {
    let (mut put_ns, mut put_keys, mut values) = (Vec::new(), Vec::new(), Vec::new());
    let (mut del_ns, mut del_keys) = (Vec::new(), Vec::new());
    for change in changes {
        match change {
            RecordChange::Put {
                namespace,
                key,
                value,
            } => {
                put_ns.push(namespace.as_str());
                put_keys.push(key.as_str());
                values.push(value.as_slice());
            }
            RecordChange::Delete { namespace, key } => {
                del_ns.push(namespace.as_str());
                del_keys.push(key.as_str());
            }
        }
    }
    if !put_keys.is_empty() {
        sqlx::query(
            "INSERT INTO webhooks_emitter_records (namespace, key, value) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[]) \
             ON CONFLICT (namespace, key) \
             DO UPDATE SET value = EXCLUDED.value, written_at = now()",
        )
        .bind(&put_ns)
        .bind(&put_keys)
        .bind(&values)
        .execute(&mut **tx)
        .await?;
    }
    if !del_keys.is_empty() {
        sqlx::query(
            "DELETE FROM webhooks_emitter_records r \
             USING UNNEST($1::text[], $2::text[]) AS d(namespace, key) \
             WHERE r.namespace = d.namespace AND r.key = d.key",
        )
        .bind(&del_ns)
        .bind(&del_keys)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl PgStore {
    async fn ask<T>(
        &self,
        op: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> RecordsOp,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(ClusterOp::Records(op(reply)))?;
        answer.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Sends `message` on `topic` to every node listening to it
    /// ([`announcements`](Self::announcements)), this one too, through
    /// `NOTIFY`: best effort (a node whose listening connection is down
    /// misses it), so keep a poll behind it. Topic and message together at
    /// most 7,000 bytes.
    pub async fn announce(&self, topic: &str, message: &str) -> Result<(), StoreError> {
        if topic.len() + message.len() > super::announce::MAX_ANNOUNCEMENT_BYTES {
            return Err(StoreError::InvalidSetting {
                detail: format!(
                    "an announcement has at most {} bytes",
                    super::announce::MAX_ANNOUNCEMENT_BYTES
                ),
            });
        }
        let payload = serde_json::to_string(&super::announce::Announcement {
            t: topic.to_owned(),
            m: message.to_owned(),
        })
        .map_err(|e| StoreError::InvalidSetting {
            detail: e.to_string(),
        })?;
        self.ask(|reply| RecordsOp::Announce { payload, reply })
            .await
    }

    /// The messages announced on `topic` from now on, by any node (this
    /// one too). A receiver that falls 256 behind misses the oldest
    /// (`RecvError::Lagged`).
    pub fn announcements(&self, topic: &str) -> tokio::sync::broadcast::Receiver<String> {
        self.inner.shared.announcements.subscribe(topic)
    }

    /// Stores `value` under (`namespace`, `key`), replacing what was there;
    /// returns once committed. Like [`Journal::put_record`](crate::Journal::put_record),
    /// shared by every node.
    pub async fn put_record(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), StoreError> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.ask(|reply| RecordsOp::Put {
            namespace,
            key,
            value,
            only_new: false,
            reply,
        })
        .await
        .map(|_| ())
    }

    /// Stores `value` under (`namespace`, `key`) unless a record is there;
    /// returns whether it stored it. Of racing inserts of one key, on any
    /// nodes, exactly one gets `true`.
    pub async fn insert_record(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.ask(|reply| RecordsOp::Put {
            namespace,
            key,
            value,
            only_new: true,
            reply,
        })
        .await
    }

    /// Replaces the value under (`namespace`, `key`) only if it is
    /// `expected` (compare and swap); returns whether it did. Of racing
    /// replacements of one value, exactly one succeeds.
    pub async fn replace_record(
        &self,
        namespace: &str,
        key: &str,
        expected: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.ask(|reply| RecordsOp::Replace {
            namespace,
            key,
            expected,
            value,
            reply,
        })
        .await
    }

    /// The value under (`namespace`, `key`), if any.
    pub async fn record(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.ask(|reply| RecordsOp::Get {
            namespace,
            key,
            reply,
        })
        .await
    }

    /// Deletes the records of `namespace` last written longer than `age`
    /// ago, in the database (for short-lived records: idempotency keys);
    /// returns how many.
    pub async fn prune_records(
        &self,
        namespace: &str,
        age: std::time::Duration,
    ) -> Result<u64, StoreError> {
        let namespace = namespace.to_owned();
        self.ask(|reply| RecordsOp::Prune {
            namespace,
            age,
            reply,
        })
        .await
    }

    /// Deletes the record under (`namespace`, `key`); returns whether there
    /// was one.
    pub async fn delete_record(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.ask(|reply| RecordsOp::Delete {
            namespace,
            key,
            reply,
        })
        .await
    }

    /// Applies `changes` in order, in one transaction (all or nothing).
    pub async fn change_records(&self, changes: Vec<RecordChange>) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.ask(|reply| RecordsOp::Change { changes, reply }).await
    }

    /// Applies `changes` in order in the writer's next group commit, in the
    /// transaction that writes the queues' events sent with them; returns
    /// once committed. Unlike [`change_records`](Self::change_records), no
    /// transaction of its own: for records that go with events (a log of
    /// them), which would otherwise cost a transaction per event.
    pub async fn group_records(&self, changes: Vec<RecordChange>) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        self.send(ClusterOp::GroupRecords { changes, reply })?;
        answer.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Deletes everything stored for `emitter` (queued events, dead letters,
    /// lease, counters) unless a live node attaches it; returns whether it
    /// did. For an emitter removed for good: `detach` on every node first.
    pub async fn discard(&self, emitter: &str) -> Result<bool, StoreError> {
        // This node's own detach first: its configuration row goes with it.
        self.flush().await?;
        let (emitter, expiry) = (emitter.to_owned(), self.lease_expiry());
        self.ask(|reply| RecordsOp::Discard {
            emitter,
            expiry,
            reply,
        })
        .await
    }

    /// Every emitter's counters as the cluster stored them (deliveries,
    /// failed attempts and dead letters of every node), by emitter id.
    pub async fn counters(
        &self,
    ) -> Result<std::collections::HashMap<String, StoredCounters>, StoreError> {
        self.ask(|reply| RecordsOp::Counters { reply }).await
    }

    /// The names of the nodes on this database seen within the lease expiry
    /// (this one included), sorted.
    pub async fn live_nodes(&self) -> Result<Vec<String>, StoreError> {
        let expiry = self.lease_expiry();
        self.ask(|reply| RecordsOp::LiveNodes { expiry, reply })
            .await
    }

    /// Every record of `namespace`, by key, sorted.
    pub async fn records(&self, namespace: &str) -> Result<Records, StoreError> {
        self.page(namespace, Page::all()).await
    }

    /// Up to `limit` records of `namespace` whose keys sort after `after`
    /// (from the first without it), by key, compared byte by byte: a page
    /// of a namespace too large to read whole.
    pub async fn records_after(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Records, StoreError> {
        let start = Start::After(after.map(str::to_owned));
        self.page(namespace, Page { start, limit }).await
    }

    /// Up to `limit` records of `namespace` whose keys sort before
    /// `before`, the greatest key first (byte order).
    pub async fn records_before(
        &self,
        namespace: &str,
        before: &str,
        limit: usize,
    ) -> Result<Records, StoreError> {
        let start = Start::Before(before.to_owned());
        self.page(namespace, Page { start, limit }).await
    }

    /// One read of `namespace`'s records: `records`, `records_after` and
    /// `records_before` are pages of it.
    async fn page(&self, namespace: &str, page: Page) -> Result<Records, StoreError> {
        let namespace = namespace.to_owned();
        self.ask(|reply| RecordsOp::List {
            namespace,
            page,
            reply,
        })
        .await
    }
}
