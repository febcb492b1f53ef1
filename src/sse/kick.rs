//! How the broadcaster tells a WebSocket connection that it dropped it. An
//! SSE stream learns it from its channel closing; a WebSocket connection
//! keeps a sender of its own channel (to join more rooms), so it is told.

use std::sync::OnceLock;

use tokio::sync::Notify;

/// Why the broadcaster dropped a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KickReason {
    /// Its buffer was full: it fell behind.
    TooSlow,
    /// The broadcaster crashed and was restarted without its clients.
    Restarted,
}

/// A one-time signal with its reason; the first reason given wins.
#[derive(Debug, Default)]
pub(crate) struct Kick {
    reason: OnceLock<KickReason>,
    notify: Notify,
}

impl Kick {
    /// Drops the connection for `reason`.
    pub(crate) fn kick(&self, reason: KickReason) {
        let _ = self.reason.set(reason);
        // `notify_one` keeps a permit if the connection is not waiting yet.
        self.notify.notify_one();
    }

    /// Waits for the kick; its reason.
    pub(crate) async fn kicked(&self) -> KickReason {
        loop {
            self.notify.notified().await;
            if let Some(reason) = self.reason.get() {
                return *reason;
            }
        }
    }
}
