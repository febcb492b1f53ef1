//! Where an emitter's queue lives: in memory (the default), or in a durable
//! store that a restarted process resumes from.
//!
//! - [`journal`]: an embedded journal (redb): one file, one writer thread that
//!   commits every operation of a short interval in one transaction.
//! - [`durable`]: the acknowledgement `emit_durable` waits on.
//! - [`error`]: why a store failed.
//!
//! A store keeps, per emitter: its queued and started events with their
//! attempts, its dead letters, and whether it is paused. Workers talk to it
//! through their queue (`emitter::queue::EventQueue`); they never wait on it.

pub(crate) mod durable;
mod error;
pub(crate) mod journal;

pub use error::StoreError;
pub use journal::{Journal, JournalOptions};

/// Which store a [`WebhooksEmitter`](crate::WebhooksEmitter) uses; see
/// [`WebhooksEmitterBuilder::store`](crate::WebhooksEmitterBuilder::store).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Store {
    /// In memory: fast, lost with the process.
    #[default]
    Memory,
    /// The embedded journal: survives crashes and restarts.
    Journal(Journal),
}

impl From<Journal> for Store {
    fn from(journal: Journal) -> Self {
        Store::Journal(journal)
    }
}
