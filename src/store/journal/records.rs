//! How events and dead letters are laid out in the journal: a JSON header
//! (name, request id, emit time, attempts; for dead letters, reason and time)
//! followed by the payload's bytes as they are sent, so that a payload is
//! never parsed or escaped again.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::emitter::dead_letter::{DeadLetter, DeadLetterReason};
use crate::emitter::event::{Event, RequestId};

/// The header of a stored event.
#[derive(Serialize, Deserialize)]
struct EventHeader<'a> {
    name: &'a str,
    id: &'a str,
    at: SystemTime,
    attempts: u32,
    /// Set for dead letters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dead: Option<DeadHeader>,
}

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

/// `[header length, u32 LE][header JSON][payload]`.
fn encode(header: &EventHeader<'_>, payload: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(header).unwrap_or_default();
    let mut out = Vec::with_capacity(4 + json.len() + payload.len());
    out.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(payload);
    out
}

/// The header and the payload of a stored value, or `None` if damaged.
fn decode(value: &[u8]) -> Option<(EventHeader<'_>, &[u8])> {
    let length = u32::from_le_bytes(value.get(..4)?.try_into().ok()?);
    let end = 4usize.checked_add(usize::try_from(length).ok()?)?;
    let header = serde_json::from_slice(value.get(4..end)?).ok()?;
    Some((header, value.get(end..)?))
}

fn event_of(header: &EventHeader<'_>, payload: &[u8]) -> Arc<Event> {
    Arc::new(Event::restored(
        Arc::from(header.name),
        Bytes::copy_from_slice(payload),
        RequestId::restored(header.id),
        header.at,
    ))
}

/// An event waiting at an emitter, with its attempts so far.
pub(crate) fn encode_event(event: &Event, attempts: u32) -> Vec<u8> {
    let header = EventHeader {
        name: event.name(),
        id: event.request_id().as_str(),
        at: event.emitted_at(),
        attempts,
        dead: None,
    };
    encode(&header, event.payload())
}

/// The same value with another attempt count; `None` if it is damaged.
pub(crate) fn with_attempts(value: &[u8], attempts: u32) -> Option<Vec<u8>> {
    let (mut header, payload) = decode(value)?;
    header.attempts = attempts;
    Some(encode(&header, payload))
}

pub(crate) fn decode_event(seq: u64, value: &[u8]) -> Option<StoredEvent> {
    let (header, payload) = decode(value)?;
    Some(StoredEvent {
        seq,
        event: event_of(&header, payload),
        attempts: header.attempts,
    })
}

pub(crate) fn encode_dead_letter(letter: &DeadLetter) -> Vec<u8> {
    let event = &letter.event;
    let header = EventHeader {
        name: event.name(),
        id: event.request_id().as_str(),
        at: event.emitted_at(),
        attempts: letter.attempts,
        dead: Some(DeadHeader {
            reason: letter.reason.clone(),
            at: letter.at,
        }),
    };
    encode(&header, event.payload())
}

pub(crate) fn decode_dead_letter(id: u64, value: &[u8]) -> Option<DeadLetter> {
    let (header, payload) = decode(value)?;
    let dead = header.dead.as_ref()?;
    Some(DeadLetter {
        id,
        event: event_of(&header, payload),
        attempts: header.attempts,
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
