//! How the journal's I/O and redb errors read as a [`StoreError`] that says
//! what to do about them.

use std::io;
use std::path::Path;

use crate::error::StoreError;

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
