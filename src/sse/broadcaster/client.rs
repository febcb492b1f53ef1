//! A connected client, as the broadcaster sees it in each topic it follows.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc::{self, error::TrySendError};

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
pub(super) struct Shared {
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
    pub sender: mpsc::Sender<Frame>,
    pub shared: Rc<Shared>,
}

/// Why a client is disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Disconnect {
    Closed,
    TooSlow,
}

impl Client {
    /// Queues `frame` without waiting; the error says why the client must go.
    pub(super) fn send(&self, frame: Frame, now: Instant) -> Result<(), Disconnect> {
        match self.sender.try_send(frame) {
            Ok(()) => {
                self.shared.last_write.set(now);
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(Disconnect::TooSlow),
            Err(TrySendError::Closed(_)) => Err(Disconnect::Closed),
        }
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
