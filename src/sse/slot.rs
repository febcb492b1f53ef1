//! Where the broadcaster is: the registry restarts it after a crash, and the
//! endpoint and the handle must then reach the new one.

use std::sync::{Arc, PoisonError, RwLock};

use actix::Addr;

use super::broadcaster::SseBroadcaster;

/// The current broadcaster's address, shared by the registry (which replaces
/// it), the HTTP endpoint and the handle.
#[derive(Clone)]
pub(crate) struct BroadcasterSlot(Arc<RwLock<Addr<SseBroadcaster>>>);

impl BroadcasterSlot {
    pub(crate) fn new(broadcaster: Addr<SseBroadcaster>) -> Self {
        BroadcasterSlot(Arc::new(RwLock::new(broadcaster)))
    }

    /// The broadcaster now.
    pub(crate) fn get(&self) -> Addr<SseBroadcaster> {
        // The lock only guards a clone or a replacement: never inconsistent.
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn replace(&self, broadcaster: Addr<SseBroadcaster>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = broadcaster;
    }
}
