//! A new configuration for a running worker: what it holds stays.

use std::sync::Arc;

use actix::prelude::*;

use super::Worker;
use crate::delivery::client;
use crate::emitter::config::ValidatedConfig;

/// Use `config` from now on. The queue, the started events (with their
/// attempts and timers), the dead letters, the paused state and the counters
/// stay; a request already on the wire finishes under the old settings.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Reconfigure(pub Arc<ValidatedConfig>);

impl Handler<Reconfigure> for Worker {
    type Result = ();

    fn handle(&mut self, Reconfigure(config): Reconfigure, ctx: &mut Context<Self>) {
        self.queue.set_capacity(config.queue_capacity);
        self.queue
            .set_dead_letter_capacity(config.dead_letter_capacity);
        let evicted = self.dead_letters.set_capacity(config.dead_letter_capacity);
        if !evicted.is_empty() {
            tracing::warn!(parent: &self.span, evicted = evicted.len(), capacity = config.dead_letter_capacity, "dead letter bound lowered; oldest dead letters evicted");
            self.queue.evict_dead_letters(evicted);
        }
        self.config = config;
        self.set_rate_limit();
        // The client carries the timeout and the TLS settings.
        self.client = Some(client::build_client(&self.config.request));
        tracing::info!(parent: &self.span, url = %self.config.request.display_url, "emitter reconfigured");
        // A higher `max_in_flight` may start more events now.
        self.pump(ctx);
    }
}
