//! The broadcaster actor: topics, their replay rings, and their clients (SSE
//! streams of one topic or several, and WebSocket connections).
//!
//! - this file: the actor, publishing, heartbeats, dropping clients;
//! - [`topic`]: a topic's ids and replay ring, and resuming from an id;
//! - [`client`]: a client as each of its topics sees it;
//! - [`fanout`]: the frames a topic's one-topic SSE streams share;
//! - [`send`]: one frame to a topic's clients;
//! - [`subscribe`]: the messages that add and remove clients;
//! - [`render`]: the frames each kind of client gets.
//!
//! Each client has a bounded buffer: its own channel, or its cursor in the
//! topic's fan-out. The broadcaster never waits on either, so neither it nor
//! `emit` nor other clients wait for a slow client: one that falls
//! `client_buffer` frames behind is dropped (it can resume by id).

mod client;
mod fanout;
pub(crate) mod render;
mod send;
mod subscribe;
mod topic;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use bytes::Bytes;

use client::{log_drop, ClientInfo, Delivery};
pub(crate) use client::{Audience, Frame, TopicSet};
use fanout::Disconnect;
pub(crate) use subscribe::{Join, Leave, LeaveAll, Subscribe, SubscribeMany};
use topic::{Record, Topic};

use super::frame::HEARTBEAT;
use super::kick::KickReason;
use super::{SseOptions, ALL_TOPICS};

/// The SSE actor.
pub(crate) struct SseBroadcaster {
    options: SseOptions,
    topics: HashMap<Arc<str>, Topic>,
    next_client: u64,
    /// Publish order across topics.
    next_seq: u64,
    /// Every client, with the topics it follows.
    clients: HashMap<u64, (Rc<ClientInfo>, Vec<Arc<str>>)>,
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
            next_seq: 0,
            clients: HashMap::new(),
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

    fn publish_to(
        &mut self,
        topic: Arc<str>,
        event: &Arc<str>,
        data: &Bytes,
        json: bool,
        numbered: Option<Numbered>,
    ) {
        // Every new event name makes a topic (with its replay buffer) until
        // it has been idle for the TTL; past the bound, a new topic without
        // clients is not made, so callers cannot grow memory without limit.
        // (`*` is never refused: every event goes there.)
        if self.topics.len() >= MAX_KEPT_TOPICS
            && topic != self.all
            && !self.topics.contains_key(&topic)
        {
            tracing::debug!(%topic, kept = MAX_KEPT_TOPICS, "too many SSE topics; event not kept for replay");
            return;
        }
        self.next_seq += 1;
        let last_id = self.topics.get(&topic).map_or(0, |t| t.last_id);
        let (id, prev) = match numbered {
            None => (last_id + 1, last_id),
            Some(numbered) => {
                if numbered.id <= last_id {
                    // Already shown (a feed read again after a restart).
                    return;
                }
                if last_id != 0 && numbered.prev != last_id {
                    self.missed(&topic, last_id, numbered.prev);
                }
                (numbered.id, numbered.prev)
            }
        };
        let record = Record {
            id,
            prev,
            seq: self.next_seq,
            event: event.clone(),
            data: data.clone(),
            json,
        };
        // Frames of multi-topic streams carry every topic's position: made
        // before the topic is borrowed for sending.
        let multi = self.multi_frames(&topic, &record);
        let entry = self.topics.entry(topic.clone()).or_default();
        entry.last_id = record.id;
        entry.last_publish = Some(Instant::now());
        let mut gone = Vec::new();
        if !entry.clients.is_empty() {
            let mut frames = render::Frames::new(&topic, &record, multi);
            let shared_frame = || Some(render::sse(&record));
            gone = entry.send(Instant::now(), shared_frame, |client| {
                Some(frames.for_audience(&client.audience))
            });
        }
        entry.remember(record, &self.options);
        for (client, why) in gone {
            self.drop_client(client, &topic, why);
        }
    }

    /// A shared feed skipped ids of `topic` (this node fell behind further
    /// than the feed keeps): its ring no longer bridges, and its clients,
    /// who missed events, are dropped to resume by id and hear so.
    fn missed(&mut self, topic: &Arc<str>, last_id: u64, prev: u64) {
        tracing::warn!(%topic, last_id, next_after = prev, "live feed: events missed on this node");
        let Some(entry) = self.topics.get_mut(topic) else {
            return;
        };
        entry.forget();
        let clients: Vec<u64> = entry.clients.keys().copied().collect();
        for client in clients {
            self.drop_client(client, topic, Disconnect::TooSlow);
        }
    }

    /// The frames of `record` for each multi-topic set following `topic`.
    fn multi_frames(&self, topic: &Arc<str>, record: &Record) -> HashMap<usize, Frame> {
        let mut frames = HashMap::new();
        let Some(entry) = self.topics.get(topic) else {
            return frames;
        };
        if entry.multi_clients == 0 {
            return frames;
        }
        for client in entry.clients.values() {
            if let Audience::SseMulti(set) = &client.shared.audience {
                let key = Arc::as_ptr(set) as *const () as usize;
                frames.entry(key).or_insert_with(|| {
                    let position = |t: &Arc<str>| {
                        if t == topic {
                            record.id
                        } else {
                            self.topics.get(t).map_or(0, |t| t.last_id)
                        }
                    };
                    Arc::new(render::sse_multi(set, position, record))
                });
            }
        }
        frames
    }

    /// Removes a client from every topic it follows.
    fn drop_client(&mut self, client: u64, topic: &str, why: Disconnect) {
        let Some((shared, topics)) = self.clients.remove(&client) else {
            return;
        };
        log_drop(topic, client, why);
        for name in &topics {
            if let Some(entry) = self.topics.get_mut(name) {
                if let Some(removed) = entry.clients.remove(&client) {
                    removed.delivery.end();
                }
                if matches!(shared.audience, Audience::SseMulti(_)) {
                    entry.multi_clients = entry.multi_clients.saturating_sub(1);
                }
                #[cfg(feature = "metrics")]
                crate::telemetry::sse_clients(name, entry.clients.len());
            }
        }
        if why == Disconnect::TooSlow {
            if let Some(kick) = &shared.kick {
                kick.kick(KickReason::TooSlow);
            }
        }
    }

    /// Heartbeats to idle SSE clients (once per client, whatever its number
    /// of topics; once per topic for one-topic streams, which share their
    /// frames), removal of closed ones, eviction of idle topics.
    fn tick(&mut self) {
        let now = Instant::now();
        let interval = self.options.heartbeat;
        let heartbeat: Frame = Arc::new(Bytes::from_static(HEARTBEAT));
        let idle = |at: Instant| now.duration_since(at) >= interval;
        let mut gone = Vec::new();
        for entry in self.topics.values_mut() {
            if entry.clients.is_empty() {
                continue;
            }
            let fanout_idle = entry.fanout_write.is_none_or(idle);
            let shared_frame = || fanout_idle.then(|| Bytes::from_static(HEARTBEAT));
            gone.extend(entry.send(now, shared_frame, |client| {
                let wants = !matches!(client.audience, Audience::WebSocket)
                    && idle(client.last_write.get());
                wants.then(|| heartbeat.clone())
            }));
        }
        for (id, why) in gone {
            self.drop_client(id, "*", why);
        }
        #[cfg(feature = "metrics")]
        for (name, entry) in &self.topics {
            crate::telemetry::sse_clients(name, entry.clients.len());
        }
        let ttl = self.options.idle_topic_ttl;
        self.topics.retain(|_, topic| {
            !topic.clients.is_empty()
                || topic
                    .last_publish
                    .is_some_and(|at| now.duration_since(at) < ttl)
        });
    }

    /// Registers a client in `topic`, its frames going by `delivery`.
    fn register(&mut self, shared: Rc<ClientInfo>, topic: &Arc<str>, delivery: Delivery) {
        let entry = self.topics.entry(topic.clone()).or_default();
        if matches!(shared.audience, Audience::SseMulti(_)) {
            entry.multi_clients += 1;
        }
        entry.clients.insert(
            shared.id,
            client::Client {
                delivery,
                shared: shared.clone(),
            },
        );
        // At once, not at the next tick: a scrape right after a connect
        // sees the client.
        #[cfg(feature = "metrics")]
        crate::telemetry::sse_clients(topic, entry.clients.len());
        let (_, topics) = self
            .clients
            .entry(shared.id)
            .or_insert_with(|| (shared, Vec::new()));
        if !topics.contains(topic) {
            topics.push(topic.clone());
        }
    }
}

impl SseBroadcaster {
    /// Ends the streams of the one-topic SSE clients (the others end when
    /// their channels drop with `topics`).
    fn end_streams(&self) {
        for entry in self.topics.values() {
            for client in entry.clients.values() {
                client.delivery.end();
            }
        }
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

/// Most topics kept at once (each with its replay buffer). A topic without
/// clients goes after the idle TTL; while this many are kept, events of new
/// topics still reach `*` but start no topic of their own.
pub(crate) const MAX_KEPT_TOPICS: usize = 10_000;

/// Publish one event on `topic` and on `*`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Publish {
    pub topic: Arc<str>,
    pub event: Arc<str>,
    pub data: Bytes,
    /// The data is JSON (WebSocket frames embed it as is); else text.
    pub json: bool,
    /// Its id when a cluster's shared feed numbered it; `None`: this
    /// broadcaster numbers it.
    pub numbered: Option<Numbered>,
}

/// A publication's place in a cluster's shared feed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Numbered {
    /// Its id, on its topic and on `*`.
    pub id: u64,
    /// The id before it on its topic (on `*`, every id is there: `id - 1`).
    pub prev: u64,
}

impl Handler<Publish> for SseBroadcaster {
    type Result = ();

    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) {
        self.publish_to(msg.topic, &msg.event, &msg.data, msg.json, msg.numbered);
        let all = self.all.clone();
        let on_all = msg.numbered.map(|n| Numbered {
            id: n.id,
            prev: n.id.saturating_sub(1),
        });
        self.publish_to(all, &msg.event, &msg.data, msg.json, on_all);
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
        let closed: Vec<u64> = self
            .topics
            .values()
            .flat_map(|t| t.clients.iter())
            .filter(|(_, c)| c.delivery.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in closed {
            self.drop_client(id, "*", Disconnect::Closed);
        }
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
        // Dropping the actor (see `Drop`) ends every stream.
        self.stopping = true;
        ctx.stop();
    }
}

impl Drop for SseBroadcaster {
    fn drop(&mut self) {
        // Every client's stream ends: clients reconnect, and a new
        // broadcaster answers their ids with `sse-lost`.
        self.end_streams();
        if self.stopping || !std::thread::panicking() {
            return;
        }
        tracing::error!("SSE broadcaster crashed (a panic, see above); restarting it");
        // SSE streams ended above or end as their channels drop; WebSocket
        // connections hold a sender of their own, so they are told to close.
        for (shared, _) in self.clients.values() {
            if let Some(kick) = &shared.kick {
                kick.kick(KickReason::Restarted);
            }
        }
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
#[cfg(feature = "test-util")]
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct CrashBroadcaster;

#[cfg(feature = "test-util")]
impl Handler<CrashBroadcaster> for SseBroadcaster {
    type Result = ();

    fn handle(&mut self, _: CrashBroadcaster, _: &mut Context<Self>) {
        panic!("test hook: the SSE broadcaster crashes");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any caller can emit any event name: past the bound, new names start no
    /// topic (their events still reach `*`), so memory stays bounded.
    #[test]
    fn topics_kept_are_bounded() {
        let mut broadcaster = SseBroadcaster::new(SseOptions::default(), None);
        let (event, data) = (Arc::<str>::from("e"), Bytes::from_static(b"{}"));
        for n in 0..MAX_KEPT_TOPICS + 50 {
            broadcaster.publish_to(Arc::from(format!("topic-{n}")), &event, &data, true, None);
        }
        assert_eq!(broadcaster.topics.len(), MAX_KEPT_TOPICS);
        // A topic already kept goes on, and `*` always.
        broadcaster.publish_to(Arc::from("topic-1"), &event, &data, true, None);
        assert_eq!(
            broadcaster.topics.get("topic-1").map(|t| t.last_id),
            Some(2)
        );
        let all = broadcaster.all.clone();
        broadcaster.publish_to(all.clone(), &event, &data, true, None);
        assert_eq!(broadcaster.topics.get(&all).map(|t| t.last_id), Some(1));
        assert_eq!(broadcaster.topics.len(), MAX_KEPT_TOPICS + 1);
    }

    /// A cluster's shared feed numbers publications: ids on a topic skip
    /// other topics' ids, a row read twice is shown once, and a skipped row
    /// (this node fell behind the feed) empties the ring, so that resuming
    /// across it says events were lost.
    #[test]
    fn numbered_publications_keep_the_feed_ids() {
        let mut broadcaster = SseBroadcaster::new(SseOptions::default(), None);
        let (event, data) = (Arc::<str>::from("e"), Bytes::from_static(b"{}"));
        let topic = Arc::<str>::from("orders");
        let at = |id, prev| Some(Numbered { id, prev });
        // A node that starts in the middle of the feed: ids 7 and 9 are
        // this topic's, 8 was another's, and 4 came before 7.
        broadcaster.publish_to(topic.clone(), &event, &data, true, at(7, 4));
        broadcaster.publish_to(topic.clone(), &event, &data, true, at(9, 7));
        broadcaster.publish_to(topic.clone(), &event, &data, true, at(9, 7));
        let entry = &broadcaster.topics[&topic];
        let ids: Vec<u64> = entry.ring.iter().map(|r| r.id).collect();
        assert_eq!(ids, [7, 9], "the repeat of 9 is not shown again");
        assert_eq!(entry.resume(4).0, topic::Resume::Bridged);
        assert_eq!(
            entry.resume(8).0,
            topic::Resume::Bridged,
            "8 was never this topic's"
        );
        assert_eq!(
            entry.resume(3).0,
            topic::Resume::Lost { oldest: Some(7) },
            "what came before 4 is not here"
        );
        // Rows 10 to 20 were pruned before this node read them: 21 follows 15.
        broadcaster.publish_to(topic.clone(), &event, &data, true, at(21, 15));
        let entry = &broadcaster.topics[&topic];
        assert_eq!(entry.last_id, 21);
        assert_eq!(
            entry.resume(9).0,
            topic::Resume::Lost { oldest: Some(21) },
            "the ring does not claim to bridge what this node never saw"
        );
        assert_eq!(entry.resume(15).0, topic::Resume::Bridged);
    }
}
