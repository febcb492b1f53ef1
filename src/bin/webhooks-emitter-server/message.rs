//! A message: an event as the server accepted it, kept per application for
//! its history, and to be sent again (`recover`). What the store keeps
//! (record) and what the API shows (view).
//!
//! Records are keyed `<unix µs, 20 digits>-<request id>`: keys sort by the
//! time of acceptance (on every node: the clock, not a counter), and two
//! messages of one microsecond differ by their request ids.

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
    }
}
