//! How events and dead letters are laid out in a store (the journal's values,
//! PostgreSQL's `record` column): a small binary header, then the payload's
//! bytes as they are sent, so that a payload is
//! never parsed or escaped again. Writing values is most of what the journal
//! costs, per byte, so the header is kept short.
//!
//! ```text
//! u8 layout (2) | u16 name length | name | u16 id length | id
//! | u64 seconds, u32 nanoseconds (emit time) | u32 attempts
//! | u64 next attempt not before (unix milliseconds, 0: at once)
//! | u32 dead-letter length | dead letter (JSON: reason, time), if any
//! | payload
//! ```
//!
//! Layout 1 (before the next attempt's due time was kept) has no due time
//! and is still read.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::model::{DeadLetter, DeadLetterReason};
use crate::model::{Event, RequestId};

const LAYOUT: u8 = 2;
/// The layout without the due time, still read.
const LAYOUT_1: u8 = 1;

/// What a dead letter adds.
#[derive(Serialize, Deserialize)]
struct DeadHeader {
    reason: DeadLetterReason,
    at: SystemTime,
}

/// An event read back from the journal.
#[derive(Debug)]
pub(crate) struct StoredEvent {
    pub seq: u64,
    pub event: Arc<Event>,
    pub attempts: u32,
    /// After a failed attempt: not to be sent again before this (its
    /// backoff), even by a restarted process.
    pub retry_at: Option<SystemTime>,
}

/// The fields of a stored value.
struct Parts<'a> {
    name: &'a str,
    id: &'a str,
    at: SystemTime,
    attempts: u32,
    retry_at: Option<SystemTime>,
    dead: Option<DeadHeader>,
    payload: &'a [u8],
}

/// Milliseconds since the epoch, 0 for none (the epoch itself is never a
/// due time).
pub(crate) fn millis(time: Option<SystemTime>) -> u64 {
    time.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The due time [`millis`] wrote.
pub(crate) fn from_millis(ms: u64) -> Option<SystemTime> {
    match ms {
        0 => None,
        ms => UNIX_EPOCH.checked_add(Duration::from_millis(ms)),
    }
}

fn encode(
    event: &Event,
    attempts: u32,
    retry_at: Option<SystemTime>,
    dead: Option<&DeadHeader>,
) -> Vec<u8> {
    let dead = dead
        .and_then(|d| serde_json::to_vec(d).ok())
        .unwrap_or_default();
    let (name, id) = (
        event.name().as_bytes(),
        event.request_id().as_str().as_bytes(),
    );
    let at = event
        .emitted_at()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut out =
        Vec::with_capacity(35 + name.len() + id.len() + dead.len() + event.payload().len());
    out.push(LAYOUT);
    // Names and ids are at most 256 bytes (checked by `emit`).
    out.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(&u16::try_from(id.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(id);
    out.extend_from_slice(&at.as_secs().to_le_bytes());
    out.extend_from_slice(&at.subsec_nanos().to_le_bytes());
    out.extend_from_slice(&attempts.to_le_bytes());
    out.extend_from_slice(&millis(retry_at).to_le_bytes());
    out.extend_from_slice(&u32::try_from(dead.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&dead);
    out.extend_from_slice(event.payload());
    out
}

/// Reads fields off the front of a value; `None` past its end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(taken)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn text(&mut self) -> Option<&'a str> {
        let len = u16::from_le_bytes(self.array()?);
        std::str::from_utf8(self.take(usize::from(len))?).ok()
    }
}

/// The fields of a stored value, or `None` if it is damaged.
fn decode(value: &[u8]) -> Option<Parts<'_>> {
    let mut reader = Reader(value);
    let [layout] = reader.array::<1>()?;
    if layout != LAYOUT && layout != LAYOUT_1 {
        return None;
    }
    let name = reader.text()?;
    let id = reader.text()?;
    let secs = u64::from_le_bytes(reader.array()?);
    let nanos = u32::from_le_bytes(reader.array()?).min(999_999_999);
    let at = UNIX_EPOCH.checked_add(Duration::new(secs, nanos))?;
    let attempts = u32::from_le_bytes(reader.array()?);
    let retry_at = match layout {
        LAYOUT_1 => None,
        _ => from_millis(u64::from_le_bytes(reader.array()?)),
    };
    let dead_len = usize::try_from(u32::from_le_bytes(reader.array()?)).ok()?;
    let dead = match dead_len {
        0 => None,
        len => Some(serde_json::from_slice(reader.take(len)?).ok()?),
    };
    Some(Parts {
        name,
        id,
        at,
        attempts,
        retry_at,
        dead,
        payload: reader.0,
    })
}

fn event_of(parts: &Parts<'_>) -> Arc<Event> {
    Arc::new(Event::restored(
        Arc::from(parts.name),
        Bytes::copy_from_slice(parts.payload),
        RequestId::restored(parts.id),
        parts.at,
    ))
}

/// An event waiting at an emitter, with its attempts so far.
pub(crate) fn encode_event(event: &Event, attempts: u32) -> Vec<u8> {
    encode(event, attempts, None, None)
}

/// The same value with another attempt count and due time (written in the
/// current layout, whatever the value's); `None` if it is damaged.
pub(crate) fn with_attempts(
    value: &[u8],
    attempts: u32,
    retry_at: Option<SystemTime>,
) -> Option<Vec<u8>> {
    let parts = decode(value)?;
    if parts.dead.is_some() {
        return None;
    }
    Some(encode(&event_of(&parts), attempts, retry_at, None))
}

pub(crate) fn decode_event(seq: u64, value: &[u8]) -> Option<StoredEvent> {
    let parts = decode(value)?;
    Some(StoredEvent {
        seq,
        event: event_of(&parts),
        attempts: parts.attempts,
        retry_at: parts.retry_at,
    })
}

pub(crate) fn encode_dead_letter(letter: &DeadLetter) -> Vec<u8> {
    let dead = DeadHeader {
        reason: letter.reason.clone(),
        at: letter.at,
    };
    encode(&letter.event, letter.attempts, None, Some(&dead))
}

pub(crate) fn decode_dead_letter(id: u64, value: &[u8]) -> Option<DeadLetter> {
    let parts = decode(value)?;
    let dead = parts.dead.as_ref()?;
    Some(DeadLetter {
        id,
        event: event_of(&parts),
        attempts: parts.attempts,
        reason: dead.reason.clone(),
        at: dead.at,
    })
}

/// An emitter's counters as a store keeps them, across restarts (and, on
/// PostgreSQL, across nodes): its stats start from them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct StoredCounters {
    /// Events delivered.
    pub delivered: u64,
    /// Attempts that failed.
    pub failed_attempts: u64,
    /// Events dead-lettered.
    pub dead_lettered: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Failure;
    use proptest::prelude::*;

    #[test]
    fn events_and_dead_letters_round_trip() {
        let event = Arc::new(Event::new(
            Arc::from("order.created"),
            Bytes::from_static(br#"{"n":1}"#),
            RequestId::restored("req-1"),
        ));
        let stored = decode_event(7, &encode_event(&event, 2)).unwrap_or_else(|| unreachable!());
        assert_eq!((stored.seq, stored.attempts), (7, 2));
        assert_eq!(stored.event.request_id().as_str(), "req-1");
        assert_eq!(stored.event.payload(), br#"{"n":1}"#);
        assert_eq!(stored.event.emitted_at(), event.emitted_at());
        let due = UNIX_EPOCH + Duration::from_millis(1_800_000_000_123);
        let again = with_attempts(&encode_event(&event, 2), 5, Some(due)).unwrap_or_default();
        let again = decode_event(7, &again).unwrap_or_else(|| unreachable!());
        assert_eq!((again.attempts, again.retry_at), (5, Some(due)));
        assert_eq!(again.event.payload(), br#"{"n":1}"#);

        let letter = DeadLetter {
            id: 3,
            event,
            attempts: 4,
            reason: DeadLetterReason::AttemptsExhausted {
                last_failure: Failure::status_code(500),
            },
            at: SystemTime::now(),
        };
        let back = decode_dead_letter(3, &encode_dead_letter(&letter));
        let back = back.unwrap_or_else(|| unreachable!());
        assert_eq!(
            (back.id, back.attempts, &back.reason),
            (3, 4, &letter.reason)
        );
        assert!(decode_dead_letter(3, &encode_event(&letter.event, 0)).is_none());
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        /// Damaged values (a torn write, another program's data) are refused,
        /// never a panic.
        #[test]
        fn any_bytes_decode_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_event(1, &bytes);
            let _ = decode_dead_letter(1, &bytes);
            let _ = with_attempts(&bytes, 1, Some(SystemTime::now()));
        }

        /// Any due time round-trips at millisecond precision; times before
        /// the epoch or past what a u64 of milliseconds holds are "at once"
        /// or the largest, never a panic.
        #[test]
        fn due_times_round_trip(ms in 1u64..u64::MAX / 2, attempts in any::<u32>()) {
            let event = Event::new(Arc::from("e"), Bytes::from_static(b"1"), RequestId::restored("r"));
            if let Some(due) = UNIX_EPOCH.checked_add(Duration::from_millis(ms)) {
                let value = with_attempts(&encode_event(&event, 0), attempts, Some(due));
                let back = decode_event(1, &value.unwrap_or_default());
                prop_assert_eq!(back.map(|s| (s.attempts, s.retry_at)), Some((attempts, Some(due))));
            }
        }
    }

    #[test]
    fn layout_1_values_are_still_read() {
        // A value as layout 1 wrote it: no due time after the attempts.
        let mut value = vec![LAYOUT_1];
        for text in ["order.created", "req-1"] {
            value.extend_from_slice(&u16::try_from(text.len()).unwrap_or(0).to_le_bytes());
            value.extend_from_slice(text.as_bytes());
        }
        value.extend_from_slice(&1_700_000_000u64.to_le_bytes());
        value.extend_from_slice(&0u32.to_le_bytes());
        value.extend_from_slice(&3u32.to_le_bytes());
        value.extend_from_slice(&0u32.to_le_bytes());
        value.extend_from_slice(br#"{"n":1}"#);
        let stored = decode_event(1, &value).unwrap_or_else(|| unreachable!());
        assert_eq!((stored.attempts, stored.retry_at), (3, None));
        assert_eq!(stored.event.request_id().as_str(), "req-1");
        assert_eq!(stored.event.payload(), br#"{"n":1}"#);
    }
}
