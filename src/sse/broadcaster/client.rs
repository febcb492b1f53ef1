//! A connected client, as the broadcaster sees it in each topic it follows.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc::{self, error::TrySendError};

use super::fanout::{Cursor, Disconnect};
use crate::sse::kick::Kick;

/// The topics of a multi-topic stream, in the order requested: its ids give
/// the position in each.
pub(crate) type TopicSet = Arc<[Arc<str>]>;

/// What a client's channel carries: a frame shared by every client that
/// gets it. One pointer wide, so that the first block of each client's
/// channel (32 slots, allocated per client) takes 256 bytes, not 1 KiB.
pub(crate) type Frame = Arc<Bytes>;

/// How a client wants its frames.
#[derive(Debug, Clone)]
pub(crate) enum Audience {
    /// `GET <scope>/{topic}`: SSE frames with the topic's own ids.
    Sse,
    /// `GET <scope>?topic=…&topic=…`: SSE frames whose ids are positions in
    /// every topic of the set.
    SseMulti(TopicSet),
    /// A WebSocket connection: JSON text frames.
    WebSocket,
}

/// What a client shares across the topics it follows.
#[derive(Debug)]
pub(super) struct ClientInfo {
    pub id: u64,
    pub audience: Audience,
    pub last_write: Cell<Instant>,
    /// Told when the broadcaster drops the client (a WebSocket connection
    /// then closes itself with a reason).
    pub kick: Option<Arc<Kick>>,
}

/// One client in one topic.
#[derive(Debug)]
pub(super) struct Client {
    pub delivery: Delivery,
    pub shared: Rc<ClientInfo>,
}

/// How frames reach a client.
#[derive(Debug)]
pub(super) enum Delivery {
    /// A channel of its own: multi-topic SSE streams and WebSocket
    /// connections, whose frames differ from client to client.
    Channel(mpsc::Sender<Frame>),
    /// The topic's shared fan-out: one-topic SSE streams.
    Fanout(Arc<Cursor>),
}

impl Delivery {
    /// Ends a fan-out client's stream (a channel ends when dropped).
    pub(super) fn end(&self) {
        if let Delivery::Fanout(cursor) = self {
            cursor.drop_client();
        }
    }

    /// Whether the client's side is gone.
    pub(super) fn is_closed(&self) -> bool {
        match self {
            Delivery::Channel(sender) => sender.is_closed(),
            Delivery::Fanout(cursor) => Arc::strong_count(cursor) < 2,
        }
    }
}

/// Queues `frame` on a client's own channel without waiting; the error says
/// why the client must go.
pub(super) fn send(
    sender: &mpsc::Sender<Frame>,
    shared: &ClientInfo,
    frame: Frame,
    now: Instant,
) -> Result<(), Disconnect> {
    match sender.try_send(frame) {
        Ok(()) => {
            shared.last_write.set(now);
            Ok(())
        }
        Err(TrySendError::Full(_)) => Err(Disconnect::TooSlow),
        Err(TrySendError::Closed(_)) => Err(Disconnect::Closed),
    }
}

/// Logs why a client is dropped.
pub(super) fn log_drop(topic: &str, client: u64, why: Disconnect) {
    match why {
        Disconnect::Closed => tracing::debug!(topic, client, "live client disconnected"),
        Disconnect::TooSlow => tracing::warn!(
            topic,
            client,
            "live client too slow; disconnected (it can resume by id)"
        ),
    }
}
