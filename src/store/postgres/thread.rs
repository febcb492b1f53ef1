//! The store's own thread, with its own tokio runtime: the pool's connections
//! live there whatever runtime (or none) the caller and the emitter use.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};

use super::errors::{from_migrate, from_sqlx};
use super::{feed, leases, listen, writer, NodeState, PgOptions, PgStore};
use crate::error::StoreError;

/// How long connecting may take before it fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a batch waits for a connection (the database is gone) before it
/// fails and its durable callers hear it.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Starts the thread; answers once connected and migrated.
pub(super) async fn start(
    url: &str,
    node: String,
    options: PgOptions,
) -> Result<PgStore, StoreError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(StoreError::InvalidDatabaseUrl {
            detail: "it must start with postgres:// or postgresql://".into(),
        });
    }
    let connect: PgConnectOptions = url.parse().map_err(|e| from_sqlx(&e))?;
    // A node frozen inside a transaction (SIGSTOP, a paused VM) must not
    // hold its row locks past its lease: the others would wait on them to
    // deliver what it held. The database ends such a transaction (it is
    // retried if the node comes back; its writes are fenced by then).
    let idle_limit = format!("{}ms", options.lease_expiry.as_millis());
    let connect = connect.options([("idle_in_transaction_session_timeout", idle_limit.as_str())]);
    let shared = Arc::new(NodeState {
        node: Mutex::new(node),
        options,
        members: Mutex::new(HashMap::new()),
        failure: Mutex::new(None),
        commits: AtomicU64::new(0),
        feed_sink: Mutex::new(None),
        feed_wake: tokio::sync::Notify::new(),
        announcements: Default::default(),
    });
    let (feed, feed_items) = if shared.options.shared_live_updates {
        let (sender, receiver) = mpsc::channel(feed::MAX_WAITING);
        (Some(sender), Some(receiver))
    } else {
        (None, None)
    };
    let (ops, receiver) = mpsc::unbounded_channel();
    // The listener asks for reads through the channel without keeping it
    // open: the last handle's drop still closes it.
    let weak = ops.downgrade();
    let (ready, answer) = oneshot::channel();
    let thread_shared = shared.clone();
    let thread = std::thread::Builder::new()
        .name("webhooks-emitter-postgres".into())
        .spawn(move || run(connect, thread_shared, receiver, weak, feed_items, ready))
        .map_err(|e| StoreError::Io {
            detail: format!("cannot start the store's thread: {e}"),
        })?;
    match answer.await {
        Ok(Ok(())) => Ok(PgStore::new(ops, feed, thread, shared)),
        Ok(Err(error)) => {
            let _ = thread.join();
            Err(error)
        }
        Err(_) => {
            let _ = thread.join();
            Err(StoreError::Closed)
        }
    }
}

fn run(
    connect: PgConnectOptions,
    shared: Arc<NodeState>,
    ops: mpsc::UnboundedReceiver<super::ClusterOp>,
    weak: mpsc::WeakUnboundedSender<super::ClusterOp>,
    feed_items: Option<mpsc::Receiver<feed::FeedItem>>,
    ready: oneshot::Sender<Result<(), StoreError>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(StoreError::Io {
                detail: format!("cannot start the store's runtime: {e}"),
            }));
            return;
        }
    };
    runtime.block_on(async move {
        let pool = match open(connect, &shared).await {
            Ok(pool) => pool,
            Err(error) => {
                let _ = ready.send(Err(error));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        tracing::info!(node = %shared.node(), "PostgreSQL store connected");
        let (stop_leases, leases_stopped) = oneshot::channel();
        let keeper = tokio::spawn(leases::keep(pool.clone(), shared.clone(), leases_stopped));
        let listener = tokio::spawn(listen::listen(pool.clone(), shared.clone(), weak));
        let feed = feed_items.map(|items| {
            let writer = tokio::spawn(feed::write(pool.clone(), items));
            let tail = tokio::spawn(feed::tail(pool.clone(), shared.clone()));
            (writer, tail)
        });
        // The writer runs until every handle is gone and its work is done.
        let close = writer::run(pool.clone(), shared.clone(), ops).await;
        listener.abort();
        if let Some((writer, tail)) = feed {
            if close.is_some() {
                // Closed while handles live on: the feed's channel stays
                // open, so its writer would wait for more. Live updates are
                // best effort; what it has not appended is dropped.
                writer.abort();
            } else {
                // The handles are gone: the feed's writer appends what it has.
                let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
            }
            tail.abort();
        }
        let _ = stop_leases.send(());
        let _ = keeper.await;
        pool.close().await;
        if let Some(close) = close {
            let _ = close.send(());
        }
    });
}

/// Connects, brings the schema up to date and takes the node's name.
async fn open(connect: PgConnectOptions, shared: &NodeState) -> Result<PgPool, StoreError> {
    let options = &shared.options;
    // One connection first: a refused port or a wrong password is said at
    // once, with its cause (a pool would retry until its timeout).
    let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&connect))
        .await
        .map_err(|_| StoreError::Unavailable {
            detail: format!("no connection within {CONNECT_TIMEOUT:?}"),
        })?
        .map_err(|e| from_sqlx(&e))?;
    let _ = probe.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(connect)
        .await
        .map_err(|e| from_sqlx(&e))?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .map_err(|e| from_migrate(&e))?;
    claim_name(&pool, shared).await?;
    Ok(pool)
}

/// Takes this node's name in the table of live nodes, unless a live node
/// has it: one seen within the lease expiry (a process that stopped cleanly
/// removed its row; one that was killed is taken over once it is stale).
async fn claim_name(pool: &PgPool, shared: &NodeState) -> Result<(), StoreError> {
    let name = shared.node();
    let taken = sqlx::query(
        "INSERT INTO webhooks_emitter_nodes (name, seen_at) VALUES ($1, now()) \
         ON CONFLICT (name) DO UPDATE SET seen_at = now() \
         WHERE webhooks_emitter_nodes.seen_at < now() - $2 RETURNING name",
    )
    .bind(&name)
    .bind(leases::interval(shared.options.lease_expiry))
    .fetch_optional(pool)
    .await
    .map_err(|e| from_sqlx(&e))?;
    match taken {
        Some(_) => Ok(()),
        None => Err(StoreError::NodeNameInUse { name }),
    }
}
