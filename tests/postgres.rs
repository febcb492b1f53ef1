//! The PostgreSQL store in one process: connection errors, delivery in order
//! through the database, dead letters and pause shared by two nodes, and the
//! lease moving when its holder shuts down. Each test starts a throwaway
//! PostgreSQL (see `support::postgres`).
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::postgres::{Postgres, PASSWORD};
use support::{fast_config, Receiver, DEADLINE};
use webhooks_emitter::{PgStore, StoreError, WebhooksEmitter};

/// A node: a store with a short lease, and an emitter on its own thread.
async fn node(db: &Postgres, name: &str) -> (PgStore, WebhooksEmitter) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let store = PgStore::options()
        .lease_expiry(Duration::from_secs(2))
        .node_name(name)
        .connect(db.url())
        .await
        .unwrap();
    let emitter = WebhooksEmitter::builder()
        .store(store.clone())
        .start_in_background();
    (store, emitter)
}

/// Waits until `check` holds, polling the state it reads (not a timing).
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    eventually(what, || std::future::ready(check())).await;
}

async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn connection_errors_are_typed_and_never_show_the_password() {
    let db = Postgres::start();
    let wrong = db.url_with_password("not-the-password-77");
    if db.is_local() {
        let error = PgStore::connect(&wrong).await.unwrap_err();
        assert!(
            matches!(error, StoreError::Authentication { .. }),
            "{error:?}"
        );
        let text = format!("{error} {error:?}");
        assert!(
            !text.contains("not-the-password-77") && !text.contains(PASSWORD),
            "{text}"
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = format!("postgres://u:hunter2-secret@127.0.0.1:{port}/db");
    let error = PgStore::connect(&refused).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    assert!(!format!("{error} {error:?}").contains("hunter2-secret"));
    for bad in [
        "not a url",
        "mysql://u:hunter2-secret@127.0.0.1/db",
        "postgres://u:hunter2-secret@127.0.0.1:99999999/db",
    ] {
        let error = PgStore::connect(bad).await.unwrap_err();
        assert!(
            matches!(error, StoreError::InvalidDatabaseUrl { .. }),
            "{bad}: {error:?}"
        );
        assert!(
            !format!("{error} {error:?}").contains("hunter2-secret"),
            "{error}"
        );
    }
    let error = PgStore::options()
        .node_name("")
        .connect(db.url())
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::InvalidSetting { .. }),
        "{error:?}"
    );
    // Connecting twice migrates once (the second finds the schema).
    let (first, second) = tokio::join!(PgStore::connect(db.url()), PgStore::connect(db.url()));
    first.unwrap();
    second.unwrap();
}

#[tokio::test]
async fn one_node_delivers_in_order_with_dead_letters_and_redelivery() {
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    let (store, emitter) = node(&db, "solo").await;
    let config = fast_config(receiver.url("/a")).max_retries(2);
    emitter.attach("a", "tick", config).await.unwrap();
    until("the lease", || store.held_leases() == ["a"]).await;
    // The 3rd event fails twice (one retry): a dead letter; the rest go on.
    receiver.script_statuses([200, 200, 500, 500]);
    for n in 0..200 {
        emitter
            .emit_durable("tick", &json!({ "n": n }), None)
            .await
            .unwrap();
    }
    let mut firsts = Vec::new();
    for got in receiver.take(201).await {
        if firsts.last() != Some(&got.n()) {
            firsts.push(got.n());
        }
    }
    let expected: Vec<i64> = (0..200).filter(|n| *n != 2).collect();
    let delivered: Vec<i64> = firsts.iter().copied().filter(|n| *n != 2).collect();
    assert_eq!(delivered, expected, "first deliveries in emit order");
    let letters = emitter.dead_letters("a").await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(
        letters[0]
            .event
            .payload_json::<serde_json::Value>()
            .unwrap()["n"],
        2
    );
    emitter.redeliver("a", letters[0].id).await.unwrap();
    assert_eq!(receiver.next().await.n(), 2);
    eventually("no dead letters", || async {
        emitter.dead_letters("a").await.unwrap().is_empty()
    })
    .await;
    assert!(emitter.flush(DEADLINE).await);
    let stats = emitter.stats("a").await.unwrap();
    assert_eq!(stats.delivered, 200);
    let _ = emitter.shutdown(DEADLINE).await;
    assert!(
        store.held_leases().is_empty(),
        "shutdown gives the lease back"
    );
}

#[tokio::test]
async fn pause_dead_letters_and_redelivery_are_shared_by_the_nodes() {
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    let (store_a, a) = node(&db, "node-a").await;
    let config = fast_config(receiver.url("/x")).max_retries(2);
    a.attach("x", "tick", config.clone()).await.unwrap();
    until("node-a's lease", || store_a.held_leases() == ["x"]).await;
    let (store_b, b) = node(&db, "node-b").await;
    b.attach("x", "tick", config).await.unwrap();
    // Paused from the node that does not deliver: the holder stops.
    b.pause("x").await.unwrap();
    eventually("node-a paused", || async {
        a.stats("x").await.unwrap().paused
    })
    .await;
    for n in 0..5 {
        b.emit_durable("tick", &json!({ "n": n }), None)
            .await
            .unwrap();
    }
    assert!(
        receiver.try_next().is_none(),
        "a paused emitter sends nothing"
    );
    b.restart("x").await.unwrap();
    assert_eq!(receiver.numbers(5).await, [0, 1, 2, 3, 4]);
    // Answered and acknowledged before the receiver's script changes.
    assert!(a.flush(DEADLINE).await);
    // A dead letter made by the holder is listed, and redelivered, by the other.
    receiver.script_statuses([500, 500]);
    b.emit_durable("tick", &json!({ "n": 5 }), None)
        .await
        .unwrap();
    assert_eq!(receiver.numbers(2).await, [5, 5]);
    eventually("a dead letter on node-b", || async {
        !b.dead_letters("x").await.unwrap().is_empty()
    })
    .await;
    let letters = b.dead_letters("x").await.unwrap();
    b.redeliver("x", letters[0].id).await.unwrap();
    assert_eq!(receiver.next().await.n(), 5);
    // The holder shuts down: node-b takes over at once (the lease is given
    // back) and delivers what is emitted next, in order.
    let _ = a.shutdown(DEADLINE).await;
    until("node-b's lease", || store_b.held_leases() == ["x"]).await;
    for n in 6..10 {
        b.emit_durable("tick", &json!({ "n": n }), None)
            .await
            .unwrap();
    }
    assert_eq!(receiver.numbers(4).await, [6, 7, 8, 9]);
    drop(store_a);
}

/// CPU time this process has used (user + system), from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses).
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

#[tokio::test]
async fn a_database_restart_loses_nothing_and_never_spins() {
    let db = Postgres::start();
    if !db.is_local() {
        eprintln!("skipped: restarting needs the throwaway cluster, not WEBHOOKS_EMITTER_TEST_DATABASE_URL");
        return;
    }
    let mut receiver = Receiver::start();
    let (store, emitter) = node(&db, "solo").await;
    let config = fast_config(receiver.url("/r")).max_retries(u32::MAX);
    emitter.attach("r", "tick", config).await.unwrap();
    until("the lease", || store.held_leases() == ["r"]).await;
    let mut acked = Vec::new();
    for n in 0..100 {
        emitter
            .emit_durable("tick", &json!({ "n": n }), None)
            .await
            .unwrap();
        acked.push(n);
    }
    db.stop();
    // While it is down: emits are refused with a store error, and the
    // process does not spin (writer, lease keeper and listener back off).
    let (cpu_before, started) = (cpu_time(), std::time::Instant::now());
    let mut refused = 0;
    for n in 100..150 {
        match emitter.emit_durable("tick", &json!({ "n": n }), None).await {
            Ok(_) => acked.push(n),
            Err(webhooks_emitter::EmitError::Store(error)) => {
                assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
                refused += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(40)).await; // pacing the caller
    }
    let (cpu, wall) = (cpu_time() - cpu_before, started.elapsed());
    println!("outage of {wall:?}: {refused} emits refused, {cpu:?} of CPU used");
    assert!(
        refused > 0,
        "no emit was refused while the database was down"
    );
    assert!(
        cpu < wall / 4,
        "{cpu:?} of CPU in {wall:?} of outage: a busy loop"
    );
    db.start_again();
    // It recovers by itself: emits are accepted again, and everything
    // acknowledged is delivered, first deliveries in order.
    let mut n = 150;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while n < 250 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "emits still refused after the restart"
        );
        match emitter.emit_durable("tick", &json!({ "n": n }), None).await {
            Ok(_) => {
                acked.push(n);
                n += 1;
            }
            Err(webhooks_emitter::EmitError::Store(_)) => {
                tokio::time::sleep(Duration::from_millis(50)).await; // until it reconnects
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let mut firsts: Vec<i64> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < acked.len() {
        let got = receiver.next().await.n();
        if seen.insert(got) {
            firsts.push(got);
        }
    }
    let mut sorted = firsts.clone();
    sorted.sort_unstable();
    assert_eq!(firsts, sorted, "first deliveries out of order");
    for n in &acked {
        assert!(seen.contains(n), "acknowledged event {n} not delivered");
    }
}
