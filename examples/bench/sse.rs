//! SSE fan-out: clients held, time for one event to reach all of them, and
//! memory per connected client.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpServer};
use serde_json::json;
use webhooks_emitter::sse::SseOptions;
use webhooks_emitter::WebhooksEmitter;

use crate::children::Child;
use crate::measure::{millis, percentile, rss_bytes, thousands, Row};
use crate::WAIT_LIMIT;

/// Events sent to all clients (`BENCH_SSE_EVENTS`, default 5).
fn events() -> usize {
    std::env::var("BENCH_SSE_EVENTS")
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(5)
        .max(1)
}

pub async fn broadcast_to_clients(clients: usize) -> Vec<Row> {
    match run(clients).await {
        Ok(rows) => rows,
        Err(error) => {
            eprintln!("SSE bench failed: {error}");
            vec![Row::absolute(
                "6. SSE",
                format!("failed: {error}"),
                "—".into(),
                "—",
                Some(false),
            )]
        }
    }
}

async fn run(clients: usize) -> std::io::Result<Vec<Row>> {
    let emitter = WebhooksEmitter::builder()
        .sse(SseOptions::default())
        .start_in_background();
    let for_server = emitter.clone();
    let server = HttpServer::new(move || App::new().service(for_server.sse_scope("/sse")))
        // As many workers as cores, actix-web's default, as an app would run it.
        .backlog(4096)
        .max_connections(clients + 100)
        .bind(("127.0.0.1", 0))?;
    let url = format!("http://127.0.0.1:{}/sse/bench", server.addrs()[0].port());
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    actix_web::rt::time::sleep(Duration::from_millis(200)).await; // let the worker start before measuring memory

    let before = rss_bytes();
    let mut child = Child::sse_clients(&url, clients, events())?;
    let deadline = Instant::now() + WAIT_LIMIT;
    while emitter
        .sse_clients()
        .await
        .get("bench")
        .copied()
        .unwrap_or(0)
        < clients
    {
        if Instant::now() > deadline {
            return Err(std::io::Error::other("clients did not all subscribe"));
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let per_client = (rss_bytes().saturating_sub(before)) as f64 / clients as f64;

    let mut latencies = Vec::with_capacity(clients * events());
    for i in 0..events() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let _ = emitter.broadcast("bench", "tick", &json!({"i": i, "t": now.to_string()}));
        let line = child.read_line()?;
        let nanos = line
            .strip_prefix("latencies ")
            .ok_or_else(|| std::io::Error::other(line.clone()))?;
        latencies.extend(
            nanos
                .split(' ')
                .filter_map(|n| n.parse::<u64>().ok())
                .map(Duration::from_nanos),
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    let spread: Vec<String> = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0]
        .iter()
        .map(|p| {
            format!(
                "p{:.0} {:.1}",
                p * 100.0,
                percentile(&latencies, *p).as_secs_f64() * 1000.0
            )
        })
        .collect();
    println!("SSE latency spread (ms): {}", spread.join(", "));
    drop(child);
    handle.stop(false).await;
    let _ = emitter.shutdown(Duration::from_secs(5)).await;
    println!(
        "SSE: {clients} clients, {} events: p50 {p50:?}, p99 {p99:?}, {per_client:.0} B/client",
        events()
    );
    Ok(vec![
        Row::absolute(
            &format!(
                "6a. SSE: one event to {} clients, p50 / p99 ({} events)",
                thousands(clients as f64),
                events()
            ),
            format!("{} / {}", millis(p50), millis(p99)),
            "—".into(),
            "p99 < 100 ms",
            Some(p99 < Duration::from_millis(100)),
        ),
        Row::absolute(
            "6b. SSE: resident memory per connected client",
            format!("{:.1} KiB", per_client / 1024.0),
            "—".into(),
            "≤ 16 KiB",
            Some(per_client <= 16.0 * 1024.0),
        ),
    ])
}
