//! Scenario 11, the server's memory at a steady rate: events sent at a fixed
//! rate for `BENCH_SOAK_SECS` (600 by default) with nobody scraping
//! `/metrics`, the server's resident memory sampled every 10 s. Histograms
//! must not hold their samples until a scrape: the resident set stays flat.
//! Only run when named (`BENCH_ONLY=11`): it takes ten minutes.

use std::time::{Duration, Instant};

use crate::delivery::payload;
use crate::durable::Scratch;
use crate::measure::{rss_of, Row};
use crate::server::{spawn_server, TOKEN};

/// Events a second, sent by 8 callers.
const RATE: u64 = 2_000;
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Memory is measured from here on (caches and pools filled).
const WARM_UP: Duration = Duration::from_secs(60);

pub async fn flat_memory(url: &str) -> Vec<Row> {
    let figure =
        "11 server RSS at 2,000 events/s, no /metrics scrape: after warm-up · at the end · most";
    let secs: u64 = std::env::var("BENCH_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let scratch = Scratch::new("server-soak");
    let journal = scratch.journal().to_string_lossy().into_owned();
    let (server, base) = match spawn_server(&["--journal", &journal], &[]) {
        Ok(started) => started,
        Err(e) => {
            return vec![Row::absolute(
                figure,
                format!("not run: {e}"),
                "—".into(),
                "—",
                None,
            )]
        }
    };
    let pid = server.0.id().to_string();
    let client = awc::Client::builder().timeout(crate::WAIT_LIMIT).finish();
    let auth = ("authorization", format!("Bearer {TOKEN}"));
    let endpoint = serde_json::json!({"id": "soak", "url": url, "events": ["bench.soak"]});
    let _ = client
        .post(format!("{base}/api/v1/endpoints"))
        .insert_header(auth.clone())
        .send_json(&endpoint)
        .await;
    let events_url = format!("{base}/api/v1/events");
    let started = Instant::now();
    let end = started + Duration::from_secs(secs);
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    let mut next_sample = started + SAMPLE_EVERY;
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE * 8));
    let mut sent = 0usize;
    while Instant::now() < end {
        tick.tick().await;
        let requests = (0..8).map(|_| {
            sent += 1;
            let body = serde_json::json!({"event": "bench.soak", "payload": payload(sent)});
            client
                .post(&events_url)
                .insert_header(auth.clone())
                .send_json(&body)
        });
        futures_util::future::join_all(requests).await;
        if Instant::now() >= next_sample {
            samples.push((started.elapsed(), rss_of(&pid)));
            next_sample += SAMPLE_EVERY;
        }
    }
    drop(server);
    let after_warm_up = samples
        .iter()
        .find(|(at, _)| *at >= WARM_UP.min(Duration::from_secs(secs / 2)))
        .map_or(0, |(_, rss)| *rss);
    let last = samples.last().map_or(0, |(_, rss)| *rss);
    let most = samples.iter().map(|(_, rss)| *rss).max().unwrap_or(0);
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
    let growth = last as f64 / after_warm_up.max(1) as f64 - 1.0;
    println!(
        "soak: {sent} events in {secs} s; RSS samples (s, MiB): {}",
        samples
            .iter()
            .map(|(at, rss)| format!("{}:{:.1}", at.as_secs(), *rss as f64 / 1048576.0))
            .collect::<Vec<_>>()
            .join(" ")
    );
    vec![Row::absolute(
        figure,
        format!("{} · {} · {}", mib(after_warm_up), mib(last), mib(most)),
        format!("{:+.1}% over {secs} s", growth * 100.0),
        "end within ±10% of after warm-up",
        Some(growth.abs() <= 0.10),
    )]
}
