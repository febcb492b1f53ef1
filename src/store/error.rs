//! Why a store could not be opened or written.

use std::io;
use std::path::Path;

/// A store failure, with a message that says what to do about it. It carries
/// text rather than the underlying error so that it can be cloned to every
/// caller waiting on the same commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process (or another `Journal` in this one) has the file open.
    #[error("journal `{path}` is already open by another process or handle; one process owns a journal at a time")]
    Locked {
        /// The journal's path.
        path: String,
    },
    /// The file is not a journal (not a redb database, or another program's).
    #[error("`{path}` is not a webhooks-emitter journal: {detail}")]
    NotAJournal {
        /// The path given.
        path: String,
        /// What was found instead.
        detail: String,
    },
    /// The file is a journal but damaged (truncated, bad checksums).
    #[error("journal `{path}` is corrupt: {detail}; restore it from a backup or move it aside")]
    Corrupt {
        /// The journal's path.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The process may not read or write the file or its directory.
    #[error("permission denied on `{path}`: {detail}")]
    PermissionDenied {
        /// The path concerned.
        path: String,
        /// The system's message.
        detail: String,
    },
    /// The disk (or quota) is full.
    #[error("disk full while writing the journal: {detail}")]
    DiskFull {
        /// The system's message.
        detail: String,
    },
    /// Another input/output error.
    #[error("journal I/O error: {detail}")]
    Io {
        /// The system's message.
        detail: String,
    },
    /// The journal's writer has stopped (the journal was closed).
    #[error("the journal is closed")]
    Closed,
    /// The database connection URL is not valid (the URL is not repeated:
    /// it may hold a password).
    #[error("invalid database URL: {detail}")]
    InvalidDatabaseUrl {
        /// What is wrong with it.
        detail: String,
    },
    /// The database cannot be reached (refused, unreachable, timed out, TLS
    /// failed, or it went away); the store retries and reconnects by itself.
    #[error("database unavailable: {detail}")]
    Unavailable {
        /// The driver's message.
        detail: String,
    },
    /// The database refused the user or password.
    #[error("database authentication failed: {detail}")]
    Authentication {
        /// The server's message.
        detail: String,
    },
    /// The store's schema could not be created or upgraded.
    #[error("database migration failed: {detail}")]
    Migration {
        /// The migrator's message.
        detail: String,
    },
    /// A store setting is not valid.
    #[error("invalid store setting: {detail}")]
    InvalidSetting {
        /// Which, and why.
        detail: String,
    },
    /// Another database error (a query failed).
    #[error("database error: {detail}")]
    Database {
        /// The server's message.
        detail: String,
    },
}

impl StoreError {
    /// Classifies an I/O error on `path`.
    pub(crate) fn from_io(path: &Path, error: &io::Error) -> Self {
        let (path, detail) = (path.display().to_string(), error.to_string());
        match error.kind() {
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                StoreError::PermissionDenied { path, detail }
            }
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                StoreError::DiskFull { detail }
            }
            io::ErrorKind::InvalidData if detail.contains("magic number") => {
                StoreError::NotAJournal { path, detail }
            }
            io::ErrorKind::UnexpectedEof => StoreError::Corrupt { path, detail },
            _ => StoreError::Io {
                detail: format!("{path}: {detail}"),
            },
        }
    }

    /// Classifies an error from redb on the journal at `path`.
    pub(crate) fn from_redb(path: &Path, error: redb::Error) -> Self {
        match error {
            redb::Error::DatabaseAlreadyOpen => StoreError::Locked {
                path: path.display().to_string(),
            },
            redb::Error::Corrupted(detail) => StoreError::Corrupt {
                path: path.display().to_string(),
                detail,
            },
            redb::Error::Io(io) => Self::from_io(path, &io),
            redb::Error::UpgradeRequired(version) => StoreError::NotAJournal {
                path: path.display().to_string(),
                detail: format!("a redb file of an older format ({version})"),
            },
            redb::Error::TableTypeMismatch { .. } | redb::Error::TableIsMultimap(_) => {
                StoreError::NotAJournal {
                    path: path.display().to_string(),
                    detail: error.to_string(),
                }
            }
            other => StoreError::Io {
                detail: format!("{}: {other}", path.display()),
            },
        }
    }
}
