//! The broadcaster actor: topics, their replay rings and their clients.
//!
//! Each client has a bounded channel; the broadcaster only ever `try_send`s, so
//! neither it nor `emit` nor other clients wait for a slow client: one that
//! falls `client_buffer` frames behind is dropped (it can resume by id).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc::{self, error::TrySendError};

use super::frame::{self, HEARTBEAT};
use super::{SseOptions, ALL_TOPICS, LOST_EVENTS_EVENT};

/// One replayable event.
struct Record {
    id: u64,
    event: Arc<str>,
    data: Bytes,
}

struct Client {
    sender: mpsc::Sender<Bytes>,
    last_write: Instant,
}

#[derive(Default)]
struct Topic {
    last_id: u64,
    ring: VecDeque<Record>,
    ring_bytes: usize,
    clients: HashMap<u64, Client>,
    last_publish: Option<Instant>,
}

/// Why a client is disconnected.
enum Disconnect {
    Closed,
    TooSlow,
}

impl Topic {
    fn remember(&mut self, record: Record, options: &SseOptions) {
        self.ring_bytes += record.data.len();
        self.ring.push_back(record);
        while self.ring.len() > options.replay
            || (self.ring_bytes > options.replay_bytes && !self.ring.is_empty())
        {
            if let Some(old) = self.ring.pop_front() {
                self.ring_bytes -= old.data.len();
            }
        }
    }

    /// Sends `frame` to every client; drops those that are gone or too slow.
    fn send_all(&mut self, frame: &Bytes, topic: &str) {
        let now = Instant::now();
        self.clients
            .retain(|id, client| kept(topic, *id, client.send(frame.clone(), now)));
    }

    /// What a client resuming after `last_seen` must get first: the lost-events
    /// signal if the ring cannot bridge the gap, then the frames it missed.
    fn catch_up(&self, last_seen: u64) -> BytesMut {
        let mut out = BytesMut::new();
        let oldest = self.ring.front().map(|r| r.id);
        let bridged = bridged(last_seen, oldest, self.last_id);
        if !bridged {
            let data =
                serde_json::json!({ "last_event_id": last_seen, "first_available_id": oldest });
            out.extend_from_slice(&frame::encode(
                None,
                LOST_EVENTS_EVENT,
                data.to_string().as_bytes(),
            ));
        }
        let replay_from = if bridged { last_seen } else { 0 };
        for record in self.ring.iter().filter(|r| r.id > replay_from) {
            out.extend_from_slice(&frame::encode(Some(record.id), &record.event, &record.data));
        }
        out
    }
}

/// Whether a ring whose oldest id is `oldest` (none if empty), on a topic whose
/// last id is `last_id`, holds every id after `last_seen`. `last_seen` comes
/// from the client: any `u64`, so no arithmetic on it may overflow.
fn bridged(last_seen: u64, oldest: Option<u64>, last_id: u64) -> bool {
    match oldest {
        Some(oldest) => last_seen >= oldest.saturating_sub(1) && last_seen <= last_id,
        // Nothing to replay: fine if nothing was missed.
        None => last_seen == last_id,
    }
}

impl Client {
    /// Queues `frame` without waiting; the error says why the client must go.
    fn send(&mut self, frame: Bytes, now: Instant) -> Result<(), Disconnect> {
        match self.sender.try_send(frame) {
            Ok(()) => {
                self.last_write = now;
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(Disconnect::TooSlow),
            Err(TrySendError::Closed(_)) => Err(Disconnect::Closed),
        }
    }
}

/// Whether to keep a client after a send: logs why one is dropped.
fn kept(topic: &str, client: u64, sent: Result<(), Disconnect>) -> bool {
    sent.map_err(|why| log_drop(topic, client, why)).is_ok()
}

fn log_drop(topic: &str, client: u64, why: Disconnect) {
    match why {
        Disconnect::Closed => tracing::debug!(topic, client, "SSE client disconnected"),
        Disconnect::TooSlow => tracing::warn!(
            topic,
            client,
            "SSE client too slow; disconnected (it can resume by Last-Event-ID)"
        ),
    }
}

/// The SSE actor.
pub(crate) struct SseBroadcaster {
    options: SseOptions,
    topics: HashMap<Arc<str>, Topic>,
    next_client: u64,
    all: Arc<str>,
    /// Told if this actor stops without being asked to (a panic).
    registry: Option<Recipient<BroadcasterGone>>,
    /// Set by `StopBroadcaster`.
    stopping: bool,
}

/// The broadcaster stopped without being asked to: start another, continuing
/// each topic's ids where this one left them, so that an id a client saw is
/// never issued again for another event.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct BroadcasterGone {
    pub last_ids: Vec<(Arc<str>, u64)>,
}

impl SseBroadcaster {
    pub(crate) fn new(options: SseOptions, registry: Option<Recipient<BroadcasterGone>>) -> Self {
        SseBroadcaster {
            options,
            topics: HashMap::new(),
            next_client: 0,
            all: Arc::from(ALL_TOPICS),
            registry,
            stopping: false,
        }
    }

    /// Continues numbering each topic after `last_ids` (a crashed predecessor's).
    pub(crate) fn continuing(mut self, last_ids: Vec<(Arc<str>, u64)>) -> Self {
        for (topic, last_id) in last_ids {
            let entry = self.topics.entry(topic).or_default();
            entry.last_id = last_id;
            // Kept as long as a topic that just had an event.
            entry.last_publish = Some(Instant::now());
        }
        self
    }

    fn publish_to(&mut self, topic: Arc<str>, event: &Arc<str>, data: &Bytes) {
        let entry = self.topics.entry(topic.clone()).or_default();
        entry.last_id += 1;
        entry.last_publish = Some(Instant::now());
        let id = entry.last_id;
        if !entry.clients.is_empty() {
            // Encoded once, shared by every client of the topic.
            let frame = frame::encode(Some(id), event, data);
            entry.send_all(&frame, &topic);
        }
        let record = Record {
            id,
            event: event.clone(),
            data: data.clone(),
        };
        entry.remember(record, &self.options);
    }

    /// Heartbeats to idle clients, removal of closed ones, eviction of idle topics.
    fn tick(&mut self) {
        let now = Instant::now();
        let heartbeat = Bytes::from_static(HEARTBEAT);
        for (name, topic) in &mut self.topics {
            topic.clients.retain(|id, client| {
                let sent = if client.sender.is_closed() {
                    Err(Disconnect::Closed)
                } else if now.duration_since(client.last_write) < self.options.heartbeat {
                    Ok(())
                } else {
                    client.send(heartbeat.clone(), now)
                };
                kept(name, *id, sent)
            });
        }
        let ttl = self.options.idle_topic_ttl;
        self.topics.retain(|_, topic| {
            !topic.clients.is_empty()
                || topic
                    .last_publish
                    .is_some_and(|at| now.duration_since(at) < ttl)
        });
    }
}

impl Actor for SseBroadcaster {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // A quarter of the interval: a heartbeat follows between 1 and 1.25
        // intervals of silence.
        ctx.run_interval(self.options.heartbeat / 4, |broadcaster, _| {
            broadcaster.tick()
        });
    }
}

/// Publish one event on `topic` and on `*`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Publish {
    pub topic: Arc<str>,
    pub event: Arc<str>,
    pub data: Bytes,
}

impl Handler<Publish> for SseBroadcaster {
    type Result = ();

    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) {
        self.publish_to(msg.topic, &msg.event, &msg.data);
        let all = self.all.clone();
        self.publish_to(all, &msg.event, &msg.data);
    }
}

/// Register a client on `topic`; returns the stream of its frames, starting
/// with the replay after `last_event_id`.
#[derive(Message)]
#[rtype(result = "mpsc::Receiver<Bytes>")]
pub(crate) struct Subscribe {
    pub topic: String,
    pub last_event_id: Option<u64>,
}

impl Handler<Subscribe> for SseBroadcaster {
    type Result = MessageResult<Subscribe>;

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) -> Self::Result {
        let (sender, receiver) = mpsc::channel(self.options.client_buffer);
        let topic = self
            .topics
            .entry(Arc::from(msg.topic.as_str()))
            .or_default();
        let mut first = BytesMut::new();
        if let Some(retry) = self.options.retry {
            first.extend_from_slice(&frame::retry(retry.as_millis()));
        }
        if let Some(last_seen) = msg.last_event_id {
            first.extend_from_slice(&topic.catch_up(last_seen));
        }
        // Replay and registration happen in this one handler: no publish can
        // fall between them, so there is no gap and no duplicate.
        if !first.is_empty() {
            let _ = sender.try_send(first.freeze());
        }
        self.next_client += 1;
        topic.clients.insert(
            self.next_client,
            Client {
                sender,
                last_write: Instant::now(),
            },
        );
        tracing::debug!(
            topic = msg.topic,
            client = self.next_client,
            clients = topic.clients.len(),
            "SSE client connected"
        );
        MessageResult(receiver)
    }
}

/// Connected clients per topic (topics without clients left out).
#[derive(Message)]
#[rtype(result = "HashMap<String, usize>")]
pub(crate) struct ClientCounts;

impl Handler<ClientCounts> for SseBroadcaster {
    type Result = MessageResult<ClientCounts>;

    fn handle(&mut self, _: ClientCounts, _: &mut Context<Self>) -> Self::Result {
        // Closed connections are found here too, not only at the next tick.
        self.topics
            .values_mut()
            .for_each(|t| t.clients.retain(|_, c| !c.sender.is_closed()));
        MessageResult(
            self.topics
                .iter()
                .filter(|(_, t)| !t.clients.is_empty())
                .map(|(name, t)| (name.to_string(), t.clients.len()))
                .collect(),
        )
    }
}

/// Close every client stream and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct StopBroadcaster;

impl Handler<StopBroadcaster> for SseBroadcaster {
    type Result = ();

    fn handle(&mut self, _: StopBroadcaster, ctx: &mut Context<Self>) {
        self.stopping = true;
        self.topics.clear();
        ctx.stop();
    }
}

impl Drop for SseBroadcaster {
    fn drop(&mut self) {
        // Dropping `topics` ends every client's stream: clients reconnect,
        // and the new broadcaster answers their ids with `sse-lost`.
        if self.stopping || !std::thread::panicking() {
            return;
        }
        tracing::error!("SSE broadcaster crashed (a panic, see above); restarting it");
        let last_ids = self
            .topics
            .iter()
            .map(|(name, topic)| (name.clone(), topic.last_id))
            .collect();
        if let Some(registry) = &self.registry {
            registry.do_send(BroadcasterGone { last_ids });
        }
    }
}

/// Test hook: make the broadcaster panic, as a bug would.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct CrashBroadcaster;

impl Handler<CrashBroadcaster> for SseBroadcaster {
    type Result = ();

    fn handle(&mut self, _: CrashBroadcaster, _: &mut Context<Self>) {
        panic!("test hook: the SSE broadcaster crashes");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn topic_with(ids: std::ops::RangeInclusive<u64>) -> Topic {
        let mut topic = Topic::default();
        for id in ids {
            topic.last_id = id;
            topic.ring.push_back(Record {
                id,
                event: Arc::from("e"),
                data: Bytes::from_static(b"x"),
            });
        }
        topic
    }

    #[test]
    fn ids_the_ring_cannot_bridge_get_the_lost_signal() {
        let topic = topic_with(5..=9);
        let text = |last_seen| String::from_utf8_lossy(&topic.catch_up(last_seen)).into_owned();
        assert!(text(6).starts_with("id: 7\n"), "{}", text(6));
        assert!(text(4).starts_with("id: 5\n"), "just bridged");
        assert!(text(3).starts_with("event: sse-lost"), "a gap");
        assert!(text(9).is_empty(), "up to date");
        // Ids never issued, up to the largest a client can send.
        for never in [10, u64::MAX - 1, u64::MAX] {
            let lost = text(never);
            assert!(lost.starts_with("event: sse-lost"), "{never}: {lost}");
            assert!(lost.contains(&never.to_string()), "{lost}");
        }
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        /// Bridged exactly when no id after `last_seen` is missing from the ring.
        #[test]
        fn bridged_matches_its_definition(
            last_seen in any::<u64>(),
            oldest in proptest::option::of(1u64..1000),
            extra in 0u64..1000,
        ) {
            let last_id = oldest.map_or(extra, |o| o + extra);
            let expected = match oldest {
                Some(o) => (last_seen..=last_id).skip(1).all(|id| id >= o) && last_seen <= last_id,
                None => last_seen == last_id,
            };
            // Big `last_seen` makes the range empty, which is fine: it must then
            // be above `last_id`, and so not bridged.
            prop_assert_eq!(bridged(last_seen, oldest, last_id), expected && last_seen <= last_id);
        }

        #[test]
        fn any_client_id_is_answered_without_panic(last_seen in any::<u64>(), len in 0u64..20) {
            let topic = topic_with(1..=len);
            let _ = topic.catch_up(last_seen);
        }
    }
}
