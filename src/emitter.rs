//! `WebhooksEmitter`: the cheap, cloneable handle applications hold.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::background::BackgroundSystem;
use crate::config::{Config, Defaults};
use crate::dead_letter::DeadLetter;
use crate::error::{AttachError, ControlError, EmitError};
use crate::event::{validate_event_name, Event, RequestId};
use crate::registry::{
    Attach, Detach, Emit, Flush, ListRunning, Lookup, Registry, SetEmitterPaused, Shutdown,
    StatsAll,
};
use crate::report::DeliveryReport;
use crate::shutdown::ShutdownReport;
use crate::sse::{self, ClientCounts, Publish, SseBroadcaster, SseOptions, StopBroadcaster};
use crate::ssrf::SsrfGuard;
use crate::stats::EmitterStats;
use crate::test_delivery::TestDelivery;
use crate::worker::{ListDeadLetters, Redeliver, SendTest, Stats};

/// Default largest serialized payload `emit` accepts: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// Default number of reports a slow report subscriber may fall behind by.
pub const DEFAULT_REPORT_CAPACITY: usize = 4096;

/// The handle to the emitter: attach emitters to event names, emit events,
/// manage emitters at run time. `Clone + Send + Sync`, and cheap to clone.
///
/// ```no_run
/// use webhooks_emitter::{Config, WebhooksEmitter};
///
/// #[actix_web::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let emitter = WebhooksEmitter::start();
///     emitter
///         .attach("crm", "order.created", Config::new("https://crm.example/hooks").secret("s3cret"))
///         .await?;
///     let id = emitter.emit("order.created", &serde_json::json!({"order": 42}), None)?;
///     println!("sent as {id}");
///     let report = emitter.shutdown(std::time::Duration::from_secs(10)).await;
///     assert!(report.undelivered.is_empty());
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct WebhooksEmitter {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Addr<Registry>,
    sse: Addr<SseBroadcaster>,
    sse_options: SseOptions,
    reports: broadcast::Sender<DeliveryReport>,
    accepting: AtomicBool,
    max_payload_bytes: usize,
    defaults: Defaults,
    /// Present when the actors run on the crate's own thread; stopped on drop.
    background: Option<BackgroundSystem>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(background) = &self.background {
            background.stop();
        }
    }
}

/// Options shared by every emitter of one [`WebhooksEmitter`]; per-endpoint
/// settings live in [`Config`].
#[derive(Debug, Clone)]
pub struct WebhooksEmitterBuilder {
    max_payload_bytes: usize,
    report_capacity: usize,
    defaults: Defaults,
    sse: SseOptions,
}

impl Default for WebhooksEmitterBuilder {
    fn default() -> Self {
        WebhooksEmitterBuilder {
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            report_capacity: DEFAULT_REPORT_CAPACITY,
            defaults: Defaults::default(),
            sse: SseOptions::default(),
        }
    }
}

impl WebhooksEmitterBuilder {
    /// Lets configs use relative URLs (`/api/hooks`), joined to `base_url`
    /// with its path kept as a prefix: `http://internal:8080/v1` + `/hooks` is
    /// `http://internal:8080/v1/hooks`. For internal webhooks.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.defaults.base_url = Some(base_url.into());
        self
    }

    /// Settings of the SSE broadcaster: replay buffer, heartbeat, client
    /// buffer, `retry:`, authorization hook.
    pub fn sse(mut self, options: SseOptions) -> Self {
        self.sse = options;
        self
    }

    /// Applies an SSRF guard to every emitter whose config sets none.
    pub fn ssrf_guard(mut self, guard: SsrfGuard) -> Self {
        self.defaults.ssrf_guard = Some(guard);
        self
    }

    /// Largest serialized payload `emit` accepts (default 1 MiB); above it `emit`
    /// returns [`EmitError::PayloadTooLarge`].
    pub fn max_payload_bytes(mut self, limit: usize) -> Self {
        self.max_payload_bytes = limit;
        self
    }

    /// How many reports a subscriber may fall behind before it misses some
    /// (it is then told how many, by `RecvError::Lagged`). Default 4096.
    pub fn report_capacity(mut self, capacity: usize) -> Self {
        self.report_capacity = capacity.max(1);
        self
    }

    /// Starts the actors in the running actix `System` (e.g. under
    /// `#[actix_web::main]`).
    ///
    /// # Panics
    /// Outside a running actix `System`, like `actix::Actor::start`; use
    /// [`start_in_background`](Self::start_in_background) there.
    pub fn start(self) -> WebhooksEmitter {
        let (reports, _) = broadcast::channel(self.report_capacity);
        let actors = start_actors(reports.clone(), self.sse.clone());
        self.handle(actors, reports, None)
    }

    /// Starts the actors on a thread of their own, with their own actix
    /// `System`: for tokio applications and plain threads. The thread stops when
    /// the last handle is dropped or after `shutdown`.
    ///
    /// # Panics
    /// If the operating system cannot start a thread, like `std::thread::spawn`.
    pub fn start_in_background(self) -> WebhooksEmitter {
        let (reports, _) = broadcast::channel(self.report_capacity);
        let (for_actors, sse) = (reports.clone(), self.sse.clone());
        let (background, actors) = BackgroundSystem::spawn(move || start_actors(for_actors, sse));
        self.handle(actors, reports, Some(background))
    }

    fn handle(
        self,
        (registry, sse): (Addr<Registry>, Addr<SseBroadcaster>),
        reports: broadcast::Sender<DeliveryReport>,
        background: Option<BackgroundSystem>,
    ) -> WebhooksEmitter {
        WebhooksEmitter {
            inner: Arc::new(Inner {
                registry,
                sse,
                sse_options: self.sse,
                reports,
                accepting: AtomicBool::new(true),
                max_payload_bytes: self.max_payload_bytes,
                defaults: self.defaults,
                background,
            }),
        }
    }
}

/// Starts the actors in the current actix `System`.
fn start_actors(
    reports: broadcast::Sender<DeliveryReport>,
    sse: SseOptions,
) -> (Addr<Registry>, Addr<SseBroadcaster>) {
    let sse = SseBroadcaster::new(sse).start();
    (Registry::new(reports, sse.clone()).start(), sse)
}

impl WebhooksEmitter {
    /// Options for the whole emitter (payload limit, report buffer).
    pub fn builder() -> WebhooksEmitterBuilder {
        WebhooksEmitterBuilder::default()
    }

    /// Starts with default options inside the running actix `System`.
    /// See [`WebhooksEmitterBuilder::start`].
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// Starts with default options on a background thread.
    /// See [`WebhooksEmitterBuilder::start_in_background`].
    pub fn start_in_background() -> Self {
        Self::builder().start_in_background()
    }

    /// Attaches emitter `id` to one event name.
    pub async fn attach(
        &self,
        id: impl Into<String>,
        event: impl Into<String>,
        config: Config,
    ) -> Result<(), AttachError> {
        self.attach_many(id, [event.into()], config).await
    }

    /// Attaches emitter `id` to several event names; it gets each event emitted
    /// under any of them, in emit order. Repeated names count once.
    pub async fn attach_many<I, S>(
        &self,
        id: impl Into<String>,
        events: I,
        config: Config,
    ) -> Result<(), AttachError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let id = id.into();
        if id.is_empty() {
            return Err(AttachError::EmptyId);
        }
        let mut seen = HashSet::new();
        let mut names: Vec<Arc<str>> = Vec::new();
        for event in events {
            let event = event.into();
            validate_event_name(&event)?;
            if seen.insert(event.clone()) {
                names.push(Arc::from(event));
            }
        }
        if names.is_empty() {
            return Err(AttachError::NoEvents { id });
        }
        let config =
            config
                .validate(&self.inner.defaults)
                .map_err(|source| AttachError::InvalidConfig {
                    id: id.clone(),
                    source,
                })?;
        self.inner
            .registry
            .send(Attach {
                id,
                events: names,
                config: Arc::new(config),
            })
            .await?
    }

    /// Emits `payload` under `event` to every emitter attached to it, and to no
    /// one if none is. Serializes once, queues, and returns at once: it never
    /// waits on the network. Returns the request id: `request_id` if given (1 to
    /// 256 visible ASCII characters), else a new UUIDv4.
    pub fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        payload: &T,
        request_id: Option<String>,
    ) -> Result<RequestId, EmitError> {
        self.check_accepting()?;
        validate_event_name(event)?;
        let request_id = match request_id {
            Some(id) => RequestId::parse(&id)?,
            None => RequestId::generate(),
        };
        let body = self.serialize(payload)?;
        let event = Event::new(Arc::from(event), payload_bytes(body), request_id.clone());
        self.route(Emit(Arc::new(event)))?;
        Ok(request_id)
    }

    /// Refuses new events once `shutdown` has begun.
    fn check_accepting(&self) -> Result<(), EmitError> {
        if self.inner.accepting.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(EmitError::ShuttingDown)
        }
    }

    /// Hands `message` to the registry without waiting. Emits and broadcasts
    /// both go this way, so a caller's calls reach SSE clients in call order.
    fn route<M>(&self, message: M) -> Result<(), EmitError>
    where
        M: actix::Message + Send + 'static,
        M::Result: Send,
        Registry: actix::Handler<M>,
    {
        if !self.inner.registry.connected() {
            return Err(EmitError::NotRunning);
        }
        self.inner.registry.do_send(message);
        Ok(())
    }

    fn serialize<T: Serialize + ?Sized>(&self, payload: &T) -> Result<Vec<u8>, EmitError> {
        let body = serde_json::to_vec(payload).map_err(|e| EmitError::Serialize(e.to_string()))?;
        self.check_size(body.len())?;
        Ok(body)
    }

    fn check_size(&self, size: usize) -> Result<(), EmitError> {
        let limit = self.inner.max_payload_bytes;
        if size > limit {
            return Err(EmitError::PayloadTooLarge { size, limit });
        }
        Ok(())
    }

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
        let body = self.serialize(payload)?;
        self.publish(topic, event, payload_bytes(body))
    }

    /// Like [`broadcast`](Self::broadcast) with text data, sent as is (HTML
    /// fragments for htmx, say); line breaks become several `data:` lines,
    /// which clients join back with LF.
    pub fn broadcast_text(&self, topic: &str, event: &str, text: &str) -> Result<(), EmitError> {
        self.check_broadcast(topic, event)?;
        self.check_size(text.len())?;
        self.publish(topic, event, Bytes::copy_from_slice(text.as_bytes()))
    }

    fn check_broadcast(&self, topic: &str, event: &str) -> Result<(), EmitError> {
        self.check_accepting()?;
        let invalid_topic = |reason| EmitError::InvalidTopic {
            topic: topic.escape_debug().to_string(),
            reason,
        };
        if topic == sse::ALL_TOPICS {
            return Err(invalid_topic(
                "`*` receives every topic; publish on a topic of its own",
            ));
        }
        sse::validate_topic(topic).map_err(invalid_topic)?;
        validate_event_name(event)?;
        Ok(())
    }

    fn publish(&self, topic: &str, event: &str, data: Bytes) -> Result<(), EmitError> {
        self.route(Publish {
            topic: Arc::from(topic),
            event: Arc::from(event),
            data,
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
        sse::scope(path, self.inner.sse.clone(), self.inner.sse_options.clone())
    }

    /// Connected SSE clients per topic (topics without clients left out).
    pub async fn sse_clients(&self) -> std::collections::HashMap<String, usize> {
        self.inner.sse.send(ClientCounts).await.unwrap_or_default()
    }

    /// Stops deliveries of emitter `id`; its events keep being queued.
    pub async fn pause(&self, id: &str) -> Result<(), ControlError> {
        self.set_paused(id, true).await
    }

    /// Resumes deliveries of emitter `id`, in order, from where they stopped.
    pub async fn restart(&self, id: &str) -> Result<(), ControlError> {
        self.set_paused(id, false).await
    }

    async fn set_paused(&self, id: &str, paused: bool) -> Result<(), ControlError> {
        let id = id.to_owned();
        self.inner
            .registry
            .send(SetEmitterPaused { id, paused })
            .await?
    }

    /// Removes emitter `id` and stops it. Returns the events it still had queued
    /// (the one in flight, if any, included), each also reported as dropped.
    /// The id can be attached again afterwards.
    pub async fn detach(&self, id: &str) -> Result<Vec<Arc<Event>>, ControlError> {
        self.inner.registry.send(Detach(id.to_owned())).await?
    }

    /// Ids of the attached emitters that are not paused, sorted.
    pub async fn list_emitters(&self) -> Vec<String> {
        self.inner
            .registry
            .send(ListRunning)
            .await
            .unwrap_or_default()
    }

    /// Whether emitter `id` is attached and not paused.
    pub async fn is_started(&self, id: &str) -> bool {
        self.list_emitters().await.iter().any(|e| e == id)
    }

    /// The dead letters of emitter `id`, oldest first.
    pub async fn dead_letters(&self, id: &str) -> Result<Vec<DeadLetter>, ControlError> {
        Ok(self.worker(id).await?.send(ListDeadLetters).await?)
    }

    /// Queues dead letter `dead_letter` of emitter `id` again, at the tail, with
    /// fresh attempts. On a full queue it stays a dead letter.
    pub async fn redeliver(&self, id: &str, dead_letter: u64) -> Result<(), ControlError> {
        self.worker(id)
            .await?
            .send(Redeliver(Some(dead_letter)))
            .await?
            .map(drop)
    }

    /// Queues every dead letter of emitter `id` again, oldest first; returns how
    /// many. On a full queue, those that did not fit stay dead letters.
    pub async fn redeliver_all(&self, id: &str) -> Result<usize, ControlError> {
        self.worker(id).await?.send(Redeliver(None)).await?
    }

    /// Counters of emitter `id`: queued, in flight, delivered, failures, dead
    /// letters, last status and latency, paused.
    pub async fn stats(&self, id: &str) -> Result<EmitterStats, ControlError> {
        Ok(self.worker(id).await?.send(Stats).await?)
    }

    /// [`stats`](Self::stats) of every attached emitter, sorted by id.
    pub async fn stats_all(&self) -> Vec<EmitterStats> {
        self.inner.registry.send(StatsAll).await.unwrap_or_default()
    }

    /// Sends one `webhook_test` event (`{"test": true, "emitter": id}`) to
    /// emitter `id` now, signed like its other requests but outside its queue
    /// and without retries, and returns what the endpoint answered: for a "test
    /// this webhook" button. Works while the emitter is paused.
    pub async fn test(&self, id: &str) -> Result<TestDelivery, ControlError> {
        Ok(self.worker(id).await?.send(SendTest).await?)
    }

    async fn worker(&self, id: &str) -> Result<Addr<crate::worker::Worker>, ControlError> {
        self.inner.registry.send(Lookup(id.to_owned())).await?
    }

    /// A receiver of every [`DeliveryReport`] from now on. Subscribe before
    /// emitting what you want to observe.
    pub fn reports(&self) -> broadcast::Receiver<DeliveryReport> {
        self.inner.reports.subscribe()
    }

    /// Waits until every emitter's queue is empty (each event delivered or
    /// dead-lettered), or `deadline` passes; `true` if they all emptied. Nothing
    /// is stopped: for tests, benchmarks, and handing over before a deploy.
    /// A paused emitter with queued events keeps it waiting until the deadline.
    pub async fn flush(&self, deadline: Duration) -> bool {
        self.inner
            .registry
            .send(Flush { deadline })
            .await
            .unwrap_or(false)
    }

    /// Stops taking events (`emit` returns [`EmitError::ShuttingDown`]), lets
    /// every queue drain until `deadline`, then stops every emitter and says
    /// what was left undelivered. A background system is stopped afterwards.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.inner.accepting.store(false, Ordering::Release);
        let report = self
            .inner
            .registry
            .send(Shutdown { deadline })
            .await
            .unwrap_or(ShutdownReport {
                drained: false,
                undelivered: Vec::new(),
            });
        // Ends every SSE stream, so HTTP servers can stop gracefully.
        let _ = self.inner.sse.send(StopBroadcaster).await;
        if let Some(background) = &self.inner.background {
            background.stop();
        }
        report
    }
}

impl fmt::Debug for WebhooksEmitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhooksEmitter")
            .field("accepting", &self.inner.accepting.load(Ordering::Relaxed))
            .field("max_payload_bytes", &self.inner.max_payload_bytes)
            .field("background", &self.inner.background.is_some())
            .finish()
    }
}

/// The serialized payload as `Bytes`, without spare capacity: queued events
/// keep their payload alive, so slack would be paid for every queued event.
fn payload_bytes(mut body: Vec<u8>) -> Bytes {
    body.shrink_to_fit();
    Bytes::from(body)
}
