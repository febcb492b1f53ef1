//! The legacy (Elixir-compatible) signature: HMAC-SHA256 of the body, RFC 4648
//! base32hex, lowercase, unpadded, prefixed with `sha256:`. With the opt-in
//! timestamp, the MAC covers `"{timestamp}.{body}"` instead, so a captured
//! request cannot be replayed later.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Prefix of the legacy signature header value.
pub const SIGNATURE_PREFIX: &str = "sha256:";

/// The base32hex alphabet of legacy signatures.
const ALPHABET: base32::Alphabet = base32::Alphabet::Rfc4648HexLower { padding: false };

/// The value of `x-<identifier>-signature` for `body` under `secret`:
/// `sha256:` followed by 52 base32hex characters.
///
/// ```
/// let sig = webhooks_emitter::sign(b"secret", br#"{"id":1}"#);
/// assert!(sig.starts_with("sha256:"));
/// assert_eq!(sig.len(), "sha256:".len() + 52);
/// ```
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    encode(legacy_mac(secret, None, body))
}

/// The signature with the opt-in timestamp: the MAC covers
/// `"{timestamp}.{body}"`, where `timestamp` is the Unix time in seconds sent in
/// `x-<identifier>-timestamp`.
///
/// ```
/// let plain = webhooks_emitter::sign(b"k", b"{}");
/// let stamped = webhooks_emitter::sign_timestamped(b"k", 1_700_000_000, b"{}");
/// assert_ne!(plain, stamped);
/// assert_eq!(stamped, webhooks_emitter::sign(b"k", b"1700000000.{}"));
/// ```
pub fn sign_timestamped(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    encode(legacy_mac(secret, Some(timestamp), body))
}

/// The keyed MAC of the legacy scheme, ready to finalize or verify.
pub(crate) fn legacy_mac(secret: &[u8], timestamp: Option<i64>, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    if let Some(timestamp) = timestamp {
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
    }
    mac.update(body);
    mac
}

/// The 32-byte digest in a `sha256:<base32hex>` header value, or `None` if the
/// value is not one.
#[cfg(feature = "verify")]
pub(crate) fn parse_signature(value: &str) -> Option<Vec<u8>> {
    let encoded = value.strip_prefix(SIGNATURE_PREFIX)?;
    base32::decode(ALPHABET, encoded).filter(|digest| digest.len() == 32)
}

fn encode(mac: Hmac<Sha256>) -> String {
    let digest = mac.finalize().into_bytes();
    let mut value = String::with_capacity(SIGNATURE_PREFIX.len() + 52);
    value.push_str(SIGNATURE_PREFIX);
    value.push_str(&base32::encode(ALPHABET, &digest));
    value
}

#[cfg(all(test, feature = "verify"))]
mod tests {
    use super::*;

    #[test]
    fn what_sign_writes_parse_signature_reads() {
        let value = sign(b"k", b"{}");
        let digest = parse_signature(&value).unwrap_or_default();
        assert!(legacy_mac(b"k", None, b"{}").verify_slice(&digest).is_ok());
        for bad in ["", "sha256:", "sha1:abc", "sha256:ZZZ", &value[..20]] {
            assert_eq!(parse_signature(bad), None, "{bad:?}");
        }
    }
}
