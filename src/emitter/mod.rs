//! The sender: the handle applications hold, the actors behind it, and what
//! they own.
//!
//! - [`handle`]: `WebhooksEmitter`, what apps call (also [`durable`],
//!   [`reconfigure`], and `live`: live updates); [`builder`] its options;
//!   [`background`] a `System` on a thread of its own.
//! - [`registry`]: the registry actor: ids → workers, event names → workers;
//!   every emit and every per-emitter call passes through it.
//! - [`worker`]: one actor per emitter: its state machine and messages.
//! - [`retry_policy`] and [`backoff`]: what follows a failed attempt.
//! - [`dead_letter`], [`report`], [`stats`], [`shutdown`], [`test_delivery`]:
//!   what the emitter tells its user.
//! - [`config`]: the per-emitter `Config` and its validation.
//! - [`event`]: an emitted event and its request id.

pub(crate) mod background;
pub(crate) mod backoff;
pub(crate) mod builder;
pub(crate) mod config;
pub(crate) mod dead_letters;
mod durable;
pub(crate) mod handle;
#[cfg(feature = "sse")]
mod live;
pub(crate) mod rate_limit;
mod reconfigure;
pub(crate) mod registry;
pub(crate) mod report;
pub(crate) mod retry_policy;
pub(crate) mod shutdown;
pub(crate) mod stats;
pub(crate) mod test_delivery;
#[cfg(feature = "test-util")]
pub mod test_hooks;
pub(crate) mod worker;

pub use builder::{WebhooksEmitterBuilder, DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_REPORT_CAPACITY};
pub use config::{
    redacted_url, Config, DEFAULT_BACKOFF_LIMIT, DEFAULT_BACKOFF_START,
    DEFAULT_DEAD_LETTER_CAPACITY, DEFAULT_DURABLE_QUEUE_CAPACITY, DEFAULT_MAX_RETRIES,
    DEFAULT_QUEUE_CAPACITY, DEFAULT_REQUEST_TIMEOUT, DEFAULT_RETRY_AFTER_LIMIT,
    ENV_WEBHOOK_API_KEY, ENV_WEBHOOK_URL,
};
pub use handle::WebhooksEmitter;
pub use rate_limit::RateLimit;
pub use report::{AttemptAnswer, DeliveryReport, DropReason, Outcome, PauseReason};
pub use shutdown::{EmitterDeadLetter, ShutdownReport, StoredEvents, Undelivered};
pub use stats::EmitterStats;
pub use test_delivery::{TestDelivery, TEST_EVENT};
