//! `WebhooksEmitter`: the cheap, cloneable handle applications hold.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::emitter::background::BackgroundSystem;
use crate::emitter::builder::WebhooksEmitterBuilder;
use crate::emitter::config::{Config, Defaults};
use crate::emitter::registry::{
    Attach, Detach, Emit, Flush, Forward, ListRunning, Registry, Shutdown, StatsAll,
};
use crate::emitter::report::DeliveryReport;
use crate::emitter::shutdown::ShutdownReport;
use crate::emitter::stats::EmitterStats;
use crate::emitter::test_delivery::TestDelivery;
use crate::emitter::worker::{
    ListDeadLetters, Redeliver, SendTest, SetPaused, Stats, WhenRecovered, Worker,
};
use crate::error::{AttachError, ControlError, EmitError};
use crate::model::subscription::{validate_channels, validate_subscription, validate_tenant};
use crate::model::DeadLetter;
use crate::model::{validate_event_name, Event, RequestId};
use crate::store::Store;

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
    pub(crate) inner: Arc<Inner>,
    /// The tenant this handle emits for (see [`for_tenant`](Self::for_tenant)).
    pub(crate) tenant: Option<Arc<str>>,
}

/// The actors of one handle.
pub(crate) struct Actors {
    pub registry: actix::Addr<Registry>,
    #[cfg(feature = "sse")]
    pub sse: crate::sse::BroadcasterSlot,
}

/// What every clone of a handle shares.
pub(crate) struct Inner {
    pub actors: Actors,
    #[cfg(feature = "sse")]
    pub sse_options: crate::sse::SseOptions,
    pub reports: broadcast::Sender<DeliveryReport>,
    pub accepting: AtomicBool,
    pub max_payload_bytes: usize,
    pub defaults: Defaults,
    pub store: Store,
    /// Present when the actors run on the crate's own thread; stopped on drop.
    pub background: Option<BackgroundSystem>,
}

impl Inner {
    /// A handle's state around actors already started.
    pub(crate) fn new(
        actors: Actors,
        reports: broadcast::Sender<DeliveryReport>,
        background: Option<BackgroundSystem>,
        max_payload_bytes: usize,
        defaults: Defaults,
        store: Store,
        #[cfg(feature = "sse")] sse_options: crate::sse::SseOptions,
    ) -> Self {
        Inner {
            actors,
            #[cfg(feature = "sse")]
            sse_options,
            reports,
            accepting: AtomicBool::new(true),
            max_payload_bytes,
            defaults,
            store,
            background,
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(background) = &self.background {
            background.stop();
        }
    }
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

    /// A handle whose emits are for `tenant` (1 to 128 letters, digits, `.`,
    /// `-`, `_` or `:`): they reach only the emitters of that tenant (see
    /// [`Config::tenant`]), never one of another tenant or of none, whatever
    /// their names and channels. It shares everything else with `self`:
    /// `attach`, `detach` and the other calls act on every emitter, as on
    /// any handle. Events emitted for a tenant are not published to SSE
    /// clients, whose topics are event names shared by every tenant.
    ///
    /// ```no_run
    /// # use webhooks_emitter::{Config, WebhooksEmitter};
    /// # async fn run(emitter: WebhooksEmitter) -> Result<(), Box<dyn std::error::Error>> {
    /// let config = Config::new("https://acme.example/hooks").tenant("acme");
    /// emitter.attach("acme-crm", "order.created", config).await?;
    /// let acme = emitter.for_tenant("acme")?;
    /// acme.emit("order.created", &serde_json::json!({"order": 42}), None)?; // reaches acme-crm
    /// emitter.emit("order.created", &serde_json::json!({"order": 43}), None)?; // does not
    /// # Ok(()) }
    /// ```
    pub fn for_tenant(&self, tenant: &str) -> Result<WebhooksEmitter, EmitError> {
        let tenant = validate_tenant(tenant)
            .map_err(|(tenant, reason)| EmitError::InvalidTenant { tenant, reason })?;
        Ok(WebhooksEmitter {
            inner: self.inner.clone(),
            tenant: Some(tenant),
        })
    }

    fn registry(&self) -> &actix::Addr<Registry> {
        &self.inner.actors.registry
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
    ///
    /// A name may be a pattern: `*` is every event, `order.*` every event
    /// whose name starts with `order.` (not `order` itself). An event that
    /// several of an emitter's names or patterns cover reaches it once. `*`
    /// anywhere else is refused ([`AttachError::InvalidEventName`]).
    ///
    /// ```no_run
    /// # async fn run(emitter: webhooks_emitter::WebhooksEmitter) -> Result<(), webhooks_emitter::AttachError> {
    /// use webhooks_emitter::Config;
    /// let config = Config::new("https://crm.example/hooks");
    /// emitter.attach_many("crm", ["order.*", "user.deleted"], config).await?;
    /// # Ok(()) }
    /// ```
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
        let attach = self.prepare(id.into(), events, config)?;
        let id = attach.id.clone();
        self.registry()
            .send(attach)
            .await
            .map_err(|_| AttachError::NotRunning)??;
        // With a store, return once its state is applied: right after
        // `attach`, a paused emitter reads as paused and its dead letters are
        // there. (A detach in between makes this answer an error: ignored.)
        let _ = self.ask(&id, WhenRecovered).await;
        Ok(())
    }

    /// Checks what `attach_many` and `reconfigure` are given: a non-empty id,
    /// valid event names (repeats dropped), a valid config.
    pub(crate) fn prepare<I, S>(
        &self,
        id: String,
        events: I,
        config: Config,
    ) -> Result<Attach, AttachError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        if id.is_empty() {
            return Err(AttachError::EmptyId);
        }
        let mut seen = HashSet::new();
        let mut names: Vec<Arc<str>> = Vec::new();
        for event in events {
            let event = event.into();
            validate_subscription(&event)?;
            if seen.insert(event.clone()) {
                names.push(Arc::from(event));
            }
        }
        if names.is_empty() {
            return Err(AttachError::NoEvents { id });
        }
        match config.validate(&self.inner.defaults) {
            Ok(config) => Ok(Attach {
                id,
                events: names,
                config: Arc::new(config),
            }),
            Err(source) => Err(AttachError::InvalidConfig { id, source }),
        }
    }

    /// Emits `payload` under `event` to every emitter attached to it, and to no
    /// one if none is. Serializes once, queues, and returns at once: it never
    /// waits on the network. Returns the request id: `request_id` if given (1 to
    /// 256 visible ASCII characters), else a new UUIDv4.
    ///
    /// With a durable store the event is on disk within the commit interval
    /// (2 ms by default); a crash inside it can lose the event, as with
    /// PostgreSQL's `synchronous_commit = off`. [`emit_durable`](Self::emit_durable)
    /// waits until it is on disk. While the store cannot be written, `emit`
    /// returns [`EmitError::Store`].
    pub fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        payload: &T,
        request_id: Option<String>,
    ) -> Result<RequestId, EmitError> {
        self.emit_in(NO_CHANNELS, event, payload, request_id)
    }

    /// [`emit`](Self::emit) to the emitters on one of `channels` only (see
    /// [`Config::channels`]): of the emitters its name reaches, those that
    /// share a channel with it. No channels: as `emit`. At most 10 channels,
    /// each 1 to 128 letters, digits, `.`, `-`, `_` or `:`
    /// ([`EmitError::InvalidChannel`] otherwise).
    pub fn emit_in<T: Serialize + ?Sized>(
        &self,
        channels: &[&str],
        event: &str,
        payload: &T,
        request_id: Option<String>,
    ) -> Result<RequestId, EmitError> {
        let channels = checked_channels(channels)?;
        let event = self.new_event(event, payload, request_id)?;
        let request_id = event.request_id().clone();
        self.route(Emit {
            event,
            durable: None,
            channels,
            tenant: self.tenant.clone(),
        })?;
        Ok(request_id)
    }

    /// Checks and serializes an event, as `emit` and `emit_durable` accept it.
    pub(crate) fn new_event<T: Serialize + ?Sized>(
        &self,
        event: &str,
        payload: &T,
        request_id: Option<String>,
    ) -> Result<Arc<Event>, EmitError> {
        self.check_accepting()?;
        if let Some(error) = self.inner.store.failure() {
            return Err(EmitError::Store(error));
        }
        validate_event_name(event)?;
        let request_id = match request_id {
            Some(id) => RequestId::parse(&id)?,
            None => RequestId::generate(),
        };
        let body = self.serialize(payload)?;
        Ok(Arc::new(Event::new(shared_name(event), body, request_id)))
    }

    /// Refuses new events once `shutdown` has begun.
    pub(crate) fn check_accepting(&self) -> Result<(), EmitError> {
        if self.inner.accepting.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(EmitError::ShuttingDown)
        }
    }

    /// Hands `message` to the registry without waiting. Emits and broadcasts
    /// both go this way, so a caller's calls reach SSE clients in call order.
    pub(crate) fn route<M>(&self, message: M) -> Result<(), EmitError>
    where
        M: actix::Message + Send + 'static,
        M::Result: Send,
        Registry: actix::Handler<M>,
    {
        if !self.registry().connected() {
            return Err(EmitError::NotRunning);
        }
        self.registry().do_send(message);
        Ok(())
    }

    /// The payload as JSON, within the size limit.
    pub(crate) fn serialize<T: Serialize + ?Sized>(&self, payload: &T) -> Result<Bytes, EmitError> {
        let body = serde_json::to_vec(payload).map_err(|e| EmitError::Serialize(e.to_string()))?;
        self.check_size(body.len())?;
        Ok(payload_bytes(body))
    }

    /// Refuses a payload above the limit.
    pub(crate) fn check_size(&self, size: usize) -> Result<(), EmitError> {
        let limit = self.inner.max_payload_bytes;
        if size > limit {
            return Err(EmitError::PayloadTooLarge { size, limit });
        }
        Ok(())
    }

    /// Stops deliveries of emitter `id`; its events keep being queued.
    /// With a durable store, the paused state is on disk when this returns.
    pub async fn pause(&self, id: &str) -> Result<(), ControlError> {
        self.ask(id, SetPaused(true)).await?;
        self.committed(()).await
    }

    /// Resumes deliveries of emitter `id`, in order, from where they stopped.
    /// With a durable store, the resumed state is on disk when this returns.
    pub async fn restart(&self, id: &str) -> Result<(), ControlError> {
        self.ask(id, SetPaused(false)).await?;
        self.committed(()).await
    }

    /// `answer`, once everything the worker sent to the store before it is
    /// committed: what a control call reports (paused, a dead letter, a
    /// redelivery) must survive a crash the moment after it returns.
    async fn committed<T>(&self, answer: T) -> Result<T, ControlError> {
        self.inner
            .store
            .flush()
            .await
            .map_err(ControlError::Store)?;
        Ok(answer)
    }

    /// Removes emitter `id` and stops it. Returns the events it still had queued
    /// (the one in flight, if any, included), each also reported as dropped.
    /// The id can be attached again afterwards.
    pub async fn detach(&self, id: &str) -> Result<Vec<Arc<Event>>, ControlError> {
        self.registry()
            .send(Detach(id.to_owned()))
            .await
            .map_err(|_| ControlError::NotRunning)?
    }

    /// Ids of the attached emitters that are not paused, sorted.
    pub async fn list_emitters(&self) -> Vec<String> {
        self.registry().send(ListRunning).await.unwrap_or_default()
    }

    /// Whether emitter `id` is attached and not paused.
    pub async fn is_started(&self, id: &str) -> bool {
        self.list_emitters().await.iter().any(|e| e == id)
    }

    /// The dead letters of emitter `id`, oldest first.
    /// With a durable store, every dead letter listed is on disk when this
    /// returns.
    pub async fn dead_letters(&self, id: &str) -> Result<Vec<DeadLetter>, ControlError> {
        let letters = self.ask(id, ListDeadLetters).await?;
        self.committed(letters).await
    }

    /// Queues dead letter `dead_letter` of emitter `id` again, at the tail, with
    /// fresh attempts. On a full queue it stays a dead letter.
    pub async fn redeliver(&self, id: &str, dead_letter: u64) -> Result<(), ControlError> {
        let queued = self.ask(id, Redeliver(Some(dead_letter))).await??;
        self.committed(queued).await.map(drop)
    }

    /// Queues every dead letter of emitter `id` again, oldest first; returns how
    /// many. On a full queue, those that did not fit stay dead letters.
    pub async fn redeliver_all(&self, id: &str) -> Result<usize, ControlError> {
        let queued = self.ask(id, Redeliver(None)).await??;
        self.committed(queued).await
    }

    /// Counters of emitter `id`: queued, in flight, delivered, failures, dead
    /// letters, last status and latency, paused.
    pub async fn stats(&self, id: &str) -> Result<EmitterStats, ControlError> {
        self.ask(id, Stats).await
    }

    /// [`stats`](Self::stats) of every attached emitter, sorted by id.
    pub async fn stats_all(&self) -> Vec<EmitterStats> {
        self.registry().send(StatsAll).await.unwrap_or_default()
    }

    /// Sends one `webhook_test` event (`{"test": true, "emitter": id}`) to
    /// emitter `id` now, signed like its other requests but outside its queue
    /// and without retries, and returns what the endpoint answered: for a "test
    /// this webhook" button. Works while the emitter is paused.
    pub async fn test(&self, id: &str) -> Result<TestDelivery, ControlError> {
        self.ask(id, SendTest).await
    }

    /// Sends `message` to the worker of `id`, through the registry.
    pub(crate) async fn ask<M>(&self, id: &str, message: M) -> Result<M::Result, ControlError>
    where
        M: actix::Message + Send + 'static,
        M::Result: Send + 'static,
        Worker: actix::Handler<M>,
    {
        let id = id.to_owned();
        self.registry()
            .send(Forward { id, message })
            .await
            .map_err(|_| ControlError::NotRunning)?
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
        self.registry()
            .send(Flush { deadline })
            .await
            .unwrap_or(false)
    }

    /// Stops taking events (`emit` returns [`EmitError::ShuttingDown`]), lets
    /// every queue drain until `deadline`, then stops every emitter and says
    /// what was left undelivered. With a durable store, what is left stays
    /// in it (on disk when this returns) for the next start. A background
    /// system is stopped afterwards.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.inner.accepting.store(false, Ordering::Release);
        let report = self
            .registry()
            .send(Shutdown { deadline })
            .await
            .unwrap_or(ShutdownReport {
                drained: false,
                undelivered: Vec::new(),
                dead_letters: Vec::new(),
                stored: Vec::new(),
            });
        // Acknowledgements and attempt counts ride on the next durable
        // commit: there is none after this unless asked for, and a restart
        // would deliver their events again.
        if let Err(error) = self.inner.store.flush().await {
            tracing::warn!(%error, "store not flushed at shutdown; acknowledged events may be delivered again after a restart");
        }
        #[cfg(feature = "sse")]
        self.stop_sse().await;
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
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// The serialized payload as `Bytes`, without spare capacity: queued events
/// keep their payload alive, so slack would be paid for every queued event.
fn payload_bytes(mut body: Vec<u8>) -> Bytes {
    body.shrink_to_fit();
    Bytes::from(body)
}

/// What `emit` sends to: no channel in particular.
pub(crate) const NO_CHANNELS: &[&str] = &[];

/// `channels` checked for an emit: `None` when there are none.
pub(crate) fn checked_channels(channels: &[&str]) -> Result<Option<Arc<[Arc<str>]>>, EmitError> {
    if channels.is_empty() {
        return Ok(None);
    }
    validate_channels(channels)
        .map(Some)
        .map_err(|(channel, reason)| EmitError::InvalidChannel { channel, reason })
}

/// Most event names one thread keeps for sharing; past it, the cache starts
/// again (any caller may emit any name: memory stays bounded).
const MAX_SHARED_NAMES: usize = 1024;

/// The names one thread emitted lately, each shared by its events rather
/// than copied into every one: a million queued events of one name then hold
/// one copy of it, not a million (about 48 bytes each).
#[derive(Default)]
struct SharedNames {
    /// The name emitted last: callers mostly emit it again, and it is
    /// compared first, without hashing.
    last: Option<Arc<str>>,
    by_name: std::collections::HashMap<Box<str>, Arc<str>>,
}

thread_local! {
    static SHARED_NAMES: std::cell::RefCell<SharedNames> = std::cell::RefCell::default();
}

/// `name`, shared with the other events of that name emitted on this thread.
fn shared_name(name: &str) -> Arc<str> {
    SHARED_NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if let Some(last) = names.last.as_ref().filter(|last| &***last == name) {
            return last.clone();
        }
        let shared = match names.by_name.get(name) {
            Some(shared) => shared.clone(),
            None => {
                if names.by_name.len() >= MAX_SHARED_NAMES {
                    names.by_name.clear();
                }
                let shared: Arc<str> = Arc::from(name);
                names.by_name.insert(Box::from(name), shared.clone());
                shared
            }
        };
        names.last = Some(shared.clone());
        shared
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_of_one_name_share_it_and_any_number_of_names_stays_correct() {
        let a = shared_name("order.created");
        let b = shared_name("order.created");
        assert!(Arc::ptr_eq(&a, &b), "the same name is shared");
        // Past the cache's bound it starts again; every name stays right.
        for n in 0..(MAX_SHARED_NAMES * 3) {
            let name = format!("event.{n}");
            assert_eq!(&*shared_name(&name), name);
        }
        let size = SHARED_NAMES.with(|names| names.borrow().by_name.len());
        assert!(size <= MAX_SHARED_NAMES, "{size}");
        assert_eq!(&*shared_name("order.created"), "order.created");
    }
}
