//! What a key is, on either store: its namespace, how long it is kept, the
//! body fingerprint it answers for.

use sha2::{Digest, Sha256};

use crate::ids::DEFAULT_APP;
use crate::problem::Problem;

/// Where keys live in the store.
pub const NAMESPACE: &str = "idempotency";
/// How long a key is remembered.
pub const KEY_TTL_SECS: u64 = 24 * 60 * 60;
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// Hex SHA-256 of a body.
pub fn fingerprint(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The problem when a key comes back with another body.
pub fn reused(first: &str, fingerprint: &str) -> Option<Problem> {
    (first != fingerprint).then(|| {
        Problem::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "this Idempotency-Key was used with a different request body",
        )
    })
}

/// A key as it is kept: `default`'s as sent (as before applications),
/// another application's after its id and a space, which no key holds, so
/// that two applications never share a key.
pub fn in_app(app: &str, key: &str) -> String {
    if app == DEFAULT_APP {
        key.to_owned()
    } else {
        format!("{app} {key}")
    }
}
