//! Verifier for the Elixir-compatible `sha256:<base32hex>` signature.

use std::fmt;
use std::time::Duration;

use hmac::Mac;

use crate::config::DEFAULT_HEADER_IDENTIFIER;
use crate::signature::{legacy_mac, LEGACY_ALPHABET, SIGNATURE_PREFIX};
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
#[derive(Clone)]
pub struct LegacyVerifier {
    secret: Vec<u8>,
    signature: String,
    timestamp: String,
    delivery: String,
    event: String,
    tolerance: Duration,
    require_timestamp: bool,
}

impl LegacyVerifier {
    /// A verifier for `secret`, header identifier `Webhooks`, 5-minute tolerance.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        LegacyVerifier {
            secret: secret.as_ref().to_vec(),
            signature: String::new(),
            timestamp: String::new(),
            delivery: String::new(),
            event: String::new(),
            tolerance: DEFAULT_TOLERANCE,
            require_timestamp: false,
        }
        .header_identifier(DEFAULT_HEADER_IDENTIFIER)
    }

    /// The sender's header identifier (`x-<identifier>-signature`, …).
    pub fn header_identifier(mut self, identifier: &str) -> Self {
        let lower = identifier.to_ascii_lowercase();
        self.signature = format!("x-{lower}-signature");
        self.timestamp = format!("x-{lower}-timestamp");
        self.delivery = format!("x-{lower}-delivery");
        self.event = format!("x-{lower}-event");
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
        let signature = required(headers, &self.signature)?;
        let bad_signature_format = || VerifyError::BadFormat {
            header: self.signature.clone(),
            reason: "expected `sha256:` followed by 52 lowercase base32hex characters",
        };
        let encoded = signature
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or_else(bad_signature_format)?;
        let digest = base32::decode(LEGACY_ALPHABET, encoded)
            .filter(|d| d.len() == 32)
            .ok_or_else(bad_signature_format)?;
        let timestamp = match headers.header(&self.timestamp) {
            Some(value) => Some(parse_timestamp(&self.timestamp, value)?),
            None if self.require_timestamp => {
                return Err(VerifyError::MissingHeader {
                    header: self.timestamp.clone(),
                })
            }
            None => None,
        };
        legacy_mac(&self.secret, timestamp, body)
            .verify_slice(&digest)
            .map_err(|_| VerifyError::BadSignature)?;
        if let Some(timestamp) = timestamp {
            check_fresh(timestamp, now, self.tolerance)?;
        }
        Ok(VerifiedDelivery {
            id: required(headers, &self.delivery)?.to_owned(),
            timestamp,
            event: headers.header(&self.event).map(str::to_owned),
        })
    }
}

impl fmt::Debug for LegacyVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyVerifier")
            .field("secret", &"[redacted]")
            .field("signature_header", &self.signature)
            .field("tolerance", &self.tolerance)
            .field("require_timestamp", &self.require_timestamp)
            .finish()
    }
}
