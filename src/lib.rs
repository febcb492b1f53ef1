//! Outgoing webhooks that arrive in order, signed, retried and never silently
//! lost, on actix actors. A port of Elixir's `webhooks_emitter`, wire-compatible
//! with it.
//!
//! Attach emitters (an endpoint and its [`Config`]) to event names, then
//! [`emit`](WebhooksEmitter::emit) events from anywhere. Each emitter is an actor
//! with its own queue: it delivers one event at a time, in emit order, retries a
//! failure with jittered exponential backoff, and after the last attempt keeps
//! the event as a [`DeadLetter`]. Every outcome is published as a
//! [`DeliveryReport`].
//!
//! Every event is also published to Server-Sent Events clients ([`sse`]), and
//! [`verify`] serves the receiving side: signature checks for both schemes, an
//! idempotency store and an actix-web extractor.
//!
//! ```no_run
//! # #[cfg(feature = "emitter")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use webhooks_emitter::{Config, WebhooksEmitter};
//!
//! let emitter = WebhooksEmitter::start_in_background();
//! let config = Config::new("https://host.tld/hooks").secret("supersecret");
//! emitter.attach("my_emitter", "order.created", config).await?;
//! let request_id = emitter.emit("order.created", &serde_json::json!({"id": 1}), None)?;
//! # Ok(()) }
//! ```
//!
//! | setting | default |
//! | --- | --- |
//! | header identifier | `Webhooks` |
//! | attempts per event (`max_retries`) | 3 in total |
//! | request timeout | 5 s |
//! | backoff | 1 s, doubling, capped at 60 s, equal jitter; reset after a success |
//! | queue bound per emitter | 10,000 events |
//! | dead letters kept per emitter | 1,000 |
//! | largest payload | 1 MiB |
//! | success | any 2xx; redirects are not followed and count as failures |
//!
//! # Layout
//!
//! Each folder is one part of the architecture, listed from the top down:
//! a folder imports only those below it
//! (`bin → emitter → {sse, delivery, store} → {model, signing} → {error,
//! redact}`). Everything public is re-exported here, flat.
//!
//! ```text
//! src/
//! ├── bin/webhooks-emitter-server/   the server (feature `server`): REST API with
//! │                    its OpenAPI document, metrics, web console; on this
//! │                    crate's public API only
//! ├── emitter/         the sender (feature `emitter`), on top:
//! │   ├── handle.rs    WebhooksEmitter, what applications call (durable.rs,
//! │   │                reconfigure.rs, live.rs: its other methods)
//! │   ├── builder.rs   options shared by all emitters; starts the actors
//! │   ├── registry/    actor: ids and event names → workers; supervision
//! │   ├── worker/      actor per emitter: state machine, messages, the store's
//! │   │                notices (store.rs), the cluster's lease (cluster.rs),
//! │   │                rate limit and circuit breaker (pacing.rs)
//! │   ├── retry_policy.rs, backoff.rs   what follows a failed attempt
//! │   ├── rate_limit.rs   RateLimit and its token bucket
//! │   ├── config/      per-emitter Config, its validation, URLs
//! │   └── dead_letters.rs, report.rs, stats.rs, shutdown.rs, …
//! ├── sse/             live updates (feature `sse`): the broadcaster actor,
//! │                    the SSE endpoint and frames, WebSocket rooms (`ws/`)
//! ├── delivery/        one HTTP attempt: the request template, client, signed
//! │                    request, envelope, Retry-After, per-thread driver, TLS,
//! │                    SSRF guard
//! ├── store/           where queues live; imports the model, never the emitter:
//! │   ├── queue.rs     the port (EventQueue) and the one notice path
//! │   ├── memory.rs    the in-memory queue
//! │   ├── journal/     the embedded journal (redb) and its writer thread
//! │   ├── postgres/    PostgreSQL (feature `postgres`): group commit, leases,
//! │   │                LISTEN/NOTIFY, the shared live feed (feed.rs),
//! │   │                announcements (announce.rs), on a thread of its own
//! │   └── records.rs, batch.rs, durable.rs, thread.rs
//! ├── telemetry.rs     metrics through the `metrics` facade (feature `metrics`)
//! ├── verify/          the receiving side (feature `verify`): verifiers,
//! │                    idempotency store; actix-web extractor (`verify-actix`)
//! ├── model/           the nouns every layer shares: Event, RequestId and the
//! │                    event-name rules, DeadLetter, Failure
//! ├── signing/         the wire format, shared by sender and receiver:
//! │                    header names, legacy and Standard Webhooks signatures
//! ├── error.rs         typed errors, one enum per concern (StoreError too)
//! └── redact.rs        Redacted<T>: the one type that holds secrets
//! ```
//!
//! Cargo features: `emitter`, `sse`, `verify` and `verify-actix`, on by
//! default; `metrics`, `postgres` (several nodes on PostgreSQL), `server`
//! (the binary), `verify-http` and `test-util`, off by default. A
//! receiver-only build (`default-features = false, features = ["verify"]`)
//! pulls no actix crate, awc or rustls.

#[cfg(feature = "emitter")]
mod delivery;
#[cfg(feature = "emitter")]
mod emitter;
mod error;
#[cfg(feature = "emitter")]
mod model;
mod redact;
mod signing;
#[cfg(feature = "sse")]
pub mod sse;
#[cfg(feature = "emitter")]
mod store;
#[cfg(feature = "emitter")]
mod telemetry;
#[cfg(feature = "verify")]
pub mod verify;

#[cfg(feature = "emitter")]
pub use delivery::SsrfGuard;
#[cfg(feature = "emitter")]
pub use model::{
    channels_admit, subscription_covers, DeadLetter, DeadLetterReason, Event, Failure, RequestId,
    MAX_REQUEST_ID_LEN,
};

/// Property tests everywhere use this: a fixed seed and a bounded number of
/// cases, so that CI runs are repeatable and short. `PROPTEST_CASES` raises the
/// count and `PROPTEST_SEED` picks another seed, for longer hunts.
#[cfg(test)]
pub(crate) fn proptest_config() -> proptest::test_runner::Config {
    fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
        std::env::var(name).ok().and_then(|v| v.parse().ok())
    }
    proptest::test_runner::Config {
        cases: env("PROPTEST_CASES").unwrap_or(256),
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        rng_seed: proptest::test_runner::RngSeed::Fixed(env("PROPTEST_SEED").unwrap_or(0x5eed)),
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}
#[cfg(all(feature = "emitter", feature = "test-util"))]
#[doc(hidden)]
pub use emitter::test_hooks as __test_hooks;
#[cfg(feature = "emitter")]
pub use emitter::{
    redacted_url, AttemptAnswer, Config, DeliveryReport, DropReason, EmitterDeadLetter,
    EmitterStats, Outcome, PauseReason, RateLimit, ShutdownReport, StoredEvents, TestDelivery,
    Undelivered, WebhooksEmitter, WebhooksEmitterBuilder, DEFAULT_BACKOFF_LIMIT,
    DEFAULT_BACKOFF_START, DEFAULT_DEAD_LETTER_CAPACITY, DEFAULT_DURABLE_QUEUE_CAPACITY,
    DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_MAX_RETRIES, DEFAULT_QUEUE_CAPACITY,
    DEFAULT_REPORT_CAPACITY, DEFAULT_REQUEST_TIMEOUT, DEFAULT_RETRY_AFTER_LIMIT,
    ENV_WEBHOOK_API_KEY, ENV_WEBHOOK_URL, TEST_EVENT,
};
pub use error::{AttachError, ConfigError, ControlError, EmitError, EventNameError, StoreError};
pub use signing::headers::{
    DEFAULT_HEADER_IDENTIFIER, HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE,
    HEADER_WEBHOOK_TIMESTAMP, USER_AGENT_VALUE,
};
pub use signing::legacy::{sign, sign_timestamped, SIGNATURE_PREFIX};
pub use signing::standard::{
    parse_standard_secret, sign_standard, MIN_STANDARD_KEY_BYTES, STANDARD_SECRET_PREFIX,
};
#[cfg(feature = "emitter")]
pub use store::{Journal, JournalOptions, RecordChange, Records, Store, StoredCounters};
#[cfg(feature = "postgres")]
pub use store::{PgOptions, PgStore};
