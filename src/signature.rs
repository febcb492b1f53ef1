//! The legacy (Elixir-compatible) signature: HMAC-SHA256 of the body, RFC 4648
//! base32hex, lowercase, unpadded, prefixed with `sha256:`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Prefix of the legacy signature header value.
pub const SIGNATURE_PREFIX: &str = "sha256:";

/// The value of `x-<identifier>-signature` for `body` under `secret`:
/// `sha256:` followed by 52 base32hex characters.
///
/// ```
/// let sig = webhooks_emitter::sign(b"secret", br#"{"id":1}"#);
/// assert!(sig.starts_with("sha256:"));
/// assert_eq!(sig.len(), "sha256:".len() + 52);
/// ```
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        // HMAC takes keys of any length; this arm cannot be reached.
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut value = String::with_capacity(SIGNATURE_PREFIX.len() + 52);
    value.push_str(SIGNATURE_PREFIX);
    value.push_str(&base32::encode(
        base32::Alphabet::Rfc4648HexLower { padding: false },
        &digest,
    ));
    value
}
