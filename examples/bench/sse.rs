//! Scenario 6: SSE fan-out, side by side with the floor (`sse_floor.rs`: the same
//! connections and bytes on bare tokio sockets). Each sample runs in a fresh
//! process (so memory figures are not blurred by earlier runs): the server
//! holds the clients, which run in child processes of their own, and one
//! event at a time goes to all of them. A sample gives the p50 and p99 of
//! arrival (event created → read by the client), the server process's CPU
//! time per client per event, and its resident memory per client.
//! Ours, the floor and actix-web alone (a handler streaming a broadcast
//! channel, without the crate: the framework's share of the gap) take turns,
//! `BENCH_ROUNDS` times; rows show medians.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpServer};
use serde_json::json;
use webhooks_emitter::sse::SseOptions;
use webhooks_emitter::WebhooksEmitter;

use crate::children::Child;
use crate::delivery::rounds;
use crate::measure::{cpu_time, millis, percentile, raise_open_files, rss_bytes, thousands, Row};
use crate::sse_floor::Floor;
use crate::WAIT_LIMIT;

/// Target of the scale row: clients one process holds on one topic.
const SCALE_TARGET: usize = 50_000;
/// Clients per client process (each stays well under its open-file limit).
const CLIENTS_PER_PROCESS: usize = 10_000;
/// Connections per listening port: the kernel's ephemeral ports (28,232 by
/// default) bound the connections from one address to one port.
const CLIENTS_PER_PORT: usize = 20_000;
/// Ratio to the floor that latency and CPU must stay within.
const MAX_RATIO: f64 = 1.25;
/// Resident memory per client allowed.
const MAX_BYTES_PER_CLIENT: f64 = 8.0 * 1024.0;

/// Events sent to all clients per sample (`BENCH_SSE_EVENTS`, default 5).
fn events() -> usize {
    std::env::var("BENCH_SSE_EVENTS")
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(5)
        .max(1)
}

/// One sample of one server.
#[derive(Clone, Copy, Debug)]
struct Sample {
    p50: Duration,
    p99: Duration,
    cpu_per_client_event: Duration,
    bytes_per_client: f64,
}

impl Sample {
    fn to_line(self) -> String {
        format!(
            "SAMPLE {} {} {} {:.0}",
            self.p50.as_nanos(),
            self.p99.as_nanos(),
            self.cpu_per_client_event.as_nanos(),
            self.bytes_per_client
        )
    }

    fn from_line(line: &str) -> Option<Sample> {
        let mut fields = line.strip_prefix("SAMPLE ")?.split(' ');
        let mut next = || fields.next()?.parse::<f64>().ok();
        let nanos = |n: f64| Duration::from_nanos(n as u64);
        Some(Sample {
            p50: nanos(next()?),
            p99: nanos(next()?),
            cpu_per_client_event: nanos(next()?),
            bytes_per_client: next()?,
        })
    }
}

/// Runs one sample in a fresh process.
fn sample(server: &str, clients: usize) -> std::io::Result<Sample> {
    let mut child = Child::spawn(&[
        "--sse-run",
        server,
        &clients.to_string(),
        &events().to_string(),
    ])?;
    loop {
        let line = child.read_line()?;
        if let Some(sample) = Sample::from_line(&line) {
            return Ok(sample);
        }
        if let Some(error) = line.strip_prefix("ERROR ") {
            return Err(std::io::Error::other(error.to_owned()));
        }
        println!("{line}");
    }
}

/// Samples of each server in `servers`, `rounds` times, rotating which goes
/// first so that a slow period spreads over all of them.
fn samples(servers: &[&str], clients: usize, rounds: usize) -> std::io::Result<Vec<Vec<Sample>>> {
    let mut all = vec![Vec::new(); servers.len()];
    for round in 0..rounds {
        for k in 0..servers.len() {
            let index = (k + round) % servers.len();
            all[index].push(sample(servers[index], clients)?);
        }
    }
    for (server, samples) in servers.iter().zip(&all) {
        println!("  SSE {clients} clients, {server}: {samples:?}");
    }
    Ok(all)
}

fn median<T: Copy + PartialOrd>(samples: &[Sample], field: impl Fn(&Sample) -> T) -> T {
    let mut values: Vec<T> = samples.iter().map(field).collect();
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values[values.len() / 2]
}

/// Rows 6a to 6g: `clients` for the comparison, then `scale` (or as many as
/// the open-file limit allows) for the scale rows.
pub fn scenario(clients: usize, scale: usize) -> Vec<Row> {
    let limit = raise_open_files() as usize;
    // The server holds every client in one process: its open files bound it.
    let most = scale.min(limit.saturating_sub(512));
    let mut rows = Vec::new();
    match samples(&["ours", "floor", "actix"], clients, rounds()) {
        Ok(all) => {
            rows.extend(compared(clients, &all[0], &all[1]));
            rows.extend(framework_share(clients, &all[2], &all[1]));
        }
        Err(error) => rows.push(failed("6a. SSE", &error)),
    }
    match samples(&["ours", "floor"], most, 1) {
        Ok(all) => rows.extend(at_scale(most, limit, &all[0][0], &all[1][0])),
        Err(error) => rows.push(failed("6e. SSE at scale", &error)),
    }
    rows
}

fn failed(figure: &str, error: &std::io::Error) -> Row {
    eprintln!("{figure} failed: {error}");
    Row::absolute(
        figure,
        format!("failed: {error}"),
        "—".into(),
        "—",
        Some(false),
    )
}

/// A row comparing the medians of `field` (a time) in `unit` (`ms` or `µs`).
fn cost_row(
    figure: &str,
    unit: &str,
    ours: &[Sample],
    baseline: &[Sample],
    field: impl Fn(&Sample) -> Duration,
) -> Row {
    let scale = if unit == "ms" { 1e3 } else { 1e6 };
    let in_unit = |samples: &[Sample]| median(samples, &field).as_secs_f64() * scale;
    Row::cost(figure, unit, in_unit(ours), in_unit(baseline), MAX_RATIO)
}

fn compared(clients: usize, ours: &[Sample], floor: &[Sample]) -> Vec<Row> {
    let n = thousands(clients as f64);
    vec![
        cost_row(
            &format!("6a. SSE: one event to {n} clients, p50"),
            "ms",
            ours,
            floor,
            |s| s.p50,
        ),
        cost_row(
            &format!("6b. SSE: one event to {n} clients, p99"),
            "ms",
            ours,
            floor,
            |s| s.p99,
        ),
        cost_row(
            &format!("6c. SSE: server CPU per client per event ({n} clients)"),
            "µs",
            ours,
            floor,
            |s| s.cpu_per_client_event,
        ),
        memory_row(
            &format!("6d. SSE: resident memory per client ({n} clients)"),
            median(ours, |s| s.bytes_per_client),
            median(floor, |s| s.bytes_per_client),
        ),
    ]
}

/// actix-web alone (no crate) against the same floor: the framework's share.
fn framework_share(clients: usize, actix: &[Sample], floor: &[Sample]) -> Vec<Row> {
    let n = thousands(clients as f64);
    vec![
        cost_row(
            &format!("6h. actix-web alone (no crate): {n} clients, p99"),
            "ms",
            actix,
            floor,
            |s| s.p99,
        ),
        cost_row(
            "6i. actix-web alone (no crate): CPU per client per event",
            "µs",
            actix,
            floor,
            |s| s.cpu_per_client_event,
        ),
        memory_row(
            "6j. actix-web alone (no crate): memory per client",
            median(actix, |s| s.bytes_per_client),
            median(floor, |s| s.bytes_per_client),
        ),
    ]
}

fn at_scale(clients: usize, limit: usize, ours: &Sample, floor: &Sample) -> Vec<Row> {
    let n = thousands(clients as f64);
    let held = if clients >= SCALE_TARGET || clients < limit.saturating_sub(512) {
        n.clone()
    } else {
        format!("{n} (open-file limit {limit})")
    };
    vec![
        Row::absolute(
            "6e. SSE: clients held by one process, one topic",
            held,
            n.clone(),
            &thousands(SCALE_TARGET as f64),
            Some(clients >= SCALE_TARGET),
        ),
        Row::absolute(
            &format!("6f. SSE: one event to {n} clients, p50 / p99"),
            format!("{} / {}", millis(ours.p50), millis(ours.p99)),
            format!("{} / {}", millis(floor.p50), millis(floor.p99)),
            "—",
            None,
        ),
        memory_row(
            &format!("6g. SSE: resident memory per client ({n} clients)"),
            ours.bytes_per_client,
            floor.bytes_per_client,
        ),
    ]
}

fn memory_row(figure: &str, ours: f64, floor: f64) -> Row {
    Row::absolute(
        figure,
        format!("{:.1} KiB", ours / 1024.0),
        format!("{:.1} KiB", floor / 1024.0),
        "≤ 8 KiB",
        Some(ours <= MAX_BYTES_PER_CLIENT),
    )
}

/// `--sse-run <ours|floor> <clients> <events>`: one sample, printed as a
/// `SAMPLE` line (or an `ERROR` line).
pub fn run_child() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let server = args.get(2).cloned().unwrap_or_default();
    let clients: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(1);
    let events: usize = args.get(4).and_then(|n| n.parse().ok()).unwrap_or(1);
    raise_open_files();
    actix_web::rt::System::new().block_on(async move {
        let sample = match server.as_str() {
            "ours" => ours(clients, events).await,
            "actix" => actix_alone(clients, events).await,
            _ => floor(clients, events).await,
        };
        match sample {
            Ok(sample) => println!("{}", sample.to_line()),
            Err(error) => println!("ERROR {server}: {error}"),
        }
    });
    Ok(())
}

async fn ours(clients: usize, events: usize) -> std::io::Result<Sample> {
    let emitter = WebhooksEmitter::builder()
        .sse(SseOptions::default())
        .start_in_background();
    let for_server = emitter.clone();
    // As many workers as cores, actix-web's default, as an app would run it.
    let mut server = HttpServer::new(move || App::new().service(for_server.sse_scope("/sse")))
        .backlog(4096)
        .max_connections(clients + 100);
    for _ in 0..clients.div_ceil(CLIENTS_PER_PORT) {
        server = server.bind(("127.0.0.1", 0))?;
    }
    let urls: Vec<String> = server
        .addrs()
        .iter()
        .map(|a| format!("http://{a}/sse/bench"))
        .collect();
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let count = || async {
        emitter
            .sse_clients()
            .await
            .get("bench")
            .copied()
            .unwrap_or(0)
    };
    let publish = |payload: &serde_json::Value| {
        let _ = emitter.broadcast("bench", "tick", payload);
    };
    let sample = measure(&urls, clients, events, count, publish).await;
    handle.stop(false).await;
    let _ = emitter.shutdown(Duration::from_secs(5)).await;
    sample
}

async fn floor(clients: usize, events: usize) -> std::io::Result<Sample> {
    let mut floor = Floor::start(clients.div_ceil(CLIENTS_PER_PORT))?;
    let urls: Vec<String> = floor
        .ports
        .iter()
        .map(|port| format!("http://127.0.0.1:{port}/sse/bench"))
        .collect();
    let counter = floor.counter();
    let count = || {
        let counter = counter.clone();
        async move { counter.load(std::sync::atomic::Ordering::Relaxed) }
    };
    let publish = |payload: &serde_json::Value| floor.publish("tick", payload);
    measure(&urls, clients, events, count, publish).await
}

/// actix-web alone, without the crate: a handler streaming a tokio
/// broadcast channel of the same frames. Tells the framework's share of the
/// gap to the floor from the broadcaster's.
async fn actix_alone(clients: usize, events: usize) -> std::io::Result<Sample> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let (sender, _) = tokio::sync::broadcast::channel::<bytes::Bytes>(256);
    let counter = Arc::new(AtomicUsize::new(0));
    let (for_server, counted) = (sender.clone(), counter.clone());
    let mut server = HttpServer::new(move || {
        let (sender, counted) = (for_server.clone(), counted.clone());
        App::new().route(
            "/sse/bench",
            actix_web::web::get().to(move || {
                let frames = sender.subscribe();
                counted.fetch_add(1, Ordering::Relaxed);
                let body = futures_util::stream::unfold(frames, |mut frames| async move {
                    let frame = frames.recv().await.ok()?;
                    Some((Ok::<_, std::convert::Infallible>(frame), frames))
                });
                async move {
                    actix_web::HttpResponse::Ok()
                        .insert_header(("content-type", "text/event-stream"))
                        .insert_header(("cache-control", "no-cache"))
                        .insert_header(("x-accel-buffering", "no"))
                        .insert_header(("content-encoding", "identity"))
                        .streaming(body)
                }
            }),
        )
    })
    .backlog(4096)
    .max_connections(clients + 100);
    for _ in 0..clients.div_ceil(CLIENTS_PER_PORT) {
        server = server.bind(("127.0.0.1", 0))?;
    }
    let urls: Vec<String> = server
        .addrs()
        .iter()
        .map(|a| format!("http://{a}/sse/bench"))
        .collect();
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let count = || {
        let counter = counter.clone();
        async move { counter.load(Ordering::Relaxed) }
    };
    let mut id = 0u64;
    let publish = |payload: &serde_json::Value| {
        id += 1;
        let data = serde_json::to_string(payload).unwrap_or_default();
        let frame = format!("id: {id}\nevent: tick\ndata: {data}\n\n");
        let _ = sender.send(bytes::Bytes::from(frame));
    };
    let sample = measure(&urls, clients, events, count, publish).await;
    handle.stop(false).await;
    sample
}

/// Connects the clients, then sends `events` events one at a time.
async fn measure<C, F>(
    urls: &[String],
    clients: usize,
    events: usize,
    count: C,
    mut publish: impl FnMut(&serde_json::Value),
) -> std::io::Result<Sample>
where
    C: Fn() -> F,
    F: std::future::Future<Output = usize>,
{
    // Let the server's threads start before measuring memory.
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    let before = rss_bytes();
    let mut children = Vec::new();
    let mut left = clients;
    while left > 0 {
        let share = left.min(CLIENTS_PER_PROCESS);
        children.push(Child::sse_clients(urls, share, events)?);
        left -= share;
    }
    let deadline = Instant::now() + WAIT_LIMIT;
    while count().await < clients {
        if Instant::now() > deadline {
            return Err(std::io::Error::other("clients did not all subscribe"));
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let bytes_per_client = rss_bytes().saturating_sub(before) as f64 / clients as f64;

    let mut latencies = Vec::with_capacity(clients * events);
    let mut cpu = Duration::ZERO;
    for i in 0..events {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let cpu_before = cpu_time();
        publish(&json!({"i": i, "t": now.to_string()}));
        for child in &mut children {
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
        }
        cpu += cpu_time().saturating_sub(cpu_before);
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    latencies.sort();
    Ok(Sample {
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        cpu_per_client_event: cpu / (clients * events) as u32,
        bytes_per_client,
    })
}
