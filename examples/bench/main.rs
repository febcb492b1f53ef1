//! Run with `cargo run --release --example bench`.
//!
//! Measures the emitter against a bare awc client doing the same work, in the
//! same run, and prints a markdown table. The receiver is an actix-web server
//! (1 worker) in a child process on 127.0.0.1 answering 200; SSE clients run in
//! another child process. Every wait is bounded and the children are killed on
//! exit. `BENCH_SCALE=0.1` runs a tenth of the work (a quick smoke run);
//! `BENCH_ONLY=2,3` runs only those scenarios. Scenario 8 (the server binary)
//! needs `--features server` and `cargo build --release --features server`;
//! scenario 9 (PostgreSQL, on a throwaway local cluster) `--features postgres`;
//! scenario 10 (the server on PostgreSQL, 1 and 3 nodes, and its failover)
//! `--features server` with the release server built; scenario 11 (the
//! server's memory over ten minutes at a steady rate, `BENCH_SOAK_SECS` to
//! change it) runs only when named: `BENCH_ONLY=11`.

mod children;
mod delivery;
mod durable;
mod emit_cost;
mod measure;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
mod server_cluster;
#[cfg(feature = "server")]
mod server_soak;
mod sse;
mod sse_floor;

use std::time::Duration;

use measure::Row;

/// Upper bound of any single wait in the bench.
pub const WAIT_LIMIT: Duration = Duration::from_secs(180);

fn main() -> std::io::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("--receiver") => return children::run_receiver(),
        Some("--sse-clients") => return children::run_sse_clients(),
        Some("--sse-run") => return sse::run_child(),
        Some("--million-stored") => return durable::run_million_stored_child(),
        #[cfg(feature = "postgres")]
        Some("--pg-node") => return postgres::run_node_child(),
        _ => {}
    }
    // With `--features metrics`, every figure includes recording the crate's
    // metrics into a registry (that of metrics-util, as exporters use).
    #[cfg(feature = "metrics")]
    {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let _ = recorder.install();
        println!("metrics: recorded (metrics-util registry)");
    }
    let scale: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let scaled = |n: usize| ((n as f64 * scale) as usize).max(1);

    actix_web::rt::System::new().block_on(async move {
        let receiver = children::Child::receiver()?;
        let url = format!("http://127.0.0.1:{}/hooks", receiver.port);
        println!("{}", measure::machine());
        println!("receiver: actix-web, 1 worker, child process, {url}\n");

        // BENCH_ONLY=2,6 runs only those scenarios (for profiling one of them).
        let only: Vec<String> = std::env::var("BENCH_ONLY")
            .map(|s| s.split(',').map(|p| p.trim().to_owned()).collect())
            .unwrap_or_default();
        // `7` runs 7a to 7g; `7b` runs that one.
        let run = |n: &str| only.is_empty() || only.iter().any(|o| n.starts_with(o.as_str()));
        let mut rows: Vec<Row> = Vec::new();
        if run("1") {
            rows.extend(delivery::ordered(&url, scaled(100_000)).await);
        }
        if run("2") {
            rows.extend(delivery::many_emitters(&url, 64, scaled(2_000)).await);
        }
        if run("3") {
            rows.extend(delivery::parallel(&url, 64, scaled(128_000)).await);
        }
        if run("4") {
            rows.extend(emit_cost::memory_per_queued_event(scaled(1_000_000)).await);
            rows.extend(emit_cost::emit_rate(scaled(1_000_000)).await);
        }
        if run("5") {
            rows.extend(emit_cost::fan_out(1_000).await);
        }
        if run("6") {
            rows.extend(sse::scenario(scaled(10_000), scaled(50_000)));
        }
        if run("7a") {
            rows.extend(durable::throughput(&url, 1, scaled(20_000)).await);
        }
        if run("7b") {
            rows.extend(durable::throughput(&url, 64, scaled(500)).await);
        }
        if run("7c") {
            rows.extend(durable::durable_latency(&url, 64, scaled(500)).await);
        }
        if run("7e") {
            rows.extend(children::Child::million_stored(&url, scaled(1_000_000))?);
        }
        // With `--features server`, after `cargo build --release --features server`.
        #[cfg(feature = "server")]
        if run("8") {
            rows.extend(server::accepted(&url, scaled(20_000), 32).await);
        }
        // With `--features postgres`: a throwaway PostgreSQL cluster (as the
        // tests start one).
        #[cfg(feature = "postgres")]
        if run("9") {
            rows.extend(postgres::throughput(&url, 64, scaled(500)).await);
            rows.extend(postgres::takeover(&url).await?);
        }
        // The server on PostgreSQL (`--features server` includes postgres).
        #[cfg(feature = "server")]
        if run("10") {
            rows.extend(server_cluster::accepted(&url, scaled(20_000), 32).await);
            rows.extend(server_cluster::failover(&url).await);
        }
        // Ten minutes: only when named.
        #[cfg(feature = "server")]
        if only.iter().any(|o| o == "11") {
            rows.extend(server_soak::flat_memory(&url).await);
        }
        drop(receiver);

        println!("\n{}", measure::table(&rows));
        Ok(())
    })
}
