//! Scenario 10, the server on PostgreSQL: events accepted per second over its
//! REST API with one node and with three (the client sends to them in
//! turn), against `emit_durable` in process on PostgreSQL in the same run;
//! then the failover time after the node holding the endpoint is SIGKILLed.
//! Needs `cargo build --release --features server` first.

use std::time::{Duration, Instant};

use crate::delivery::{config, payload};
use crate::measure::{millis, per_second, Row};
use crate::postgres::{cluster, node};
use crate::server::{latency, load, spawn_server, Server, TOKEN};
use crate::WAIT_LIMIT;

/// The lease expiry of the failover run: short, so that the run is short.
const FAILOVER_EXPIRY: &str = "2s";

fn start_nodes(url: &str, names: &[&str], expiry: &str) -> std::io::Result<Vec<(Server, String)>> {
    names
        .iter()
        .map(|name| {
            spawn_server(
                &["--node-name", name, "--lease-expiry", expiry],
                &[("WEBHOOKS_DATABASE_URL", url)],
            )
        })
        .collect()
}

/// `events` events over the API, `callers` at once, to `bases` in turn.
async fn send(
    bases: &[String],
    event: &str,
    events: usize,
    callers: usize,
) -> (Duration, Vec<Duration>) {
    let client = awc::Client::builder().timeout(WAIT_LIMIT).finish();
    let urls: Vec<String> = bases.iter().map(|b| format!("{b}/api/v1/events")).collect();
    load(events, callers, |i| {
        let body = serde_json::json!({"event": event, "payload": payload(i)});
        let request = client
            .post(&urls[i % urls.len()])
            .insert_header(("authorization", format!("Bearer {TOKEN}")))
            .send_json(&body);
        crate::server::answered(request, 202)
    })
    .await
}

async fn create(base: &str, id: &str, event: &str, target: &str) -> bool {
    let client = awc::Client::builder().timeout(WAIT_LIMIT).finish();
    let endpoint = serde_json::json!({"id": id, "url": target, "events": [event]});
    client
        .post(format!("{base}/api/v1/endpoints"))
        .insert_header(("authorization", format!("Bearer {TOKEN}")))
        .send_json(&endpoint)
        .await
        .is_ok_and(|r| r.status() == 201)
}

/// The cluster's delivered counter of endpoint `id`, as node `base` shows it.
async fn delivered(base: &str, id: &str) -> u64 {
    let client = awc::Client::builder().timeout(WAIT_LIMIT).finish();
    let Ok(mut response) = client
        .get(format!("{base}/api/v1/endpoints/{id}/stats"))
        .insert_header(("authorization", format!("Bearer {TOKEN}")))
        .send()
        .await
    else {
        return 0;
    };
    let stats: serde_json::Value = response.json().await.unwrap_or_default();
    stats["delivered"].as_u64().unwrap_or(0)
}

fn not_run(figure: &str, why: impl std::fmt::Display) -> Vec<Row> {
    vec![Row::absolute(
        figure,
        format!("not run: {why}"),
        "—".into(),
        "—",
        None,
    )]
}

pub async fn accepted(target: &str, events: usize, callers: usize) -> Vec<Row> {
    let figure = format!("10a server on PostgreSQL, 1 node: events accepted/s, {callers} callers");
    let db = cluster::Postgres::start();
    let one = match start_nodes(db.url(), &["one"], "10s") {
        Ok(nodes) => nodes,
        Err(e) => return not_run(&figure, e),
    };
    let bases: Vec<String> = one.iter().map(|(_, b)| b.clone()).collect();
    if !create(&bases[0], "one", "bench.one", target).await {
        return not_run(&figure, "endpoint refused");
    }
    let (one_elapsed, one_times) = send(&bases, "bench.one", events, callers).await;
    drop(one);

    let three = match start_nodes(db.url(), &["a", "b", "c"], "10s") {
        Ok(nodes) => nodes,
        Err(e) => return not_run(&figure, e),
    };
    let bases: Vec<String> = three.iter().map(|(_, b)| b.clone()).collect();
    if !create(&bases[0], "three", "bench.three", target).await {
        return not_run(&figure, "endpoint refused");
    }
    let (three_elapsed, three_times) = send(&bases, "bench.three", events, callers).await;
    drop(three);

    // The library on the same database, in process.
    let (_store, emitter) = node(db.url(), "in-process", Duration::from_secs(10)).await;
    let _ = emitter
        .attach("lib", "bench.lib", config(target, events))
        .await;
    let (lib_elapsed, lib_times) = load(events, callers, |i| {
        let emitter = emitter.clone();
        async move {
            emitter
                .emit_durable("bench.lib", &payload(i), None)
                .await
                .is_ok()
        }
    })
    .await;
    let _ = emitter.shutdown(Duration::from_secs(5)).await;
    let lib = per_second(lib_times.len(), lib_elapsed);
    vec![
        Row::ratio(
            &figure,
            "ev/s",
            per_second(one_times.len(), one_elapsed),
            lib,
            Some(0.8),
        ),
        Row::ratio(
            &format!(
                "10b server on PostgreSQL, 3 nodes in turn: events accepted/s, {callers} callers"
            ),
            "ev/s",
            per_second(three_times.len(), three_elapsed),
            lib,
            None,
        ),
        Row::absolute(
            "10 time to 202: 1 node · 3 nodes (in process: emit_durable)",
            format!("{} · {}", latency(&one_times), latency(&three_times)),
            latency(&lib_times),
            "—",
            None,
        ),
    ]
}

/// 10c. The node that took the endpoint's lease is SIGKILLed while events
/// keep coming to the others: the time until the cluster delivers again.
pub async fn failover(target: &str) -> Vec<Row> {
    let figure = format!("10c server cluster: failover after SIGKILL (lease {FAILOVER_EXPIRY})");
    let db = cluster::Postgres::start();
    // The first node alone takes the endpoint's lease.
    let Ok(mut first) = start_nodes(db.url(), &["holder"], FAILOVER_EXPIRY) else {
        return not_run(&figure, "server not started");
    };
    let holder = first.remove(0);
    if !create(&holder.1, "fo", "bench.failover", target).await {
        return not_run(&figure, "endpoint refused");
    }
    let before = send(std::slice::from_ref(&holder.1), "bench.failover", 1, 1).await;
    if before.1.is_empty() {
        return not_run(&figure, "first event refused");
    }
    let Ok(others) = start_nodes(db.url(), &["second", "third"], FAILOVER_EXPIRY) else {
        return not_run(&figure, "servers not started");
    };
    let bases: Vec<String> = others.iter().map(|(_, b)| b.clone()).collect();
    let deadline = Instant::now() + WAIT_LIMIT;
    while delivered(&bases[0], "fo").await < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(holder); // SIGKILL
    let killed = Instant::now();
    let _ = send(&bases, "bench.failover", 10, 1).await;
    let took = loop {
        if delivered(&bases[0], "fo").await >= 11 {
            break killed.elapsed();
        }
        if Instant::now() > deadline {
            return not_run(&figure, "no failover");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(others);
    let limit =
        humantime::parse_duration(FAILOVER_EXPIRY).unwrap_or_default() + Duration::from_secs(1);
    vec![Row::absolute(
        &figure,
        millis(took),
        format!("lease expiry {FAILOVER_EXPIRY}"),
        "≤ expiry + 1 s",
        Some(took <= limit),
    )]
}
