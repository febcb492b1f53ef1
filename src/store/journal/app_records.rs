//! Application records: small values an application keeps in the journal's
//! file beside the queues, by namespace and key (the server keeps its
//! endpoint definitions there). They go through the writer like everything
//! else, so a write is in the same file, fsynced, in order with the queues.

use tokio::sync::oneshot;

use super::apply::{answer_after_commit, Reply};
use super::tables::Tables;
use super::{Journal, JournalOp};
use crate::error::StoreError;
use crate::store::app_records::{Page, RecordChange, Records, Start};

/// An operation on application records, with the caller's answer.
pub(crate) enum AppOp {
    Put {
        namespace: String,
        key: String,
        value: Vec<u8>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Written with the next durable commit; nobody waits on it.
    PutSoon {
        namespace: String,
        key: String,
        value: Vec<u8>,
    },
    Insert {
        namespace: String,
        key: String,
        value: Vec<u8>,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    Delete {
        namespace: String,
        key: String,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    List {
        namespace: String,
        page: Page,
        reply: oneshot::Sender<Result<Records, StoreError>>,
    },
    Get {
        namespace: String,
        key: String,
        reply: oneshot::Sender<Result<Option<Vec<u8>>, StoreError>>,
    },
    Change {
        changes: Vec<RecordChange>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

impl AppOp {
    /// Reads only: no fsync needed before the answer.
    pub(super) fn reads_only(&self) -> bool {
        matches!(self, AppOp::List { .. } | AppOp::Get { .. })
    }

    /// Written whenever the next commit comes: no caller waits on it.
    pub(super) fn unhurried(&self) -> bool {
        matches!(self, AppOp::PutSoon { .. })
    }

    /// An application record's write or read, answered once committed.
    pub(super) fn apply(
        &mut self,
        tables: &mut Tables<'_>,
        replies: &mut Vec<Reply>,
    ) -> Result<(), redb::Error> {
        match self {
            AppOp::Put {
                namespace,
                key,
                value,
                reply,
            } => {
                tables.put_app(namespace, key, value)?;
                answer_after_commit(replies, reply, ());
            }
            AppOp::PutSoon {
                namespace,
                key,
                value,
            } => tables.put_app(namespace, key, value)?,
            AppOp::Insert {
                namespace,
                key,
                value,
                reply,
            } => {
                let fresh = tables.insert_app(namespace, key, value)?;
                answer_after_commit(replies, reply, fresh);
            }
            AppOp::Delete {
                namespace,
                key,
                reply,
            } => {
                let existed = tables.delete_app(namespace, key)?;
                answer_after_commit(replies, reply, existed);
            }
            AppOp::List {
                namespace,
                page,
                reply,
            } => {
                let found = tables.list_app(namespace, page)?;
                answer_after_commit(replies, reply, found);
            }
            AppOp::Get {
                namespace,
                key,
                reply,
            } => {
                let found = tables.get_app(namespace, key)?;
                answer_after_commit(replies, reply, found);
            }
            AppOp::Change { changes, reply } => {
                for change in changes.iter() {
                    match change {
                        RecordChange::Put {
                            namespace,
                            key,
                            value,
                        } => tables.put_app(namespace, key, value)?,
                        RecordChange::Delete { namespace, key } => {
                            tables.delete_app(namespace, key)?;
                        }
                    }
                }
                answer_after_commit(replies, reply, ());
            }
        }
        Ok(())
    }
}

async fn ask<T>(
    journal: &Journal,
    op: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> AppOp,
) -> Result<T, StoreError> {
    let (reply, answer) = oneshot::channel();
    journal.send(JournalOp::App(op(reply)))?;
    answer.await.unwrap_or(Err(StoreError::Closed))
}

impl Journal {
    /// Stores `value` under (`namespace`, `key`), replacing what was there;
    /// returns once it is on disk. For small values (kilobytes): an
    /// application's own settings kept in the same file as its queues.
    pub async fn put_record(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), StoreError> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        ask(self, |reply| AppOp::Put {
            namespace,
            key,
            value,
            reply,
        })
        .await
    }

    /// Stores `value` under (`namespace`, `key`), replacing what was there,
    /// with the journal's next durable commit (within 100 ms), without
    /// waiting for it: for what may be lost in a crash in that time (a later
    /// state of a record already on disk, say). It is not ordered with
    /// writes of the same key that are not yet committed: wait for those
    /// first. A later `flush` returns once it is on disk.
    pub fn put_record_soon(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.send(JournalOp::App(AppOp::PutSoon {
            namespace: namespace.to_owned(),
            key: key.to_owned(),
            value,
        }))
    }

    /// Stores `value` under (`namespace`, `key`) unless a record is there;
    /// returns whether it stored it, once on disk. Of two racing inserts of
    /// one key, one gets `true`.
    pub async fn insert_record(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        ask(self, |reply| AppOp::Insert {
            namespace,
            key,
            value,
            reply,
        })
        .await
    }

    /// Deletes the record under (`namespace`, `key`); returns whether there
    /// was one, once the deletion is on disk.
    pub async fn delete_record(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        ask(self, |reply| AppOp::Delete {
            namespace,
            key,
            reply,
        })
        .await
    }

    /// Applies `changes` in order, in one transaction (one fsync, all or
    /// nothing); returns once they are on disk. For logs an application
    /// writes often: one call per batch, not per record.
    pub async fn change_records(&self, changes: Vec<RecordChange>) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        ask(self, |reply| AppOp::Change { changes, reply }).await
    }

    /// Every record of `namespace`, by key, sorted; it sees every write sent
    /// before it.
    pub async fn records(&self, namespace: &str) -> Result<Records, StoreError> {
        self.page(namespace, Page::all()).await
    }

    /// Up to `limit` records of `namespace` whose keys sort after `after`
    /// (from the first without it), by key: a page of a namespace too large
    /// to read whole. It sees every write sent before it.
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
    /// `before`, the greatest key first: a page of the newest, when keys
    /// grow with time.
    pub async fn records_before(
        &self,
        namespace: &str,
        before: &str,
        limit: usize,
    ) -> Result<Records, StoreError> {
        let start = Start::Before(before.to_owned());
        self.page(namespace, Page { start, limit }).await
    }

    /// The record under (`namespace`, `key`), if any; it sees every write
    /// sent before it.
    pub async fn record(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        ask(self, |reply| AppOp::Get {
            namespace,
            key,
            reply,
        })
        .await
    }

    /// One read of `namespace`'s records: `records`, `records_after` and
    /// `records_before` are pages of it.
    async fn page(&self, namespace: &str, page: Page) -> Result<Records, StoreError> {
        let namespace = namespace.to_owned();
        ask(self, |reply| AppOp::List {
            namespace,
            page,
            reply,
        })
        .await
    }
}
