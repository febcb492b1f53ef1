//! `WebhooksEmitterBuilder`: options shared by every emitter of one handle, and
//! where the actors are started.

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::broadcast;

use crate::delivery::SsrfGuard;
use crate::emitter::background::BackgroundSystem;
use crate::emitter::config::Defaults;
use crate::emitter::handle::{Actors, Inner, WebhooksEmitter};
use crate::emitter::registry::Registry;
#[cfg(feature = "sse")]
use crate::emitter::registry::SseLink;
use crate::emitter::report::DeliveryReport;
#[cfg(feature = "sse")]
use crate::sse::{BroadcasterSlot, SseBroadcaster, SseOptions};
use crate::store::Store;
#[cfg(all(feature = "sse", feature = "postgres"))]
use crate::{
    sse::{Numbered, Publish},
    store::{postgres::feed::FeedRecord, thread::NoticeSink},
};

/// Default largest serialized payload `emit` accepts: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// Default number of reports a slow report subscriber may fall behind by.
pub const DEFAULT_REPORT_CAPACITY: usize = 4096;

/// Largest report buffer.
const MAX_REPORT_CAPACITY: usize = 1 << 20;

/// Options shared by every emitter of one [`WebhooksEmitter`]; per-endpoint
/// settings live in [`Config`](crate::Config).
#[derive(Debug, Clone)]
pub struct WebhooksEmitterBuilder {
    max_payload_bytes: usize,
    report_capacity: usize,
    defaults: Defaults,
    store: Store,
    #[cfg(feature = "postgres")]
    node_name: Option<String>,
    #[cfg(feature = "sse")]
    sse: SseOptions,
}

impl Default for WebhooksEmitterBuilder {
    fn default() -> Self {
        WebhooksEmitterBuilder {
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            report_capacity: DEFAULT_REPORT_CAPACITY,
            defaults: Defaults::default(),
            store: Store::Memory,
            #[cfg(feature = "postgres")]
            node_name: None,
            #[cfg(feature = "sse")]
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
    #[cfg(feature = "sse")]
    pub fn sse(mut self, options: SseOptions) -> Self {
        self.sse = options;
        self
    }

    /// Where emitters keep their queues, dead letters and paused state:
    /// [`Store::Memory`] (the default), a [`Journal`](crate::Journal), which
    /// survives crashes and restarts, or (feature `postgres`) a `PgStore`,
    /// shared by several nodes:
    ///
    /// ```no_run
    /// # fn run() -> Result<(), webhooks_emitter::StoreError> {
    /// use webhooks_emitter::{Journal, WebhooksEmitter};
    /// let emitter = WebhooksEmitter::builder()
    ///     .store(Journal::open("webhooks.redb")?)
    ///     .start_in_background();
    /// # Ok(()) }
    /// ```
    ///
    /// With a durable store, an emitter's queue bound defaults to 1,000,000
    /// events, of which only a window is kept in memory.
    pub fn store(mut self, store: impl Into<Store>) -> Self {
        self.store = store.into();
        self.defaults.durable = !matches!(self.store, Store::Memory);
        self
    }

    /// This node's name in a cluster (the PostgreSQL store's lease table);
    /// default: the name given to [`PgOptions`](crate::PgOptions), else host
    /// name and process id. Two live processes must not share a name; prefer
    /// [`PgOptions::node_name`](crate::PgOptions::node_name), which `connect`
    /// checks against the live nodes.
    #[cfg(feature = "postgres")]
    pub fn node_name(mut self, name: impl Into<String>) -> Self {
        self.node_name = Some(name.into());
        self
    }

    /// Applies an SSRF guard to every emitter whose config sets none.
    pub fn ssrf_guard(mut self, guard: SsrfGuard) -> Self {
        self.defaults.ssrf_guard = Some(guard);
        self
    }

    /// Largest serialized payload `emit` accepts (default 1 MiB); above it `emit`
    /// returns [`EmitError::PayloadTooLarge`](crate::EmitError::PayloadTooLarge).
    pub fn max_payload_bytes(mut self, limit: usize) -> Self {
        self.max_payload_bytes = limit;
        self
    }

    /// How many reports a subscriber may fall behind before it misses some
    /// (it is then told how many, by `RecvError::Lagged`). Default 4096, kept
    /// between 1 and 1,048,576 (the buffer is allocated up front).
    pub fn report_capacity(mut self, capacity: usize) -> Self {
        self.report_capacity = capacity.clamp(1, MAX_REPORT_CAPACITY);
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
        let actors = self.start_actors(reports.clone());
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
        let (for_actors, builder) = (reports.clone(), self.clone());
        let (background, actors) =
            BackgroundSystem::spawn(move || builder.start_actors(for_actors));
        self.handle(actors, reports, Some(background))
    }

    /// Starts the actors in the current actix `System`.
    fn start_actors(&self, reports: broadcast::Sender<DeliveryReport>) -> Actors {
        #[cfg(feature = "postgres")]
        if let (Store::Postgres(store), Some(name)) = (&self.store, &self.node_name) {
            store.rename(name);
        }
        #[cfg(feature = "sse")]
        {
            // The broadcaster tells the registry if it crashes: it needs the
            // registry's address before the registry runs.
            let context = Context::<Registry>::new();
            let options = self.sse.clone();
            let broadcaster =
                SseBroadcaster::new(options.clone(), Some(context.address().recipient()));
            let sse = BroadcasterSlot::new(broadcaster.start());
            let link = SseLink {
                slot: sse.clone(),
                options,
                pending: Default::default(),
            };
            #[cfg(feature = "postgres")]
            if let Store::Postgres(store) = &self.store {
                if store.shares_live_updates() {
                    // The cluster's feed numbers every node's publications;
                    // they come back through the registry, in feed order.
                    let registry = context.address();
                    store.follow_live_feed(NoticeSink::new(move |record: FeedRecord| {
                        registry.do_send(Publish {
                            topic: record.item.topic,
                            event: record.item.event,
                            data: record.item.data,
                            json: record.item.json,
                            numbered: Some(Numbered {
                                id: record.id,
                                prev: record.prev,
                            }),
                        });
                    }));
                }
            }
            let registry = context.run(Registry::new(reports, self.store.clone()).with_sse(link));
            Actors { registry, sse }
        }
        #[cfg(not(feature = "sse"))]
        Actors {
            registry: Registry::new(reports, self.store.clone()).start(),
        }
    }

    fn handle(
        self,
        actors: Actors,
        reports: broadcast::Sender<DeliveryReport>,
        background: Option<BackgroundSystem>,
    ) -> WebhooksEmitter {
        let inner = Inner::new(
            actors,
            reports,
            background,
            self.max_payload_bytes,
            self.defaults,
            self.store,
            #[cfg(feature = "sse")]
            self.sse,
        );
        WebhooksEmitter {
            inner: Arc::new(inner),
            tenant: None,
        }
    }
}
