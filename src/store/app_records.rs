//! Application records: small values an application keeps beside the
//! queues, by namespace and key (the server keeps its endpoints there), with
//! one API on the journal and on PostgreSQL.

/// A namespace's records: (key, value), by key.
pub type Records = Vec<(String, Vec<u8>)>;

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
