//! Application records on PostgreSQL, with the journal's API: one table,
//! `webhooks_emitter_records`, written each call in a transaction of its own
//! on the store's thread (its pool lives on that thread's runtime).

use sqlx::{PgPool, Row};
use tokio::sync::oneshot;

use super::errors::from_sqlx;
use super::{ClusterOp, PgStore};
use crate::error::StoreError;
use crate::store::app_records::{RecordChange, Records};

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
    Delete {
        namespace: String,
        key: String,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    List {
        namespace: String,
        reply: oneshot::Sender<Result<Records, StoreError>>,
    },
    Change {
        changes: Vec<RecordChange>,
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
        RecordsOp::List { namespace, reply } => answer(reply, list(&pool, &namespace).await),
        RecordsOp::Change { changes, reply } => answer(reply, change(&pool, &changes).await),
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
        "DO UPDATE SET value = EXCLUDED.value"
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

async fn list(pool: &PgPool, namespace: &str) -> Result<Records, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT key, value FROM webhooks_emitter_records WHERE namespace = $1 ORDER BY key",
    )
    .bind(namespace)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// Every change in order, in one transaction.
async fn change(pool: &PgPool, changes: &[RecordChange]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for change in changes {
        match change {
            RecordChange::Put {
                namespace,
                key,
                value,
            } => {
                sqlx::query(
                    "INSERT INTO webhooks_emitter_records (namespace, key, value) \
                     VALUES ($1, $2, $3) \
                     ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value",
                )
                .bind(namespace)
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await?;
            }
            RecordChange::Delete { namespace, key } => {
                sqlx::query(
                    "DELETE FROM webhooks_emitter_records WHERE namespace = $1 AND key = $2",
                )
                .bind(namespace)
                .bind(key)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await
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

    /// Every record of `namespace`, by key, sorted.
    pub async fn records(&self, namespace: &str) -> Result<Records, StoreError> {
        let namespace = namespace.to_owned();
        self.ask(|reply| RecordsOp::List { namespace, reply }).await
    }
}
