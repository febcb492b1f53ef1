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
//! use webhooks_emitter::{Config, WebhooksEmitter};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
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

mod background;
mod backoff;
mod config;
mod dead_letter;
mod delivery;
mod driver;
mod emitter;
mod error;
mod event;
mod queue;
mod registry;
mod report;
mod shutdown;
mod signature;
pub mod sse;
mod ssrf;
mod standard_webhooks;
mod stats;
mod test_delivery;
mod tls;
mod worker;

pub mod verify;

pub use config::{
    Config, DEFAULT_BACKOFF_LIMIT, DEFAULT_BACKOFF_START, DEFAULT_DEAD_LETTER_CAPACITY,
    DEFAULT_HEADER_IDENTIFIER, DEFAULT_MAX_RETRIES, DEFAULT_QUEUE_CAPACITY,
    DEFAULT_REQUEST_TIMEOUT, DEFAULT_RETRY_AFTER_LIMIT, ENV_WEBHOOK_API_KEY, ENV_WEBHOOK_URL,
};
pub use dead_letter::{DeadLetter, DeadLetterReason};
pub use delivery::USER_AGENT_VALUE;
pub use emitter::{
    WebhooksEmitter, WebhooksEmitterBuilder, DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_REPORT_CAPACITY,
};
pub use error::{AttachError, ConfigError, ControlError, EmitError, EventNameError};
pub use event::{Event, RequestId, MAX_REQUEST_ID_LEN};
pub use report::{DeliveryReport, DropReason, Failure, Outcome, PauseReason};
pub use shutdown::{ShutdownReport, Undelivered};
pub use signature::{sign, sign_timestamped, SIGNATURE_PREFIX};
pub use ssrf::SsrfGuard;
pub use standard_webhooks::{
    parse_standard_secret, sign_standard, HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE,
    HEADER_WEBHOOK_TIMESTAMP, MIN_STANDARD_KEY_BYTES, STANDARD_SECRET_PREFIX,
};
pub use stats::EmitterStats;
pub use test_delivery::{TestDelivery, TEST_EVENT};
