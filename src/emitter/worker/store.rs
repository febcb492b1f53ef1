//! The worker's side of a durable store: opening its queue (journal or
//! PostgreSQL), resuming the stored state, and what the journal's writer
//! tells it (PostgreSQL's notices are in `cluster`).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::Worker;
use crate::emitter::report::Outcome;
use crate::error::StoreError;
use crate::model::Event;
use crate::store::journal::queue::{Consequence, JournalQueue};
use crate::store::journal::Notice;
use crate::store::Store;

/// Longest `attach` waits for an emitter's stored state.
const RECOVERY_WAIT: Duration = Duration::from_secs(10);

impl Worker {
    /// With a journal, the queue is the journal's: it asks for the stored
    /// state at once, and this worker gets the writer's notices.
    pub(super) fn open_store(&mut self, ctx: &mut Context<Self>) {
        if matches!(self.store, Store::Memory) {
            self.mark_recovered();
            return;
        }
        // A store that cannot be read (a failing disk, a database down) must
        // not hold `attach` forever: its callers go on after a while, and the
        // state applies when it arrives.
        ctx.run_later(RECOVERY_WAIT, |worker, _| {
            if !worker.recovered && !worker.recovery_waiters.is_empty() {
                tracing::warn!(parent: &worker.span, waited = ?RECOVERY_WAIT, "stored state not read yet; attach returns without it");
                worker.release_recovery_waiters();
            }
        });
        match &self.store {
            Store::Journal(journal) => {
                self.queue = Box::new(JournalQueue::recover(
                    journal.clone(),
                    self.reporter.emitter_id().clone(),
                    self.config.queue_capacity,
                    ctx.address().recipient(),
                ));
            }
            #[cfg(feature = "postgres")]
            Store::Postgres(store) => {
                self.queue = Box::new(crate::store::postgres::queue::PgQueue::register(
                    store.clone(),
                    self.reporter.emitter_id().clone(),
                    self.config.fingerprint(),
                    self.config.queue_capacity,
                    self.config.dead_letter_capacity,
                    ctx.address().recipient(),
                ));
            }
            Store::Memory => {}
        }
    }
}

impl Handler<Notice> for Worker {
    type Result = ();

    fn handle(&mut self, notice: Notice, ctx: &mut Context<Self>) {
        let Some(queue) = self.queue.as_journal() else {
            return;
        };
        match queue.notice(notice) {
            Consequence::Nothing => {}
            Consequence::Recovered {
                paused,
                dead_letters,
                next_dead_letter,
                counters,
            } => {
                // Stats go on from what was stored (nothing was delivered
                // before the stored state came back).
                self.counters.delivered += counters.delivered;
                self.counters.failed_attempts += counters.failed_attempts;
                self.counters.dead_lettered += counters.dead_lettered;
                if !self.paused_by_call {
                    self.paused = paused;
                }
                let kept = dead_letters.len();
                let evicted = self.dead_letters.restore(dead_letters, next_dead_letter);
                self.queue.evict_dead_letters(evicted);
                tracing::info!(parent: &self.span, stored = self.queue.stored(), dead_letters = kept, paused = self.paused, "emitter resumed from the journal");
                self.mark_recovered();
            }
            Consequence::NotStored { events, error } => self.not_stored(&events, &error),
        }
        self.pump(ctx);
    }
}

impl Worker {
    /// The store's state is applied: answer those waiting for it.
    pub(super) fn mark_recovered(&mut self) {
        self.recovered = true;
        self.release_recovery_waiters();
    }

    fn release_recovery_waiters(&mut self) {
        self.recovery_waiters.drain(..).for_each(|waiter| {
            let _ = waiter.send(());
        });
    }

    /// Reports events a store could not write (their callers were told).
    pub(super) fn not_stored(&self, events: &[Arc<Event>], error: &StoreError) {
        for event in events {
            let outcome = Outcome::NotStored {
                error: error.clone(),
            };
            self.reporter.report(event, outcome);
        }
    }
}
