//! The worker's side of a durable store: opening its queue (journal or
//! PostgreSQL), resuming the stored state, and the one path by which a store
//! tells the worker what changed (the cluster's lease handling is in
//! `cluster`).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::Worker;
use crate::emitter::report::Outcome;
use crate::error::StoreError;
use crate::model::Event;
use crate::store::journal::queue::JournalQueue;
use crate::store::queue::{QueueChange, StoreNotice, StoredState};
use crate::store::thread::NoticeSink;
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
                    notices(ctx, StoreNotice::Journal),
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
                    notices(ctx, StoreNotice::Cluster),
                ));
            }
            Store::Memory => {}
        }
    }
}

/// A store's notices of one kind, as messages to this worker.
fn notices<N: 'static>(ctx: &Context<Worker>, wrap: fn(N) -> StoreNotice) -> NoticeSink<N> {
    let worker = ctx.address();
    NoticeSink::new(move |notice| worker.do_send(wrap(notice)))
}

impl Message for StoreNotice {
    type Result = ();
}

impl Handler<StoreNotice> for Worker {
    type Result = ();

    fn handle(&mut self, notice: StoreNotice, ctx: &mut Context<Self>) {
        match self.queue.on_notice(notice) {
            QueueChange::Nothing => {}
            QueueChange::Recovered(state) => self.recovered(state),
            QueueChange::ClusterState(state) => {
                if !self.paused_by_call {
                    self.paused = state.paused;
                }
                // The cluster's counters count what is committed, this
                // node's what it did since: both only grow, so the larger
                // is the newer (a state read before this node's last
                // deliveries committed must not undo them).
                let (ours, stored) = (&mut self.counters, state.counters);
                ours.delivered = ours.delivered.max(stored.delivered);
                ours.failed_attempts = ours.failed_attempts.max(stored.failed_attempts);
                ours.dead_lettered = ours.dead_lettered.max(stored.dead_lettered);
                self.replace_dead_letters(state.dead_letters, state.next_dead_letter);
                tracing::info!(parent: &self.span, paused = self.paused, dead_letters = self.dead_letters.len(), "emitter state read from PostgreSQL");
                self.mark_recovered();
            }
            QueueChange::DeadLetters { letters, next_id } => {
                self.replace_dead_letters(letters, next_id);
            }
            QueueChange::Paused(paused) => {
                if paused != self.paused {
                    self.paused = paused;
                    tracing::info!(parent: &self.span, paused, "emitter paused state changed on another node");
                    self.resume(ctx);
                }
            }
            QueueChange::LeaseLost => {
                tracing::warn!(parent: &self.span, "lease lost; another node delivers this emitter now");
                self.drop_started(ctx);
            }
            QueueChange::Release => self.release_when_idle(ctx),
            QueueChange::Renewed => self.resume(ctx),
            QueueChange::NotStored { events, error } => self.not_stored(&events, &error),
        }
        self.pump(ctx);
    }
}

impl Worker {
    /// Resumes from the stored state read at attach: stats go on from the
    /// stored counters (nothing was delivered before the state came back).
    fn recovered(&mut self, state: StoredState) {
        let counters = state.counters;
        self.counters.delivered += counters.delivered;
        self.counters.failed_attempts += counters.failed_attempts;
        self.counters.dead_lettered += counters.dead_lettered;
        if !self.paused_by_call {
            self.paused = state.paused;
        }
        let kept = state.dead_letters.len();
        let evicted = self
            .dead_letters
            .restore(state.dead_letters, state.next_dead_letter);
        self.queue.evict_dead_letters(evicted);
        tracing::info!(parent: &self.span, stored = self.queue.stored(), dead_letters = kept, paused = self.paused, "emitter resumed from the journal");
        self.mark_recovered();
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
