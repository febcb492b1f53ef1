//! Changing an attached emitter's events and settings in place.

use std::sync::Arc;

use actix::prelude::*;

use super::{Registry, Route};
use crate::emitter::config::ValidatedConfig;
use crate::emitter::worker::Reconfigure as ReconfigureWorker;
use crate::error::AttachError;

/// Give emitter `id` new event names (validated, deduplicated) and a new config.
#[derive(Message)]
#[rtype(result = "Result<(), AttachError>")]
pub(crate) struct Reconfigure {
    pub id: String,
    pub events: Vec<Arc<str>>,
    pub config: Arc<ValidatedConfig>,
}

impl Handler<Reconfigure> for Registry {
    type Result = Result<(), AttachError>;

    fn handle(&mut self, msg: Reconfigure, _: &mut Context<Self>) -> Self::Result {
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
        let id: Arc<str> = Arc::from(msg.id.as_str());
        for event in &attached.events {
            self.routes.entry(event.clone()).or_default().push(Route {
                id: id.clone(),
                worker: attached.worker.clone(),
                reporter: attached.reporter.clone(),
            });
        }
        tracing::info!(emitter = %msg.id, events = ?attached.events, "emitter reconfigured");
        self.emitters.insert(msg.id, attached);
        Ok(())
    }
}
