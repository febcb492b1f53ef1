//! One HTTP attempt and what it needs: the client (TLS, SSRF-guarded DNS), the
//! signed request, the classification of the answer, and the per-thread driver
//! that runs every worker's requests.
//!
//! - [`client`]: one awc client per emitter; redirects not followed.
//! - [`connector`]: TCP (SSRF-guarded), TLS, and [`interim`]: 1xx skipped.
//! - [`request`]: build the signed request, send it, classify the answer.
//! - [`envelope`]: the optional `{id, timestamp, event, data}` body.
//! - [`retry_after`]: reading a `Retry-After` header.
//! - [`template`]: what every request to one endpoint needs, prepared once.
//! - [`driver`]: one task per thread drives every request on that thread.
//! - [`tls`], [`ssrf`]: certificate verification, and refused targets.

pub(crate) mod client;
mod connector;
pub(crate) mod driver;
pub(crate) mod envelope;
mod interim;
pub(crate) mod request;
mod retry_after;
mod ssrf;
pub(crate) mod template;
pub(crate) mod tls;

pub use ssrf::SsrfGuard;
pub(crate) use ssrf::TargetPolicy;
