//! The emitter's queue behind a small boundary (push, start, ack, fail), so
//! that a durable store can replace the in-memory one without touching the
//! worker's state machine.
//!
//! The queue owns the events waiting to start. Once started, an event belongs
//! to the worker (which tracks its attempts and timers) until it is acked
//! (delivered) or failed (dead-lettered); the queue only counts it, so that the
//! bound covers started events too, and a durable store keeps it stored until
//! then: a crash between start and ack must not lose it.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::emitter::event::Event;

/// Identifies a started event until it is acked or failed. Tickets increase in
/// the order events are started, which is their emit order.
pub(crate) type Ticket = u64;

/// An event handed to the worker.
#[derive(Debug)]
pub(crate) struct Started {
    pub ticket: Ticket,
    pub event: Arc<Event>,
}

/// A FIFO of events waiting for one emitter.
pub(crate) trait EventQueue {
    /// Appends an event, or gives it back if the queue is full (started
    /// events count towards the bound).
    fn push(&mut self, event: Arc<Event>) -> Result<(), Arc<Event>>;
    /// Starts the oldest waiting event.
    fn start_next(&mut self) -> Option<Started>;
    /// A started event was delivered.
    fn ack(&mut self, ticket: Ticket);
    /// A started event was given up (it became a dead letter).
    fn fail(&mut self, ticket: Ticket);
    /// Events waiting to start.
    fn waiting(&self) -> usize;
    /// Events held: waiting, or started and not yet acked or failed.
    fn len(&self) -> usize;
    /// How many more events `push` would take now.
    fn room(&self) -> usize;
    /// Removes and returns the waiting events, oldest first.
    fn drain_waiting(&mut self) -> Vec<Arc<Event>>;
}

/// The in-memory queue: a bounded `VecDeque` of waiting events.
#[derive(Debug)]
pub(crate) struct MemoryQueue {
    waiting: VecDeque<Arc<Event>>,
    /// Started and not yet acked or failed.
    started: usize,
    next_ticket: Ticket,
    capacity: usize,
}

impl MemoryQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        MemoryQueue {
            waiting: VecDeque::new(),
            started: 0,
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

    fn start_next(&mut self) -> Option<Started> {
        let event = self.waiting.pop_front()?;
        let ticket = self.next_ticket;
        self.next_ticket = self.next_ticket.wrapping_add(1);
        self.started += 1;
        Some(Started { ticket, event })
    }

    fn ack(&mut self, _: Ticket) {
        self.started = self.started.saturating_sub(1);
    }

    fn fail(&mut self, _: Ticket) {
        self.started = self.started.saturating_sub(1);
    }

    fn waiting(&self) -> usize {
        self.waiting.len()
    }

    fn len(&self) -> usize {
        self.waiting.len() + self.started
    }

    fn room(&self) -> usize {
        self.capacity.saturating_sub(self.len())
    }

    fn drain_waiting(&mut self) -> Vec<Arc<Event>> {
        self.waiting.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emitter::event::RequestId;

    fn event(n: u8) -> Arc<Event> {
        Arc::new(Event::new(
            Arc::from("e"),
            bytes::Bytes::from(vec![n]),
            RequestId::generate(),
        ))
    }

    #[test]
    fn started_events_count_until_acked() {
        let mut queue = MemoryQueue::new(3);
        for n in 0..3 {
            assert!(queue.push(event(n)).is_ok());
        }
        assert!(
            queue.push(event(9)).is_err(),
            "bounded, started ones included"
        );
        let first = queue.start_next().map(|s| s.ticket);
        let second = queue.start_next().map(|s| s.ticket);
        assert!(first < second, "tickets follow the emit order");
        assert_eq!((queue.len(), queue.waiting()), (3, 1));
        queue.ack(second.unwrap_or_default());
        assert_eq!(queue.len(), 2);
        assert!(queue.push(event(3)).is_ok());
        let drained: Vec<u8> = queue
            .drain_waiting()
            .iter()
            .map(|e| e.payload()[0])
            .collect();
        assert_eq!(drained, [2, 3]);
        queue.fail(first.unwrap_or_default());
        assert_eq!(queue.len(), 0);
    }
}
