//! Run with `cargo run --example sse_dashboard`, then open the printed URL.
//!
//! A support desk's live view, over both transports side by side:
//! - left, one `EventSource` streaming two topics on one connection
//!   (`/sse?topic=tickets&topic=comments`, ids like `tickets:4,comments:2`);
//! - right, one WebSocket (`/ws`) joining and leaving the `tickets` and
//!   `comments` rooms with checkboxes, rejoining with `last_id` after a drop.
//!
//! The example publishes a ticket or comment update every second. Set `PORT`
//! to choose the port (default 8080); the server listens on 127.0.0.1 only.

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
  h2 { font-size: 1.05rem; margin-bottom: .3rem; }
  main { display: grid; grid-template-columns: 1fr 1fr; gap: 2rem; }
  .status { font-size: .9rem; color: #666; min-height: 1.2em; }
  label { margin-right: 1rem; font-size: .9rem; }
  table { border-collapse: collapse; width: 100%; margin-top: .6rem; }
  td, th { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #ddd; font-size: .85rem; }
  td.data { font-family: ui-monospace, monospace; }
</style>
</head>
<body>
<h1>Support desk, live</h1>
<main>
<section>
  <h2>SSE: one stream, two topics</h2>
  <div class="status" id="sse-status">connecting…</div>
  <table>
    <thead><tr><th>id</th><th>event</th><th>data</th></tr></thead>
    <tbody id="sse-events"></tbody>
  </table>
</section>
<section>
  <h2>WebSocket: rooms</h2>
  <div>
    <label><input type="checkbox" id="room-tickets" checked> tickets</label>
    <label><input type="checkbox" id="room-comments" checked> comments</label>
  </div>
  <div class="status" id="ws-status">connecting…</div>
  <table>
    <thead><tr><th>room</th><th>id</th><th>event</th><th>data</th></tr></thead>
    <tbody id="ws-events"></tbody>
  </table>
</section>
</main>
<script>
  function addRow(table, cells) {
    const row = document.getElementById(table).insertRow(0);
    cells.forEach((text, i) => {
      const cell = row.insertCell();
      cell.textContent = text;
      if (i === cells.length - 1) cell.className = "data";
    });
    while (row.parentNode.rows.length > 30) row.parentNode.deleteRow(-1);
  }

  // SSE: the browser resends the composite id itself when it reconnects.
  const sseStatus = document.getElementById("sse-status");
  const source = new EventSource("/sse?topic=tickets&topic=comments");
  source.onopen = () => { sseStatus.textContent = "connected"; };
  source.onerror = () => { sseStatus.textContent = "reconnecting (resumes every topic)…"; };
  for (const name of ["ticket.update", "comment.update", "sse-lost"]) {
    source.addEventListener(name, (e) => addRow("sse-events", [e.lastEventId, e.type, e.data]));
  }

  // WebSocket: rooms follow the checkboxes; after a drop, rejoin each room
  // with the last id seen in it.
  const wsStatus = document.getElementById("ws-status");
  const lastId = {};
  let socket;
  function wanted() {
    return ["tickets", "comments"].filter((room) => document.getElementById("room-" + room).checked);
  }
  function send(request) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(request));
  }
  function join(topic) {
    const request = { op: "join", topic };
    if (lastId[topic] !== undefined) request.last_id = lastId[topic];
    send(request);
  }
  function connect() {
    socket = new WebSocket(`ws://${location.host}/ws`);
    socket.onopen = () => { wsStatus.textContent = "connected"; wanted().forEach(join); };
    socket.onclose = (e) => {
      wsStatus.textContent = `closed (${e.code} ${e.reason || "no reason"}); reconnecting…`;
      setTimeout(connect, 1000);
    };
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.op === "joined" || frame.op === "left") {
        wsStatus.textContent = `${frame.op} ${frame.topic}; in: ${wanted().join(", ") || "no room"}`;
      } else if (frame.op === "lost") {
        addRow("ws-events", [frame.topic, "", "lost", `events after ${frame.last_event_id} are gone`]);
      } else if (frame.op === "error") {
        wsStatus.textContent = "error: " + frame.reason;
      } else if (frame.topic !== undefined) {
        lastId[frame.topic] = frame.id;
        addRow("ws-events", [frame.topic, frame.id, frame.event, JSON.stringify(frame.data)]);
      }
    };
  }
  for (const room of ["tickets", "comments"]) {
    document.getElementById("room-" + room).addEventListener("change", (e) => {
      if (e.target.checked) join(room); else send({ op: "leave", topic: room });
    });
  }
  connect();
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
            .route("/ws", for_server.ws_route())
    })
    .bind(("127.0.0.1", port))?
    .run();
    println!("dashboard on http://127.0.0.1:{port}/ (Ctrl-C to stop)");

    // No webhook endpoint is attached: the app publishes to its own topics
    // (`emit` would also publish each event on the topic of its name).
    actix_web::rt::spawn(async move {
        let mut n = 0u64;
        let mut ticker = actix_web::rt::time::interval(Duration::from_secs(1));
        loop {
            ticker.tick().await;
            n += 1;
            let published = if n.is_multiple_of(3) {
                emitter.broadcast(
                    "comments",
                    "comment.update",
                    &json!({"ticket": 1040 + n % 4, "comment": "Any news on this?"}),
                )
            } else {
                emitter.broadcast(
                    "tickets",
                    "ticket.update",
                    &json!({"ticket": 1040 + n % 4, "status": if n.is_multiple_of(2) { "solved" } else { "open" }}),
                )
            };
            if let Err(error) = published {
                eprintln!("publish failed: {error}");
            }
        }
    });
    server.await
}
