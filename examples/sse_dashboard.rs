//! Run with `cargo run --example sse_dashboard`, then open the printed URL.
//!
//! A small dashboard: a page whose browser `EventSource` subscribes to every
//! topic (`/sse/*`) and shows each event live, while the example emits an
//! order event every second. Set `PORT` to choose the port (default 8080);
//! the server listens on 127.0.0.1 only.

use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;
use webhooks_emitter::sse::SseOptions;
use webhooks_emitter::WebhooksEmitter;

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>webhooks-emitter live</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem; background: #fafafa; }
  h1 { font-size: 1.3rem; }
  #status { font-size: .9rem; color: #666; }
  table { border-collapse: collapse; width: 100%; margin-top: 1rem; }
  td, th { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #ddd; font-size: .9rem; }
  td.data { font-family: ui-monospace, monospace; }
</style>
</head>
<body>
<h1>Events, live</h1>
<div id="status">connecting…</div>
<table>
  <thead><tr><th>id</th><th>event</th><th>data</th></tr></thead>
  <tbody id="events"></tbody>
</table>
<script>
  const status = document.getElementById("status");
  const rows = document.getElementById("events");
  const source = new EventSource("/sse/*");
  source.onopen = () => { status.textContent = "connected"; };
  source.onerror = () => { status.textContent = "reconnecting (resumes from the last id)…"; };
  function show(event) {
    const row = rows.insertRow(0);
    row.insertCell().textContent = event.lastEventId;
    row.insertCell().textContent = event.type;
    const data = row.insertCell();
    data.className = "data";
    data.textContent = event.data;
    while (rows.rows.length > 50) rows.deleteRow(-1);
  }
  for (const name of ["order.created", "order.paid", "sse-lost"]) {
    source.addEventListener(name, show);
  }
</script>
</body>
</html>"#;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let emitter = WebhooksEmitter::builder()
        .sse(SseOptions::default().retry(Duration::from_secs(1)))
        .start();

    let for_server = emitter.clone();
    let server = HttpServer::new(move || {
        App::new()
            .route(
                "/",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("text/html; charset=utf-8")
                        .body(PAGE)
                }),
            )
            .service(for_server.sse_scope("/sse"))
    })
    .bind(("127.0.0.1", port))?
    .run();
    println!("dashboard on http://127.0.0.1:{port}/ (Ctrl-C to stop)");

    // No webhook endpoint is attached: events go to SSE clients only.
    actix_web::rt::spawn(async move {
        let mut order = 0u64;
        let mut ticker = actix_web::rt::time::interval(Duration::from_secs(1));
        loop {
            ticker.tick().await;
            order += 1;
            let name = if order.is_multiple_of(3) {
                "order.paid"
            } else {
                "order.created"
            };
            if let Err(error) = emitter.emit(
                name,
                &json!({"order": order, "total": format!("{}.90", order * 3)}),
                None,
            ) {
                eprintln!("emit failed: {error}");
            }
        }
    });
    server.await
}
