//! Receiver-side verification: check that a webhook is authentic, fresh and
//! not a duplicate.
//!
//! - [`LegacyVerifier`]: the Elixir-compatible `x-<identifier>-signature:
//!   sha256:<base32hex>`, with or without the opt-in timestamp.
//! - [`StandardVerifier`]: Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature`), several keys for rotation.
//! - [`IdempotencyStore`]: a bounded, time-limited record of delivery ids.
//! - `VerifiedWebhook` (feature `verify-actix`): an actix-web extractor that
//!   does all three.
//!
//! Headers come through [`HeaderLookup`]: implemented for name-value pairs,
//! actix-web's header map (feature `verify-actix`) and the `http` crate's
//! (feature `verify-http`: axum, hyper), so that a receiver on any server
//! needs only this module.
//!
//! Signatures are compared in constant time (`hmac`'s `verify_slice`).
//!
//! ```
//! use webhooks_emitter::verify::{LegacyVerifier, Verifier};
//!
//! let body = br#"{"order":42}"#;
//! let signature = webhooks_emitter::sign(b"supersecret", body);
//! let headers = [
//!     ("x-webhooks-signature", signature.as_str()),
//!     ("x-webhooks-delivery", "req-42"),
//!     ("x-webhooks-event", "order.created"),
//! ];
//! let delivery = LegacyVerifier::new("supersecret").verify(&headers, body).unwrap();
//! assert_eq!(delivery.id, "req-42");
//! assert_eq!(delivery.event.as_deref(), Some("order.created"));
//! ```

mod error;
#[cfg(feature = "verify-actix")]
mod extractor;
mod idempotency;
mod legacy;
mod standard;

use std::time::Duration;

pub use error::VerifyError;
#[cfg(feature = "verify-actix")]
pub use extractor::{
    VerifiedWebhook, WebhookRejection, WebhookVerification, DEFAULT_MAX_BODY_BYTES,
};
pub use idempotency::{AlreadySeen, Claim, IdempotencyStore};
pub use legacy::LegacyVerifier;
pub use standard::StandardVerifier;

/// Default tolerance between a signed timestamp and the receiver's clock.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Read access to request headers, by case-insensitive name.
pub trait HeaderLookup {
    /// The header's value, if present and visible ASCII.
    fn header(&self, name: &str) -> Option<&str>;
}

#[cfg(feature = "verify-actix")]
impl HeaderLookup for actix_web::http::header::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The header map of axum, hyper and reqwest.
#[cfg(feature = "verify-http")]
impl HeaderLookup for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Name-value pairs, e.g. `[("x-webhooks-signature", sig), …]`.
impl<const N: usize> HeaderLookup for [(&str, &str); N] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Name-value pairs collected from any HTTP library.
impl HeaderLookup for Vec<(String, String)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a verifier established about a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDelivery {
    /// The delivery id (`x-<identifier>-delivery` or `webhook-id`).
    pub id: String,
    /// The signed timestamp, when the scheme has one.
    pub timestamp: Option<i64>,
    /// The event name (`x-<identifier>-event`), when present.
    pub event: Option<String>,
}

/// A signature scheme's verifier.
pub trait Verifier: Send + Sync + 'static {
    /// Verifies against the clock `now` (Unix seconds): for tests and replays.
    fn verify_at(
        &self,
        headers: &dyn HeaderLookup,
        body: &[u8],
        now: i64,
    ) -> Result<VerifiedDelivery, VerifyError>;

    /// Verifies against the system clock.
    fn verify(
        &self,
        headers: &dyn HeaderLookup,
        body: &[u8],
    ) -> Result<VerifiedDelivery, VerifyError> {
        self.verify_at(headers, body, crate::signing::unix_now())
    }
}

/// A present header, or the error naming it.
fn required<'a>(headers: &'a dyn HeaderLookup, name: &str) -> Result<&'a str, VerifyError> {
    headers
        .header(name)
        .ok_or_else(|| VerifyError::MissingHeader {
            header: name.to_owned(),
        })
}

fn parse_timestamp(header: &str, value: &str) -> Result<i64, VerifyError> {
    value.parse().map_err(|_| VerifyError::BadFormat {
        header: header.to_owned(),
        reason: "expected Unix seconds",
    })
}

/// Refuses a timestamp further than `tolerance` from `now`, either way.
fn check_fresh(timestamp: i64, now: i64, tolerance: Duration) -> Result<(), VerifyError> {
    let tolerance_secs = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    let age = now.saturating_sub(timestamp);
    if age > tolerance_secs {
        Err(VerifyError::TooOld {
            age_secs: age,
            tolerance,
        })
    } else if age.saturating_neg() > tolerance_secs {
        Err(VerifyError::TooNew {
            ahead_secs: age.saturating_neg(),
            tolerance,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn verifiers() -> Vec<Box<dyn Verifier>> {
        let standard = StandardVerifier::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
            .unwrap_or_else(|e| panic!("{e}"));
        vec![
            Box::new(LegacyVerifier::new("k")),
            Box::new(LegacyVerifier::new("k").require_timestamp()),
            Box::new(standard),
        ]
    }

    fn header_name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("webhook-id".to_owned()),
            Just("webhook-timestamp".to_owned()),
            Just("webhook-signature".to_owned()),
            Just("x-webhooks-signature".to_owned()),
            Just("x-webhooks-timestamp".to_owned()),
            Just("x-webhooks-delivery".to_owned()),
            "[a-z-]{1,12}",
        ]
    }

    fn header_value() -> impl Strategy<Value = String> {
        prop_oneof![
            "v[0-9],[A-Za-z0-9+/=]{0,60}( v1,[A-Za-z0-9+/=]{0,60}){0,3}",
            "sha256:[0-9a-v]{0,60}",
            "-?[0-9]{1,22}",
            ".{0,80}",
        ]
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        /// Any headers, body and clock: an answer, never a panic.
        #[test]
        fn any_request_is_answered(
            headers in proptest::collection::vec((header_name(), header_value()), 0..6),
            body in proptest::collection::vec(any::<u8>(), 0..64),
            now in any::<i64>(),
        ) {
            for verifier in verifiers() {
                let _ = verifier.verify_at(&headers, &body, now);
            }
        }

        /// Any timestamp against any clock and tolerance.
        #[test]
        fn freshness_never_overflows(timestamp in any::<i64>(), now in any::<i64>(), secs in any::<u64>()) {
            let _ = check_fresh(timestamp, now, Duration::from_secs(secs));
        }
    }
}
