//! An application: one customer of the team running the server, with
//! endpoints of its own. What a client sends (spec, patch), what the store
//! keeps (record), what the API shows (view).
//!
//! Each application is a tenant of the library: an event sent to it
//! reaches only its endpoints, whatever their names, patterns and channels.
//! The application `default` always exists; the routes without
//! `/apps/{app}` are its routes, as they were before applications.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::ids::check_id;
use crate::problem::Problem;

/// Longest name, in bytes.
const MAX_NAME: usize = 256;
/// Most metadata entries, and their longest key and value, in bytes.
const MAX_METADATA: usize = 32;
const MAX_METADATA_KEY: usize = 64;
const MAX_METADATA_VALUE: usize = 1_024;

/// An application (the body of `POST /api/v1/apps`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// 1 to 128 letters, digits, `-`, `_` or `.` (not `.` or `..`): a
    /// path segment, e.g. your customer's id.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,128}$", min_length = 1, max_length = 128)]
    pub id: String,
    /// What people call it (1 to 256 bytes).
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    /// Your own labels: at most 32, keys 1 to 64 bytes, values up to 1,024.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// A change to an application (`PATCH`): only the fields given change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppPatch {
    #[serde(default, deserialize_with = "not_null")]
    #[schema(min_length = 1, max_length = 256)]
    pub name: Option<String>,
    /// A new set of labels (`{}`: none).
    #[serde(default, deserialize_with = "not_null")]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// A field that may change but not be removed: `null` is refused.
fn not_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    match Option::<T>::deserialize(d)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom(
            "null for a required field: it cannot be removed, only changed",
        )),
    }
}

/// What the store keeps (namespace `apps`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppRecord {
    #[serde(flatten)]
    pub spec: AppSpec,
    /// Unix seconds.
    pub created_at: u64,
    pub updated_at: u64,
}

/// An application as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppView {
    pub id: String,
    pub name: String,
    pub metadata: BTreeMap<String, String>,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
}

impl From<&AppRecord> for AppView {
    fn from(record: &AppRecord) -> Self {
        AppView {
            id: record.spec.id.clone(),
            name: record.spec.name.clone(),
            metadata: record.spec.metadata.clone(),
            created_at: crate::clock::unix_rfc3339(record.created_at),
            updated_at: crate::clock::unix_rfc3339(record.updated_at),
        }
    }
}

/// The 404 for an application that does not exist, and for one an API key
/// bound to another application asks about: the same words, so that a key
/// learns nothing of applications it may not see.
pub fn unknown_app(app: &str) -> Problem {
    Problem::not_found(format!("no application with id `{}`", app.escape_debug()))
}

/// Checks an application's id, name and metadata.
pub fn check_spec(spec: &AppSpec) -> Result<(), Problem> {
    check_id("application", &spec.id).map_err(Problem::bad_request)?;
    check_fields(&spec.name, &spec.metadata)
}

fn check_fields(name: &str, metadata: &BTreeMap<String, String>) -> Result<(), Problem> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(Problem::bad_request(format!(
            "an application's name has 1 to {MAX_NAME} bytes, not {}",
            name.len()
        )));
    }
    if metadata.len() > MAX_METADATA {
        return Err(Problem::bad_request(format!(
            "at most {MAX_METADATA} metadata entries, not {}",
            metadata.len()
        )));
    }
    for (key, value) in metadata {
        if key.is_empty() || key.len() > MAX_METADATA_KEY || value.len() > MAX_METADATA_VALUE {
            return Err(Problem::bad_request(format!(
                "metadata `{}`: keys have 1 to {MAX_METADATA_KEY} bytes, values up to {MAX_METADATA_VALUE}",
                key.escape_debug()
            )));
        }
    }
    Ok(())
}

impl AppPatch {
    /// The record with this change made, checked.
    pub fn apply(self, mut record: AppRecord, now: u64) -> Result<AppRecord, Problem> {
        if let Some(name) = self.name {
            record.spec.name = name;
        }
        if let Some(metadata) = self.metadata {
            record.spec.metadata = metadata;
        }
        check_fields(&record.spec.name, &record.spec.metadata)?;
        record.updated_at = now;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::proptest_config())]

        #[test]
        fn specs_are_accepted_exactly_within_their_limits(
            name_len in 0usize..300, entries in 0usize..40, value_len in 0usize..1100,
        ) {
            let spec = AppSpec {
                id: "acme".into(),
                name: "n".repeat(name_len),
                metadata: (0..entries).map(|n| (format!("k{n}"), "v".repeat(value_len))).collect(),
            };
            let within = (1..=MAX_NAME).contains(&name_len)
                && entries <= MAX_METADATA
                && (entries == 0 || value_len <= MAX_METADATA_VALUE);
            prop_assert_eq!(check_spec(&spec).is_ok(), within);
        }
    }
}
