//! Delivery throughput: the emitter against a bare awc client doing the same
//! work (serialize, sign, same headers) on the same receiver.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;
use webhooks_emitter::{sign, Config, RequestId, WebhooksEmitter, USER_AGENT_VALUE};

use crate::measure::{per_second, Row};
use crate::WAIT_LIMIT;

const SECRET: &[u8] = b"bench-secret";
const NOTE: &str = "A bench payload of about three hundred bytes, like a typical order event with a few fields and a short note.";

/// A ~300-byte event.
#[derive(Serialize)]
pub struct Payload {
    id: usize,
    kind: &'static str,
    customer: &'static str,
    amount_cents: u64,
    currency: &'static str,
    items: [&'static str; 3],
    note: &'static str,
}

pub fn payload(id: usize) -> Payload {
    Payload {
        id,
        kind: "order.created",
        customer: "cus_0123456789abcdef",
        amount_cents: 4990 + id as u64,
        currency: "EUR",
        items: ["sku_1001", "sku_2002", "sku_3003"],
        note: NOTE,
    }
}

pub fn config(url: &str, queue: usize) -> Config {
    Config::new(url)
        .secret(String::from_utf8_lossy(SECRET))
        .queue_capacity(queue + 1)
        .backoff(Duration::from_millis(10), Duration::from_millis(100))
}

/// Emits `events` events and returns the delivery rate: from the first emit
/// until `flush` has seen every queue empty (the last 2xx). Nothing polls or
/// subscribes meanwhile, so the measurement adds no work to the actors; the
/// counts are checked once, afterwards.
pub async fn run(emitter: WebhooksEmitter, event: &str, events: usize, deliveries: usize) -> f64 {
    let started = Instant::now();
    for i in 0..events {
        let _ = emitter.emit(event, &payload(i), None);
    }
    let flushed = emitter.flush(WAIT_LIMIT).await;
    let elapsed = started.elapsed();
    let delivered: u64 = emitter.stats_all().await.iter().map(|s| s.delivered).sum();
    if !flushed || delivered != deliveries as u64 {
        eprintln!("{event}: {delivered} of {deliveries} delivered (flushed: {flushed})");
    }
    let _ = emitter.shutdown(Duration::from_secs(5)).await;
    per_second(delivered as usize, elapsed)
}

/// One POST as the emitter sends it, by a bare client.
async fn bare_post(client: &awc::Client, url: &str, id: usize) -> bool {
    let body = serde_json::to_vec(&payload(id)).unwrap_or_default();
    let response = client
        .post(url)
        .insert_header(("content-type", "application/json"))
        .insert_header(("user-agent", USER_AGENT_VALUE))
        .insert_header(("x-webhooks-event", "bench"))
        .insert_header(("x-webhooks-delivery", RequestId::generate().as_str()))
        .insert_header(("x-webhooks-signature", sign(SECRET, &body)))
        .send_body(body)
        .await;
    match response {
        Ok(mut response) => {
            let _ = response.body().await;
            response.status().is_success()
        }
        Err(_) => false,
    }
}

/// The emitter on its own thread, as a tokio or actix-web app would run it.
fn emitter() -> WebhooksEmitter {
    WebhooksEmitter::start_in_background()
}

fn bare_client() -> awc::Client {
    awc::Client::builder()
        .disable_redirects()
        .timeout(Duration::from_secs(5))
        .finish()
}

/// Baseline: `in_flight` bare requests at a time until `total` are done.
async fn baseline(url: &str, total: usize, in_flight: usize) -> f64 {
    let client = bare_client();
    let started = Instant::now();
    let ok = futures_util::stream::iter(0..total)
        .map(|i| bare_post(&client, url, i))
        .buffer_unordered(in_flight)
        .filter(|ok| futures_util::future::ready(*ok))
        .count()
        .await;
    if ok < total {
        eprintln!("baseline: {} of {total} requests failed", total - ok);
    }
    per_second(total, started.elapsed())
}

/// Runs emitter and baseline alternately `rounds()` times and returns the
/// median of each: on a shared 2-core machine single runs vary by ±15%, and
/// alternating spreads any slow period over both sides.
pub async fn medians<E, B, EF, BF>(mut emitter_run: E, mut baseline_run: B) -> (f64, f64)
where
    E: FnMut() -> EF,
    EF: std::future::Future<Output = f64>,
    B: FnMut() -> BF,
    BF: std::future::Future<Output = f64>,
{
    let (mut emitter, mut baseline) = (Vec::new(), Vec::new());
    for _ in 0..rounds() {
        emitter.push(emitter_run().await);
        baseline.push(baseline_run().await);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("  emitter runs {emitter:.0?}, baseline runs {baseline:.0?}");
    (median(emitter), median(baseline))
}

/// `BENCH_ROUNDS`, default 3.
pub fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1)
}

/// 1. One emitter, strict order, `events` events.
pub async fn ordered(url: &str, events: usize) -> Vec<Row> {
    let (rate, base) = medians(
        || async {
            let emitter = emitter();
            let _ = emitter
                .attach("ordered", "bench.ordered", config(url, events))
                .await;
            run(emitter, "bench.ordered", events, events).await
        },
        || baseline(url, events, 1),
    )
    .await;
    println!("ordered delivery: emitter {rate:.0}/s, bare awc one at a time {base:.0}/s");
    vec![Row::ratio(
        &format!("1. ordered delivery, 1 emitter, {events} events of ~300 B, signed"),
        "ev/s",
        rate,
        base,
        Some(0.9),
    )]
}

/// 2. `emitters` emitters on one event, `events` events.
pub async fn many_emitters(url: &str, emitters: usize, events: usize) -> Vec<Row> {
    let total = emitters * events;
    let (rate, base) = medians(
        || async {
            let emitter = emitter();
            for e in 0..emitters {
                let _ = emitter
                    .attach(format!("e{e}"), "bench.many", config(url, events))
                    .await;
            }
            run(emitter, "bench.many", events, total).await
        },
        || baseline(url, total, emitters),
    )
    .await;
    println!("{emitters} emitters: emitter {rate:.0}/s, bare awc {emitters} in flight {base:.0}/s");
    vec![Row::ratio(
        &format!("2. {emitters} emitters × {events} events ({total} deliveries)"),
        "del/s",
        rate,
        base,
        Some(0.9),
    )]
}

/// 3. One emitter with `in_flight` requests at a time.
pub async fn parallel(url: &str, in_flight: usize, events: usize) -> Vec<Row> {
    let (rate, base) = medians(
        || async {
            let emitter = emitter();
            let config = config(url, events).max_in_flight(in_flight);
            let _ = emitter.attach("parallel", "bench.parallel", config).await;
            run(emitter, "bench.parallel", events, events).await
        },
        || baseline(url, events, in_flight),
    )
    .await;
    println!("parallel mode: emitter {rate:.0}/s, bare awc {in_flight} in flight {base:.0}/s");
    vec![Row::ratio(
        &format!("3. 1 emitter, max_in_flight({in_flight}), {events} events"),
        "ev/s",
        rate,
        base,
        None,
    )]
}
