//! The frames each kind of client gets, made once per event and kind.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;

use super::client::{Audience, Frame, TopicSet};
use super::topic::Record;
use crate::sse::{frame, position, LOST_EVENTS_EVENT};

/// An event's frames, made on first use.
pub(super) struct Frames<'a> {
    topic: &'a str,
    record: &'a Record,
    /// Per multi-topic set (by address), made beforehand.
    multi: HashMap<usize, Frame>,
    ws: Option<Frame>,
}

impl<'a> Frames<'a> {
    pub(super) fn new(topic: &'a str, record: &'a Record, multi: HashMap<usize, Frame>) -> Self {
        Frames {
            topic,
            record,
            multi,
            ws: None,
        }
    }

    pub(super) fn for_audience(&mut self, audience: &Audience) -> Frame {
        match audience {
            // One-topic streams read their topic's fan-out, not a channel:
            // no client with a channel has this audience.
            Audience::Sse => Arc::new(sse(self.record)),
            Audience::WebSocket => {
                let (topic, record) = (self.topic, self.record);
                self.ws
                    .get_or_insert_with(|| Arc::new(ws_event(topic, record)))
                    .clone()
            }
            Audience::SseMulti(set) => {
                let key = Arc::as_ptr(set) as *const () as usize;
                self.multi.get(&key).cloned().unwrap_or_default()
            }
        }
    }
}

/// An SSE frame with the topic's own id.
pub(super) fn sse(record: &Record) -> Bytes {
    frame::encode(Some(&record.id.to_string()), &record.event, &record.data)
}

/// An SSE frame whose id is the stream's position in every topic of `set`.
pub(super) fn sse_multi(
    set: &TopicSet,
    position: impl Fn(&Arc<str>) -> u64,
    record: &Record,
) -> Bytes {
    let id = position::format(set.iter().map(|t| (&**t, position(t))));
    frame::encode(Some(&id), &record.event, &record.data)
}

/// `sse-lost`, without an id: `{"last_event_id", "first_available_id"}`, and
/// `"topic"` on multi-topic streams.
pub(super) fn sse_lost(topic: Option<&str>, last_seen: u64, oldest: Option<u64>) -> Bytes {
    let data = match topic {
        Some(topic) => serde_json::json!({
            "topic": topic, "last_event_id": last_seen, "first_available_id": oldest
        }),
        None => serde_json::json!({ "last_event_id": last_seen, "first_available_id": oldest }),
    };
    frame::encode(None, LOST_EVENTS_EVENT, data.to_string().as_bytes())
}

/// `{"topic", "id", "event", "data"}`: the data as the JSON it is, or as a
/// JSON string when it is text (`broadcast_text`).
pub(super) fn ws_event(topic: &str, record: &Record) -> Bytes {
    #[derive(Serialize)]
    struct WsEvent<'a, D: Serialize> {
        topic: &'a str,
        id: u64,
        event: &'a str,
        data: D,
    }
    let text = std::str::from_utf8(&record.data).unwrap_or_default();
    // Each frame is one line (a Serialize impl may write JSON over several):
    // outside strings, CR and LF are whitespace, and inside they are escaped.
    let text: Cow<str> = if record.json && text.contains(['\n', '\r']) {
        Cow::Owned(text.replace(['\n', '\r'], " "))
    } else {
        Cow::Borrowed(text)
    };
    let raw: Option<&RawValue> = if record.json {
        serde_json::from_str(&text).ok()
    } else {
        None
    };
    let (id, event) = (record.id, &*record.event);
    let json = match raw {
        Some(data) => serde_json::to_vec(&WsEvent {
            topic,
            id,
            event,
            data,
        }),
        None => serde_json::to_vec(&WsEvent {
            topic,
            id,
            event,
            data: &*text,
        }),
    };
    Bytes::from(json.unwrap_or_default())
}

/// A WebSocket control frame: `{"op": …, …}`.
pub(crate) fn ws_op(op: &str, fields: serde_json::Value) -> Bytes {
    let mut object = serde_json::Map::new();
    object.insert("op".into(), serde_json::Value::String(op.into()));
    if let serde_json::Value::Object(fields) = fields {
        object.extend(fields);
    }
    Bytes::from(serde_json::Value::Object(object).to_string())
}
