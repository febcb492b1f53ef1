//! Changing an attached emitter's events and settings in place.

use actix::prelude::*;

use super::{Attach, Registry};
use crate::emitter::worker::Reconfigure as ReconfigureWorker;
use crate::error::AttachError;

/// Give the attached emitter `id` new event names (validated, deduplicated)
/// and a new config: what `attach` would take, for an id that is attached.
#[derive(Message)]
#[rtype(result = "Result<(), AttachError>")]
pub(crate) struct Reconfigure(pub Attach);

impl Handler<Reconfigure> for Registry {
    type Result = Result<(), AttachError>;

    fn handle(&mut self, Reconfigure(msg): Reconfigure, _: &mut Context<Self>) -> Self::Result {
        if self.shut_down {
            return Err(AttachError::ShutDown);
        }
        // Out of the maps and back in: the routes follow the new names, and
        // an emit handled after this message reaches the worker after its
        // new config (one mailbox, in order).
        let Some(mut attached) = self.remove(&msg.id) else {
            return Err(AttachError::UnknownEmitter { id: msg.id });
        };
        attached
            .worker
            .do_send(ReconfigureWorker(msg.config.clone()));
        attached.config = msg.config;
        attached.events = msg.events;
        tracing::info!(emitter = %msg.id, events = ?attached.events, "emitter reconfigured");
        self.insert(msg.id, attached);
        Ok(())
    }
}
