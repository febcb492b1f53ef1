//! Live updates over WebSocket, with rooms: a connection joins and leaves
//! topics and receives their events as JSON text frames, from the same
//! broadcaster as SSE, with the same ids, replay, buffers and authorization.
//!
//! One task per connection: it reads the client's requests, forwards the
//! broadcaster's frames, and pings. A client that falls behind is dropped by
//! the broadcaster, which tells the task: the connection is closed with 1013
//! and a reason, and the others never wait for it. Close codes: 1008 no pong,
//! 1009 message over 64 KiB, 1012 broadcaster restarted, 1013 too slow.

mod guard;
mod origin;
mod protocol;

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Session};
use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

use super::broadcaster::render::ws_op;
use super::broadcaster::{Frame, Join, Leave, LeaveAll};
use super::endpoint::Endpoint;
use super::kick::{Kick, KickReason};
use super::{validate_followed, SseDenied, MAX_WS_MESSAGE};
use protocol::Request;

/// The route: upgrades the request and starts the connection's task.
pub(crate) fn route(endpoint: Endpoint) -> actix_web::Route {
    let endpoint = web::Data::new(endpoint);
    web::get().to(move |request: HttpRequest, body: web::Payload| {
        let endpoint = endpoint.clone();
        async move { upgrade(request, body, endpoint).await }
    })
}

async fn upgrade(
    request: HttpRequest,
    body: web::Payload,
    endpoint: web::Data<Endpoint>,
) -> Result<HttpResponse, actix_web::Error> {
    if !origin::allowed(endpoint.options.ws_origins.as_deref(), &request) {
        return Ok(HttpResponse::Forbidden()
            .content_type("text/plain; charset=utf-8")
            .body("WebSocket connections from this origin are not allowed"));
    }
    // The client's bytes pass the frame guard before actix-ws buffers them.
    let guarded: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
        Box::pin(guard::Guarded::new(body.into_inner(), MAX_WS_MESSAGE));
    let body = web::Payload::from_request(&request, &mut Payload::from(guarded)).await?;
    let (response, session, messages) = actix_ws::handle(&request, body)?;
    let messages = messages
        .max_frame_size(MAX_WS_MESSAGE)
        .aggregate_continuations()
        .max_continuation_size(MAX_WS_MESSAGE);
    actix_web::rt::spawn(Connection::new(endpoint, request, session).run(messages));
    Ok(response)
}

/// Why a connection ends.
enum Closing {
    /// The server closes it, with a code and a reason.
    Close(CloseCode, &'static str),
    /// The peer is gone already.
    Gone,
}

struct Connection {
    endpoint: web::Data<Endpoint>,
    request: HttpRequest,
    session: Session,
    /// The broadcaster's id for this connection, once it joined a topic.
    id: Option<u64>,
    joined: HashSet<Arc<str>>,
    /// Frames from the broadcaster; the sender is kept so it never closes.
    sender: mpsc::Sender<Frame>,
    frames: mpsc::Receiver<Frame>,
    kick: Arc<Kick>,
    /// When the oldest ping not yet answered was sent.
    unanswered_since: Option<Instant>,
}

impl Connection {
    fn new(endpoint: web::Data<Endpoint>, request: HttpRequest, session: Session) -> Self {
        let (sender, frames) = mpsc::channel(endpoint.options.client_buffer);
        Connection {
            endpoint,
            request,
            session,
            id: None,
            joined: HashSet::new(),
            sender,
            frames,
            kick: Arc::default(),
            unanswered_since: None,
        }
    }

    async fn run(mut self, mut messages: actix_ws::AggregatedMessageStream) {
        let interval = self.endpoint.options.ws_ping;
        let mut pings = actix_web::rt::time::interval_at(
            actix_web::rt::time::Instant::now() + interval,
            interval,
        );
        let closing = loop {
            tokio::select! {
                message = messages.recv() => match message {
                    None => break None,
                    Some(Ok(message)) => {
                        if let Some(closing) = self.on_message(message).await {
                            break Some(closing);
                        }
                    }
                    Some(Err(error)) => break Some(protocol_error(&error)),
                },
                Some(frame) = self.frames.recv() => {
                    if let Some(closing) = self.forward(Arc::unwrap_or_clone(frame)).await {
                        break Some(closing);
                    }
                }
                reason = self.kick.kicked() => break Some(kicked(reason)),
                _ = pings.tick() => {
                    if self.unanswered_since.is_some_and(|since| since.elapsed() >= interval * 2) {
                        break Some(Closing::Close(CloseCode::Policy, "no pong within two pings"));
                    }
                    self.unanswered_since.get_or_insert_with(Instant::now);
                    if self.session.ping(b"").await.is_err() {
                        break Some(Closing::Gone);
                    }
                }
            }
        };
        if let Some(id) = self.id {
            self.endpoint.broadcaster.get().do_send(LeaveAll(id));
        }
        if let Some(Closing::Close(code, reason)) = closing {
            let reason = CloseReason {
                code,
                description: Some(reason.into()),
            };
            // A peer that reads nothing cannot even be sent the close frame:
            // dropping the session ends the connection anyway.
            let close = self.session.close(Some(reason));
            let _ = actix_web::rt::time::timeout(interval, close).await;
        }
    }

    /// Sends the broadcaster's frames (one WebSocket message per line),
    /// unless the broadcaster gives up on this client meanwhile.
    async fn forward(&mut self, frame: Bytes) -> Option<Closing> {
        for line in frame.split(|b| *b == b'\n') {
            let text = String::from_utf8_lossy(line).into_owned();
            tokio::select! {
                sent = self.session.text(text) => {
                    if sent.is_err() {
                        return Some(Closing::Gone);
                    }
                }
                reason = self.kick.kicked() => return Some(kicked(reason)),
            }
        }
        None
    }

    async fn on_message(&mut self, message: AggregatedMessage) -> Option<Closing> {
        match message {
            AggregatedMessage::Text(text) => self.on_request(&text).await,
            AggregatedMessage::Binary(_) => {
                self.error("binary frames are not supported; send JSON text")
                    .await
            }
            AggregatedMessage::Ping(bytes) => {
                self.session.pong(&bytes).await.err().map(|_| Closing::Gone)
            }
            AggregatedMessage::Pong(_) => {
                self.unanswered_since = None;
                None
            }
            AggregatedMessage::Close(_) => {
                Some(Closing::Close(CloseCode::Normal, "closed by the client"))
            }
        }
    }

    async fn on_request(&mut self, text: &str) -> Option<Closing> {
        match protocol::parse(text) {
            Err(reason) => self.error(&reason).await,
            Ok(Request::Ping {}) => self.send(ws_op("pong", serde_json::json!({}))).await,
            Ok(Request::Leave { topic }) => {
                if let Err(reason) = validate_followed(&topic) {
                    return self.error(&format!("invalid topic: {reason}")).await;
                }
                let topic: Arc<str> = Arc::from(topic);
                if self.joined.remove(&topic) {
                    if let Some(conn) = self.id {
                        self.endpoint.broadcaster.get().do_send(Leave {
                            conn,
                            topic: topic.clone(),
                        });
                    }
                    self.send(ws_op("left", serde_json::json!({ "topic": &*topic })))
                        .await
                } else {
                    self.error(&format!("not in room `{}`", topic.escape_debug()))
                        .await
                }
            }
            Ok(Request::Join { topic, last_id }) => self.join(topic, last_id).await,
        }
    }

    async fn join(&mut self, topic: String, last_id: Option<u64>) -> Option<Closing> {
        if let Err(reason) = validate_followed(&topic) {
            return self.error(&format!("invalid topic: {reason}")).await;
        }
        let topic: Arc<str> = Arc::from(topic);
        if self.joined.contains(&topic) {
            return self
                .error(&format!("already in room `{}`", topic.escape_debug()))
                .await;
        }
        let max = self.endpoint.options.max_topics;
        if self.joined.len() >= max {
            return self
                .error(&format!("too many rooms: at most {max} per connection"))
                .await;
        }
        if let Some(authorize) = &self.endpoint.options.authorize {
            if let Err(denied) = authorize(&topic, &self.request) {
                let why = match denied {
                    SseDenied::Unauthorized => "unauthorized",
                    SseDenied::Forbidden => "forbidden",
                };
                return self
                    .error(&format!("join `{}` refused: {why}", topic.escape_debug()))
                    .await;
            }
        }
        let join = Join {
            conn: self.id,
            topic: topic.clone(),
            last_id,
            sender: self.sender.clone(),
            kick: self.kick.clone(),
        };
        match self.endpoint.broadcaster.get().send(join).await {
            Ok(id) => {
                self.id = Some(id);
                self.joined.insert(topic);
                None
            }
            Err(_) => self.error("live updates are unavailable; try again").await,
        }
    }

    async fn error(&mut self, reason: &str) -> Option<Closing> {
        self.send(ws_op("error", serde_json::json!({ "reason": reason })))
            .await
    }

    async fn send(&mut self, frame: Bytes) -> Option<Closing> {
        self.forward(frame).await
    }
}

/// The close for a message the protocol refuses.
fn protocol_error(error: &actix_ws::ProtocolError) -> Closing {
    let too_big = match error {
        actix_ws::ProtocolError::Overflow => true,
        // How actix-ws reports fragments adding up to over the limit, and
        // how it passes on the frame guard's refusal.
        actix_ws::ProtocolError::Io(io) => {
            let io = io.to_string();
            io.contains("maximum continuation size") || io.contains("size limit")
        }
        _ => false,
    };
    if too_big {
        Closing::Close(CloseCode::Size, "message over 64 KiB")
    } else {
        Closing::Close(CloseCode::Protocol, "WebSocket protocol error")
    }
}

/// The close for a connection the broadcaster dropped.
fn kicked(reason: KickReason) -> Closing {
    match reason {
        KickReason::TooSlow => Closing::Close(
            CloseCode::Again,
            "too slow: fell behind the live updates; reconnect and join with last_id",
        ),
        KickReason::Restarted => Closing::Close(
            CloseCode::Restart,
            "live updates restarted; reconnect and join with last_id",
        ),
    }
}
