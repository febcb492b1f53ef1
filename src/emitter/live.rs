//! The live-updates side of the handle (feature `sse`): publish on topics of
//! your own, mount the SSE and WebSocket endpoints, count clients.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use crate::emitter::WebhooksEmitter;
use crate::error::EmitError;
use crate::model::validate_event_name;
use crate::sse::{endpoint, validate_topic, ClientCounts, Publish, StopBroadcaster, ALL_TOPICS};

impl WebhooksEmitter {
    /// Publishes `payload` (as JSON) to the SSE clients of `topic` (and of `*`)
    /// as an event named `event`; no webhook is sent. For topics of your own,
    /// such as a session id. Never waits for a client.
    pub fn broadcast<T: Serialize + ?Sized>(
        &self,
        topic: &str,
        event: &str,
        payload: &T,
    ) -> Result<(), EmitError> {
        self.check_broadcast(topic, event)?;
        let data = self.serialize(payload)?;
        self.publish(topic, event, data, true)
    }

    /// Like [`broadcast`](Self::broadcast) with text data, sent as is (HTML
    /// fragments for htmx, say); line breaks become several `data:` lines,
    /// which clients join back with LF.
    pub fn broadcast_text(&self, topic: &str, event: &str, text: &str) -> Result<(), EmitError> {
        self.check_broadcast(topic, event)?;
        self.check_size(text.len())?;
        self.publish(topic, event, Bytes::copy_from_slice(text.as_bytes()), false)
    }

    fn check_broadcast(&self, topic: &str, event: &str) -> Result<(), EmitError> {
        self.check_accepting()?;
        let invalid_topic = |reason| EmitError::InvalidTopic {
            topic: topic.escape_debug().to_string(),
            reason,
        };
        if topic == ALL_TOPICS {
            return Err(invalid_topic(
                "`*` receives every topic; publish on a topic of its own",
            ));
        }
        validate_topic(topic).map_err(invalid_topic)?;
        validate_event_name(event)?;
        Ok(())
    }

    fn publish(&self, topic: &str, event: &str, data: Bytes, json: bool) -> Result<(), EmitError> {
        self.route(Publish {
            topic: Arc::from(topic),
            event: Arc::from(event),
            data,
            json,
            numbered: None,
        })
    }

    /// An actix-web scope serving `GET <path>/{topic}` as an event stream
    /// (`<path>/*` for every topic). Mount it in each worker's `App`:
    ///
    /// ```no_run
    /// # use actix_web::{App, HttpServer};
    /// # async fn run(emitter: webhooks_emitter::WebhooksEmitter) -> std::io::Result<()> {
    /// HttpServer::new(move || App::new().service(emitter.sse_scope("/sse")))
    ///     .bind(("127.0.0.1", 8080))?
    ///     .run()
    ///     .await
    /// # }
    /// ```
    ///
    /// Clients resume with the `Last-Event-ID` header or the `last_event_id`
    /// query parameter; a malformed id is answered 400.
    pub fn sse_scope(&self, path: &str) -> actix_web::Scope {
        endpoint::scope(path, self.endpoint())
    }

    fn endpoint(&self) -> endpoint::Endpoint {
        endpoint::Endpoint {
            broadcaster: self.inner.actors.sse.clone(),
            options: self.inner.sse_options.clone(),
        }
    }

    /// An actix-web route serving live updates over WebSocket, with rooms:
    /// mount it at a path of your choice. JSON text frames; see the README's
    /// "Live updates".
    ///
    /// ```no_run
    /// # use actix_web::{App, HttpServer};
    /// # async fn run(emitter: webhooks_emitter::WebhooksEmitter) -> std::io::Result<()> {
    /// HttpServer::new(move || App::new().route("/ws", emitter.ws_route()))
    ///     .bind(("127.0.0.1", 8080))?
    ///     .run()
    ///     .await
    /// # }
    /// ```
    pub fn ws_route(&self) -> actix_web::Route {
        crate::sse::ws_route(self.endpoint())
    }

    /// Connected live clients per topic (SSE streams and WebSocket
    /// connections; topics without clients left out).
    pub async fn sse_clients(&self) -> HashMap<String, usize> {
        self.inner
            .actors
            .sse
            .get()
            .send(ClientCounts)
            .await
            .unwrap_or_default()
    }

    /// Ends every SSE stream, so HTTP servers can stop gracefully.
    pub(crate) async fn stop_sse(&self) {
        let _ = self.inner.actors.sse.get().send(StopBroadcaster).await;
    }
}
