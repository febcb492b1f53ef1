//! The in-memory queue (the default store): a bounded `VecDeque` of waiting
//! events, lost with the process.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::model::{DeadLetter, Event};
use crate::store::durable::DurableAck;
use crate::store::queue::{Drained, EventQueue, Refused, Started, Ticket};

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
    fn push(&mut self, event: Arc<Event>, durable: Option<DurableAck>) -> Result<(), Refused> {
        if self.len() >= self.capacity {
            return Err(Refused { event, durable });
        }
        self.waiting.push_back(event);
        // In memory, queued is as safe as it gets.
        DurableAck::settle(durable);
        Ok(())
    }

    fn start_next(&mut self) -> Option<Started> {
        let event = self.waiting.pop_front()?;
        let ticket = self.next_ticket;
        self.next_ticket = self.next_ticket.wrapping_add(1);
        self.started += 1;
        Some(Started {
            ticket,
            event,
            attempts: 0,
            retry_at: None,
        })
    }

    fn ack(&mut self, _: Ticket) {
        self.started = self.started.saturating_sub(1);
    }

    fn fail(
        &mut self,
        ticket: Option<Ticket>,
        _: Option<&DeadLetter>,
        durable: Option<DurableAck>,
    ) {
        if ticket.is_some() {
            self.started = self.started.saturating_sub(1);
        }
        DurableAck::settle(durable);
    }

    fn redeliver(&mut self, letters: Vec<DeadLetter>) {
        self.waiting.extend(letters.into_iter().map(|l| l.event));
    }

    fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
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

    fn drain(&mut self) -> Drained {
        Drained::Waiting(self.waiting.drain(..).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RequestId;

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
            assert!(queue.push(event(n), None).is_ok());
        }
        assert!(
            queue.push(event(9), None).is_err(),
            "bounded, started ones included"
        );
        let first = queue.start_next().map(|s| s.ticket);
        let second = queue.start_next().map(|s| s.ticket);
        assert!(first < second, "tickets follow the emit order");
        assert_eq!((queue.len(), queue.waiting()), (3, 1));
        queue.ack(second.unwrap_or_default());
        assert_eq!(queue.len(), 2);
        assert!(queue.push(event(3), None).is_ok());
        let Drained::Waiting(drained) = queue.drain() else {
            unreachable!("memory queues drain at once")
        };
        let drained: Vec<u8> = drained.iter().map(|e| e.payload()[0]).collect();
        assert_eq!(drained, [2, 3]);
    }
}
