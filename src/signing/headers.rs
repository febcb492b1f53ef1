//! Header names of both schemes, derived in one place.

#[cfg(feature = "emitter")]
use crate::error::ConfigError;

/// Default header identifier: headers are `x-webhooks-event`, `x-webhooks-delivery`, …
pub const DEFAULT_HEADER_IDENTIFIER: &str = "Webhooks";

/// `WebHooks-Emitter/<crate version>`, as the Elixir original sends it.
pub const USER_AGENT_VALUE: &str = concat!("WebHooks-Emitter/", env!("CARGO_PKG_VERSION"));

/// Header carrying the message id (Standard Webhooks).
pub const HEADER_WEBHOOK_ID: &str = "webhook-id";
/// Header carrying the Unix timestamp (seconds) of the attempt (Standard Webhooks).
pub const HEADER_WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the space-separated `v1,<base64>` signatures (Standard Webhooks).
pub const HEADER_WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// The Standard Webhooks headers, reserved when that scheme is in use.
#[cfg(feature = "emitter")]
pub(crate) const STANDARD_HEADERS: [&str; 3] = [
    HEADER_WEBHOOK_ID,
    HEADER_WEBHOOK_TIMESTAMP,
    HEADER_WEBHOOK_SIGNATURE,
];

/// The `x-<identifier>-*` header names of the legacy scheme, lowercase (as
/// HTTP/2 requires and as receivers compare them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LegacyHeaders {
    pub event: String,
    pub delivery: String,
    pub signature: String,
    pub timestamp: String,
}

impl LegacyHeaders {
    /// The names for `identifier`, as given: the receiver side accepts any.
    pub(crate) fn new(identifier: &str) -> Self {
        let lower = identifier.to_ascii_lowercase();
        let name = |suffix: &str| format!("x-{lower}-{suffix}");
        LegacyHeaders {
            event: name("event"),
            delivery: name("delivery"),
            signature: name("signature"),
            timestamp: name("timestamp"),
        }
    }

    /// The names for an identifier the sender may use: letters, digits and `-`.
    #[cfg(feature = "emitter")]
    pub(crate) fn validated(identifier: &str) -> Result<Self, ConfigError> {
        let valid = !identifier.is_empty()
            && identifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(ConfigError::InvalidHeaderIdentifier {
                identifier: identifier.escape_debug().to_string(),
            });
        }
        Ok(Self::new(identifier))
    }

    /// The four names.
    #[cfg(feature = "emitter")]
    pub(crate) fn all(&self) -> [&str; 4] {
        [
            &self.event,
            &self.delivery,
            &self.signature,
            &self.timestamp,
        ]
    }
}

#[cfg(all(test, feature = "emitter"))]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_lowercased_and_checked() {
        let names = LegacyHeaders::validated("Yourapp").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(names.signature, "x-yourapp-signature");
        for bad in ["", "bad id", "a\r\nb", "é"] {
            assert!(LegacyHeaders::validated(bad).is_err(), "{bad:?}");
        }
    }
}
