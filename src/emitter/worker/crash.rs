//! When a worker goes away without being asked to: it panicked (a bug). What
//! it held in memory is reported, never silently gone, and the registry is told
//! so that it restarts the emitter (see `registry::supervision`).

use std::sync::Arc;

use actix::prelude::*;

use super::{Inheritance, Worker};
use crate::emitter::dead_letters::DeadLetters;
use crate::emitter::report::{DropReason, Outcome};
#[cfg(feature = "test-util")]
use crate::error::ControlError;
use crate::store::queue::Drained;

/// A worker stopped without `Stop`: restart emitter `id`, generation
/// `generation`, with what it left behind.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct WorkerGone {
    pub id: Arc<str>,
    pub generation: u64,
    pub inheritance: Inheritance,
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.stopping {
            return;
        }
        // Not asked to stop: a panic unwinding through this actor, or the
        // actor system stopping under it (the last handle of a background
        // emitter dropped without `shutdown`).
        let crashed = std::thread::panicking();
        let reason = if crashed {
            DropReason::Crashed
        } else {
            DropReason::Shutdown
        };
        // In a durable store the events are safe: the successor (or the next
        // process) resumes them. In memory they are gone: report each.
        let mut lost: Vec<_> = Vec::new();
        if !self.queue.durable() {
            lost.extend(
                std::mem::take(&mut self.active)
                    .into_values()
                    .map(|a| a.event),
            );
            if let Drained::Waiting(waiting) = self.queue.drain() {
                lost.extend(waiting);
            }
        }
        for event in &lost {
            self.reporter.report(event, Outcome::Dropped { reason });
        }
        if !crashed {
            if !lost.is_empty() {
                tracing::warn!(parent: &self.span, dropped = lost.len(), "actor system stopped with events queued");
            }
            return;
        }
        tracing::error!(parent: &self.span, dropped = lost.len(), generation = self.generation, "emitter crashed (a panic, see above); events it held are reported dropped; restarting it");
        let inheritance = Inheritance {
            paused: self.paused,
            dead_letters: std::mem::replace(&mut self.dead_letters, DeadLetters::new(0)),
        };
        self.registry.do_send(WorkerGone {
            id: self.reporter.emitter_id().clone(),
            generation: self.generation,
            inheritance,
        });
    }
}

/// Test hook: make the worker panic, as a bug would.
#[cfg(feature = "test-util")]
#[derive(Message)]
#[rtype(result = "Result<(), ControlError>")]
pub(crate) struct Crash;

#[cfg(feature = "test-util")]
impl Handler<Crash> for Worker {
    type Result = Result<(), ControlError>;

    fn handle(&mut self, _: Crash, _: &mut Context<Self>) -> Self::Result {
        panic!("test hook: emitter `{}` crashes", self.id());
    }
}

/// Test hook: make the next request future panic.
#[cfg(feature = "test-util")]
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ArmRequestPanic;

#[cfg(feature = "test-util")]
impl Handler<ArmRequestPanic> for Worker {
    type Result = ();

    fn handle(&mut self, _: ArmRequestPanic, _: &mut Context<Self>) {
        self.panic_next_attempt = true;
    }
}
