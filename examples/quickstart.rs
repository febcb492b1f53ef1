//! Run with `cargo run --example quickstart`.
//!
//! Starts a local receiver on 127.0.0.1, attaches an emitter with a secret,
//! emits a few events and prints each delivery as it happens. The receiver
//! answers its first request with 503, so you also see a retry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::json;
use webhooks_emitter::{sign, Config, Outcome, WebhooksEmitter};

const SECRET: &str = "quickstart-secret";

/// The receiving side: checks the signature, refuses the very first request.
async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    refused_once: web::Data<AtomicBool>,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
    };
    let signature_ok = header("x-webhooks-signature") == sign(SECRET.as_bytes(), &body);
    println!(
        "  receiver  <- {} {} delivery={} signature={}",
        header("x-webhooks-event"),
        String::from_utf8_lossy(&body),
        header("x-webhooks-delivery"),
        if signature_ok { "valid" } else { "INVALID" },
    );
    if !signature_ok {
        return HttpResponse::Unauthorized().finish();
    }
    if !refused_once.swap(true, Ordering::SeqCst) {
        println!("  receiver  -> 503 (pretending to be busy, once)");
        return HttpResponse::ServiceUnavailable().finish();
    }
    HttpResponse::NoContent().finish()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let refused_once = web::Data::from(Arc::new(AtomicBool::new(false)));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(refused_once.clone())
            .route("/hooks", web::post().to(receive))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))?;
    let url = format!("http://{}/hooks", server.addrs()[0]);
    let server = server.run();
    let server_handle = server.handle();
    actix_web::rt::spawn(server);
    println!("receiver listening on {url}");

    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    let config = Config::new(&url)
        .secret(SECRET)
        .backoff(Duration::from_millis(200), Duration::from_secs(2));
    emitter
        .attach_many("quickstart", ["order.created", "order.paid"], config)
        .await
        .map_err(std::io::Error::other)?;

    let events = [
        ("order.created", json!({"order": 1, "total": "9.90"})),
        ("order.paid", json!({"order": 1})),
        ("order.created", json!({"order": 2, "total": "42.00"})),
    ];
    for (name, payload) in &events {
        let id = emitter
            .emit(name, payload, None)
            .map_err(std::io::Error::other)?;
        println!("emitted   {name} as {id}");
    }

    let mut finished = 0;
    while finished < events.len() {
        let Ok(report) = reports.recv().await else {
            break;
        };
        let what = format!("{} {}", report.event.name(), report.event.request_id());
        match report.outcome {
            Outcome::Delivered {
                status,
                attempts,
                latency,
            } => {
                finished += 1;
                println!(
                    "delivered {what}: HTTP {status} after {attempts} attempt(s), {latency:.1?}"
                );
            }
            Outcome::AttemptFailed {
                attempt,
                failure,
                retry_in,
            } => {
                let latency = report
                    .attempt
                    .as_ref()
                    .map(|a| a.latency)
                    .unwrap_or_default();
                println!(
                    "failed    {what}: attempt {attempt}: {failure} after {latency:.1?}; retrying in {retry_in:.0?}"
                );
            }
            other => {
                finished += 1;
                println!("gave up   {what}: {other:?}");
            }
        }
    }

    let report = emitter.shutdown(Duration::from_secs(5)).await;
    println!("shut down; undelivered: {}", report.undelivered.len());
    server_handle.stop(true).await;
    Ok(())
}
