//! Run with `cargo run --example receiver`.
//!
//! A receiving app: an actix-web endpoint that verifies Standard Webhooks
//! signatures, ignores duplicate deliveries and prints what it accepts. To show
//! it working, the example then sends it three things on 127.0.0.1: a real
//! event, the same event again (as a sender's retry would), and a forgery.

use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;
use serde_json::json;
use webhooks_emitter::verify::{
    IdempotencyStore, StandardVerifier, VerifiedWebhook, WebhookVerification,
};
use webhooks_emitter::{Config, Outcome, WebhooksEmitter};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

#[derive(Debug, Deserialize)]
struct OrderCreated {
    order: u64,
    total: String,
}

/// The handler only runs for authentic, fresh, first-time deliveries.
async fn order_created(mut webhook: VerifiedWebhook<OrderCreated>) -> HttpResponse {
    println!(
        "  accepted  {} (signed at {}): order {} for {}",
        webhook.delivery().id,
        webhook.delivery().timestamp.unwrap_or_default(),
        webhook.order,
        webhook.total
    );
    // Record the id only once the work is done: had we failed, the sender's
    // retry would be processed instead of ignored.
    webhook.done();
    HttpResponse::NoContent().finish()
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let verification = WebhookVerification::new(StandardVerifier::new(SECRET)?).idempotency(
        IdempotencyStore::new(100_000, Duration::from_secs(24 * 3600)),
    );
    let server = HttpServer::new(move || {
        App::new()
            .app_data(verification.clone())
            .route("/hooks/orders", web::post().to(order_created))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))?;
    let url = format!("http://{}/hooks/orders", server.addrs()[0]);
    let server = server.run();
    let server_handle = server.handle();
    actix_web::rt::spawn(server);
    println!("receiver listening on {url}");

    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    emitter
        .attach(
            "shop",
            "order.created",
            Config::new(&url).standard_webhooks(SECRET),
        )
        .await?;
    let payload = json!({"order": 1001, "total": "19.90"});
    for label in ["first delivery", "same id again"] {
        println!("sending   {label}");
        emitter.emit("order.created", &payload, Some("msg_order_1001".into()))?;
        if let Ok(report) = reports.recv().await {
            if let Outcome::Delivered { status, .. } = report.outcome {
                println!("  sender saw HTTP {status}");
            }
        }
    }

    println!("sending   a forgery (signed with another key)");
    let forged = awc::Client::default()
        .post(&url)
        .insert_header(("webhook-id", "msg_forged"))
        .insert_header(("webhook-timestamp", "1700000000"))
        .insert_header((
            "webhook-signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ))
        .send_body(r#"{"order":1,"total":"0.01"}"#)
        .await;
    if let Ok(mut response) = forged {
        let body = response.body().await.unwrap_or_default();
        println!(
            "  rejected  HTTP {}: {}",
            response.status(),
            String::from_utf8_lossy(&body)
        );
    }

    let _ = emitter.shutdown(Duration::from_secs(5)).await;
    server_handle.stop(true).await;
    Ok(())
}
