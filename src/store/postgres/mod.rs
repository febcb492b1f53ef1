//! The PostgreSQL store: several nodes (processes) share one durable queue
//! per emitter id, and one node at a time, the holder of the emitter's lease,
//! delivers it.
//!
//! - this file: the public handle and its options, the operations and
//!   notices exchanged with the workers, the members (this node's emitters);
//! - [`thread`]: the store's own thread and runtime: connect, migrate, then
//!   run the writer, the lease keeper and the listener;
//! - [`writer`]: group commit: every operation of a short interval in one
//!   transaction, retried after a failure, then the notices;
//! - [`plan`]: what a batch does, worked out without the database (which
//!   writes the lease epochs allow, the sequence numbers, the rows);
//! - [`transaction`]: the batch's statements: lock, write, notify;
//! - [`leases`]: heartbeat, renewal, claims and releases, the poll backstop;
//! - [`listen`]: `LISTEN/NOTIFY` wake-ups between nodes;
//! - [`feed`]: the live feed the nodes share (opt-in);
//! - [`announce`]: an application's short messages to every node;
//! - [`reads`]: an emitter's state and its next events, read back;
//! - [`queue`]: the worker's side, behind the `EventQueue` boundary;
//! - [`errors`]: how the driver's errors become [`StoreError`]s.
//!
//! Why the design holds:
//! - order: an emit takes the emitter's next sequence number under that
//!   emitter's row lock, in the transaction that stores the event, so
//!   sequence order is commit order, on every node;
//! - one deliverer: a node sends only while its lease is valid by its own
//!   clock (renewed well before expiry, checked before every request), and
//!   every write it makes (attempts, acks, dead letters) commits only if its
//!   epoch is still the lease's: a stalled former holder writes nothing.

pub(crate) mod announce;
mod app_records;
mod errors;
pub(crate) mod feed;
mod leases;
mod listen;
mod plan;
pub(crate) mod queue;
mod reads;
mod thread;
mod transaction;
mod writer;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::model::DeadLetter;
use crate::model::Event;
use crate::store::batch::BatchOptions;
use crate::store::durable::DurableAck;
use crate::store::records::{StoredCounters, StoredEvent};
use crate::store::thread::{Inbox, NoticeSink, StoreThread};

/// Default lease expiry: a node that stops renewing loses its emitters to
/// the other nodes this long after its last renewal.
pub const DEFAULT_LEASE_EXPIRY: Duration = Duration::from_secs(10);

/// Settings of a [`PgStore`]; [`PgStore::connect`] uses the defaults.
#[derive(Debug, Clone)]
pub struct PgOptions {
    lease_expiry: Duration,
    pub(crate) batch: BatchOptions,
    max_connections: u32,
    node_name: Option<String>,
    shared_live_updates: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            lease_expiry: DEFAULT_LEASE_EXPIRY,
            batch: BatchOptions::default(),
            max_connections: 8,
            node_name: None,
            shared_live_updates: false,
        }
    }
}

impl PgOptions {
    /// How long a lease lasts without renewal (default 10 s, between 1 s and
    /// 1 hour). Leases are renewed, and free ones claimed, every quarter of
    /// it or every 500 ms, whichever is shorter, so a dead node's emitters move within
    /// about the expiry plus one tick.
    pub fn lease_expiry(mut self, expiry: Duration) -> Self {
        self.lease_expiry = expiry.clamp(Duration::from_secs(1), Duration::from_secs(3600));
        self
    }

    /// How long a batch of writes waits for more before it is committed
    /// (default 2 ms, at most 1 s).
    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.batch = self.batch.with_commit_interval(interval);
        self
    }

    /// Most operations in one transaction (default 4096, at least 1).
    pub fn max_batch(mut self, operations: usize) -> Self {
        self.batch = self.batch.with_max_batch(operations);
        self
    }

    /// Connections in the pool (default 8, at least 2: one listens).
    pub fn max_connections(mut self, connections: u32) -> Self {
        self.max_connections = connections.max(2);
        self
    }

    /// This node's name in the lease table (default: host name and process
    /// id). Two live processes must not share a name: `connect` refuses one
    /// that a live node uses ([`StoreError::NodeNameInUse`]).
    pub fn node_name(mut self, name: impl Into<String>) -> Self {
        self.node_name = Some(name.into());
        self
    }

    /// Whether SSE and WebSocket clients on every node see what every node
    /// publishes (emitted events, `broadcast`), with the same ids on every
    /// node, so that a client a load balancer moves resumes by its
    /// `Last-Event-ID` on the next node (default off: each node shows its
    /// own). Publications go through a table of the database, in batches of
    /// 5 ms: one more write per batch, and that delay on every live update.
    pub fn shared_live_updates(mut self, shared: bool) -> Self {
        self.shared_live_updates = shared;
        self
    }

    /// Connects to `url`, creates or upgrades the schema (migrations are
    /// embedded; concurrent nodes take turns), and starts the store's thread.
    pub async fn connect(self, url: &str) -> Result<PgStore, StoreError> {
        let node = self.node_name.clone().unwrap_or_else(default_node_name);
        if node.is_empty() || node.len() > 200 {
            return Err(StoreError::InvalidSetting {
                detail: "the node name must have 1 to 200 bytes".into(),
            });
        }
        thread::start(url, node, self).await
    }
}

/// `host-pid` (`host-pid-2`, … for more stores in one process): unique among
/// live processes, readable in the lease table.
fn default_node_name() -> String {
    static STORES: AtomicU64 = AtomicU64::new(0);
    let nth = STORES.fetch_add(1, Ordering::Relaxed);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    match nth {
        0 => format!("{host}-{}", std::process::id()),
        n => format!("{host}-{}-{}", std::process::id(), n + 1),
    }
}

/// A durable store on PostgreSQL, shared by every node that connects to the
/// same database. Cheap to clone; its thread stops (releasing this node's
/// leases) when the last clone and the emitter using it are dropped.
///
/// ```no_run
/// use webhooks_emitter::{PgStore, WebhooksEmitter};
///
/// # async fn run() -> Result<(), webhooks_emitter::StoreError> {
/// let store = PgStore::connect("postgres://app@db.internal/app").await?;
/// let emitter = WebhooksEmitter::builder().store(store).start();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Publications for the shared live feed (if on). Declared before
    /// `thread`, so dropped first: the feed's writer ends, then the thread
    /// is joined.
    feed: Option<tokio::sync::mpsc::Sender<feed::FeedItem>>,
    /// Closing it (on drop) lets the thread commit what is left, give the
    /// leases back and stop.
    thread: StoreThread<mpsc::UnboundedSender<ClusterOp>>,
    shared: Arc<NodeState>,
}

/// What the store's thread and the handles share.
pub(crate) struct NodeState {
    /// This node's name: set before any emitter registers, then fixed.
    pub node: Mutex<String>,
    pub options: PgOptions,
    /// This node's emitters, by id.
    pub members: Mutex<HashMap<Arc<str>, Member>>,
    /// The last write failure, until a commit succeeds again.
    pub failure: Mutex<Option<StoreError>>,
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Where the shared live feed's rows go (the emitter, once it follows).
    pub feed_sink: Mutex<Option<NoticeSink<feed::FeedRecord>>>,
    /// Wakes the feed's reader: new rows, or a sink to hand them to.
    pub feed_wake: tokio::sync::Notify,
    /// Who listens to which announcements.
    pub announcements: announce::Listeners,
}

impl NodeState {
    pub(crate) fn node(&self) -> String {
        self.node
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn feed_sink(&self) -> Option<NoticeSink<feed::FeedRecord>> {
        self.feed_sink
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn members(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Member>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The last write failure, while writes are failing.
    pub(crate) fn failure(&self) -> Option<StoreError> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn failing(&self) -> bool {
        self.failure().is_some()
    }

    pub(crate) fn set_failure(&self, failure: Option<StoreError>) {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = failure;
    }

    /// Tells `emitter`'s worker, if it is attached here.
    pub(crate) fn tell(&self, emitter: &str, notice: ClusterNotice) {
        if let Some(member) = self.members().get(emitter) {
            member.worker.send(notice);
        }
    }

    /// The worker `token` of `emitter` stopped: it is no longer a member
    /// (unless a newer worker registered since).
    pub(crate) fn unregistered(&self, emitter: &str, token: u64) {
        let mut members = self.members();
        if members.get(emitter).is_some_and(|m| m.token == token) {
            members.remove(emitter);
        }
    }

    /// The lease of `emitter` at `epoch` was given back.
    pub(crate) fn released(&self, emitter: &str, epoch: i64) {
        if let Some(member) = self.members().get_mut(emitter) {
            if member.epoch == Some(epoch) {
                member.epoch = None;
                member.releasing = false;
                member.deadline.clear();
            }
        }
    }

    /// This node no longer holds `emitter`'s lease (at `epoch`, or any).
    pub(crate) fn lost(&self, emitter: &str, epoch: Option<i64>) {
        let mut members = self.members();
        let Some(member) = members.get_mut(emitter) else {
            return;
        };
        if member.epoch.is_none() || (epoch.is_some() && member.epoch != epoch) {
            return;
        }
        member.epoch = None;
        member.releasing = false;
        member.deadline.clear();
        member.worker.send(ClusterNotice::LeaseLost);
    }
}

/// One of this node's emitters, as the store's thread sees it.
pub(crate) struct Member {
    pub worker: NoticeSink<ClusterNotice>,
    /// Which worker registered (a restarted one registers again).
    pub token: u64,
    /// Digest of this node's configuration, to warn about drift.
    pub fingerprint: String,
    /// The lease epoch this node holds, if it holds the lease.
    pub epoch: Option<i64>,
    /// Asked to give the lease back (to spread leases across nodes).
    pub releasing: bool,
    pub deadline: Arc<Deadline>,
}

/// Until when a node may send for an emitter, by its own monotonic clock:
/// the moment its last renewal was sent plus the expiry, less a margin.
#[derive(Debug, Default)]
pub(crate) struct Deadline(AtomicU64);

impl Deadline {
    fn base() -> Instant {
        static BASE: OnceLock<Instant> = OnceLock::new();
        *BASE.get_or_init(Instant::now)
    }

    fn millis(at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(Self::base()).as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn set(&self, until: Instant) {
        // `max(1)`: 0 means none.
        self.0.store(Self::millis(until).max(1), Ordering::SeqCst);
    }

    pub(crate) fn clear(&self) {
        self.0.store(0, Ordering::SeqCst);
    }

    /// Whether the lease is valid now.
    pub(crate) fn valid(&self) -> bool {
        Self::millis(Instant::now()) < self.0.load(Ordering::SeqCst)
    }
}

impl PgStore {
    /// Connects with default settings; see [`PgOptions::connect`].
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        PgOptions::default().connect(url).await
    }

    /// Settings for [`PgOptions::connect`].
    pub fn options() -> PgOptions {
        PgOptions::default()
    }

    pub(crate) fn new(
        ops: mpsc::UnboundedSender<ClusterOp>,
        feed: Option<mpsc::Sender<feed::FeedItem>>,
        thread: std::thread::JoinHandle<()>,
        shared: Arc<NodeState>,
    ) -> Self {
        PgStore {
            inner: Arc::new(Inner {
                feed,
                thread: StoreThread::new(
                    ops,
                    thread,
                    format!("PostgreSQL, node {}", shared.node()),
                ),
                shared,
            }),
        }
    }

    /// This node's name in the lease table.
    pub fn node_name(&self) -> String {
        self.inner.shared.node()
    }

    /// Renames this node (the builder's `node_name`); only before any
    /// emitter is attached on this store, and only to 1 to 200 bytes.
    pub(crate) fn rename(&self, name: &str) {
        let shared = &self.inner.shared;
        if name.is_empty() || name.len() > 200 {
            tracing::error!(name, "node name ignored: it must have 1 to 200 bytes");
        } else if !shared.members().is_empty() {
            tracing::error!(
                name,
                "node name ignored: emitters are already attached on this store"
            );
        } else {
            *shared.node.lock().unwrap_or_else(PoisonError::into_inner) = name.to_owned();
        }
    }

    /// How long a lease lasts without renewal (and a node counts as live
    /// after its last heartbeat).
    pub(crate) fn lease_expiry(&self) -> Duration {
        self.inner.shared.options.lease_expiry
    }

    /// Transactions committed since connecting.
    pub fn commits(&self) -> u64 {
        self.inner.shared.commits.load(Ordering::Relaxed)
    }

    /// The emitter ids whose lease this node holds, sorted.
    pub fn held_leases(&self) -> Vec<String> {
        let mut held: Vec<String> = self
            .inner
            .shared
            .members()
            .iter()
            .filter(|(_, m)| m.epoch.is_some())
            .map(|(id, _)| id.to_string())
            .collect();
        held.sort();
        held
    }

    /// The last write failure, while writes are failing.
    pub(crate) fn failure(&self) -> Option<StoreError> {
        self.inner.shared.failure()
    }

    /// Hands an operation to the store's thread; never waits.
    pub(crate) fn send(&self, op: ClusterOp) -> Result<(), StoreError> {
        self.inner.thread.send(op)
    }

    /// Whether publications go through the shared live feed.
    pub(crate) fn shares_live_updates(&self) -> bool {
        self.inner.feed.is_some()
    }

    /// Hands a publication to the shared live feed; never waits. Dropped
    /// (with a log line) when the feed falls far behind.
    pub(crate) fn publish(&self, item: feed::FeedItem) {
        let Some(feed) = &self.inner.feed else {
            return;
        };
        if let Err(error) = feed.try_send(item) {
            tracing::debug!(%error, "live feed: publication dropped");
        }
    }

    /// Hands every row of the shared live feed, from a little before its
    /// end, to `sink`, in id order (if the feed is on).
    pub(crate) fn follow_live_feed(&self, sink: NoticeSink<feed::FeedRecord>) {
        let shared = &self.inner.shared;
        *shared
            .feed_sink
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(sink);
        shared.feed_wake.notify_one();
    }

    /// Waits until every operation sent before is committed.
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(ClusterOp::Flush { reply })?;
        answer.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Closes the store for every handle, as dropping the last one does, and
    /// waits until it is done: what was sent before is committed, this
    /// node's leases are given back (another node takes its emitters at
    /// once, not after the lease expiry) and it leaves the live nodes (a
    /// process started again with the same name is not refused). Call it
    /// after [`WebhooksEmitter::shutdown`](crate::WebhooksEmitter::shutdown),
    /// before the process exits: other handles (the emitter's actors, say)
    /// may outlive `main`, and a process that exits without it leaves its
    /// name taken until the lease expiry. Later operations fail with
    /// [`StoreError::Closed`]. Closing twice is harmless.
    pub async fn close(&self) {
        let (reply, answer) = oneshot::channel();
        if self.send(ClusterOp::Close { reply }).is_ok() {
            let _ = answer.await;
        }
    }
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("node", &self.node_name())
            .field("options", &self.inner.shared.options)
            .field("failing", &self.failure())
            .finish()
    }
}

impl ClusterOp {
    /// The payload bytes the operation writes.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            ClusterOp::Append { event, .. } => event.payload().len(),
            ClusterOp::DeadLetter { letter, .. } => letter.event.payload().len(),
            _ => 0,
        }
    }
}

impl Inbox<ClusterOp> for mpsc::UnboundedSender<ClusterOp> {
    fn put(&self, op: ClusterOp) -> Result<(), StoreError> {
        self.send(op).map_err(|_| StoreError::Closed)
    }
}

/// What an emitter's stored state is, when it registers or takes the lease.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub paused: bool,
    pub dead_letters: Vec<DeadLetter>,
    pub next_dead_letter: u64,
    /// The newest sequence number given (0 if none).
    pub last_seq: u64,
    /// Deliveries, failed attempts and dead letters so far, cluster-wide.
    pub counters: StoredCounters,
}

/// What the store tells an emitter's worker.
pub(crate) enum ClusterNotice {
    /// The worker is registered; the cluster's state of the emitter.
    Registered(State),
    /// This node now holds the lease at `epoch`.
    Granted { epoch: i64, state: State },
    /// The lease is gone (taken over, or a write was fenced off).
    LeaseLost,
    /// Give the lease back once nothing is in flight.
    Release,
    /// The lease is valid again after renewals had lapsed (an outage).
    Renewed,
    /// This many appends are committed; the emitter's events go up to
    /// `last_seq`.
    Committed { count: usize, last_seq: u64 },
    /// These appends were not stored (their callers were told).
    NotStored {
        events: Vec<Arc<Event>>,
        error: StoreError,
    },
    /// Events exist up to this sequence number; the paused state, when
    /// known (the poll backstop).
    Newest { last_seq: u64, paused: Option<bool> },
    /// Events read back for the holder at `epoch`, in order; `complete` if
    /// nothing more was stored up to `through` when they were read.
    Loaded {
        epoch: i64,
        events: Vec<StoredEvent>,
        through: u64,
        complete: bool,
    },
    /// The cluster's dead letters of the emitter, oldest first.
    DeadLetters {
        letters: Vec<DeadLetter>,
        next_id: u64,
    },
    /// Paused or resumed, on some node.
    Paused(bool),
}

/// The lease check a holder's write carries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fence {
    pub epoch: i64,
    pub seq: u64,
}

/// One operation for the store's thread. Those of one emitter are applied in
/// the order they were sent.
pub(crate) enum ClusterOp {
    /// A worker for `emitter` started on this node.
    /// `member` is `None` when only its state is to be read again.
    Register {
        emitter: Arc<str>,
        member: Option<Member>,
    },
    /// The worker `token` stopped (detach, shutdown): give the lease back.
    Unregister {
        emitter: Arc<str>,
        token: u64,
    },
    Append {
        emitter: Arc<str>,
        event: Arc<Event>,
        durable: Option<DurableAck>,
    },
    Attempted {
        emitter: Arc<str>,
        fence: Fence,
        attempts: u32,
        /// Not to be sent again before this (its backoff).
        retry_at: std::time::SystemTime,
    },
    Ack {
        emitter: Arc<str>,
        fence: Fence,
    },
    /// Store a dead letter (the database numbers it), removing its event if
    /// it had one; keep the newest `capacity`.
    DeadLetter {
        emitter: Arc<str>,
        fence: Option<Fence>,
        letter: DeadLetter,
        capacity: usize,
        durable: Option<DurableAck>,
    },
    /// Dead letters back to the queue, those still there.
    Redeliver {
        emitter: Arc<str>,
        ids: Vec<u64>,
    },
    SetPaused {
        emitter: Arc<str>,
        paused: bool,
    },
    /// Give the lease back.
    Release {
        emitter: Arc<str>,
        epoch: i64,
    },
    /// Read the holder's next events after `after`, up to `through`.
    Load {
        emitter: Arc<str>,
        epoch: i64,
        after: u64,
        through: u64,
        limit: usize,
    },
    /// Read the dead letters again (another node changed them).
    ReadDeadLetters {
        emitter: Arc<str>,
    },
    /// Answer once everything sent before is committed.
    Flush {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// An application record call: done on its own, beside the batches.
    Records(app_records::RecordsOp),
    /// Application records written in the next batch's transaction, with
    /// the queues ([`PgStore::group_records`]); answered once committed.
    GroupRecords {
        changes: Vec<crate::store::app_records::RecordChange>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Stop: commit what was sent before, give the leases back and leave
    /// the live nodes; answered once that is done ([`PgStore::close`]).
    Close {
        reply: oneshot::Sender<()>,
    },
}
