//! The PostgreSQL store (feature `postgres`) on a throwaway local cluster:
//! deliveries per second with one node and with two nodes sharing the
//! emitters, side by side with the journal and memory in the same run, and
//! the takeover time after a node holding leases is killed with SIGKILL.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use webhooks_emitter::{PgStore, WebhooksEmitter};

use crate::delivery::{config, payload, run};
use crate::durable::{open, Scratch};
use crate::measure::{millis, per_second, thousands, Row};
use crate::WAIT_LIMIT;

#[path = "../../tests/support/postgres.rs"]
pub mod cluster;

const EVENT: &str = "bench.pg";

pub async fn node(url: &str, name: &str, expiry: Duration) -> (PgStore, WebhooksEmitter) {
    let store = PgStore::options()
        .node_name(name)
        .lease_expiry(expiry)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL: {e}"));
    let emitter = WebhooksEmitter::builder()
        .store(store.clone())
        .start_in_background();
    (store, emitter)
}

async fn attach(emitter: &WebhooksEmitter, target: &str, emitters: usize, events: usize) {
    for e in 0..emitters {
        let _ = emitter
            .attach(format!("e{e}"), EVENT, config(target, events))
            .await;
    }
}

/// Waits until the nodes hold `emitters` leases between them, each at least
/// `each`.
async fn leases_taken(stores: &[&PgStore], emitters: usize, each: usize) {
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        let held: Vec<usize> = stores.iter().map(|s| s.held_leases().len()).collect();
        if held.iter().sum::<usize>() == emitters && held.iter().all(|h| *h >= each) {
            return;
        }
        assert!(Instant::now() < deadline, "leases not taken: {held:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// 9a, 9b. Deliveries per second on PostgreSQL with one and two nodes, and
/// on the journal and in memory, `emitters` emitters × `events` events each.
pub async fn throughput(target: &str, emitters: usize, events: usize) -> Vec<Row> {
    let db = cluster::Postgres::start();
    let total = emitters * events;
    // One node.
    let (store, emitter) = node(db.url(), "bench-1", Duration::from_secs(10)).await;
    attach(&emitter, target, emitters, events).await;
    leases_taken(&[&store], emitters, emitters).await;
    let commits = store.commits();
    let one = run(emitter, EVENT, events, total).await;
    println!(
        "    postgres, 1 node: {one:.0} del/s, {} transactions",
        store.commits() - commits
    );
    drop(store);
    // Two nodes, each emitting half and delivering half the emitters.
    let (store_a, a) = node(db.url(), "bench-a", Duration::from_secs(10)).await;
    let (store_b, b) = node(db.url(), "bench-b", Duration::from_secs(10)).await;
    attach(&a, target, emitters, events).await;
    attach(&b, target, emitters, events).await;
    leases_taken(&[&store_a, &store_b], emitters, emitters / 2).await;
    let started = Instant::now();
    for i in 0..events {
        let from = if i % 2 == 0 { &a } else { &b };
        let _ = from.emit(EVENT, &payload(i), None);
    }
    let delivered = loop {
        let stats = [a.stats_all().await, b.stats_all().await];
        let delivered: u64 = stats.iter().flatten().map(|s| s.delivered).sum();
        if delivered >= total as u64 || started.elapsed() > WAIT_LIMIT {
            break delivered;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let two = per_second(delivered as usize, started.elapsed());
    println!("    postgres, 2 nodes: {two:.0} del/s ({delivered} of {total})");
    let _ = a.shutdown(Duration::from_secs(5)).await;
    let _ = b.shutdown(Duration::from_secs(5)).await;
    // The journal and memory, same work.
    let scratch = Scratch::new("pg-compare");
    let journal = WebhooksEmitter::builder()
        .store(open(&scratch.journal()))
        .start_in_background();
    attach(&journal, target, emitters, events).await;
    let on_journal = run(journal, EVENT, events, total).await;
    let memory = WebhooksEmitter::builder().start_in_background();
    attach(&memory, target, emitters, events).await;
    let in_memory = run(memory, EVENT, events, total).await;
    println!("    journal {on_journal:.0} del/s, memory {in_memory:.0} del/s");
    let target_row = "≥ 10,000 del/s";
    vec![
        Row::absolute(
            &format!("9a. PostgreSQL, 1 node, {emitters} emitters × {events} events"),
            format!("{} del/s", thousands(one)),
            format!(
                "journal {} · memory {} del/s",
                thousands(on_journal),
                thousands(in_memory)
            ),
            target_row,
            Some(one >= 10_000.0),
        ),
        Row::absolute(
            &format!("9b. PostgreSQL, 2 nodes, {emitters} emitters × {events} events"),
            format!("{} del/s", thousands(two)),
            format!("1 node {} del/s", thousands(one)),
            target_row,
            Some(two >= 10_000.0),
        ),
    ]
}

/// The child of 9c: a node that attaches `emitters` emitters, says `READY`
/// once it holds all their leases, and delivers until killed.
pub fn run_node_child() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (url, target, emitters) = (&args[2], &args[3], args[4].parse().unwrap_or(8));
    actix_web::rt::System::new().block_on(async move {
        let (store, emitter) = node(url, "bench-victim", TAKEOVER_EXPIRY).await;
        attach(&emitter, target, emitters, 1_000_000).await;
        leases_taken(&[&store], emitters, emitters).await;
        println!("READY");
        std::future::pending::<()>().await;
    });
    Ok(())
}

const TAKEOVER_EXPIRY: Duration = Duration::from_secs(10);

/// 9c. A node holding every lease is killed with SIGKILL while events are
/// queued: the time until the other node delivers, against the expiry.
pub async fn takeover(target: &str) -> std::io::Result<Vec<Row>> {
    const EMITTERS: usize = 8;
    let db = cluster::Postgres::start();
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--pg-node", db.url(), target, &EMITTERS.to_string()])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("the node child has no stdout"))?;
    let ready = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line == "READY")
    });
    assert!(
        ready.await.unwrap_or(false),
        "the node child never held its leases"
    );
    let (store, survivor) = node(db.url(), "bench-survivor", TAKEOVER_EXPIRY).await;
    attach(&survivor, target, EMITTERS, 1_000_000).await;
    // A steady stream, delivered by the child until it dies.
    let streaming = survivor.clone();
    let stream = tokio::spawn(async move {
        for i in 0.. {
            let _ = streaming.emit(EVENT, &payload(i), None);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = child.kill();
    let killed = Instant::now();
    let _ = child.wait();
    let took = loop {
        let delivered: u64 = survivor.stats_all().await.iter().map(|s| s.delivered).sum();
        if delivered > 0 {
            break killed.elapsed();
        }
        assert!(killed.elapsed() < WAIT_LIMIT, "no takeover");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    stream.abort();
    println!(
        "    takeover after SIGKILL: {} (expiry {}); survivor holds {} leases",
        millis(took),
        millis(TAKEOVER_EXPIRY),
        store.held_leases().len()
    );
    let _ = survivor.shutdown(Duration::from_secs(5)).await;
    let limit = TAKEOVER_EXPIRY + Duration::from_secs(1);
    Ok(vec![Row::absolute(
        &format!("9c. PostgreSQL takeover after SIGKILL of the holder ({EMITTERS} emitters)"),
        millis(took),
        format!("lease expiry {}", millis(TAKEOVER_EXPIRY)),
        "≤ expiry + 1 s",
        Some(took <= limit),
    )])
}
