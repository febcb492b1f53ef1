//! Signing keys the server makes, and the admin token check.

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::problem::Problem;

/// A new Standard Webhooks key: `whsec_` and 32 random bytes in base64.
pub fn new_standard_key() -> Result<String, Problem> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Problem::unavailable(format!("no randomness for a new key: {e}")))?;
    Ok(format!(
        "{}{}",
        webhooks_emitter::STANDARD_SECRET_PREFIX,
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// The admin token, kept as its SHA-256 so that a comparison takes the same
/// time whatever the length or content of what is offered.
#[derive(Clone)]
pub struct AdminToken(Option<[u8; 32]>);

impl AdminToken {
    /// `None`: no authentication (`--insecure-no-auth`).
    pub fn new(token: Option<&str>) -> Self {
        AdminToken(token.map(|t| Sha256::digest(t.as_bytes()).into()))
    }

    /// Whether `offered` is the token (always, without one).
    pub fn accepts(&self, offered: Option<&str>) -> bool {
        match (&self.0, offered) {
            (None, _) => true,
            (Some(expected), Some(offered)) => {
                let offered: [u8; 32] = Sha256::digest(offered.as_bytes()).into();
                bool::from(expected.ct_eq(&offered))
            }
            (Some(_), None) => false,
        }
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken([redacted])")
    }
}
