//! Verifier for Standard Webhooks signatures.

use std::time::Duration;

use hmac::Mac;

use crate::error::ConfigError;
use crate::redact::Redacted;
use crate::signing::headers::{
    HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP,
};
use crate::signing::standard::{parse_standard_secret, standard_mac, v1_signatures};
use crate::verify::{
    check_fresh, parse_timestamp, required, HeaderLookup, VerifiedDelivery, Verifier, VerifyError,
    DEFAULT_TOLERANCE,
};

/// Verifies `webhook-signature` over `"{webhook-id}.{webhook-timestamp}.{body}"`.
/// Accepts a request when any of its `v1,` signatures matches any key, so
/// senders and receivers can rotate keys without downtime.
#[derive(Clone, Debug)]
pub struct StandardVerifier {
    keys: Vec<Redacted<Vec<u8>>>,
    tolerance: Duration,
}

impl StandardVerifier {
    /// A verifier for one `whsec_<base64>` secret, 5-minute tolerance.
    pub fn new(secret: &str) -> Result<Self, ConfigError> {
        Ok(StandardVerifier {
            keys: vec![Redacted::new(parse_standard_secret(secret)?)],
            tolerance: DEFAULT_TOLERANCE,
        })
    }

    /// Accepts signatures by this key too (key rotation).
    pub fn add_key(mut self, secret: &str) -> Result<Self, ConfigError> {
        self.keys
            .push(Redacted::new(parse_standard_secret(secret)?));
        Ok(self)
    }

    /// How far `webhook-timestamp` may be from the receiver's clock (default 5 minutes).
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }
}

impl Verifier for StandardVerifier {
    fn verify_at(
        &self,
        headers: &dyn HeaderLookup,
        body: &[u8],
        now: i64,
    ) -> Result<VerifiedDelivery, VerifyError> {
        let id = required(headers, HEADER_WEBHOOK_ID)?;
        let timestamp = parse_timestamp(
            HEADER_WEBHOOK_TIMESTAMP,
            required(headers, HEADER_WEBHOOK_TIMESTAMP)?,
        )?;
        let signatures = required(headers, HEADER_WEBHOOK_SIGNATURE)?;
        let Some(candidates) = v1_signatures(signatures) else {
            return Err(VerifyError::BadFormat {
                header: HEADER_WEBHOOK_SIGNATURE.to_owned(),
                reason: "expected space-separated `<version>,<signature>` entries",
            });
        };
        let authentic = self.keys.iter().any(|key| {
            let mac = standard_mac(key.expose(), id, timestamp, body);
            candidates
                .iter()
                .any(|candidate| mac.clone().verify_slice(candidate).is_ok())
        });
        if !authentic {
            return Err(VerifyError::BadSignature);
        }
        check_fresh(timestamp, now, self.tolerance)?;
        Ok(VerifiedDelivery {
            id: id.to_owned(),
            timestamp: Some(timestamp),
            event: None,
        })
    }
}
