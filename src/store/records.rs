//! How events and dead letters are laid out in a store (the journal's values,
//! PostgreSQL's `record` column): a small binary header, then the payload's
//! bytes as they are sent, so that a payload is
//! never parsed or escaped again. Writing values is most of what the journal
//! costs, per byte, so the header is kept short.
//!
//! ```text
//! u8 layout (1) | u16 name length | name | u16 id length | id
//! | u64 seconds, u32 nanoseconds (emit time) | u32 attempts
//! | u32 dead-letter length | dead letter (JSON: reason, time), if any
//! | payload
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::emitter::dead_letter::{DeadLetter, DeadLetterReason};
use crate::emitter::event::{Event, RequestId};

const LAYOUT: u8 = 1;

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
}

/// The fields of a stored value.
struct Parts<'a> {
    name: &'a str,
    id: &'a str,
    at: SystemTime,
    attempts: u32,
    dead: Option<DeadHeader>,
    payload: &'a [u8],
}

fn encode(event: &Event, attempts: u32, dead: Option<&DeadHeader>) -> Vec<u8> {
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
        Vec::with_capacity(27 + name.len() + id.len() + dead.len() + event.payload().len());
    out.push(LAYOUT);
    // Names and ids are at most 256 bytes (checked by `emit`).
    out.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(&u16::try_from(id.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(id);
    out.extend_from_slice(&at.as_secs().to_le_bytes());
    out.extend_from_slice(&at.subsec_nanos().to_le_bytes());
    out.extend_from_slice(&attempts.to_le_bytes());
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
    if reader.array::<1>()? != [LAYOUT] {
        return None;
    }
    let name = reader.text()?;
    let id = reader.text()?;
    let secs = u64::from_le_bytes(reader.array()?);
    let nanos = u32::from_le_bytes(reader.array()?).min(999_999_999);
    let at = UNIX_EPOCH.checked_add(Duration::new(secs, nanos))?;
    let attempts = u32::from_le_bytes(reader.array()?);
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
    encode(event, attempts, None)
}

/// The same value with another attempt count; `None` if it is damaged.
pub(crate) fn with_attempts(value: &[u8], attempts: u32) -> Option<Vec<u8>> {
    let parts = decode(value)?;
    // The attempts sit after the layout byte, the two texts with their
    // lengths, and the emit time.
    let offset = 1 + 2 + parts.name.len() + 2 + parts.id.len() + 12;
    let mut updated = value.to_vec();
    updated
        .get_mut(offset..offset + 4)?
        .copy_from_slice(&attempts.to_le_bytes());
    Some(updated)
}

pub(crate) fn decode_event(seq: u64, value: &[u8]) -> Option<StoredEvent> {
    let parts = decode(value)?;
    Some(StoredEvent {
        seq,
        event: event_of(&parts),
        attempts: parts.attempts,
    })
}

pub(crate) fn encode_dead_letter(letter: &DeadLetter) -> Vec<u8> {
    let dead = DeadHeader {
        reason: letter.reason.clone(),
        at: letter.at,
    };
    encode(&letter.event, letter.attempts, Some(&dead))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Failure;
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
        let again = with_attempts(&encode_event(&event, 2), 5).unwrap_or_default();
        assert_eq!(decode_event(7, &again).map(|s| s.attempts), Some(5));

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
            let _ = with_attempts(&bytes, 1);
        }
    }
}
