//! The embedded journal: one redb file holding every emitter's queue, dead
//! letters and paused state, written by one thread that commits all the
//! operations of a short interval in one transaction (one fsync).
//!
//! - this file: the public handle and its options, the operations;
//! - [`writer`]: the writer thread: batching, commit, retry after a failure;
//! - [`apply`]: what each operation does in the writer's transaction, and
//!   what it owes once committed;
//! - [`tables`]: what each operation does to the tables, and the reads;
//! - [`app_records`]: an application's own records, beside the queues;
//! - [`errors`]: I/O and redb errors as a `StoreError` that says what to do;
//! - [`queue`]: the emitter's side: a window of events in memory, the rest on
//!   disk, read back in order.

mod app_records;

mod apply;
mod errors;
pub(crate) mod queue;
mod tables;

mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
#[cfg(feature = "test-util")]
use std::sync::atomic::AtomicU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::error::StoreError;
use crate::model::DeadLetter;
use crate::model::Event;
use crate::store::batch::BatchOptions;
use crate::store::durable::DurableAck;
use crate::store::records::{StoredCounters, StoredEvent};
use crate::store::thread::{NoticeSink, StoreThread};

/// Default cache of the database file, in bytes.
pub const DEFAULT_CACHE_BYTES: usize = 8 * 1024 * 1024;

/// Settings of a [`Journal`]; `Journal::open` uses the defaults.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    pub(crate) batch: BatchOptions,
    cache_bytes: usize,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            batch: BatchOptions::default(),
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

impl JournalOptions {
    /// How long a batch waits for more operations before it is committed
    /// (default 2 ms). A plain `emit` is on disk within about this long; a
    /// crash inside that window can lose it (`emit_durable` waits for it).
    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.batch = self.batch.with_commit_interval(interval);
        self
    }

    /// Most operations in one transaction (default 4096, at least 1).
    pub fn max_batch(mut self, operations: usize) -> Self {
        self.batch = self.batch.with_max_batch(operations);
        self
    }

    /// Bytes of the file the database keeps cached in memory (default 16 MiB).
    pub fn cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Opens (or creates) the journal at `path` with these settings.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Journal, StoreError> {
        Journal::open_with(path.as_ref(), self)
    }
}

/// A durable store for the emitter, in one file: queued events (with their
/// attempts), dead letters and paused state survive a crash or a restart.
/// Cheap to clone; the file is closed when the last clone (and the emitter
/// using it) is dropped. One process owns a journal at a time.
///
/// ```no_run
/// use webhooks_emitter::{Journal, WebhooksEmitter};
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let journal = Journal::open("webhooks.redb")?;
/// let emitter = WebhooksEmitter::builder().store(journal).start_in_background();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// The writer; closing it (on drop) commits what is left, stops it and
    /// closes the file, so everything sent is on disk when the drop returns.
    writer: StoreThread<writer::Senders>,
    /// The last write failure, until a commit succeeds again.
    failure: Arc<Mutex<Option<StoreError>>>,
    /// Test hook: the next commits fail as if the disk were full.
    #[cfg(feature = "test-util")]
    fail_commits: Arc<AtomicU32>,
    /// Transactions committed (each one fsync).
    commits: Arc<AtomicU64>,
    options: JournalOptions,
}

impl Journal {
    /// Opens (or creates) the journal at `path` with default settings.
    pub fn open(path: impl AsRef<Path>) -> Result<Journal, StoreError> {
        Self::open_with(path.as_ref(), JournalOptions::default())
    }

    /// Settings for [`JournalOptions::open`].
    pub fn options() -> JournalOptions {
        JournalOptions::default()
    }

    fn open_with(path: &Path, options: JournalOptions) -> Result<Journal, StoreError> {
        let database = tables::open(path, options.cache_bytes)?;
        let failure = Arc::new(Mutex::new(None));
        #[cfg(feature = "test-util")]
        let fail_commits = Arc::new(AtomicU32::new(0));
        let commits = Arc::new(AtomicU64::new(0));
        let (ops, thread) = writer::spawn(
            database,
            writer::WriterState {
                path: path.to_path_buf(),
                options: options.clone(),
                failure: failure.clone(),
                #[cfg(feature = "test-util")]
                fail_commits: fail_commits.clone(),
                commits: commits.clone(),
            },
        )?;
        Ok(Journal {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: StoreThread::new(ops, thread, format!("journal {}", path.display())),
                failure,
                #[cfg(feature = "test-util")]
                fail_commits,
                commits,
                options,
            }),
        })
    }

    /// Transactions committed since the journal was opened; each is one
    /// fsync, however many operations it carried.
    pub fn commits(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The last write failure, while writes are failing.
    pub(crate) fn failure(&self) -> Option<StoreError> {
        self.inner
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Hands an operation to the writer; never waits.
    pub(crate) fn send(&self, op: JournalOp) -> Result<(), StoreError> {
        self.inner.writer.send(op)
    }

    /// Test hook: the next `n` commits fail as if the disk were full.
    #[cfg(feature = "test-util")]
    #[doc(hidden)]
    pub fn fail_next_commits(&self, n: u32) {
        self.inner.fail_commits.store(n, Ordering::SeqCst);
    }
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.inner.path)
            .field("options", &self.inner.options)
            .field("failing", &self.failure())
            .finish()
    }
}

/// What an emitter recovers when it starts.
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    /// The oldest stored events, up to the window.
    pub head: Vec<StoredEvent>,
    /// Stored events in all.
    pub stored: usize,
    /// The newest stored event's sequence number (0 if none).
    pub last_seq: u64,
    /// The next sequence number to give.
    pub next_seq: u64,
    pub dead_letters: Vec<DeadLetter>,
    pub next_dead_letter: u64,
    pub paused: bool,
    /// Deliveries, failed attempts and dead letters so far.
    pub counters: StoredCounters,
}

/// What the writer tells an emitter's worker.
pub(crate) enum JournalNotice {
    Recovered(Recovery),
    /// Every append up to this sequence number is on disk.
    Committed {
        up_to: u64,
    },
    /// Events read back for the window.
    Loaded(Vec<StoredEvent>),
    /// These appends failed; they stay in memory and are written again later.
    WriteFailed {
        error: StoreError,
        seqs: Vec<u64>,
    },
}

/// One operation for the writer. Those of one emitter are applied in the
/// order they were sent.
pub(crate) enum JournalOp {
    /// Read an emitter's state; its worker gets `JournalNotice`s from now on.
    Recover {
        emitter: Arc<str>,
        window: usize,
        worker: NoticeSink<JournalNotice>,
    },
    Append {
        emitter: Arc<str>,
        seq: u64,
        event: Arc<Event>,
        durable: Option<DurableAck>,
    },
    Attempted {
        emitter: Arc<str>,
        seq: u64,
        attempts: u32,
        /// Not to be sent again before this (its backoff).
        retry_at: Option<std::time::SystemTime>,
    },
    Ack {
        emitter: Arc<str>,
        seq: u64,
    },
    /// Store a dead letter, removing its queued event (if it had one).
    DeadLetter {
        emitter: Arc<str>,
        seq: Option<u64>,
        letter: DeadLetter,
        durable: Option<DurableAck>,
    },
    EvictDeadLetters {
        emitter: Arc<str>,
        ids: Vec<u64>,
    },
    /// Dead letters back to the queue, in one transaction.
    Redeliver {
        emitter: Arc<str>,
        ids: Vec<u64>,
        appends: Vec<(u64, Arc<Event>)>,
    },
    SetPaused {
        emitter: Arc<str>,
        paused: bool,
    },
    /// Read back stored events with sequence numbers in `(after, through]`.
    Load {
        emitter: Arc<str>,
        after: u64,
        through: u64,
        limit: usize,
    },
    /// Delete everything of an emitter (detach); answer its queued events.
    Drain {
        emitter: Arc<str>,
        reply: oneshot::Sender<Result<Vec<Arc<Event>>, StoreError>>,
    },
    /// Stored events and dead letters per emitter id, for ids not in `attached`.
    Orphans {
        attached: Vec<String>,
        reply: oneshot::Sender<Result<Vec<(String, usize)>, StoreError>>,
    },
    /// Delete everything of an emitter that is not attached; answer how much.
    Discard {
        emitter: String,
        reply: oneshot::Sender<Result<usize, StoreError>>,
    },
    /// An application record written, deleted or listed.
    App(app_records::AppOp),
    /// Answer once everything sent before is on disk.
    Flush {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

impl JournalOp {
    /// Whether a batch holding this operation must be fsynced before anyone
    /// is told: what a caller was promised is on disk.
    fn must_sync(&self) -> bool {
        match self {
            JournalOp::Ack { .. }
            | JournalOp::Attempted { .. }
            | JournalOp::Recover { .. }
            | JournalOp::Load { .. }
            | JournalOp::Orphans { .. } => false,
            JournalOp::App(op) => !op.reads_only() && !op.unhurried(),
            _ => true,
        }
    }

    /// Whether someone waits on the operation (a caller, or a worker for its
    /// state or its next events): its batch is committed within the commit
    /// interval. The others (acks, attempt counts) may wait longer.
    fn urgent(&self) -> bool {
        match self {
            JournalOp::Ack { .. } | JournalOp::Attempted { .. } => false,
            JournalOp::App(op) => !op.unhurried(),
            _ => true,
        }
    }

    /// The stored event an append, attempt or ack is about.
    fn event_key(&self) -> Option<(Arc<str>, u64)> {
        match self {
            JournalOp::Append { emitter, seq, .. }
            | JournalOp::Attempted { emitter, seq, .. }
            | JournalOp::Ack { emitter, seq } => Some((emitter.clone(), *seq)),
            _ => None,
        }
    }

    /// Whether the operation answers a caller (a query or a flush): those are
    /// answered once, even when their batch fails, and never applied twice.
    fn answers(&self) -> bool {
        matches!(
            self,
            JournalOp::Drain { .. }
                | JournalOp::Orphans { .. }
                | JournalOp::Discard { .. }
                | JournalOp::Flush { .. }
        ) || matches!(self, JournalOp::App(op) if !op.unhurried())
    }
}

/// Waits until everything sent to `journal` before is on disk.
pub(crate) async fn flush(journal: &Journal) -> Result<(), StoreError> {
    let (reply, answer) = oneshot::channel();
    journal.send(JournalOp::Flush { reply })?;
    answer.await.unwrap_or(Err(StoreError::Closed))
}
