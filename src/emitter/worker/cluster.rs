//! The worker's side of a shared store (PostgreSQL): the cluster's state
//! replacing this node's copy, the lease going, and giving it back.

use actix::prelude::*;

use super::{Step, Worker};
use crate::emitter::dead_letters::DeadLetters;
use crate::model::DeadLetter;

impl Worker {
    /// The cluster's dead letters replace this node's copy.
    pub(super) fn replace_dead_letters(&mut self, letters: Vec<DeadLetter>, next_id: u64) {
        let mut fresh = DeadLetters::new(self.config.dead_letter_capacity);
        // The database keeps the bound; what it holds is what is shown.
        let _ = fresh.restore(letters, next_id);
        self.dead_letters = fresh;
    }

    /// Forgets the started events: they stay stored, and whoever holds the
    /// lease next sends them (one in flight may arrive twice).
    pub(super) fn drop_started(&mut self, ctx: &mut Context<Self>) {
        for (_, active) in std::mem::take(&mut self.active) {
            if let Step::Waiting(timer) = active.step {
                ctx.cancel_future(timer);
            }
        }
    }

    /// Gives the lease back if asked to and nothing is in flight; a request on
    /// the wire is let finish (and acked) first, so that nothing is sent
    /// twice.
    pub(super) fn release_when_idle(&mut self, ctx: &mut Context<Self>) {
        if !self.queue.releasing()
            || self
                .active
                .values()
                .any(|a| matches!(a.step, Step::InFlight))
        {
            return;
        }
        self.drop_started(ctx);
        self.queue.release();
        tracing::info!(parent: &self.span, "lease given back");
    }
}
