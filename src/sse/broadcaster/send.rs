//! Sending one frame to a topic's clients: once into the shared fan-out for
//! its one-topic SSE streams, and into the own channel of each other client.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::client::{self, ClientInfo, Delivery, Frame};
use super::fanout::Disconnect;
use super::fanout::Fanout;
use super::topic::Topic;

impl Topic {
    /// The fan-out of this topic's one-topic SSE streams, made on first use.
    pub(super) fn fanout(&mut self, capacity: usize) -> Arc<Fanout> {
        self.fanout
            .get_or_insert_with(|| Arc::new(Fanout::new(capacity)))
            .clone()
    }

    /// Sends what `shared_frame` makes (if anything) to the fan-out's
    /// clients, and to each other client what `own_frame` makes for it (if
    /// anything). `shared_frame` is called only if the fan-out has a client.
    /// Returns the clients to drop: gone, or too far behind.
    pub(super) fn send(
        &mut self,
        now: Instant,
        shared_frame: impl FnOnce() -> Option<Bytes>,
        mut own_frame: impl FnMut(&ClientInfo) -> Option<Frame>,
    ) -> Vec<(u64, Disconnect)> {
        let mut gone = Vec::new();
        let mut shared_frame = Some(shared_frame);
        let mut head = None;
        // The slowest remaining cursor: frames before it can be released.
        let mut oldest_needed = u64::MAX;
        for (id, client) in &self.clients {
            let verdict = match &client.delivery {
                Delivery::Channel(sender) => match own_frame(&client.shared) {
                    Some(frame) => client::send(sender, &client.shared, frame, now),
                    None if sender.is_closed() => Err(Disconnect::Closed),
                    None => Ok(()),
                },
                Delivery::Fanout(cursor) => match &self.fanout {
                    None => Err(Disconnect::Closed),
                    Some(fanout) => {
                        if let Some(frame) = shared_frame.take().and_then(|make| make()) {
                            head = Some(fanout.append(frame));
                        }
                        match head {
                            Some(head) => fanout.check(cursor, head).map(|next| {
                                oldest_needed = oldest_needed.min(next);
                            }),
                            None if client.delivery.is_closed() => Err(Disconnect::Closed),
                            None => Ok(()),
                        }
                    }
                },
            };
            if let Err(why) = verdict {
                gone.push((*id, why));
            }
        }
        if let (Some(fanout), Some(head)) = (&self.fanout, head) {
            fanout.release(oldest_needed.min(head));
            self.fanout_write = Some(now);
        }
        gone
    }
}
