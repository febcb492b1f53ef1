//! Announcements between the nodes: a short message on a topic, sent with
//! `NOTIFY` to every node (this one too) that listens. For an application's
//! own coordination beside the queues, e.g. "the endpoints changed: read
//! them". Best effort: a node whose listening connection was down misses
//! it, so an application keeps a poll behind it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// The notification channel of announcements.
pub(super) const ANNOUNCE_CHANNEL: &str = "webhooks_emitter_announce";
/// Longest topic and message: `NOTIFY` takes 8,000 bytes at most.
pub const MAX_ANNOUNCEMENT_BYTES: usize = 7_000;
/// Announcements a listener may fall behind before it misses some.
const BACKLOG: usize = 256;

/// One announcement on the wire.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Announcement {
    /// The topic.
    pub t: String,
    /// The message.
    pub m: String,
}

/// The topics this node listens to, each with its receivers.
#[derive(Default)]
pub(crate) struct Listeners(Mutex<HashMap<String, broadcast::Sender<String>>>);

impl Listeners {
    /// A receiver of `topic`'s messages from now on.
    pub(crate) fn subscribe(&self, topic: &str) -> broadcast::Receiver<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(topic.to_owned())
            .or_insert_with(|| broadcast::channel(BACKLOG).0)
            .subscribe()
    }

    /// Hands a notification's payload to the topic's receivers, if any.
    pub(super) fn dispatch(&self, payload: &str) {
        let Ok(announcement) = serde_json::from_str::<Announcement>(payload) else {
            return;
        };
        let listeners = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = listeners.get(&announcement.t) {
            let _ = sender.send(announcement.m);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_topic_hears_its_own_messages_only() {
        let listeners = Listeners::default();
        let mut endpoints = listeners.subscribe("endpoints");
        let payload = |t: &str, m: &str| {
            serde_json::to_string(&Announcement {
                t: t.into(),
                m: m.into(),
            })
            .unwrap_or_default()
        };
        listeners.dispatch(&payload("other", "x"));
        listeners.dispatch(&payload("endpoints", "v2"));
        assert_eq!(endpoints.try_recv().ok().as_deref(), Some("v2"));
        assert!(endpoints.try_recv().is_err());
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        /// Anything on the channel (another program may use its name) is
        /// read without a panic.
        #[test]
        fn any_payload_is_read_without_panic(payload in ".{0,200}") {
            let listeners = Listeners::default();
            let _receiver = listeners.subscribe("t");
            listeners.dispatch(&payload);
        }
    }
}
