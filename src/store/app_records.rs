//! Application records: small values an application keeps beside the
//! queues, by namespace and key (the server keeps its endpoints there), with
//! one API on the journal and on PostgreSQL.

/// A namespace's records: (key, value), by key.
pub type Records = Vec<(String, Vec<u8>)>;

/// Which of a namespace's records a read returns: up to `limit`, from
/// `start`.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    pub start: Start,
    pub limit: usize,
}

/// Where a page starts, and which way it goes.
#[derive(Debug, Clone)]
pub(crate) enum Start {
    /// Keys after this one (from the first without it), in key order.
    After(Option<String>),
    /// Keys before this one, the greatest first.
    Before(String),
}

impl Page {
    /// Every record.
    pub fn all() -> Self {
        Page {
            start: Start::After(None),
            limit: usize::MAX,
        }
    }
}

/// One change in [`Journal::change_records`](crate::Journal::change_records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordChange {
    /// Store `value` under (`namespace`, `key`), replacing what was there.
    Put {
        /// The namespace.
        namespace: String,
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
    },
    /// Delete the record under (`namespace`, `key`), if any.
    Delete {
        /// The namespace.
        namespace: String,
        /// The key.
        key: String,
    },
}
