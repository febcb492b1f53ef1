//! A store's own thread and the channel to it, as both stores keep them:
//! operations go in without waiting; dropping the handle closes the channel,
//! which lets the thread finish what it holds, and waits for it.

use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::error::StoreError;

/// Something operations can be handed to (a channel's sending side).
pub(crate) trait Inbox<Op> {
    /// Hands `op` over; fails once the thread has stopped.
    fn put(&self, op: Op) -> Result<(), StoreError>;
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
