//! Verifier for the Elixir-compatible `sha256:<base32hex>` signature.

use std::time::Duration;

use hmac::Mac;

use crate::redact::Redacted;
use crate::signing::headers::{LegacyHeaders, DEFAULT_HEADER_IDENTIFIER};
use crate::signing::legacy::{legacy_mac, parse_signature};
use crate::verify::{
    check_fresh, parse_timestamp, required, HeaderLookup, VerifiedDelivery, Verifier, VerifyError,
    DEFAULT_TOLERANCE,
};

/// Verifies `x-<identifier>-signature`. When `x-<identifier>-timestamp` is
/// present the signature must cover `"{timestamp}.{body}"` and the timestamp
/// must be within the tolerance; [`require_timestamp`](Self::require_timestamp)
/// refuses requests without one.
///
/// The delivery id header is not covered by this scheme's signature: to rely
/// on it for deduplication against a hostile sender, use timestamps (which
/// bound the replay window) or the Standard Webhooks scheme (which signs the id).
#[derive(Clone, Debug)]
pub struct LegacyVerifier {
    secret: Redacted<Vec<u8>>,
    headers: LegacyHeaders,
    tolerance: Duration,
    require_timestamp: bool,
}

impl LegacyVerifier {
    /// A verifier for `secret`, header identifier `Webhooks`, 5-minute tolerance.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        LegacyVerifier {
            secret: Redacted::new(secret.as_ref().to_vec()),
            headers: LegacyHeaders::new(DEFAULT_HEADER_IDENTIFIER),
            tolerance: DEFAULT_TOLERANCE,
            require_timestamp: false,
        }
    }

    /// The sender's header identifier (`x-<identifier>-signature`, …).
    pub fn header_identifier(mut self, identifier: &str) -> Self {
        self.headers = LegacyHeaders::new(identifier);
        self
    }

    /// How far a signed timestamp may be from the receiver's clock (default 5 minutes).
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Refuses requests without a signed timestamp (replay protection).
    pub fn require_timestamp(mut self) -> Self {
        self.require_timestamp = true;
        self
    }
}

impl Verifier for LegacyVerifier {
    fn verify_at(
        &self,
        headers: &dyn HeaderLookup,
        body: &[u8],
        now: i64,
    ) -> Result<VerifiedDelivery, VerifyError> {
        let names = &self.headers;
        let digest = parse_signature(required(headers, &names.signature)?).ok_or_else(|| {
            VerifyError::BadFormat {
                header: names.signature.clone(),
                reason: "expected `sha256:` followed by 52 lowercase base32hex characters",
            }
        })?;
        let timestamp = match headers.header(&names.timestamp) {
            Some(value) => Some(parse_timestamp(&names.timestamp, value)?),
            None if self.require_timestamp => {
                return Err(VerifyError::MissingHeader {
                    header: names.timestamp.clone(),
                })
            }
            None => None,
        };
        legacy_mac(self.secret.expose(), timestamp, body)
            .verify_slice(&digest)
            .map_err(|_| VerifyError::BadSignature)?;
        if let Some(timestamp) = timestamp {
            check_fresh(timestamp, now, self.tolerance)?;
        }
        Ok(VerifiedDelivery {
            id: required(headers, &names.delivery)?.to_owned(),
            timestamp,
            event: headers.header(&names.event).map(str::to_owned),
        })
    }
}
