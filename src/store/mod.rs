//! Where an emitter's queue lives: in memory (the default), or in a durable
//! store that a restarted process resumes from. Stores import the model,
//! never the emitter.
//!
//! - [`queue`]: the port every store implements (`EventQueue`), and the one
//!   path by which a store tells a worker what changed.
//! - [`memory`]: the in-memory queue.
//! - [`journal`]: an embedded journal (redb): one file, one writer thread that
//!   commits every operation of a short interval in one transaction.
//! - [`postgres`] (feature `postgres`): PostgreSQL, shared by several nodes;
//!   one node at a time delivers an emitter (its lease holder).
//! - [`records`]: how an event and a dead letter are laid out in either.
//! - [`batch`]: how a store's thread groups operations into one commit.
//! - [`app_records`]: an application's own records, on either store.
//! - [`durable`]: the acknowledgement `emit_durable` waits on.
//! - [`thread`]: a store's own thread and the channel to it.
//!
//! A store keeps, per emitter: its queued and started events with their
//! attempts, its dead letters, and whether it is paused. Workers talk to it
//! through their queue ([`queue::EventQueue`]); they never wait on it.

use crate::error::StoreError;

pub(crate) mod app_records;
mod batch;
pub(crate) mod durable;
pub(crate) mod journal;
pub(crate) mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod queue;
pub(crate) mod records;
pub(crate) mod thread;

pub use app_records::{RecordChange, Records};
pub use journal::{Journal, JournalOptions};
#[cfg(feature = "postgres")]
pub use postgres::{PgOptions, PgStore};
pub use records::StoredCounters;

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
    /// PostgreSQL: shared by several nodes, each emitter delivered by one.
    #[cfg(feature = "postgres")]
    Postgres(PgStore),
}

impl Store {
    /// The last write failure, while the store's writes are failing: new
    /// events are refused with it.
    pub(crate) fn failure(&self) -> Option<StoreError> {
        match self {
            Store::Memory => None,
            Store::Journal(journal) => journal.failure(),
            #[cfg(feature = "postgres")]
            Store::Postgres(store) => store.failure(),
        }
    }

    /// Waits until everything sent to the store before is written.
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        match self {
            Store::Memory => Ok(()),
            Store::Journal(journal) => journal::flush(journal).await,
            #[cfg(feature = "postgres")]
            Store::Postgres(store) => store.flush().await,
        }
    }
}

#[cfg(feature = "postgres")]
impl From<PgStore> for Store {
    fn from(store: PgStore) -> Self {
        Store::Postgres(store)
    }
}

impl From<Journal> for Store {
    fn from(journal: Journal) -> Self {
        Store::Journal(journal)
    }
}
