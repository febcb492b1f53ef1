//! Scenario 8, the server: events accepted per second over its REST API
//! (`POST /api/v1/events`: HTTP, auth, JSON, `emit_durable` into the journal,
//! 202) against `emit_durable` called in process on a journal, with the same
//! number of callers at once and one endpoint attached in both. The server is
//! the release binary next to this one: `cargo build --release --features server`
//! first.

use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use webhooks_emitter::WebhooksEmitter;

use crate::delivery::{config, payload};
use crate::durable::{open, Scratch};
use crate::measure::{millis, per_second, percentile, Row};

pub const TOKEN: &str = "bench-admin-token-0123456789";
/// Events per request in the batch row.
const BATCH: usize = 100;

/// The server process, killed on drop.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(journal: &std::path::Path) -> std::io::Result<(Server, String)> {
    let journal = journal.as_os_str().to_string_lossy().into_owned();
    spawn_server(&["--journal", &journal], &[])
}

/// The release server with `args`, and `env`, on a free port; its address.
pub fn spawn_server(args: &[&str], env: &[(&str, &str)]) -> std::io::Result<(Server, String)> {
    let binary = std::env::current_exe()?
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("webhooks-emitter-server"))
        .filter(|path| path.exists())
        .ok_or_else(|| {
            std::io::Error::other("build it first: cargo build --release --features server")
        })?;
    let mut child = Command::new(binary)
        .args(["--listen", "127.0.0.1:0", "--allow-private-targets"])
        .args(args)
        .envs(env.iter().copied())
        .env("WEBHOOKS_ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    let server = Server(child);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
    let base = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok((server, base))
}

/// Whether `request` was answered `status`, its body read to the end, as a
/// client that wants the request id does. An answer dropped unread makes awc
/// close the connection, and every next request would open a new one.
pub async fn answered(request: awc::SendClientRequest, status: u16) -> bool {
    match request.await {
        Ok(mut response) if response.status() == status => response.body().await.is_ok(),
        _ => false,
    }
}

/// The median and 99th percentile of `times`.
pub fn latency(times: &[Duration]) -> String {
    format!(
        "p50 {}, p99 {}",
        millis(percentile(times, 0.5)),
        millis(percentile(times, 0.99))
    )
}

/// `callers` loops, `events` calls in all; each call's time.
pub async fn load<F, Fut>(events: usize, callers: usize, call: F) -> (Duration, Vec<Duration>)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let call = Rc::new(call);
    let started = Instant::now();
    let loops = (0..callers).map(|c| {
        let call = call.clone();
        async move {
            let mut times = Vec::new();
            for i in (c..events).step_by(callers) {
                let t = Instant::now();
                if call(i).await {
                    times.push(t.elapsed());
                }
            }
            times
        }
    });
    let mut times: Vec<Duration> = join_all(loops).await.into_iter().flatten().collect();
    let elapsed = started.elapsed();
    times.sort();
    (elapsed, times)
}

pub async fn accepted(url: &str, events: usize, callers: usize) -> Vec<Row> {
    let figure = format!("8 server: events accepted/s, {callers} callers");
    let scratch = Scratch::new("server");
    let (server, base) = match start_server(&scratch.journal()) {
        Ok(started) => started,
        Err(e) => {
            return vec![Row::absolute(
                &figure,
                format!("not run: {e}"),
                "—".into(),
                "—",
                None,
            )]
        }
    };
    let client = awc::Client::builder().timeout(crate::WAIT_LIMIT).finish();
    let auth = ("authorization", format!("Bearer {TOKEN}"));
    let endpoint = serde_json::json!({"id": "bench", "url": url, "events": ["bench.server"]});
    let created = client
        .post(format!("{base}/api/v1/endpoints"))
        .insert_header(auth.clone())
        .send_json(&endpoint)
        .await;
    if !created.is_ok_and(|r| r.status() == 201) {
        return vec![Row::absolute(
            &figure,
            "not run: endpoint refused".into(),
            "—".into(),
            "—",
            None,
        )];
    }
    if std::env::var("BENCH_PAUSED").is_ok() {
        let _ = client
            .post(format!("{base}/api/v1/endpoints/bench/pause"))
            .insert_header(auth.clone())
            .send()
            .await;
    }
    let events_url = format!("{base}/api/v1/events");
    let (http_elapsed, http_times) = load(events, callers, |i| {
        let body = serde_json::json!({"event": "bench.server", "payload": payload(i)});
        let request = client
            .post(&events_url)
            .insert_header(auth.clone())
            .send_json(&body);
        answered(request, 202)
    })
    .await;
    // The same, each request with an `Idempotency-Key` of its own.
    let (keyed_elapsed, keyed_times) = load(events, callers, |i| {
        let body = serde_json::json!({"event": "bench.server", "payload": payload(i)});
        let request = client
            .post(&events_url)
            .insert_header(auth.clone())
            .insert_header(("idempotency-key", format!("bench-{i}")))
            .send_json(&body);
        answered(request, 202)
    })
    .await;
    // Batches of `BATCH` events: events accepted per second.
    let batch_url = format!("{base}/api/v1/events/batch");
    let batches = events * 10 / BATCH;
    let (batch_elapsed, batch_times) = load(batches, callers, |i| {
        let events: Vec<_> = (0..BATCH)
            .map(
                |j| serde_json::json!({"event": "bench.server", "payload": payload(i * BATCH + j)}),
            )
            .collect();
        let request = client
            .post(&batch_url)
            .insert_header(auth.clone())
            .send_json(&serde_json::json!({ "events": events }));
        async move {
            match request.await {
                Ok(mut response) if response.status() == 200 => response
                    .json::<serde_json::Value>()
                    .limit(1 << 24)
                    .await
                    .is_ok_and(|answer| answer["accepted"] == BATCH),
                _ => false,
            }
        }
    })
    .await;
    drop(server);

    let scratch = Scratch::new("server-baseline");
    let emitter = WebhooksEmitter::builder()
        .store(open(&scratch.journal()))
        .start_in_background();
    let _ = emitter
        .attach("bench", "bench.server", config(url, events))
        .await;
    let (lib_elapsed, lib_times) = load(events, callers, |i| {
        let emitter = emitter.clone();
        async move {
            emitter
                .emit_durable("bench.server", &payload(i), None)
                .await
                .is_ok()
        }
    })
    .await;
    let _ = emitter.shutdown(Duration::from_secs(5)).await;
    // The same requests to the bench's receiver (actix-web, 1 worker,
    // answering 200 at once): what HTTP alone costs this client and machine.
    let (bare_elapsed, bare_times) = load(events, callers, |i| {
        let body = serde_json::json!({"event": "bench.server", "payload": payload(i)});
        let request = client.post(url).send_json(&body);
        answered(request, 200)
    })
    .await;
    if http_times.len() != events || lib_times.len() != events {
        eprintln!(
            "server: {} and in process: {} of {events} accepted",
            http_times.len(),
            lib_times.len()
        );
    }
    let lib_rate = per_second(lib_times.len(), lib_elapsed);
    vec![
        Row::ratio(
            &figure,
            "ev/s",
            per_second(http_times.len(), http_elapsed),
            lib_rate,
            Some(0.85),
        ),
        Row::ratio(
            &format!("8b server, an Idempotency-Key on every request: events accepted/s, {callers} callers"),
            "ev/s",
            per_second(keyed_times.len(), keyed_elapsed),
            lib_rate,
            Some(0.8),
        ),
        {
            let rate = per_second(batch_times.len() * BATCH, batch_elapsed);
            Row::absolute(
                &format!("8c server, POST /events/batch of {BATCH}: events accepted/s, {callers} callers"),
                format!("{} ev/s", crate::measure::thousands(rate)),
                format!("{} ev/s (emit_durable, one at a time per caller)", crate::measure::thousands(lib_rate)),
                "≥ 100,000 ev/s",
                Some(rate >= 100_000.0),
            )
        },
        Row::absolute(
            "8 server: time to 202 (in process: to on disk)",
            latency(&http_times),
            latency(&lib_times),
            "—",
            None,
        ),
        Row::absolute(
            "8 the same requests to a bare actix-web handler (HTTP alone)",
            format!(
                "{} req/s",
                crate::measure::thousands(per_second(bare_times.len(), bare_elapsed))
            ),
            latency(&bare_times),
            "—",
            None,
        ),
    ]
}
