//! Portal links: a short-lived bearer token for one application's portal,
//! signed by the server, stored nowhere. `wpl_<app>.<expires>.<signature>`:
//! the signature is HMAC-SHA256 over `<app>.<expires>` with a key derived
//! from the admin token, so every node of a cluster (one admin token) checks
//! every node's links, and changing the admin token ends every link. Without
//! an admin token (`--insecure-no-auth`) the key is random, per process.
//!
//! A link's token is an API key bound to its application with the scopes a
//! customer needs (`endpoints:read`, `endpoints:write`, `messages:read`):
//! every other application is 404 to it, as to any bound key.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::api_key::Scope;
use crate::ids::check_id;

/// What every link token starts with.
pub const PREFIX: &str = "wpl_";
/// Shortest and longest life of a link, and the default, in seconds.
pub const MIN_LIFE: u64 = 1;
pub const MAX_LIFE: u64 = 7 * 24 * 60 * 60;
pub const DEFAULT_LIFE: u64 = 60 * 60;
/// What a link may do.
pub const SCOPES: [Scope; 3] = [
    Scope::EndpointsRead,
    Scope::EndpointsWrite,
    Scope::MessagesRead,
];

/// Signs and checks links.
pub struct PortalLinks {
    key: [u8; 32],
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

impl PortalLinks {
    /// Links keyed by the admin token; a random key without one.
    pub fn new(admin_token: Option<&str>) -> Self {
        let key = match admin_token {
            Some(token) => {
                let mut mac = mac(token.as_bytes());
                mac.update(b"webhooks-emitter portal links v1");
                mac.finalize().into_bytes().into()
            }
            None => {
                let mut key = [0u8; 32];
                if getrandom::fill(&mut key).is_err() {
                    tracing::error!(
                        "no randomness for the portal links' key; links cannot be made"
                    );
                }
                key
            }
        };
        PortalLinks { key }
    }

    fn signature(&self, app: &str, expires: u64) -> String {
        let mut mac = mac(&self.key);
        mac.update(format!("{app}.{expires}").as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// The token of a link to `app`'s portal, valid until `expires` (Unix
    /// seconds).
    pub fn issue(&self, app: &str, expires: u64) -> String {
        format!("{PREFIX}{app}.{expires}.{}", self.signature(app, expires))
    }

    /// The application of `token`, if it is a link this server signed and
    /// `now` (Unix seconds) is before its end.
    pub fn check(&self, token: &str, now: u64) -> Option<String> {
        let rest = token.strip_prefix(PREFIX)?;
        let mut parts = rest.rsplitn(3, '.');
        let (signature, expires, app) = (parts.next()?, parts.next()?, parts.next()?);
        check_id("application", app).ok()?;
        let expires: u64 = expires.parse().ok()?;
        let expected = self.signature(app, expires);
        let genuine = bool::from(expected.as_bytes().ct_eq(signature.as_bytes()));
        (genuine && now < expires).then(|| app.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_link_opens_its_application_until_it_expires() {
        let links = PortalLinks::new(Some("admin-token-0123456789"));
        let token = links.issue("acme.io", 1_000);
        assert_eq!(links.check(&token, 999).as_deref(), Some("acme.io"));
        assert_eq!(links.check(&token, 1_000), None, "expired");
        let other = PortalLinks::new(Some("another-token-0123456789"));
        assert_eq!(other.check(&token, 0), None, "another admin token");
        // Another application, or a later end, with the same signature.
        let forged = token.replacen("acme.io", "globex", 1);
        assert_eq!(links.check(&forged, 0), None);
        let later = token.replacen(".1000.", ".9999.", 1);
        assert_eq!(links.check(&later, 0), None);
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        /// Any text offered as a link: refused unless signed here, never a
        /// panic.
        #[test]
        fn made_up_links_are_refused(text in "(wpl_)?\\PC{0,80}") {
            let links = PortalLinks::new(Some("admin-token-0123456789"));
            prop_assert_eq!(links.check(&text, 0), None);
        }

        #[test]
        fn every_signed_link_checks(app in "[A-Za-z0-9._-]{1,20}", expires in 1u64..u64::MAX) {
            prop_assume!(app != "." && app != "..");
            let links = PortalLinks::new(None);
            let token = links.issue(&app, expires);
            prop_assert_eq!(links.check(&token, expires - 1), Some(app));
        }
    }
}
