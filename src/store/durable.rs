//! What `emit_durable` waits on: one acknowledgement per emit, done once every
//! emitter that received the event has it on disk (or, in memory mode, queued).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::error::StoreError;

/// AckState by the copies of one event at each emitter.
#[derive(Debug, Clone)]
pub(crate) struct DurableAck(Arc<AckState>);

/// How many copies are still to be confirmed, and whom to answer.
#[derive(Debug)]
struct AckState {
    remaining: AtomicUsize,
    answer: Mutex<Option<oneshot::Sender<Result<(), StoreError>>>>,
}

impl DurableAck {
    /// An acknowledgement answering `answer` after `copies` confirmations;
    /// with none, at once.
    pub(crate) fn new(copies: usize, answer: oneshot::Sender<Result<(), StoreError>>) -> Self {
        let ack = DurableAck(Arc::new(AckState {
            remaining: AtomicUsize::new(copies),
            answer: Mutex::new(Some(answer)),
        }));
        if copies == 0 {
            ack.answer(Ok(()));
        }
        ack
    }

    /// One copy is safe; the last one answers the caller.
    pub(crate) fn done(&self) {
        if self.0.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.answer(Ok(()));
        }
    }

    /// One copy is safe, if there is an acknowledgement to give.
    pub(crate) fn settle(durable: Option<DurableAck>) {
        if let Some(durable) = durable {
            durable.done();
        }
    }

    /// One copy could not be stored: the caller hears it now.
    pub(crate) fn failed(&self, error: StoreError) {
        self.answer(Err(error));
    }

    fn answer(&self, result: Result<(), StoreError>) {
        let sender = self
            .0
            .answer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(sender) = sender {
            let _ = sender.send(result);
        }
    }
}
