//! One topic: its ids, its replay ring, its clients.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::client::Client;
use super::fanout::Fanout;
use crate::sse::SseOptions;

/// One replayable event.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub id: u64,
    /// The id before it on this topic: `id - 1` when this node numbers the
    /// topic; any lower id when a cluster's shared feed does (ids between
    /// were other topics').
    pub prev: u64,
    /// The broadcaster's publish order across topics, to replay several
    /// topics in the order they were published.
    pub seq: u64,
    pub event: Arc<str>,
    pub data: Bytes,
    /// The data is JSON (from `emit`/`broadcast`), not text (`broadcast_text`).
    pub json: bool,
}

#[derive(Default)]
pub(super) struct Topic {
    pub last_id: u64,
    pub ring: VecDeque<Record>,
    ring_bytes: usize,
    pub clients: HashMap<u64, Client>,
    pub last_publish: Option<Instant>,
    /// Clients of this topic on multi-topic SSE streams, who need frames of
    /// their own (ids with every topic's position).
    pub multi_clients: usize,
    /// The frames shared by this topic's one-topic SSE streams.
    pub fanout: Option<Arc<Fanout>>,
    /// When a frame last went into the fan-out (for heartbeats).
    pub fanout_write: Option<Instant>,
}

/// What a client resuming after an id must be told first.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Resume {
    /// The ring holds every event after it: these are the missed ones.
    Bridged,
    /// Events were missed (or the id was never issued): the client is told,
    /// and gets everything the ring holds; `oldest` is its first id.
    Lost { oldest: Option<u64> },
}

impl Topic {
    pub(super) fn remember(&mut self, record: Record, options: &SseOptions) {
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

    /// Empties the ring: the ids before the next record are not all known.
    pub(super) fn forget(&mut self) {
        self.ring.clear();
        self.ring_bytes = 0;
    }

    /// Whether the ring can bridge from `last_seen`, and the records to replay.
    pub(super) fn resume(&self, last_seen: u64) -> (Resume, Vec<Record>) {
        let oldest = self.ring.front().map(|r| r.id);
        if bridged(last_seen, self.ring.front().map(|r| r.prev), self.last_id) {
            let missed = self.ring.iter().filter(|r| r.id > last_seen).cloned();
            (Resume::Bridged, missed.collect())
        } else {
            (Resume::Lost { oldest }, self.ring.iter().cloned().collect())
        }
    }
}

/// Whether a ring whose oldest record follows `before_oldest` on the topic
/// (none if the ring is empty), on a topic whose last id is `last_id`, holds
/// every id after `last_seen`. `last_seen` comes from the client: any `u64`,
/// so no arithmetic on it may overflow.
pub(super) fn bridged(last_seen: u64, before_oldest: Option<u64>, last_id: u64) -> bool {
    match before_oldest {
        Some(before) => last_seen >= before && last_seen <= last_id,
        // Nothing to replay: fine if nothing was missed.
        None => last_seen == last_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn topic_with(ids: std::ops::RangeInclusive<u64>) -> Topic {
        let mut topic = Topic::default();
        for id in ids {
            topic.last_id = id;
            topic.ring.push_back(Record {
                id,
                prev: id - 1,
                seq: id,
                event: Arc::from("e"),
                data: Bytes::from_static(b"x"),
                json: false,
            });
        }
        topic
    }

    #[test]
    fn ids_the_ring_cannot_bridge_are_lost() {
        let topic = topic_with(5..=9);
        let ids = |(_, records): (Resume, Vec<Record>)| -> Vec<u64> {
            records.iter().map(|r| r.id).collect()
        };
        assert_eq!(ids(topic.resume(6)), [7, 8, 9]);
        assert_eq!(topic.resume(4).0, Resume::Bridged, "just bridged");
        assert_eq!(topic.resume(3).0, Resume::Lost { oldest: Some(5) });
        assert!(topic.resume(9).1.is_empty(), "up to date");
        for never in [10, u64::MAX - 1, u64::MAX] {
            assert_eq!(topic.resume(never).0, Resume::Lost { oldest: Some(5) });
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
            prop_assert_eq!(bridged(last_seen, oldest.map(|o| o - 1), last_id), expected && last_seen <= last_id);
        }

        #[test]
        fn any_client_id_is_answered_without_panic(last_seen in any::<u64>(), len in 0u64..20) {
            let topic = topic_with(1..=len);
            let _ = topic.resume(last_seen);
        }
    }
}
