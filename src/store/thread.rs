//! A store's own thread and the channels to and from it, as both stores keep
//! them: operations go in without waiting; dropping the handle closes the
//! channel, which lets the thread finish what it holds, and waits for it.
//! Notices come back to each emitter's worker through a [`NoticeSink`], a
//! plain callback, so that a store does not depend on the actor system.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::error::StoreError;

/// Something operations can be handed to (a channel's sending side).
pub(crate) trait Inbox<Op> {
    /// Hands `op` over; fails once the thread has stopped.
    fn put(&self, op: Op) -> Result<(), StoreError>;
}

/// Where a store's thread tells one emitter's worker what changed (the
/// worker turns it into a message to itself). Never blocks the thread.
pub(crate) struct NoticeSink<N>(Arc<dyn Fn(N) + Send + Sync>);

impl<N> NoticeSink<N> {
    pub(crate) fn new(tell: impl Fn(N) + Send + Sync + 'static) -> Self {
        NoticeSink(Arc::new(tell))
    }

    pub(crate) fn send(&self, notice: N) {
        (self.0)(notice);
    }
}

impl<N> Clone for NoticeSink<N> {
    fn clone(&self) -> Self {
        NoticeSink(self.0.clone())
    }
}

/// The sending side and the thread; closed on drop.
pub(crate) struct StoreThread<S> {
    /// `None` once closing.
    ops: Mutex<Option<S>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Says which store, if its thread panicked.
    name: String,
}

impl<S> StoreThread<S> {
    pub(crate) fn new(ops: S, thread: JoinHandle<()>, name: String) -> Self {
        StoreThread {
            ops: Mutex::new(Some(ops)),
            thread: Mutex::new(Some(thread)),
            name,
        }
    }

    /// Hands an operation to the thread; never waits.
    pub(crate) fn send<Op>(&self, op: Op) -> Result<(), StoreError>
    where
        S: Inbox<Op>,
    {
        match &*self.ops.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(ops) => ops.put(op),
            None => Err(StoreError::Closed),
        }
    }
}

impl<S> Drop for StoreThread<S> {
    fn drop(&mut self) {
        self.ops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!(store = %self.name, "store thread panicked");
            }
        }
    }
}
