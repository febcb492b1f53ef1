//! The PostgreSQL store through a database restart, alone in its test
//! binary: it measures the process's CPU time during the outage, which tests
//! running beside it would add to.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::postgres::Postgres;
use support::{fast_config, until, Receiver, DEADLINE};
use webhooks_emitter::StoreError;

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
    let (store, emitter) = db.node("solo").await;
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
