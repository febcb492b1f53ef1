//! Hooks for the crate's own tests of its failure paths: they make an actor
//! panic, as a bug would, so that supervision is proven by tests rather than
//! by waiting for a real bug. Hidden from the docs; not part of the API.

use crate::emitter::registry::Forward;
use crate::emitter::worker::{ArmRequestPanic, Crash};
use crate::emitter::WebhooksEmitter;
use crate::error::ControlError;

/// Makes the worker of emitter `id` panic, after what is already in its
/// mailbox; returns at once.
pub fn crash_emitter(emitter: &WebhooksEmitter, id: &str) {
    emitter.inner.actors.registry.do_send(Forward {
        id: id.to_owned(),
        message: Crash,
    });
}

/// Makes the next request future of emitter `id` panic.
pub async fn panic_next_request(emitter: &WebhooksEmitter, id: &str) -> Result<(), ControlError> {
    emitter.ask(id, ArmRequestPanic).await
}

/// Makes the SSE broadcaster panic.
#[cfg(feature = "sse")]
pub fn crash_sse(emitter: &WebhooksEmitter) {
    emitter
        .inner
        .actors
        .sse
        .get()
        .do_send(crate::sse::CrashBroadcaster);
}
