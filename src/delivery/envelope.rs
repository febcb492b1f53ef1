//! The body sent for an event: its payload as is (Elixir), or wrapped in an
//! envelope with `Config::envelope()`.

use std::time::UNIX_EPOCH;

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::model::Event;

/// `{"id": <request id>, "timestamp": <RFC 3339 emit time>, "event": <name>,
/// "data": <payload>}`, the payload embedded as the JSON it already is.
#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    timestamp: String,
    event: &'a str,
    data: &'a RawValue,
}

/// The body to send for `event`. An error only if the stored payload is not
/// JSON, which `emit` never lets through.
pub(crate) fn body_for(envelope: bool, event: &Event) -> Result<Bytes, serde_json::Error> {
    if !envelope {
        return Ok(event.payload_bytes());
    }
    let wrapped = Envelope {
        id: event.request_id().as_str(),
        // humantime panics on a time before 1970 (a clock set wrong).
        timestamp: humantime::format_rfc3339_millis(event.emitted_at().max(UNIX_EPOCH)).to_string(),
        event: event.name(),
        data: serde_json::from_slice(event.payload())?,
    };
    serde_json::to_vec(&wrapped).map(Bytes::from)
}
