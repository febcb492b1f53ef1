//! The journal: durable delivery against memory in the same run, the latency
//! of `emit_durable` under load, commits per second, memory and disk with a
//! million stored events, and the restart time with them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use webhooks_emitter::{Journal, Outcome, WebhooksEmitter};

use crate::delivery::{config, medians, payload, run};
use crate::measure::{millis, percentile, rss_bytes, thousands, Row};
use crate::WAIT_LIMIT;

/// CPU seconds this process has used (user and system).
pub fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15; after the `)`, indexes 11 and 12.
    (ticks(11) + ticks(12)) / 100.0
}

/// A journal file of its own, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("webhooks-bench-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        Scratch(dir)
    }

    pub fn journal(&self) -> PathBuf {
        self.0.join("bench.redb")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn open(path: &Path) -> Journal {
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        match Journal::open(path) {
            Ok(journal) => return journal,
            Err(e) if Instant::now() < deadline => {
                eprintln!("journal: {e}; retrying");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("journal: {e}"),
        }
    }
}

/// An emitter with `emitters` emitters on `event`, in memory or on a fresh journal.
async fn emitter(
    url: &str,
    event: &str,
    emitters: usize,
    events: usize,
    journal: Option<&Path>,
) -> WebhooksEmitter {
    let builder = WebhooksEmitter::builder();
    let emitter = match journal {
        Some(path) => {
            let _ = std::fs::remove_file(path);
            builder.store(open(path)).start_in_background()
        }
        None => builder.start_in_background(),
    };
    for e in 0..emitters {
        let _ = emitter
            .attach(format!("e{e}"), event, config(url, events))
            .await;
    }
    emitter
}

/// 7a, 7b. Throughput on the journal against memory, alternating.
pub async fn throughput(url: &str, emitters: usize, events: usize) -> Vec<Row> {
    let scratch = Scratch::new("throughput");
    let path = scratch.journal();
    let total = emitters * events;
    let (durable, memory) = medians(
        || async {
            let emitter = emitter(url, "bench.durable", emitters, events, Some(&path)).await;
            let cpu = process_cpu();
            let rate = run(emitter, "bench.durable", events, total).await;
            println!(
                "    journal: {:.1} µs of CPU per delivery",
                (process_cpu() - cpu) * 1e6 / total as f64
            );
            rate
        },
        || async {
            let emitter = emitter(url, "bench.durable", emitters, events, None).await;
            let cpu = process_cpu();
            let rate = run(emitter, "bench.durable", events, total).await;
            println!(
                "    memory: {:.1} µs of CPU per delivery",
                (process_cpu() - cpu) * 1e6 / total as f64
            );
            rate
        },
    )
    .await;
    println!("durable, {emitters} emitter(s): journal {durable:.0}/s, memory {memory:.0}/s");
    let figure = if emitters == 1 {
        format!("7a. journal vs memory, ordered, 1 emitter × {events} events")
    } else {
        format!("7b. journal vs memory, {emitters} emitters × {events} events")
    };
    vec![Row::ratio(&figure, "del/s", durable, memory, Some(0.8))]
}

/// 7c. `emit_durable` latency while `emitters` emitters deliver on the
/// journal, and commits per second meanwhile.
pub async fn durable_latency(url: &str, emitters: usize, events: usize) -> Vec<Row> {
    let scratch = Scratch::new("latency");
    let path = scratch.journal();
    let journal = open(&path);
    let emitter = WebhooksEmitter::builder()
        .store(journal.clone())
        .start_in_background();
    for e in 0..emitters {
        let _ = emitter
            .attach(format!("e{e}"), "bench.load", config(url, events))
            .await;
    }
    // Probed on an emitter of its own: one event at a time, each on disk
    // before the next.
    let _ = emitter
        .attach("probe", "bench.probe", config(url, 1_000_000))
        .await;
    let commits_before = journal.commits();
    let started = Instant::now();
    for i in 0..events {
        let _ = emitter.emit("bench.load", &payload(i), None);
    }
    let mut latencies = Vec::new();
    let probe_payload = payload(0);
    let flushed = {
        let flush = emitter.flush(WAIT_LIMIT);
        tokio::pin!(flush);
        loop {
            let probe = Instant::now();
            tokio::select! {
                flushed = &mut flush => break flushed,
                stored = emitter.emit_durable("bench.probe", &probe_payload, None) => {
                    if stored.is_ok() {
                        latencies.push(probe.elapsed());
                    }
                }
            }
        }
    };
    let elapsed = started.elapsed();
    let commits = journal.commits() - commits_before;
    if !flushed {
        eprintln!("latency run did not drain");
    }
    let _ = emitter.shutdown(Duration::from_secs(5)).await;
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    let per_second = commits as f64 / elapsed.as_secs_f64();
    println!(
        "emit_durable under {emitters} emitters' load: {} probes, p50 {p50:?}, p99 {p99:?}, {commits} commits in {elapsed:?}",
        latencies.len()
    );
    vec![
        Row::absolute(
            &format!("7c. `emit_durable` latency under {emitters} emitters' load, p50 / p99"),
            format!("{} / {}", millis(p50), millis(p99)),
            "—".into(),
            "—",
            None,
        ),
        Row::absolute(
            "7d. journal commits (fsyncs) per second under that load",
            format!("{}/s", thousands(per_second)),
            "—".into(),
            "—",
            None,
        ),
    ]
}

/// `--million-stored <url> <events>`: runs 7e to 7g and prints their rows.
pub fn run_million_stored_child() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(2).cloned().unwrap_or_default();
    let events = args
        .get(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    actix_web::rt::System::new().block_on(async move {
        for row in million_stored(&url, events).await {
            println!("{}", row.to_line());
        }
        println!("done");
    });
    Ok(())
}

/// 7e, 7f, 7g. A million stored events for a paused emitter: memory growth,
/// bytes on disk per event, and the time from opening the journal again to
/// the first delivery.
pub async fn million_stored(url: &str, events: usize) -> Vec<Row> {
    let scratch = Scratch::new("million");
    let path = scratch.journal();
    let emitter = WebhooksEmitter::builder()
        .store(open(&path))
        .start_in_background();
    let _ = emitter
        .attach("stored", "bench.stored", config(url, events))
        .await;
    let _ = emitter.pause("stored").await;
    let before = rss_bytes();
    let batch = 10_000;
    let mut sent = 0;
    while sent < events {
        let end = (sent + batch).min(events);
        for i in sent..end - 1 {
            let _ = emitter.emit("bench.stored", &payload(i), None);
        }
        // Waits until the batch is on disk: emits outrun the disk, and what
        // is not yet committed is held in memory.
        let _ = emitter
            .emit_durable("bench.stored", &payload(end - 1), None)
            .await;
        sent = end;
    }
    let grown = rss_bytes().saturating_sub(before);
    let stored = emitter.stats("stored").await.map(|s| s.stored).unwrap_or(0);
    let _ = emitter.shutdown(Duration::from_secs(30)).await;
    drop(emitter);
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "stored {stored} of {events}: RSS +{} MiB, journal {} MiB ({} B/event)",
        grown / (1024 * 1024),
        bytes / (1024 * 1024),
        bytes / events.max(1) as u64
    );

    // Restart on the same file: until the first stored event is delivered.
    let started = Instant::now();
    let emitter = WebhooksEmitter::builder()
        .store(open(&path))
        .start_in_background();
    let mut reports = emitter.reports();
    let _ = emitter
        .attach("stored", "bench.stored", config(url, events))
        .await;
    let _ = emitter.restart("stored").await;
    let first = loop {
        match tokio::time::timeout(WAIT_LIMIT, reports.recv()).await {
            Ok(Ok(report)) if matches!(report.outcome, Outcome::Delivered { .. }) => {
                break started.elapsed()
            }
            Ok(Ok(_)) => {}
            _ => break WAIT_LIMIT,
        }
    };
    let _ = emitter.detach("stored").await;
    let _ = emitter.shutdown(Duration::from_secs(5)).await;
    println!("restart with {events} stored: first delivery after {first:?}");
    let mib = grown as f64 / (1024.0 * 1024.0);
    vec![
        Row::absolute(
            &format!("7e. resident memory growth, {events} events stored for a paused emitter"),
            format!("{mib:.1} MiB"),
            "—".into(),
            "≤ 32 MiB",
            Some(mib <= 32.0),
        ),
        Row::absolute(
            "7f. journal bytes on disk per stored event (~300 B payload)",
            format!("{} B", bytes / events.max(1) as u64),
            "—".into(),
            "—",
            None,
        ),
        Row::absolute(
            &format!("7g. restart with {events} stored: open, attach, first delivery"),
            millis(first),
            "—".into(),
            "—",
            None,
        ),
    ]
}
