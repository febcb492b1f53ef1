//! Live updates: every emitted event is also published on the topic named
//! after it, and apps can publish on topics of their own. SSE clients
//! subscribe with `GET <scope>/{topic}` (`*` for every topic) or
//! `GET <scope>?topic=a&topic=b` and resume with `Last-Event-ID`; WebSocket
//! clients join rooms on `ws_route()` and resume with `last_id`. No client
//! slows the emitter or the others.

mod broadcaster;
pub(crate) mod endpoint;
mod frame;
mod kick;
mod position;
mod slot;
mod ws;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpRequest;

#[cfg(feature = "test-util")]
pub(crate) use broadcaster::CrashBroadcaster;
#[cfg(feature = "postgres")]
pub(crate) use broadcaster::Numbered;
pub(crate) use broadcaster::{
    BroadcasterGone, ClientCounts, Publish, SseBroadcaster, StopBroadcaster,
};
pub use endpoint::SseRejection;
use frame::breaks_framing;
pub(crate) use slot::BroadcasterSlot;
pub(crate) use ws::route as ws_route;

/// The topic that receives every event of every topic, with ids of its own.
pub const ALL_TOPICS: &str = "*";
/// Name of the event sent, without an id, to a client that resumed from an id
/// the replay buffer no longer holds (or that this server never issued, as
/// after a restart): it tells the client that it missed events. Its data is
/// `{"last_event_id": <the client's>, "first_available_id": <oldest replayed>}`
/// (`first_available_id` is `null` when nothing can be replayed). The replay
/// that follows is everything the buffer holds.
pub const LOST_EVENTS_EVENT: &str = "sse-lost";

/// Default number of events kept per topic for `Last-Event-ID` replay.
pub const DEFAULT_REPLAY: usize = 64;
/// Default bound, in bytes of data, of one topic's replay buffer.
pub const DEFAULT_REPLAY_BYTES: usize = 1024 * 1024;
/// Default interval of heartbeat comments on an idle connection.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// Default number of frames a client may fall behind before it is disconnected.
pub const DEFAULT_CLIENT_BUFFER: usize = 256;
/// Largest heartbeat interval.
const MAX_HEARTBEAT: Duration = Duration::from_secs(24 * 3600);
/// Largest client buffer, in frames.
const MAX_CLIENT_BUFFER: usize = 65_536;
/// Default most topics one stream or one WebSocket connection follows.
pub const DEFAULT_MAX_TOPICS: usize = 32;
/// Default interval of WebSocket pings; a peer that answers none within two
/// is closed.
pub const DEFAULT_WS_PING: Duration = Duration::from_secs(15);
/// Largest WebSocket message a client may send.
pub const MAX_WS_MESSAGE: usize = 64 * 1024;
/// Default time a topic with no client is kept after its last event.
pub const DEFAULT_IDLE_TOPIC_TTL: Duration = Duration::from_secs(5 * 60);

/// Why the authorization hook refused a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseDenied {
    /// 401: no or invalid credentials.
    Unauthorized,
    /// 403: valid credentials, not for this topic.
    Forbidden,
}

type Authorize = dyn Fn(&str, &HttpRequest) -> Result<(), SseDenied> + Send + Sync;

/// Settings of the SSE broadcaster, set with
/// [`WebhooksEmitterBuilder::sse`](crate::WebhooksEmitterBuilder::sse).
///
/// ```
/// use std::time::Duration;
/// use webhooks_emitter::sse::{SseDenied, SseOptions};
///
/// let options = SseOptions::default()
///     .replay(128)
///     .heartbeat(Duration::from_secs(10))
///     .retry(Duration::from_secs(2))
///     .authorize(|topic, request| {
///         let token = request.headers().get("authorization").and_then(|v| v.to_str().ok());
///         match token {
///             None => Err(SseDenied::Unauthorized),
///             Some("Bearer admin") => Ok(()),
///             Some(_) if topic.starts_with("public.") => Ok(()),
///             Some(_) => Err(SseDenied::Forbidden),
///         }
///     });
/// ```
#[derive(Clone)]
pub struct SseOptions {
    pub(crate) replay: usize,
    pub(crate) replay_bytes: usize,
    pub(crate) heartbeat: Duration,
    pub(crate) client_buffer: usize,
    pub(crate) retry: Option<Duration>,
    pub(crate) idle_topic_ttl: Duration,
    pub(crate) max_topics: usize,
    pub(crate) ws_ping: Duration,
    pub(crate) ws_origins: Option<Arc<[String]>>,
    pub(crate) authorize: Option<Arc<Authorize>>,
}

impl Default for SseOptions {
    fn default() -> Self {
        SseOptions {
            replay: DEFAULT_REPLAY,
            replay_bytes: DEFAULT_REPLAY_BYTES,
            heartbeat: DEFAULT_HEARTBEAT,
            client_buffer: DEFAULT_CLIENT_BUFFER,
            retry: None,
            idle_topic_ttl: DEFAULT_IDLE_TOPIC_TTL,
            max_topics: DEFAULT_MAX_TOPICS,
            ws_ping: DEFAULT_WS_PING,
            ws_origins: None,
            authorize: None,
        }
    }
}

impl SseOptions {
    /// Events kept per topic for replay (default 64; 0 disables replay).
    pub fn replay(mut self, events: usize) -> Self {
        self.replay = events;
        self
    }

    /// Bytes of data kept per topic for replay (default 1 MiB): large payloads
    /// shorten the replay rather than grow memory.
    pub fn replay_bytes(mut self, bytes: usize) -> Self {
        self.replay_bytes = bytes;
        self
    }

    /// Heartbeat comment after this long without a frame (default 15 s, kept
    /// between 10 ms and 24 h). It keeps proxies from closing the connection
    /// and finds dead ones.
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval.clamp(Duration::from_millis(10), MAX_HEARTBEAT);
        self
    }

    /// Frames a client may fall behind before it is disconnected (default 256,
    /// kept between 1 and 65,536). It can resume with `Last-Event-ID`.
    pub fn client_buffer(mut self, frames: usize) -> Self {
        self.client_buffer = frames.clamp(1, MAX_CLIENT_BUFFER);
        self
    }

    /// Sends `retry: <ms>` first, setting the browser's reconnection delay.
    pub fn retry(mut self, delay: Duration) -> Self {
        self.retry = Some(delay);
        self
    }

    /// How long a topic with no client keeps its replay buffer after its last
    /// event (default 5 minutes).
    pub fn idle_topic_ttl(mut self, ttl: Duration) -> Self {
        self.idle_topic_ttl = ttl;
        self
    }

    /// Most topics one multi-topic stream or one WebSocket connection may
    /// follow (default 32, at least 1). Beyond it: 400, or an `error` frame.
    pub fn max_topics(mut self, topics: usize) -> Self {
        self.max_topics = topics.max(1);
        self
    }

    /// Interval of WebSocket pings (default 15 s, kept between 10 ms and
    /// 24 h); a peer that answers none within two intervals is closed.
    pub fn ws_ping(mut self, interval: Duration) -> Self {
        self.ws_ping = interval.clamp(Duration::from_millis(10), MAX_HEARTBEAT);
        self
    }

    /// The only page origins allowed to open WebSocket connections, as
    /// browsers send them (`https://app.example`, with a port if not the
    /// default; a trailing `/` is ignored). A handshake from another origin
    /// gets 403; one without `Origin` (not from a browser) passes. Without
    /// this list every origin may connect: browsers apply no CORS to
    /// WebSocket and send their cookies, so set it if the authorization hook
    /// relies on cookies.
    pub fn ws_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let origins: Vec<String> = origins
            .into_iter()
            .map(|o| o.into().trim_end_matches('/').to_owned())
            .collect();
        self.ws_origins = Some(Arc::from(origins));
        self
    }

    /// Decides, per topic and request, whether a client may subscribe (401 or
    /// 403 otherwise), or a WebSocket connection join (an `error` frame
    /// otherwise). Without a hook every topic is open.
    pub fn authorize<F>(mut self, hook: F) -> Self
    where
        F: Fn(&str, &HttpRequest) -> Result<(), SseDenied> + Send + Sync + 'static,
    {
        self.authorize = Some(Arc::new(hook));
        self
    }
}

impl fmt::Debug for SseOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseOptions")
            .field("replay", &self.replay)
            .field("replay_bytes", &self.replay_bytes)
            .field("heartbeat", &self.heartbeat)
            .field("client_buffer", &self.client_buffer)
            .field("retry", &self.retry)
            .field("idle_topic_ttl", &self.idle_topic_ttl)
            .field("max_topics", &self.max_topics)
            .field("ws_ping", &self.ws_ping)
            .field("ws_origins", &self.ws_origins)
            .field("authorize", &self.authorize.is_some())
            .finish()
    }
}

/// Checks a topic name: non-empty, at most 256 bytes, nothing that breaks
/// framing or paths (CR, LF, NUL, `/`).
pub(crate) fn validate_topic(topic: &str) -> Result<(), &'static str> {
    if topic.is_empty() {
        Err("it is empty")
    } else if topic.len() > 256 {
        Err("it is longer than 256 bytes")
    } else if breaks_framing(topic) || topic.contains('/') {
        Err("CR, LF, NUL and `/` are not allowed")
    } else {
        Ok(())
    }
}

/// A topic a client may follow: a valid topic, or `*` (every topic).
pub(crate) fn validate_followed(topic: &str) -> Result<(), &'static str> {
    if topic == ALL_TOPICS {
        Ok(())
    } else {
        validate_topic(topic)
    }
}
