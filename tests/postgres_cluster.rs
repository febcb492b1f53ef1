//! Several nodes on one PostgreSQL, as separate processes (this test binary,
//! run again as a node). Proven by killing and stopping real processes:
//!
//! - three nodes, sixteen emitters, 10,000 events emitted across the nodes;
//!   the node holding the most leases is killed with SIGKILL mid-run: every
//!   acknowledged event is delivered, per emitter and emitting node first
//!   deliveries keep emit order, and every duplicate was first sent by the
//!   killed node (in flight, or delivered and not yet acknowledged);
//! - a holder stopped with SIGSTOP past its lease sends nothing once resumed
//!   (fencing) and order holds.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;
use sqlx::Row;
use support::postgres::Postgres;
use support::{fast_config, Received, Receiver, Reply, DEADLINE};
use webhooks_emitter::{PgStore, WebhooksEmitter};

const EMITTERS: usize = 16;
const LEASE_EXPIRY: Duration = Duration::from_secs(2);

/// The node's side: runs only when the parent starts this binary with
/// `PG_NODE` set (otherwise it does nothing and passes). It attaches every
/// emitter, prints `READY`, emits its events (event `n` goes to emitter
/// `n % EMITTERS`), printing `ACK n` for each one stored, then `EMITTED`,
/// and keeps delivering until killed.
#[test]
fn node_process() {
    let Ok(name) = std::env::var("PG_NODE") else {
        return;
    };
    let url = std::env::var("DATABASE_URL").unwrap();
    let receiver = std::env::var("RECEIVER").unwrap();
    let first: u64 = std::env::var("FIRST").unwrap().parse().unwrap();
    let count: u64 = std::env::var("COUNT").unwrap().parse().unwrap();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = PgStore::options()
            .lease_expiry(LEASE_EXPIRY)
            .node_name(&name)
            .connect(&url)
            .await
            .unwrap();
        let emitter = WebhooksEmitter::builder()
            .store(store)
            .start_in_background();
        for id in 0..EMITTERS {
            let config = fast_config(format!("{receiver}/e{id}"))
                .max_retries(u32::MAX)
                .additional_header("x-node", name.as_str());
            emitter
                .attach(&format!("e{id}"), &format!("ev{id}"), config)
                .await
                .unwrap();
        }
        println!("READY");
        let numbers: Vec<u64> = (first..first + count).collect();
        for chunk in numbers.chunks(64) {
            // Polled in order, so routed (and committed) in order.
            let stored = join_all(chunk.iter().map(|n| {
                let event = format!("ev{}", n % EMITTERS as u64);
                let emitter = &emitter;
                async move {
                    (
                        n,
                        emitter.emit_durable(&event, &json!({ "n": n }), None).await,
                    )
                }
            }))
            .await;
            for (n, result) in stored {
                if result.is_ok() {
                    println!("ACK {n}");
                }
            }
        }
        println!("EMITTED");
        std::future::pending::<()>().await;
    });
}

/// A node process; its stdout lines arrive on `lines`.
struct Node {
    name: String,
    process: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Node {
    fn spawn(name: &str, db: &Postgres, receiver: &str, first: u64, count: u64) -> Node {
        let mut process = support::this_test_binary("node_process")
            .env("PG_NODE", name)
            .env("DATABASE_URL", db.url())
            .env("RECEIVER", receiver)
            .env("FIRST", first.to_string())
            .env("COUNT", count.to_string())
            .env(
                "RUST_LOG",
                std::env::var("NODE_LOG").unwrap_or_else(|_| "webhooks_emitter=warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, lines) = mpsc::channel();
        for output in [
            Box::new(process.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(process.stderr.take().unwrap()),
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(output).lines().map_while(Result::ok) {
                    if sender.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        Node {
            name: name.to_owned(),
            process,
            lines,
        }
    }

    /// Reads lines until `wanted`, collecting acknowledged numbers and log
    /// lines on the way.
    fn wait_for(&self, wanted: &str, seen: &mut Seen) {
        let deadline = Instant::now() + DEADLINE;
        while !seen
            .markers
            .contains(&(self.name.clone(), wanted.to_owned()))
        {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "node {} never printed {wanted} ({} acks); it said: {:?}",
                    self.name,
                    seen.acked.len(),
                    seen.log
                )
            });
            seen.read(&self.name, &line);
        }
    }

    /// Collects what was printed so far, without waiting.
    fn drain(&self, seen: &mut Seen) {
        while let Ok(line) = self.lines.try_recv() {
            seen.read(&self.name, &line);
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.process.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// What the nodes printed.
#[derive(Default)]
struct Seen {
    acked: BTreeSet<u64>,
    /// (node, `READY` or `EMITTED`)
    markers: BTreeSet<(String, String)>,
    log: Vec<String>,
}

impl Seen {
    fn read(&mut self, node: &str, line: &str) {
        // The test harness starts the first line with the test's name.
        let line = line.strip_prefix("test node_process ... ").unwrap_or(line);
        if let Some(n) = line.strip_prefix("ACK ") {
            self.acked.insert(n.parse().unwrap());
        } else if line == "READY" || line == "EMITTED" {
            self.markers.insert((node.to_owned(), line.to_owned()));
        } else {
            self.log.push(format!("{node}: {line}"));
        }
    }
}

/// Lease owners per emitter, read from the database.
async fn owners(db: &Postgres) -> BTreeMap<String, String> {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(db.url()).await.unwrap();
    sqlx::query(
        "SELECT emitter, owner FROM webhooks_emitter_leases \
         WHERE owner IS NOT NULL AND expires_at > now()",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap()
    .into_iter()
    .map(|row| (row.get(0), row.get(1)))
    .collect()
}

/// One delivery as the receiver saw it.
struct Delivery {
    emitter: String,
    n: u64,
    node: String,
    at: Instant,
    /// The request id (`x-webhooks-delivery`): the same on every copy.
    id: String,
}

fn delivery(received: &Received) -> Delivery {
    Delivery {
        emitter: received.path.trim_start_matches('/').to_owned(),
        n: u64::try_from(received.n()).unwrap(),
        node: received.header("x-node").unwrap().to_owned(),
        at: received.at,
        id: received.header("x-webhooks-delivery").unwrap().to_owned(),
    }
}

/// Receives until every acknowledged event has arrived.
async fn receive_all(receiver: &mut Receiver, acked: &BTreeSet<u64>, all: &mut Vec<Delivery>) {
    let mut missing: BTreeSet<u64> = acked.clone();
    for d in all.iter() {
        missing.remove(&d.n);
    }
    while !missing.is_empty() {
        let d = delivery(&receiver.next().await);
        missing.remove(&d.n);
        all.push(d);
    }
}

/// Per emitter and emitting node (which emitted in order), the first
/// deliveries are in emit order.
fn assert_ordered(all: &[Delivery], first_of_node: &dyn Fn(u64) -> usize) {
    let mut firsts: HashMap<u64, &Delivery> = HashMap::new();
    let mut sequences: BTreeMap<(String, usize), Vec<u64>> = BTreeMap::new();
    for d in all {
        if firsts.insert(d.n, d).is_none() {
            assert_eq!(
                d.emitter,
                format!("e{}", d.n % EMITTERS as u64),
                "wrong emitter for {}",
                d.n
            );
            sequences
                .entry((d.emitter.clone(), first_of_node(d.n)))
                .or_default()
                .push(d.n);
        }
    }
    for ((emitter, node), ns) in sequences {
        let mut sorted = ns.clone();
        sorted.sort_unstable();
        assert_eq!(ns, sorted, "{emitter}: node {node}'s events out of order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_lose_nothing_when_a_lease_holder_is_killed() {
    const EVENTS: u64 = 10_000;
    const PER_NODE: u64 = 3_334;
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    // Slow enough that deliveries are still going on at the kill.
    receiver.script((0..3 * EVENTS).map(|_| Reply::Delay(Duration::from_millis(1))));
    let base = receiver.url("");
    let nodes: Vec<Node> = (0..3)
        .map(|i| {
            let first = i * PER_NODE;
            let count = PER_NODE.min(EVENTS - first);
            Node::spawn(&format!("node-{i}"), &db, &base, first, count)
        })
        .collect();
    let node_of = |n: u64| usize::try_from(n / PER_NODE).unwrap();
    let mut seen = Seen::default();
    for node in &nodes {
        node.wait_for("READY", &mut seen);
    }
    // Leases spread out: every node holds some.
    let deadline = Instant::now() + DEADLINE;
    let spread = loop {
        let owners = owners(&db).await;
        let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
        for owner in owners.values() {
            *per_node.entry(owner.clone()).or_default() += 1;
        }
        if owners.len() == EMITTERS && per_node.len() == 3 {
            break per_node;
        }
        assert!(
            Instant::now() < deadline,
            "leases never spread: {per_node:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("leases per node after start: {spread:?}");
    // Mid-run: a quarter of the events delivered.
    let mut all: Vec<Delivery> = Vec::new();
    while all.len() < (EVENTS / 4) as usize {
        all.push(delivery(&receiver.next().await));
    }
    let owners_before = owners(&db).await;
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    for owner in owners_before.values() {
        *per_node.entry(owner.as_str()).or_default() += 1;
    }
    let (victim_name, _) = per_node.iter().max_by_key(|(_, held)| **held).unwrap();
    let victim = nodes.iter().position(|n| n.name == *victim_name).unwrap();
    for node in &nodes {
        node.drain(&mut seen);
    }
    nodes[victim].signal("-KILL");
    let killed_at = Instant::now();
    let victims_emitters: BTreeSet<String> = owners_before
        .iter()
        .filter(|(_, owner)| *owner == victim_name)
        .map(|(emitter, _)| emitter.clone())
        .collect();
    println!(
        "killed {victim_name} holding {} emitters",
        victims_emitters.len()
    );
    for (i, node) in nodes.iter().enumerate() {
        if i != victim {
            node.wait_for("EMITTED", &mut seen);
        }
    }
    nodes[victim].drain(&mut seen);
    receive_all(&mut receiver, &seen.acked, &mut all).await;
    // The surviving nodes had every event of theirs stored.
    for n in 0..EVENTS {
        if node_of(n) != victim {
            assert!(
                seen.acked.contains(&n),
                "event {n} of a surviving node not acknowledged"
            );
        }
    }
    assert_ordered(&all, &node_of);
    // Duplicates: only events the killed node had sent.
    let mut first_by: HashMap<u64, &Delivery> = HashMap::new();
    let mut duplicates = 0;
    for d in &all {
        match first_by.get(&d.n) {
            None => {
                first_by.insert(d.n, d);
            }
            Some(first) => {
                duplicates += 1;
                // The killed node sent it (in flight, or its acknowledgement
                // not yet committed); another node sent it again.
                assert_eq!(
                    first.node, *victim_name,
                    "duplicate of {} not from the killed node",
                    d.n
                );
                assert_ne!(d.node, *victim_name);
                assert_eq!(d.id, first.id, "a copy of {} with another request id", d.n);
            }
        }
    }
    // Takeover: from the kill to another node's first delivery, per emitter.
    let mut takeovers: Vec<Duration> = Vec::new();
    for emitter in &victims_emitters {
        if let Some(d) = all
            .iter()
            .find(|d| &d.emitter == emitter && d.at > killed_at && d.node != *victim_name)
        {
            takeovers.push(d.at - killed_at);
        }
    }
    takeovers.sort();
    println!(
        "delivered {} events ({} acknowledged), {duplicates} duplicates; takeover after the kill: \
         min {:?}, max {:?} (lease expiry {LEASE_EXPIRY:?})",
        first_by.len(),
        seen.acked.len(),
        takeovers.first(),
        takeovers.last()
    );
    assert!(
        !takeovers.is_empty(),
        "no emitter of the killed node was taken over"
    );
    // The nodes' configs differ (each sends its own `x-node` header): the
    // lease holders say so.
    assert!(
        seen.log
            .iter()
            .any(|l| l.contains("different configurations")),
        "no config drift warning"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_holder_sends_nothing_once_its_lease_is_gone() {
    const EVENTS: u64 = 400 * EMITTERS as u64;
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    // Slow: the stalled node has a full window and requests in flight when
    // it is stopped.
    receiver.script((0..2 * EVENTS).map(|_| Reply::Delay(Duration::from_millis(5))));
    let base = receiver.url("");
    let stalled = Node::spawn("stalled", &db, &base, 0, EVENTS);
    let mut seen = Seen::default();
    stalled.wait_for("EMITTED", &mut seen);
    assert_eq!(seen.acked.len() as u64, EVENTS);
    let mut all: Vec<Delivery> = Vec::new();
    while all.len() < 500 {
        all.push(delivery(&receiver.next().await));
    }
    stalled.signal("-STOP");
    let stopped_at = Instant::now();
    let live = Node::spawn("live", &db, &base, EVENTS, 0);
    live.wait_for("READY", &mut seen);
    // The live node takes the leases once they expire, and delivers.
    let mut by_live = 0;
    while by_live < 200 {
        let d = delivery(&receiver.next().await);
        if d.node == "live" {
            by_live += 1;
        }
        all.push(d);
    }
    let resumed_at = Instant::now();
    // Live could only take over once the leases had expired (renewed every
    // quarter of the expiry).
    assert!(resumed_at - stopped_at > LEASE_EXPIRY * 3 / 4);
    stalled.signal("-CONT");
    receive_all(&mut receiver, &seen.acked, &mut all).await;
    assert_ordered(&all, &|_| 0);
    // Duplicates only of what the stalled node had sent, or was sending, when
    // it was stopped and had not acknowledged: the next holder sends those
    // again. The request it had begun (past its lease check: the event after
    // its last one before the stop) may reach the receiver only once it
    // resumes. Once resumed, stalled may take leases again (live gives half
    // back to spread them), under a new epoch, reading from the database: it
    // never sends again anything that was acknowledged.
    let mut in_flight_at_stop: HashMap<&str, u64> = HashMap::new();
    for d in all
        .iter()
        .filter(|d| d.node == "stalled" && d.at < stopped_at)
    {
        in_flight_at_stop.insert(d.emitter.as_str(), d.n + EMITTERS as u64);
    }
    let mut first: HashMap<u64, &Delivery> = HashMap::new();
    let mut duplicates = 0;
    for d in &all {
        let Some(earlier) = first.get(&d.n) else {
            first.insert(d.n, d);
            continue;
        };
        duplicates += 1;
        // Sent by stalled before it resumed (in flight at the stop, or its
        // acknowledgement not committed): the next holder, live or stalled
        // itself under a new lease, sends it again.
        let unacknowledged = earlier.node == "stalled" && earlier.at < resumed_at;
        // The request stalled had begun when stopped may also reach the
        // receiver only after resuming, after live sent the event.
        let finished_late = earlier.node == "live"
            && d.node == "stalled"
            && in_flight_at_stop.get(d.emitter.as_str()) == Some(&d.n);
        if !(unacknowledged || finished_late) {
            live.drain(&mut seen);
            stalled.drain(&mut seen);
            let tag = format!("\"{}\"", d.emitter);
            for line in seen
                .log
                .iter()
                .filter(|l| l.contains(&tag) || l.contains(&format!("={}", d.emitter)))
            {
                eprintln!("LOG {line}");
            }
            eprintln!(
                "in flight at the stop: {:?}",
                in_flight_at_stop.get(d.emitter.as_str())
            );
        }
        assert!(
            unacknowledged || finished_late,
            "event {} sent by {} after {} had sent it ({:?} after the stop, {:?} before the resume)",
            d.n,
            d.node,
            earlier.node,
            earlier.at.checked_duration_since(stopped_at),
            resumed_at.checked_duration_since(earlier.at)
        );
    }
    let after_resume = all
        .iter()
        .filter(|d| d.node == "stalled" && d.at > resumed_at)
        .count();
    println!(
        "{} deliveries, {duplicates} duplicates (in flight at the stop), {after_resume} by the \
         stalled node after resuming (under new leases)",
        all.len()
    );
    // It learns that it lost the leases (a renewal or a write is refused).
    let deadline = Instant::now() + DEADLINE;
    while !seen
        .log
        .iter()
        .any(|l| l.contains("lease lost") || l.contains("write refused"))
    {
        assert!(
            Instant::now() < deadline,
            "the stalled node never noticed: {:?}",
            seen.log
        );
        stalled.drain(&mut seen);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
