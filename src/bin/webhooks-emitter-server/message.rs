//! A message: an event as the server accepted it, kept per application for
//! its history, and to be sent again (`recover`). What the store keeps
//! (record) and what the API shows (view).
//!
//! Records are keyed `<unix µs, 20 digits>-<request id>`: keys sort by the
//! time of acceptance (on every node: the clock, not a counter), and two
//! messages of one microsecond differ by their request ids.
//!
//! The request ids the server makes are UUIDv7 holding the millisecond of
//! acceptance, so a message is found by its id by reading that
//! millisecond's keys: no index record, whose random keys would touch a page
//! of the store each. Ids a client gives get an index record.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::clock::rfc3339;

/// What the store keeps of a message.
#[derive(Debug, Serialize, Deserialize)]
pub struct MessageRecord {
    pub request_id: String,
    pub event: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// Absent once expired (see `--retention`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Box<RawValue>>,
    /// Unix microseconds.
    pub accepted_at: u64,
    /// How many endpoints it was routed to.
    pub endpoints: usize,
}

/// A message's key: its time of acceptance, then its request id.
pub fn key(accepted_at: u64, request_id: &str) -> String {
    format!("{accepted_at:020}-{request_id}")
}

/// The key before every message accepted at or after `micros`: a bound of
/// a time window.
pub fn time_bound(micros: u64) -> String {
    format!("{micros:020}")
}

/// A new request id for a message accepted at `accepted_at` (Unix µs): a
/// UUIDv7 of that millisecond.
pub fn fresh_id(accepted_at: u64) -> String {
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        accepted_at / 1_000_000,
        u32::try_from(accepted_at % 1_000_000 * 1_000).unwrap_or(0),
    );
    uuid::Uuid::new_v7(ts).to_string()
}

/// The millisecond (Unix) a UUIDv7 request id holds; `None` for any other id.
pub fn millisecond_of(request_id: &str) -> Option<u64> {
    let id = uuid::Uuid::parse_str(request_id).ok()?;
    if id.get_version_num() != 7 {
        return None;
    }
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    Some(secs * 1_000 + u64::from(nanos) / 1_000_000)
}

/// Whether a message needs an index record to be found by its request id:
/// unless its id holds its millisecond of acceptance.
pub fn needs_index(accepted_at: u64, request_id: &str) -> bool {
    millisecond_of(request_id) != Some(accepted_at / 1_000)
}

/// An event as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub request_id: String,
    pub event: String,
    pub channels: Vec<String>,
    /// As it was emitted; `null` once its retention is over (`expired`).
    #[schema(value_type = Option<serde_json::Value>)]
    pub payload: Option<Box<RawValue>>,
    pub expired: bool,
    /// RFC 3339.
    pub accepted_at: String,
    /// How many endpoints it was routed to when accepted.
    pub endpoints: usize,
}

impl From<MessageRecord> for MessageView {
    fn from(record: MessageRecord) -> Self {
        MessageView {
            expired: record.payload.is_none(),
            request_id: record.request_id,
            event: record.event,
            channels: record.channels,
            payload: record.payload,
            accepted_at: rfc3339(crate::clock::from_micros(record.accepted_at)),
            endpoints: record.endpoints,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::proptest_config())]

        /// Keys sort as their times, whatever the request ids; a window's
        /// bounds sort around the keys of its times.
        #[test]
        fn keys_sort_by_time(a in 0u64..u64::MAX / 2, b in 0u64..u64::MAX / 2,
            x in "[!-~]{1,40}", y in "[!-~]{1,40}") {
            if a < b {
                prop_assert!(key(a, &x) < key(b, &y));
                prop_assert!(key(a, &x) < time_bound(b));
            }
            prop_assert!(time_bound(a) < key(a, &x));
        }

        /// An id the server makes is found by its millisecond; any other
        /// text (a client's id) needs an index, and never panics.
        #[test]
        fn fresh_ids_hold_their_millisecond(at in 0u64..253_402_300_799_000_000, other in "\\PC{0,60}") {
            let id = fresh_id(at);
            prop_assert_eq!(millisecond_of(&id), Some(at / 1_000));
            prop_assert!(!needs_index(at, &id));
            prop_assert!(needs_index(at + 1_000, &id));
            let _ = millisecond_of(&other);
            prop_assert!(needs_index(at, &uuid::Uuid::new_v4().to_string()));
        }
    }
}
