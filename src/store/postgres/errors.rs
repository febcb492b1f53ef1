//! The driver's errors as [`StoreError`]s. The connection URL is never part of
//! a message: it may hold a password.

use crate::error::StoreError;

/// Classifies an error from sqlx.
pub(crate) fn from_sqlx(error: &sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Configuration(detail) => StoreError::InvalidDatabaseUrl {
            detail: detail.to_string(),
        },
        sqlx::Error::Database(database) => {
            let detail = database.message().to_owned();
            match database.code().as_deref() {
                // invalid_authorization_specification, invalid_password
                Some("28000" | "28P01") => StoreError::Authentication { detail },
                // admin_shutdown, crash_shutdown, cannot_connect_now,
                // too_many_connections
                Some("57P01" | "57P02" | "57P03" | "53300") => StoreError::Unavailable { detail },
                _ => StoreError::Database { detail },
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable {
            detail: error.to_string(),
        },
        other => StoreError::Database {
            detail: other.to_string(),
        },
    }
}

/// Classifies an error from the migrator.
pub(crate) fn from_migrate(error: &sqlx::migrate::MigrateError) -> StoreError {
    match error {
        sqlx::migrate::MigrateError::Execute(inner) => match from_sqlx(inner) {
            StoreError::Database { detail } => StoreError::Migration { detail },
            other => other,
        },
        other => StoreError::Migration {
            detail: other.to_string(),
        },
    }
}
