//! An emitter's dead letters, bounded, oldest first: kept for inspection and
//! redelivery.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use crate::model::{DeadLetter, DeadLetterReason, Event};

/// The bounded store of one emitter's dead letters, oldest first.
#[derive(Debug)]
pub(crate) struct DeadLetters {
    capacity: usize,
    next_id: u64,
    letters: VecDeque<DeadLetter>,
}

impl DeadLetters {
    pub(crate) fn new(capacity: usize) -> Self {
        DeadLetters {
            capacity,
            next_id: 1,
            letters: VecDeque::new(),
        }
    }

    /// Stores a new dead letter, evicting the oldest if the store is full.
    /// Returns it (`None` with a capacity of 0) and the id evicted, if any.
    pub(crate) fn push(
        &mut self,
        event: Arc<Event>,
        attempts: u32,
        reason: DeadLetterReason,
    ) -> (Option<DeadLetter>, Option<u64>) {
        let letter = DeadLetter {
            id: self.next_id,
            event,
            attempts,
            reason,
            at: SystemTime::now(),
        };
        self.next_id = self.next_id.saturating_add(1);
        if self.capacity == 0 {
            return (None, None);
        }
        let evicted = self.keep(letter.clone());
        (Some(letter), evicted)
    }

    /// Takes over dead letters read back from a store, oldest first; returns
    /// the ids that no longer fit.
    pub(crate) fn restore(&mut self, letters: Vec<DeadLetter>, next_id: u64) -> Vec<u64> {
        self.next_id = self.next_id.max(next_id);
        letters
            .into_iter()
            .filter_map(|letter| {
                if self.capacity == 0 {
                    return Some(letter.id);
                }
                self.keep(letter)
            })
            .collect()
    }

    /// Keeps `letter`; returns the id of the one evicted to make room.
    fn keep(&mut self, letter: DeadLetter) -> Option<u64> {
        let mut evicted_id = None;
        if self.letters.len() >= self.capacity {
            if let Some(evicted) = self.letters.pop_front() {
                tracing::warn!(
                    dead_letter = evicted.id,
                    event = evicted.event.name(),
                    request_id = %evicted.event.request_id(),
                    capacity = self.capacity,
                    "dead letter store full; oldest dead letter evicted"
                );
                evicted_id = Some(evicted.id);
            }
        }
        self.letters.push_back(letter);
        evicted_id
    }

    /// A new bound; returns the ids of the oldest letters evicted to fit it.
    pub(crate) fn set_capacity(&mut self, capacity: usize) -> Vec<u64> {
        self.capacity = capacity;
        let excess = self.letters.len().saturating_sub(capacity);
        self.letters
            .drain(..excess)
            .map(|letter| letter.id)
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.letters.len()
    }

    pub(crate) fn list(&self) -> Vec<DeadLetter> {
        self.letters.iter().cloned().collect()
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.letters.iter().any(|l| l.id == id)
    }

    pub(crate) fn take(&mut self, id: u64) -> Option<DeadLetter> {
        let index = self.letters.iter().position(|l| l.id == id)?;
        self.letters.remove(index)
    }

    pub(crate) fn take_all(&mut self) -> Vec<DeadLetter> {
        self.letters.drain(..).collect()
    }
}
