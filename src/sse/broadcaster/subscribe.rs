//! Adding and removing clients. Replay and registration happen in one handler:
//! no publish can fall between them, so there is no gap and no duplicate.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc::{self, error::TrySendError};

use super::client::{Audience, ClientInfo, Delivery, Frame, TopicSet};
use super::fanout::Disconnect;
use super::fanout::FanoutStream;
use super::render;
use super::topic::{Record, Resume};
use super::SseBroadcaster;
use crate::sse::frame;
use crate::sse::kick::Kick;

impl SseBroadcaster {
    fn new_shared(
        &mut self,
        id: Option<u64>,
        audience: Audience,
        kick: Option<Arc<Kick>>,
    ) -> Rc<ClientInfo> {
        let id = id.unwrap_or_else(|| {
            self.next_client += 1;
            self.next_client
        });
        Rc::new(ClientInfo {
            id,
            audience,
            last_write: Cell::new(Instant::now()),
            kick,
        })
    }

    /// The `retry:` field, first on a stream, if set.
    fn retry_field(&self) -> BytesMut {
        let mut first = BytesMut::new();
        if let Some(retry) = self.options.retry {
            first.extend_from_slice(&frame::retry(retry.as_millis()));
        }
        first
    }
}

/// Register a client on `topic`; returns the stream of its frames, starting
/// with the replay after `last_event_id`.
#[derive(Message)]
#[rtype(result = "FanoutStream")]
pub(crate) struct Subscribe {
    pub topic: String,
    pub last_event_id: Option<u64>,
}

impl Handler<Subscribe> for SseBroadcaster {
    type Result = MessageResult<Subscribe>;

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) -> Self::Result {
        let topic: Arc<str> = Arc::from(msg.topic.as_str());
        let mut first = self.retry_field();
        let entry = self.topics.entry(topic.clone()).or_default();
        if let Some(last_seen) = msg.last_event_id {
            let (resume, records) = entry.resume(last_seen);
            if let Resume::Lost { oldest } = resume {
                first.extend_from_slice(&render::sse_lost(None, last_seen, oldest));
            }
            for record in &records {
                first.extend_from_slice(&render::sse(record));
            }
        }
        // The cursor starts at the fan-out's end, in the same handler as the
        // replay: what follows the replay is exactly what comes next.
        let fanout = entry.fanout(self.options.client_buffer);
        let cursor = fanout.cursor();
        let shared = self.new_shared(None, Audience::Sse, None);
        tracing::debug!(topic = %topic, client = shared.id, "SSE client connected");
        self.register(shared, &topic, Delivery::Fanout(cursor.clone()));
        let first = (!first.is_empty()).then(|| first.freeze());
        MessageResult(FanoutStream::new(first, fanout, cursor))
    }
}

/// Register a client on several topics; its frames carry its position in
/// each. `positions` come from its `Last-Event-ID`, if any.
#[derive(Message)]
#[rtype(result = "mpsc::Receiver<Frame>")]
pub(crate) struct SubscribeMany {
    pub topics: TopicSet,
    pub positions: Option<HashMap<String, u64>>,
}

impl Handler<SubscribeMany> for SseBroadcaster {
    type Result = MessageResult<SubscribeMany>;

    fn handle(&mut self, msg: SubscribeMany, _: &mut Context<Self>) -> Self::Result {
        let (sender, receiver) = mpsc::channel(self.options.client_buffer);
        let mut first = self.retry_field();
        let mut positions: HashMap<Arc<str>, u64> = HashMap::new();
        let mut replay: Vec<(Arc<str>, Record)> = Vec::new();
        for topic in msg.topics.iter() {
            let entry = self.topics.entry(topic.clone()).or_default();
            let resumed = msg
                .positions
                .as_ref()
                .and_then(|p| p.get(&**topic))
                .copied();
            let start = match resumed {
                None => entry.last_id,
                Some(last_seen) => {
                    let (resume, records) = entry.resume(last_seen);
                    replay.extend(records.into_iter().map(|r| (topic.clone(), r)));
                    match resume {
                        Resume::Bridged => last_seen,
                        Resume::Lost { oldest } => {
                            first.extend_from_slice(&render::sse_lost(
                                Some(topic),
                                last_seen,
                                oldest,
                            ));
                            oldest.map_or(entry.last_id, |o| o.saturating_sub(1))
                        }
                    }
                }
            };
            positions.insert(topic.clone(), start);
        }
        // Replayed in publish order across topics, each with the positions
        // the stream had reached at that point.
        replay.sort_by_key(|(_, record)| record.seq);
        for (topic, record) in &replay {
            positions.insert(topic.clone(), record.id);
            let frame = render::sse_multi(
                &msg.topics,
                |t| positions.get(t).copied().unwrap_or(0),
                record,
            );
            first.extend_from_slice(&frame);
        }
        if !first.is_empty() {
            let _ = sender.try_send(Arc::new(first.freeze()));
        }
        let shared = self.new_shared(None, Audience::SseMulti(msg.topics.clone()), None);
        tracing::debug!(
            topics = msg.topics.len(),
            client = shared.id,
            "SSE client connected to several topics"
        );
        for topic in msg.topics.iter() {
            self.register(shared.clone(), topic, Delivery::Channel(sender.clone()));
        }
        MessageResult(receiver)
    }
}

/// A WebSocket connection joins `topic`, replaying after `last_id`; answers
/// the connection's id (new if `conn` is `None`). The frames go to `sender`:
/// `joined`, then `lost` if events were missed, then the replay, each line
/// one WebSocket message.
#[derive(Message)]
#[rtype(result = "u64")]
pub(crate) struct Join {
    pub conn: Option<u64>,
    pub topic: Arc<str>,
    pub last_id: Option<u64>,
    pub sender: mpsc::Sender<Frame>,
    pub kick: Arc<Kick>,
}

impl Handler<Join> for SseBroadcaster {
    type Result = MessageResult<Join>;

    fn handle(&mut self, msg: Join, _: &mut Context<Self>) -> Self::Result {
        let topic = msg.topic;
        let mut lines = vec![render::ws_op(
            "joined",
            serde_json::json!({ "topic": &*topic }),
        )];
        if let Some(last_seen) = msg.last_id {
            let entry = self.topics.entry(topic.clone()).or_default();
            let (resume, records) = entry.resume(last_seen);
            if let Resume::Lost { oldest } = resume {
                lines.push(render::ws_op(
                    "lost",
                    serde_json::json!({
                        "topic": &*topic, "last_event_id": last_seen, "first_available_id": oldest
                    }),
                ));
            }
            lines.extend(records.iter().map(|r| render::ws_event(&topic, r)));
        }
        let sent = msg
            .sender
            .try_send(Arc::new(Bytes::from(lines.join(&b'\n'))));
        let shared = match msg.conn.and_then(|id| self.clients.get(&id)) {
            Some((shared, _)) => shared.clone(),
            None => self.new_shared(msg.conn, Audience::WebSocket, Some(msg.kick)),
        };
        let id = shared.id;
        self.register(shared, &topic, Delivery::Channel(msg.sender));
        // A connection whose buffer cannot take its own replay is as behind
        // as one that cannot take a live event.
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.drop_client(id, &topic, Disconnect::TooSlow),
            Err(TrySendError::Closed(_)) => self.drop_client(id, &topic, Disconnect::Closed),
        }
        MessageResult(id)
    }
}

/// A WebSocket connection leaves `topic`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Leave {
    pub conn: u64,
    pub topic: Arc<str>,
}

impl Handler<Leave> for SseBroadcaster {
    type Result = ();

    fn handle(&mut self, msg: Leave, _: &mut Context<Self>) {
        if let Some(entry) = self.topics.get_mut(&msg.topic) {
            entry.clients.remove(&msg.conn);
        }
        if let Some((_, topics)) = self.clients.get_mut(&msg.conn) {
            topics.retain(|t| *t != msg.topic);
            if topics.is_empty() {
                self.clients.remove(&msg.conn);
            }
        }
    }
}

/// A WebSocket connection closed: it leaves every topic.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct LeaveAll(pub u64);

impl Handler<LeaveAll> for SseBroadcaster {
    type Result = ();

    fn handle(&mut self, LeaveAll(conn): LeaveAll, _: &mut Context<Self>) {
        if let Some((_, topics)) = self.clients.remove(&conn) {
            for topic in topics {
                if let Some(entry) = self.topics.get_mut(&topic) {
                    entry.clients.remove(&conn);
                }
            }
        }
    }
}
