//! What `emit` costs the caller, what a queued event costs in memory, and how
//! long one event takes to reach 1,000 queues.

use std::time::{Duration, Instant};

use webhooks_emitter::{Config, WebhooksEmitter};

use crate::measure::{millis, per_second, rss_bytes, thousands, Row};
use crate::WAIT_LIMIT;

/// A small payload, so the memory figure is about the queue, not the data.
fn small(i: usize) -> [usize; 1] {
    [i]
}

/// A paused emitter (nothing is ever delivered), its queue large enough.
async fn paused(id: &str, event: &str, queue: usize) -> WebhooksEmitter {
    let emitter = WebhooksEmitter::start_in_background();
    let config = Config::new("http://127.0.0.1:9/unused").queue_capacity(queue + 1);
    let _ = emitter.attach(id, event, config).await;
    let _ = emitter.pause(id).await;
    emitter
}

async fn wait_queued(emitter: &WebhooksEmitter, id: &str, total: usize) {
    let deadline = Instant::now() + WAIT_LIMIT;
    while Instant::now() < deadline {
        if emitter.stats(id).await.map(|s| s.queued).unwrap_or(0) >= total {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("{id}: queue did not reach {total}");
}

/// 4b. Resident memory per queued event beyond its payload. Events go in
/// batches the worker absorbs before the next, so mailboxes stay small and the
/// figure is what the queue holds.
pub async fn memory_per_queued_event(events: usize) -> Vec<Row> {
    let emitter = paused("memory", "bench.memory", events).await;
    let payload_len = serde_json::to_vec(&small(events)).map_or(0, |v| v.len());
    let before = rss_bytes();
    let batch = 10_000;
    let mut sent = 0;
    while sent < events {
        let end = (sent + batch).min(events);
        for i in sent..end {
            let _ = emitter.emit("bench.memory", &small(i), None);
        }
        sent = end;
        wait_queued(&emitter, "memory", sent).await;
    }
    let after = rss_bytes();
    let per_event = (after.saturating_sub(before)) as f64 / events as f64 - payload_len as f64;
    let _ = emitter.detach("memory").await;
    let _ = emitter.shutdown(Duration::from_secs(5)).await;
    println!("memory: {events} queued events, RSS +{} KiB, {per_event:.0} B/event beyond a {payload_len} B payload", (after.saturating_sub(before)) / 1024);
    vec![Row::absolute(
        &format!(
            "4b. memory per queued event beyond its payload ({} queued)",
            thousands(events as f64)
        ),
        format!("{per_event:.0} B"),
        "—".into(),
        "≤ 256 B",
        Some(per_event <= 256.0),
    )]
}

/// 4a. Emits per second on the caller's thread into one paused emitter.
pub async fn emit_rate(events: usize) -> Vec<Row> {
    let emitter = paused("rate", "bench.rate", events).await;
    // Warm up allocator and channels.
    for i in 0..10_000 {
        let _ = emitter.emit("bench.rate", &small(i), None);
    }
    let started = Instant::now();
    for i in 0..events {
        let _ = emitter.emit("bench.rate", &small(i), None);
    }
    let rate = per_second(events, started.elapsed());
    wait_queued(&emitter, "rate", events).await;
    let _ = emitter.shutdown(Duration::from_secs(5)).await;
    println!("emit: {rate:.0} emits/s on one caller thread");
    vec![Row::absolute(
        "4a. `emit` into a paused emitter, one caller thread",
        format!("{} emits/s", thousands(rate)),
        "—".into(),
        "≥ 1,000,000/s per core",
        Some(rate >= 1_000_000.0),
    )]
}

/// Figure 5: one emit queued at `emitters` emitters. Measured as the time
/// from `emit` until every worker has answered a stats request sent after it
/// (each worker handles the event first), beside the stats round trip alone.
pub async fn fan_out(emitters: usize) -> Vec<Row> {
    let emitter = WebhooksEmitter::start_in_background();
    for e in 0..emitters {
        let id = format!("f{e}");
        let _ = emitter
            .attach(
                &id,
                "bench.fanout",
                Config::new("http://127.0.0.1:9/unused"),
            )
            .await;
        let _ = emitter.pause(&id).await;
    }
    let mut with_emit = Vec::new();
    let mut alone = Vec::new();
    for round in 1..=21 {
        let started = Instant::now();
        let _ = emitter.stats_all().await;
        alone.push(started.elapsed());
        let started = Instant::now();
        let _ = emitter.emit("bench.fanout", &round, None);
        let stats = emitter.stats_all().await;
        with_emit.push(started.elapsed());
        if stats.iter().any(|s| s.queued != round) {
            eprintln!("fan-out: an emitter missed the event");
        }
    }
    with_emit.sort();
    alone.sort();
    let (median, median_alone) = (with_emit[with_emit.len() / 2], alone[alone.len() / 2]);
    let _ = emitter.shutdown(Duration::from_secs(5)).await;
    println!(
        "fan-out: emit + stats of {emitters} emitters {median:?}, stats alone {median_alone:?}"
    );
    vec![Row::absolute(
        &format!("5. one `emit` queued at {emitters} emitters (median of 21; baseline: the stats round trip that proves it)"),
        millis(median),
        millis(median_alone),
        "—",
        None,
    )]
}
