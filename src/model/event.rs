//! An emitted event: its name, its payload serialized once, and its request id.
//! Shared as `Arc<Event>` by every emitter it is queued at.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::{EmitError, EventNameError};

/// Longest request id accepted from a caller.
pub const MAX_REQUEST_ID_LEN: usize = 256;

/// The id of one emitted event, sent as `x-<identifier>-delivery`: the caller's
/// own id, or a new UUIDv4. The same for every attempt and every emitter, so
/// receivers can use it to ignore duplicates.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// An id read back from a store, as it was accepted.
    pub(crate) fn restored(id: &str) -> Self {
        RequestId(Arc::from(id))
    }
}

impl RequestId {
    /// A new random (UUIDv4) id.
    pub fn generate() -> Self {
        let mut buf = uuid::Uuid::encode_buffer();
        RequestId(Arc::from(
            &*uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf),
        ))
    }

    /// Accepts a caller's id: 1 to 256 visible ASCII characters, so that it can
    /// travel in a header unchanged.
    pub fn parse(id: &str) -> Result<Self, EmitError> {
        header_safe(id)
            .map(|()| RequestId(Arc::from(id)))
            .map_err(|reason| EmitError::InvalidRequestId { reason })
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RequestId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Checks that an event name can be sent as a header value and an SSE field:
/// 1 to 256 visible ASCII characters.
pub(crate) fn validate_event_name(name: &str) -> Result<(), EventNameError> {
    let refused = |reason| EventNameError {
        name: name.escape_debug().to_string(),
        reason,
    };
    header_safe(name).map_err(refused)?;
    // `*` makes a subscription a pattern (`*`, `order.*`); an emitted name
    // holding one would read as a pattern and match only itself.
    if name.contains('*') {
        return Err(refused(
            "`*` is reserved for subscriptions (`order.*`): an event's name cannot hold it",
        ));
    }
    Ok(())
}

/// The rule shared by request ids and event names, which both travel in
/// headers unchanged: 1 to 256 visible ASCII characters.
pub(super) fn header_safe(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        Err("it is empty")
    } else if value.len() > MAX_REQUEST_ID_LEN {
        Err("it is longer than 256 bytes")
    } else if !value.bytes().all(|b| b.is_ascii_graphic()) {
        Err("only visible ASCII characters (no spaces or control characters) are allowed")
    } else {
        Ok(())
    }
}

/// One emitted event, as queued at each emitter attached to its name.
pub struct Event {
    name: Arc<str>,
    payload: Bytes,
    request_id: RequestId,
    emitted_at: SystemTime,
}

impl Event {
    pub(crate) fn new(name: Arc<str>, payload: Bytes, request_id: RequestId) -> Self {
        Event {
            name,
            payload,
            request_id,
            emitted_at: SystemTime::now(),
        }
    }

    /// An event read back from a store, as it was emitted.
    pub(crate) fn restored(
        name: Arc<str>,
        payload: Bytes,
        request_id: RequestId,
        emitted_at: SystemTime,
    ) -> Self {
        Event {
            name,
            payload,
            request_id,
            emitted_at,
        }
    }

    /// When `emit` was called: the envelope's `timestamp`.
    pub fn emitted_at(&self) -> SystemTime {
        self.emitted_at
    }

    /// The event name, e.g. `order.created`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name, cheap to clone.
    pub(crate) fn shared_name(&self) -> Arc<str> {
        self.name.clone()
    }

    /// The payload as the JSON bytes that are sent.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The payload bytes, cheap to clone.
    pub(crate) fn payload_bytes(&self) -> Bytes {
        self.payload.clone()
    }

    /// The payload deserialized into `T`.
    pub fn payload_json<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.payload)
    }

    /// The id sent as `x-<identifier>-delivery`.
    pub fn request_id(&self) -> &RequestId {
        &self.request_id
    }
}

/// Shows the payload's size, not its content: payloads often carry personal data.
impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.name)
            .field("request_id", &self.request_id)
            .field("payload_bytes", &self.payload.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_uuid_v4() {
        let id = RequestId::generate();
        let parsed = uuid::Uuid::parse_str(id.as_str()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.get_version_num(), 4);
    }

    #[test]
    fn caller_ids_must_fit_in_a_header() {
        assert!(RequestId::parse("req-42").is_ok());
        for bad in ["", "a\r\nx-injected: 1", "with space", &"x".repeat(257)] {
            assert!(
                matches!(
                    RequestId::parse(bad),
                    Err(EmitError::InvalidRequestId { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn event_names_must_fit_in_a_header() {
        assert!(validate_event_name("order.created").is_ok());
        assert!(validate_event_name("").is_err());
        assert!(validate_event_name("a\nb").is_err());
    }
}
