//! The emitter's queue behind a small boundary (push, peek, ack, fail), so that
//! a durable journal can later replace the in-memory one without touching the
//! worker's state machine.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::event::Event;

/// A FIFO of events waiting for one emitter; the head is the one being tried.
pub(crate) trait EventQueue {
    /// Appends an event, or gives it back if the queue is full.
    fn push(&mut self, event: Arc<Event>) -> Result<(), Arc<Event>>;
    /// The event to try now.
    fn peek(&self) -> Option<&Arc<Event>>;
    /// The head was delivered: remove it.
    fn ack(&mut self) -> Option<Arc<Event>>;
    /// The head was given up (it becomes a dead letter): remove it.
    fn fail(&mut self) -> Option<Arc<Event>>;
    /// Events queued, the head included.
    fn len(&self) -> usize;
    /// Removes and returns every event, head first.
    fn drain(&mut self) -> Vec<Arc<Event>>;
}

/// The in-memory queue: a bounded `VecDeque`.
#[derive(Debug)]
pub(crate) struct MemoryQueue {
    events: VecDeque<Arc<Event>>,
    capacity: usize,
}

impl MemoryQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        MemoryQueue {
            events: VecDeque::new(),
            capacity,
        }
    }
}

impl EventQueue for MemoryQueue {
    fn push(&mut self, event: Arc<Event>) -> Result<(), Arc<Event>> {
        if self.events.len() >= self.capacity {
            return Err(event);
        }
        self.events.push_back(event);
        Ok(())
    }

    fn peek(&self) -> Option<&Arc<Event>> {
        self.events.front()
    }

    fn ack(&mut self) -> Option<Arc<Event>> {
        self.events.pop_front()
    }

    fn fail(&mut self) -> Option<Arc<Event>> {
        self.events.pop_front()
    }

    fn len(&self) -> usize {
        self.events.len()
    }

    fn drain(&mut self) -> Vec<Arc<Event>> {
        self.events.drain(..).collect()
    }
}
