//! An actix `System` on a thread of its own, for callers that are not inside one.

use std::sync::mpsc;

/// The background thread's system; stopping it ends the thread.
pub(crate) struct BackgroundSystem {
    system: actix::System,
}

impl BackgroundSystem {
    /// Starts a thread running a new `System`, calls `start` inside it, and
    /// returns what `start` returned (actor addresses).
    pub(crate) fn spawn<T, F>(start: F) -> (Self, T)
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (sender, started) = mpsc::sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name("webhooks-emitter".into())
            .spawn(move || {
                let system = actix::System::new();
                system.block_on(async move {
                    let _ = sender.send((actix::System::current(), start()));
                });
                if let Err(error) = system.run() {
                    tracing::error!(%error, "webhooks-emitter background system failed");
                }
            });
        let started = spawned.ok().and_then(|_| started.recv().ok());
        match started {
            Some((system, started)) => (BackgroundSystem { system }, started),
            None => panic!("webhooks-emitter: could not start its background thread"),
        }
    }

    pub(crate) fn stop(&self) {
        self.system.stop();
    }
}
