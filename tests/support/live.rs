//! A live-updates server on loopback (SSE at `/sse`, WebSocket at `/ws`) and
//! clients for both: `eventsource-stream` for SSE, awc's WebSocket client.

use std::time::Duration;

use actix_web::{App, HttpServer};
use awc::ws::{Codec, Frame, Message};
use eventsource_stream::{Event as SseEvent, Eventsource};
use futures_util::stream::LocalBoxStream;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use webhooks_emitter::sse::SseOptions;
use webhooks_emitter::WebhooksEmitter;

use super::DEADLINE;

/// Parsed SSE events of one stream.
pub type Events = LocalBoxStream<'static, SseEvent>;

/// An emitter and the server mounting its live endpoints.
pub struct Live {
    pub emitter: WebhooksEmitter,
    /// `http://127.0.0.1:<port>/sse`.
    pub sse: String,
    /// `ws://127.0.0.1:<port>/ws`.
    pub ws: String,
    /// `127.0.0.1:<port>`, for raw sockets.
    pub addr: String,
}

/// Starts an emitter with `options` and a server for it on a free port.
pub fn serve(options: SseOptions) -> Live {
    let emitter = WebhooksEmitter::builder().sse(options).start();
    let for_server = emitter.clone();
    let server = HttpServer::new(move || {
        App::new()
            .service(for_server.sse_scope("/sse"))
            .route("/ws", for_server.ws_route())
    })
    .workers(2)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0].to_string();
    actix_web::rt::spawn(server.run());
    Live {
        emitter,
        sse: format!("http://{addr}/sse"),
        ws: format!("ws://{addr}/ws"),
        addr,
    }
}

/// Opens an SSE stream: its status, headers and events.
pub async fn subscribe(
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, awc::http::header::HeaderMap, Events) {
    let mut request = awc::Client::builder().disable_timeout().finish().get(url);
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let events = response
        .eventsource()
        .map(|e| e.expect("SSE parse error"))
        .boxed_local();
    (status, headers, events)
}

/// The next SSE event, within the deadline.
pub async fn next(events: &mut Events) -> SseEvent {
    tokio::time::timeout(DEADLINE, events.next())
        .await
        .expect("no SSE event in time")
        .expect("stream ended")
}

/// The next `n` SSE events.
pub async fn take(events: &mut Events, n: usize) -> Vec<SseEvent> {
    let mut all = Vec::new();
    for _ in 0..n {
        all.push(next(events).await);
    }
    all
}

/// Waits until the broadcaster reports `expected` clients on `topic`.
pub async fn wait_for_clients(emitter: &WebhooksEmitter, topic: &str, expected: usize) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let count = emitter.sse_clients().await.get(topic).copied().unwrap_or(0);
        if count == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} clients on {topic}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await; // polling an observable, not a guess
    }
}

/// Broadcasts 400 text events of 64 KiB on `topic`, each read by a fast
/// client through `read_data`, which must return them in order, while a
/// slow client reads nothing. Returns after how many events the broadcaster
/// had dropped the slow one (fails if it never did).
pub async fn outpace_a_slow_client(
    emitter: &WebhooksEmitter,
    topic: &str,
    mut read_data: impl AsyncFnMut() -> String,
) -> u32 {
    let chunk = "x".repeat(64 * 1024);
    let mut dropped_at = None;
    for n in 1..=400u32 {
        emitter
            .broadcast_text(topic, "blob", &format!("{n}:{chunk}"))
            .unwrap();
        // Paced by the fast client, which must see every event in order.
        let data = read_data().await;
        assert!(
            data.starts_with(&format!("{n}:")),
            "fast client missed an event at {n}"
        );
        if dropped_at.is_none() && emitter.sse_clients().await.get(topic) == Some(&1) {
            dropped_at = Some(n);
        }
    }
    let dropped_at = dropped_at.expect("the slow client was never dropped");
    assert!(
        dropped_at < 400,
        "dropped after {dropped_at} events of 64 KiB"
    );
    dropped_at
}

/// A WebSocket client connection.
pub struct Socket {
    framed: actix_codec::Framed<awc::BoxedSocket, Codec>,
    /// Answer the server's pings (as browsers do); off to play a dead peer.
    pub answer_pings: bool,
    /// Pings received so far.
    pub pings: usize,
}

/// How a connection ended, as the client saw it.
#[derive(Debug, PartialEq)]
pub enum Ended {
    /// A close frame: its code and reason.
    Closed(Option<u16>, String),
    /// The connection ended without a close frame.
    Dropped,
}

impl Socket {
    /// Connects to `url`.
    pub async fn connect(url: &str) -> Socket {
        let client = awc::Client::builder().disable_timeout().finish();
        let (_, framed) = client
            .ws(url)
            .max_frame_size(1 << 20)
            .connect()
            .await
            .expect("WebSocket handshake failed");
        Socket {
            framed,
            answer_pings: true,
            pings: 0,
        }
    }

    /// Sends a JSON text frame.
    pub async fn send(&mut self, request: &Value) {
        self.send_raw(Message::Text(request.to_string().into()))
            .await;
    }

    /// Sends any message.
    pub async fn send_raw(&mut self, message: Message) {
        self.framed.send(message).await.expect("send failed");
    }

    /// The next text frame, parsed; panics if the connection ends first.
    pub async fn recv(&mut self) -> Value {
        match self.recv_or_end().await {
            Ok(value) => value,
            Err(ended) => panic!("connection ended: {ended:?}"),
        }
    }

    /// The next text frame, or how the connection ended.
    pub async fn recv_or_end(&mut self) -> Result<Value, Ended> {
        tokio::time::timeout(DEADLINE, self.next_text())
            .await
            .expect("no WebSocket message in time")
    }

    async fn next_text(&mut self) -> Result<Value, Ended> {
        loop {
            if let Some(text) = self.next_frame().await {
                return text;
            }
        }
    }

    /// Reads one frame: a text frame parsed, or the end; `None` for a ping
    /// (answered if `answer_pings`).
    async fn next_frame(&mut self) -> Option<Result<Value, Ended>> {
        match self.framed.next().await {
            None | Some(Err(_)) => Some(Err(Ended::Dropped)),
            Some(Ok(Frame::Text(text))) => Some(Ok(
                serde_json::from_slice(&text).expect("server sent non-JSON")
            )),
            Some(Ok(Frame::Ping(bytes))) => {
                self.pings += 1;
                if self.answer_pings {
                    let _ = self.framed.send(Message::Pong(bytes)).await;
                }
                None
            }
            Some(Ok(Frame::Close(reason))) => {
                let (code, text) = match reason {
                    Some(reason) => (
                        Some(u16::from(reason.code)),
                        reason.description.unwrap_or_default(),
                    ),
                    None => (None, String::new()),
                };
                Some(Err(Ended::Closed(code, text)))
            }
            Some(Ok(other)) => panic!("unexpected frame {other:?}"),
        }
    }

    /// Reads until `pings` pings have arrived in all; a text frame meanwhile
    /// fails the test.
    pub async fn wait_for_pings(&mut self, pings: usize) -> Result<(), Ended> {
        tokio::time::timeout(DEADLINE, async {
            while self.pings < pings {
                match self.next_frame().await {
                    None => {}
                    Some(Ok(text)) => panic!("unexpected message {text}"),
                    Some(Err(ended)) => return Err(ended),
                }
            }
            Ok(())
        })
        .await
        .expect("no ping in time")
    }

    /// Reads until the connection ends, skipping text frames.
    pub async fn until_end(&mut self) -> Ended {
        loop {
            if let Err(ended) = self.recv_or_end().await {
                return ended;
            }
        }
    }
}
