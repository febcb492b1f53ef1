//! Durability proven by killing real processes. A child process (this test
//! binary, run again) attaches three emitters to a journal and emits with
//! `emit_durable` (and plain `emit` for load), printing each acknowledged
//! event; the parent kills it with
//! SIGKILL at random moments, starts it again on the same file, and at last
//! lets it drain. Every acknowledged event must then have been delivered at
//! every emitter, first deliveries in emit order, and every duplicate must
//! straddle a kill (it was in flight, or acked but not yet committed).
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{fast_config, reopen, Receiver, ScratchDir, DEADLINE};
use webhooks_emitter::WebhooksEmitter;

const EMITTERS: [&str; 3] = ["a", "b", "c"];
const KILLS: usize = 12;
/// Acknowledged events each child must report before its kill clock starts.
const ACKS_PER_ROUND: usize = 10;

/// The child's side: run only when the parent starts this binary with
/// `JOURNAL_CRASH_CHILD` set (otherwise it does nothing and passes).
#[test]
fn child_process() {
    let Ok(journal) = std::env::var("JOURNAL_CRASH_CHILD") else {
        return;
    };
    let receiver = std::env::var("RECEIVER").unwrap();
    let first: u64 = std::env::var("FIRST").unwrap().parse().unwrap();
    let round = std::env::var("ROUND").unwrap();
    let drain = std::env::var("DRAIN").is_ok();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let emitter = WebhooksEmitter::builder()
            .store(reopen(std::path::Path::new(&journal)))
            .start_in_background();
        for id in EMITTERS {
            let config = fast_config(format!("{receiver}/{id}"))
                .max_retries(u32::MAX)
                .additional_header("x-round", round.as_str());
            emitter.attach(id, "tick", config).await.unwrap();
        }
        println!("READY");
        if drain {
            assert!(emitter.flush(DEADLINE).await, "the journal did not drain");
            println!("DRAINED");
            return;
        }
        // Under load: nine plain emits (on disk within the commit interval,
        // not acknowledged) for every acknowledged one.
        for base in (first..).step_by(10) {
            for plain in base..base + 9 {
                emitter.emit("tick", &json!({"n": plain}), None).unwrap();
            }
            let n = base + 9;
            emitter
                .emit_durable("tick", &json!({"n": n}), None)
                .await
                .unwrap();
            println!("ACK {n}");
        }
    });
}

/// A child run; its stdout lines arrive on `lines`.
struct Child {
    process: std::process::Child,
    lines: mpsc::Receiver<String>,
}

fn spawn_child(journal: &std::path::Path, receiver: &str, round: usize, drain: bool) -> Child {
    let mut command = support::this_test_binary("child_process");
    command
        .env("JOURNAL_CRASH_CHILD", journal)
        .env("RECEIVER", receiver)
        .env("FIRST", (round as u64 * 1_000_000).to_string())
        .env("ROUND", round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if drain {
        command.env("DRAIN", "1");
    }
    let mut process = command.spawn().unwrap();
    let stdout = process.stdout.take().unwrap();
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    Child { process, lines }
}

impl Child {
    fn wait_for(&self, wanted: &str, acked: &mut BTreeSet<u64>) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .expect("child said nothing in time");
            if let Some(n) = line.strip_prefix("ACK ") {
                acked.insert(n.parse().unwrap());
            }
            // The test harness may print its own words before ours on a line.
            if line.ends_with(wanted) {
                return;
            }
        }
    }

    /// Waits until `more` events beyond those already seen are
    /// acknowledged, so every round kills a child that is doing real work
    /// however slow the machine is.
    fn wait_for_acks(&self, more: usize, acked: &mut BTreeSet<u64>) {
        let target = acked.len() + more;
        let deadline = Instant::now() + DEADLINE;
        while acked.len() < target {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .expect("child acknowledged nothing in time");
            if let Some(n) = line.strip_prefix("ACK ") {
                acked.insert(n.parse().unwrap());
            }
        }
    }

    fn collect(&self, acked: &mut BTreeSet<u64>) {
        while let Ok(line) = self.lines.try_recv() {
            if let Some(n) = line.strip_prefix("ACK ") {
                acked.insert(n.parse().unwrap());
            }
        }
    }
}

/// A small deterministic spread of delays (no dependency for randomness).
fn delays() -> impl Iterator<Item = Duration> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    std::iter::repeat_with(move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        Duration::from_millis(60 + state % 340)
    })
}

#[test]
fn killed_at_random_moments_nothing_acknowledged_is_lost() {
    if std::env::var("JOURNAL_CRASH_CHILD").is_ok() {
        return;
    }
    let dir = ScratchDir::new("crash");
    let journal = dir.file("webhooks.redb");
    let mut receiver = Receiver::start();
    let base = receiver.url("");
    let mut acked = BTreeSet::new();
    for (round, delay) in delays().take(KILLS).enumerate() {
        let mut child = spawn_child(&journal, &base, round, false);
        child.wait_for("READY", &mut acked);
        child.wait_for_acks(ACKS_PER_ROUND, &mut acked);
        std::thread::sleep(delay); // the child runs under load; this is when it dies
        child.process.kill().unwrap(); // SIGKILL
        child.process.wait().unwrap();
        child.collect(&mut acked);
    }
    let drain = spawn_child(&journal, &base, KILLS, true);
    drain.wait_for("DRAINED", &mut acked);
    let mut drain = drain;
    drain.process.wait().unwrap();

    // Everything the receiver got, per emitter, in arrival order, with the
    // round of the child that sent it.
    let mut arrivals: HashMap<String, Vec<(u64, usize)>> = HashMap::new();
    while let Some(request) = receiver.try_next() {
        let n = request.json()["n"].as_u64().unwrap();
        let round = request.header("x-round").unwrap().parse().unwrap();
        arrivals
            .entry(request.path.trim_start_matches('/').to_owned())
            .or_default()
            .push((n, round));
    }
    assert!(
        acked.len() >= KILLS * ACKS_PER_ROUND,
        "too little load to prove anything: {}",
        acked.len()
    );
    let mut duplicates = 0;
    for id in EMITTERS {
        let got = arrivals.get(id).cloned().unwrap_or_default();
        let mut first_round: HashMap<u64, usize> = HashMap::new();
        let mut firsts = Vec::new();
        for (n, round) in &got {
            match first_round.get(n) {
                None => {
                    first_round.insert(*n, *round);
                    firsts.push(*n);
                }
                Some(first) => {
                    duplicates += 1;
                    // Sent by a child that was then killed (every round but
                    // the last is), and again by a later one.
                    assert!(
                        first < round && *first < KILLS,
                        "emitter {id}: event {n} delivered twice by round {first} then {round}"
                    );
                }
            }
        }
        let missing: Vec<&u64> = acked
            .iter()
            .filter(|n| !first_round.contains_key(n))
            .collect();
        assert!(
            missing.is_empty(),
            "emitter {id} never got acknowledged events {missing:?}"
        );
        let mut sorted = firsts.clone();
        sorted.sort_unstable();
        assert_eq!(
            firsts, sorted,
            "emitter {id}: first deliveries out of emit order"
        );
    }
    println!(
        "{KILLS} kills, {} acknowledged events, {} first deliveries at 3 emitters, {duplicates} duplicates (in flight at a kill)",
        acked.len(),
        arrivals.values().map(Vec::len).sum::<usize>() - duplicates
    );
}
