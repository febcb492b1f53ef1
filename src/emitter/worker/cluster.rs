//! The worker's side of the PostgreSQL store: the cluster's state, the lease
//! coming and going, and giving it back.

use actix::prelude::*;

use super::{Step, Worker};
use crate::emitter::dead_letters::DeadLetters;
use crate::store::postgres::queue::Consequence;
use crate::store::postgres::Notice;

impl Handler<Notice> for Worker {
    type Result = ();

    fn handle(&mut self, notice: Notice, ctx: &mut Context<Self>) {
        let Some(queue) = self.queue.as_cluster() else {
            return;
        };
        match queue.notice(notice) {
            Consequence::Nothing => {}
            Consequence::State(state) => {
                if !self.paused_by_call {
                    self.paused = state.paused;
                }
                self.replace_dead_letters(state.dead_letters, state.next_dead_letter);
                tracing::info!(parent: &self.span, paused = self.paused, dead_letters = self.dead_letters.len(), "emitter state read from PostgreSQL");
                self.mark_recovered();
            }
            Consequence::LeaseLost => {
                tracing::warn!(parent: &self.span, "lease lost; another node delivers this emitter now");
                self.drop_started(ctx);
            }
            Consequence::Release => self.release_when_idle(ctx),
            Consequence::Renewed => self.resume(ctx),
            Consequence::Paused(paused) => {
                if paused != self.paused {
                    self.paused = paused;
                    tracing::info!(parent: &self.span, paused, "emitter paused state changed on another node");
                    self.resume(ctx);
                }
            }
            Consequence::DeadLetters { letters, next_id } => {
                self.replace_dead_letters(letters, next_id);
            }
            Consequence::NotStored { events, error } => self.not_stored(&events, &error),
        }
        self.pump(ctx);
    }
}

impl Worker {
    /// The cluster's dead letters replace this node's copy.
    fn replace_dead_letters(&mut self, letters: Vec<crate::model::DeadLetter>, next_id: u64) {
        let mut fresh = DeadLetters::new(self.config.dead_letter_capacity);
        // The database keeps the bound; what it holds is what is shown.
        let _ = fresh.restore(letters, next_id);
        self.dead_letters = fresh;
    }

    /// Forgets the started events: they stay stored, and whoever holds the
    /// lease next sends them (one in flight may arrive twice).
    fn drop_started(&mut self, ctx: &mut Context<Self>) {
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
        let Some(queue) = self.queue.as_cluster() else {
            return;
        };
        if !queue.releasing()
            || self
                .active
                .values()
                .any(|a| matches!(a.step, Step::InFlight))
        {
            return;
        }
        self.drop_started(ctx);
        if let Some(queue) = self.queue.as_cluster() {
            queue.release();
        }
        tracing::info!(parent: &self.span, "lease given back");
    }
}
