//! Standard Webhooks signing (<https://www.standardwebhooks.com>): keys written
//! `whsec_<base64>`, signatures `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ConfigError;

/// Prefix of Standard Webhooks secrets.
pub const STANDARD_SECRET_PREFIX: &str = "whsec_";
/// Shortest key accepted, in bytes. The spec recommends 24 to 64; keys under
/// 16 bytes (128 bits) are refused as too weak.
pub const MIN_STANDARD_KEY_BYTES: usize = 16;

/// Decodes a `whsec_<base64>` secret into its key bytes.
///
/// ```
/// let key = webhooks_emitter::parse_standard_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
/// assert_eq!(key.len(), 24);
/// assert!(webhooks_emitter::parse_standard_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
/// ```
pub fn parse_standard_secret(secret: &str) -> Result<Vec<u8>, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidStandardSecret { reason };
    let encoded = secret
        .strip_prefix(STANDARD_SECRET_PREFIX)
        .ok_or_else(|| invalid(format!("it must start with `{STANDARD_SECRET_PREFIX}`")))?;
    let key = BASE64.decode(encoded).map_err(|e| {
        invalid(format!(
            "the part after `{STANDARD_SECRET_PREFIX}` is not standard base64 ({e})"
        ))
    })?;
    if key.len() < MIN_STANDARD_KEY_BYTES {
        return Err(invalid(format!(
            "the key is {} bytes; at least {MIN_STANDARD_KEY_BYTES} are required (24 to 64 recommended)",
            key.len()
        )));
    }
    Ok(key)
}

/// The keyed MAC over `"{id}.{timestamp}.{body}"`, ready to finalize or verify.
pub(crate) fn standard_mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// One Standard Webhooks signature, `v1,<base64>`, for key bytes `key`.
///
/// ```
/// use webhooks_emitter::{parse_standard_secret, sign_standard};
/// let key = parse_standard_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
/// assert_eq!(
///     sign_standard(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#),
///     "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
/// );
/// ```
pub fn sign_standard(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = standard_mac(key, id, timestamp, body)
        .finalize()
        .into_bytes();
    format!("v1,{}", BASE64.encode(digest))
}

/// The decoded `v1` signatures of a `webhook-signature` value
/// (`v1,<base64> v1,<base64> …`), or `None` if no entry has the
/// `<version>,<signature>` shape at all (a malformed header). Entries of other
/// versions are skipped, as the spec asks, so that a sender can add a new
/// scheme beside v1: a header with only those has no v1 signature to match,
/// which is a failed verification, not a malformed request.
#[cfg(feature = "verify")]
pub(crate) fn v1_signatures(value: &str) -> Option<Vec<Vec<u8>>> {
    let entries: Vec<(&str, &str)> = value
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .collect();
    if entries.is_empty() {
        return None;
    }
    Some(
        entries
            .into_iter()
            .filter(|(version, _)| *version == "v1")
            .filter_map(|(_, encoded)| BASE64.decode(encoded).ok())
            .collect(),
    )
}
