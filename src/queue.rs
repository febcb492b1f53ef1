//! The emitter's queue behind a small boundary (push, start, ack, fail), so
//! that a durable journal can later replace the in-memory one without touching
//! the worker's state machine. A started event stays in the queue, counted,
//! until it is acked (delivered) or failed (dead-lettered): a crash between
//! start and ack must not lose it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::event::Event;

/// Identifies a started event until it is acked or failed.
pub(crate) type Ticket = u64;

/// A FIFO of events waiting for one emitter, and those being tried.
pub(crate) trait EventQueue {
    /// Appends an event, or gives it back if the queue is full.
    fn push(&mut self, event: Arc<Event>) -> Result<(), Arc<Event>>;
    /// Starts the oldest waiting event.
    fn start_next(&mut self) -> Option<(Ticket, Arc<Event>)>;
    /// A started event was delivered: remove it.
    fn ack(&mut self, ticket: Ticket) -> Option<Arc<Event>>;
    /// A started event was given up (it becomes a dead letter): remove it.
    fn fail(&mut self, ticket: Ticket) -> Option<Arc<Event>>;
    /// Events waiting to start.
    fn waiting(&self) -> usize;
    /// Events held, started or waiting.
    fn len(&self) -> usize;
    /// Removes and returns every event: started ones (oldest first), then waiting ones.
    fn drain(&mut self) -> Vec<Arc<Event>>;
}

/// The in-memory queue: a bounded `VecDeque` of waiting events and the started
/// ones by ticket.
#[derive(Debug)]
pub(crate) struct MemoryQueue {
    waiting: VecDeque<Arc<Event>>,
    started: HashMap<Ticket, Arc<Event>>,
    next_ticket: Ticket,
    capacity: usize,
}

impl MemoryQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        MemoryQueue {
            waiting: VecDeque::new(),
            started: HashMap::new(),
            next_ticket: 0,
            capacity,
        }
    }
}

impl EventQueue for MemoryQueue {
    fn push(&mut self, event: Arc<Event>) -> Result<(), Arc<Event>> {
        if self.len() >= self.capacity {
            return Err(event);
        }
        self.waiting.push_back(event);
        Ok(())
    }

    fn start_next(&mut self) -> Option<(Ticket, Arc<Event>)> {
        let event = self.waiting.pop_front()?;
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.started.insert(ticket, event.clone());
        Some((ticket, event))
    }

    fn ack(&mut self, ticket: Ticket) -> Option<Arc<Event>> {
        self.started.remove(&ticket)
    }

    fn fail(&mut self, ticket: Ticket) -> Option<Arc<Event>> {
        self.started.remove(&ticket)
    }

    fn waiting(&self) -> usize {
        self.waiting.len()
    }

    fn len(&self) -> usize {
        self.waiting.len() + self.started.len()
    }

    fn drain(&mut self) -> Vec<Arc<Event>> {
        // Rare (detach, shutdown): sort here rather than keep the map ordered.
        let mut started: Vec<(Ticket, Arc<Event>)> = self.started.drain().collect();
        started.sort_unstable_by_key(|(ticket, _)| *ticket);
        started
            .into_iter()
            .map(|(_, event)| event)
            .chain(self.waiting.drain(..))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RequestId;

    fn event(n: u8) -> Arc<Event> {
        Arc::new(Event::new(
            Arc::from("e"),
            bytes::Bytes::from(vec![n]),
            RequestId::generate(),
        ))
    }

    #[test]
    fn started_events_count_until_acked_and_drain_in_order() {
        let mut queue = MemoryQueue::new(3);
        for n in 0..3 {
            assert!(queue.push(event(n)).is_ok());
        }
        assert!(
            queue.push(event(9)).is_err(),
            "bounded, started ones included"
        );
        let (first, _) = queue.start_next().unwrap_or_else(|| unreachable!());
        let (second, _) = queue.start_next().unwrap_or_else(|| unreachable!());
        assert_eq!((queue.len(), queue.waiting()), (3, 1));
        assert!(queue.ack(second).is_some());
        assert!(queue.ack(second).is_none());
        assert_eq!(queue.len(), 2);
        let drained: Vec<u8> = queue.drain().iter().map(|e| e.payload()[0]).collect();
        assert_eq!(drained, [0, 2]);
        assert!(queue.fail(first).is_none());
    }
}
