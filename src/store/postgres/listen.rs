//! Wake-ups between nodes: each commit that queues events, changes dead
//! letters or pauses an emitter sends one notification; every node (this one
//! too) listens and tells its workers (and the live feed's reader, on its
//! own channel). A missed notification (the listening
//! connection dropped) is made up by the lease keeper's poll.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::mpsc::WeakUnboundedSender;

use super::announce::ANNOUNCE_CHANNEL;
use super::feed::FEED_CHANNEL;
use super::transaction::CHANNEL;
use super::{ClusterNotice, ClusterOp, NodeState};

/// The longest wait before listening again after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A notification's payload (see the writer's `Wake`).
#[derive(Debug, Default, Deserialize)]
struct Wake {
    #[serde(default)]
    e: Vec<(String, u64)>,
    #[serde(default)]
    d: Vec<String>,
    #[serde(default)]
    p: Vec<(String, bool)>,
}

/// Listens until aborted, reconnecting with backoff.
pub(super) async fn listen(
    pool: PgPool,
    shared: Arc<NodeState>,
    ops: WeakUnboundedSender<ClusterOp>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match session(&pool, &shared, &ops).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "PostgreSQL store: not listening for other nodes' wake-ups; polling meanwhile");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn session(
    pool: &PgPool,
    shared: &NodeState,
    ops: &WeakUnboundedSender<ClusterOp>,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([CHANNEL, FEED_CHANNEL, ANNOUNCE_CHANNEL])
        .await?;
    loop {
        // `None`: the connection dropped; sqlx listens again on the next call.
        if let Some(notification) = listener.try_recv().await? {
            match notification.channel() {
                FEED_CHANNEL => shared.feed_wake.notify_one(),
                ANNOUNCE_CHANNEL => shared.announcements.dispatch(notification.payload()),
                _ => dispatch(shared, ops, notification.payload()),
            }
        }
        if ops.upgrade().is_none() {
            return Ok(());
        }
    }
}

/// A payload as a wake-up; `None` for `{"all":true}` (too many to name) or
/// anything another program sent on the channel: the poll catches up.
fn parse(payload: &str) -> Option<Wake> {
    serde_json::from_str(payload).ok()
}

/// Tells this node's workers what another (or this) node committed.
fn dispatch(shared: &NodeState, ops: &WeakUnboundedSender<ClusterOp>, payload: &str) {
    let Some(wake) = parse(payload) else {
        return;
    };
    for (emitter, last_seq) in wake.e {
        shared.tell(
            &emitter,
            ClusterNotice::Newest {
                last_seq,
                paused: None,
            },
        );
    }
    for (emitter, paused) in wake.p {
        shared.tell(&emitter, ClusterNotice::Paused(paused));
    }
    let Some(ops) = ops.upgrade() else {
        return;
    };
    for emitter in wake.d {
        let member = shared
            .members()
            .get_key_value(emitter.as_str())
            .map(|(k, _)| k.clone());
        if let Some(emitter) = member {
            let _ = ops.send(ClusterOp::ReadDeadLetters { emitter });
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reads_what_the_writer_sends() {
        let Some(wake) = parse(r#"{"e":[["a",7]],"d":["b"],"p":[["c",true]]}"#) else {
            panic!("the writer's payload is not read");
        };
        assert_eq!(wake.e, [("a".to_owned(), 7)]);
        assert_eq!(wake.d, ["b"]);
        assert_eq!(wake.p, [("c".to_owned(), true)]);
        assert!(parse(r#"{"e":[["a",-1]]}"#).is_none(), "negative sequence");
        assert!(
            parse(r#"{"e":[["a",18446744073709551616]]}"#).is_none(),
            "beyond u64"
        );
    }

    proptest! {
        /// Anything on the channel (another program may use its name) is
        /// read without a panic.
        #[test]
        fn any_payload_is_read_without_panic(payload in ".{0,200}") {
            let _ = parse(&payload);
        }

        #[test]
        fn any_json_shape_is_read_without_panic(
            e in proptest::collection::vec((".{0,20}", any::<u64>()), 0..5),
            d in proptest::collection::vec(".{0,20}", 0..5),
        ) {
            let payload = serde_json::json!({ "e": e, "d": d, "p": 3, "extra": null }).to_string();
            prop_assert!(parse(&payload).is_none(), "a wrong type in `p` is refused");
            let payload = serde_json::json!({ "e": e, "d": d }).to_string();
            prop_assert_eq!(parse(&payload).map(|wake| wake.e), Some(e));
        }
    }
}
