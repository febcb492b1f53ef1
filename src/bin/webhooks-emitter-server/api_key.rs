//! A scoped API key as the API sees it: what a client asks for (spec), what
//! the store keeps (record: the secret's SHA-256, never the secret), what the
//! API shows (view, and the key itself once, at creation), the scopes, and
//! which scope each route needs.
//!
//! A key reads `whk_<id>_<secret>`: the id finds the record, the secret is
//! compared with its hash in constant time.

use std::collections::BTreeSet;

use actix_web::http::Method;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::ids::check_id;
use crate::problem::Problem;

/// What every key starts with.
const PREFIX: &str = "whk_";
/// Longest key name, in bytes.
const MAX_NAME: usize = 200;

/// What a key may do. The admin token may do everything, including
/// managing keys, which no key may.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
pub enum Scope {
    /// `POST /api/v1/events` and `/events/batch`.
    #[serde(rename = "events:write")]
    EventsWrite,
    /// Read endpoints and their stats.
    #[serde(rename = "endpoints:read")]
    EndpointsRead,
    /// Create, change, pause, resume, test, rotate, delete endpoints;
    /// redeliver dead letters; recover a window of messages.
    #[serde(rename = "endpoints:write")]
    EndpointsWrite,
    /// Read what was sent: messages (with payloads), attempts (with
    /// response bodies) and dead letters (with payloads).
    #[serde(rename = "messages:read")]
    MessagesRead,
    /// Create, change and archive event types (any key may read them;
    /// a key bound to an application may not write them: every application
    /// shares them).
    #[serde(rename = "event-types:write")]
    EventTypesWrite,
    /// Create, list, read, change and delete applications (a key bound to
    /// one: read, change and delete that one, create none).
    #[serde(rename = "apps:admin")]
    AppsAdmin,
}

impl Scope {
    /// The scope as keys and the API spell it, e.g. `events:write`.
    pub fn name(self) -> &'static str {
        match self {
            Scope::EventsWrite => "events:write",
            Scope::EndpointsRead => "endpoints:read",
            Scope::EndpointsWrite => "endpoints:write",
            Scope::MessagesRead => "messages:read",
            Scope::EventTypesWrite => "event-types:write",
            Scope::AppsAdmin => "apps:admin",
        }
    }
}

/// What a route asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Any valid key (the OpenAPI document, reading event types).
    AnyKey,
    Scope(Scope),
    /// Any key bound to an application (the route shows it only its own),
    /// or an unbound key with the scope.
    BoundOr(Scope),
    /// The admin token only (API keys, and any path not listed).
    Admin,
}

/// Which scope `method` on `path` (the path as the router matches it)
/// needs. Anything not listed here needs the admin token: a path this does
/// not recognise can only be refused to a key, never let through. An
/// application's endpoints and events (`/api/v1/apps/{app}/…`) need what
/// the same routes of `default` need; which application a key may reach
/// is checked by the route (see `routes::within`).
pub fn needs(method: &Method, path: &str) -> Needs {
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        // A key bound to an application may read it (and list: itself).
        ["", "api", "v1", "apps"] | ["", "api", "v1", "apps", _] if method == Method::GET => {
            Needs::BoundOr(Scope::AppsAdmin)
        }
        ["", "api", "v1", "apps"]
        | ["", "api", "v1", "apps", _]
        | ["", "api", "v1", "apps", _, "portal-links"] => Needs::Scope(Scope::AppsAdmin),
        ["", "api", "v1", "apps", _, rest @ ..]
            if matches!(rest.first(), Some(&"endpoints" | &"events" | &"messages")) =>
        {
            needs_in_app(method, &[&["", "api", "v1"], rest].concat())
        }
        _ => needs_in_app(method, &segments),
    }
}

/// [`needs`] of the routes every application has, spelled as `default`'s.
fn needs_in_app(method: &Method, segments: &[&str]) -> Needs {
    let read = method == Method::GET;
    match segments {
        ["", "api", "v1", "openapi.json"] if read => Needs::AnyKey,
        ["", "api", "v1", "events"] | ["", "api", "v1", "events", "batch"]
            if method == Method::POST =>
        {
            Needs::Scope(Scope::EventsWrite)
        }
        ["", "api", "v1", "event-types"] | ["", "api", "v1", "event-types", _] if read => {
            Needs::AnyKey
        }
        ["", "api", "v1", "event-types"] | ["", "api", "v1", "event-types", _] => {
            Needs::Scope(Scope::EventTypesWrite)
        }
        ["", "api", "v1", "endpoints"]
        | ["", "api", "v1", "endpoints", _]
        | ["", "api", "v1", "endpoints", _, "stats"]
            if read =>
        {
            Needs::Scope(Scope::EndpointsRead)
        }
        ["", "api", "v1", "endpoints", _, "attempts" | "dead-letters"]
        | ["", "api", "v1", "messages"]
        | ["", "api", "v1", "messages", _]
            if read =>
        {
            Needs::Scope(Scope::MessagesRead)
        }
        ["", "api", "v1", "endpoints", ..] if !read => Needs::Scope(Scope::EndpointsWrite),
        _ => Needs::Admin,
    }
}

/// A key to make (the body of `POST /api/v1/api-keys`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySpec {
    /// What it is for, e.g. `billing service` (1 to 200 bytes).
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// At least one.
    #[schema(min_items = 1)]
    pub scopes: Vec<Scope>,
    /// Binds it to this application: it reaches that application's routes
    /// only (`/api/v1/apps/{app}/…`, and the application itself with
    /// `apps:admin`); any other application is 404 to it. Without: every
    /// application.
    #[serde(default)]
    pub app: Option<String>,
}

/// What the store keeps: the secret's SHA-256, not the secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    pub scopes: BTreeSet<Scope>,
    /// SHA-256 of the secret part, hex.
    pub secret_sha256: String,
    pub created_at: u64,
    /// The application it is bound to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
}

/// A key as the API lists it (no secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    /// For `DELETE /api/v1/api-keys/{id}`; also the key's visible part
    /// (`whk_<id>_…`).
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The application it is bound to; absent: every application.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// A key just made: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewApiKey {
    #[serde(flatten)]
    pub view: ApiKeyView,
    /// Send it as `Authorization: Bearer <key>`. Shown once: the server
    /// keeps only its hash.
    pub key: String,
}

impl From<&ApiKeyRecord> for ApiKeyView {
    fn from(record: &ApiKeyRecord) -> Self {
        ApiKeyView {
            id: record.id.clone(),
            name: record.name.clone(),
            scopes: record.scopes.iter().copied().collect(),
            app: record.app.clone(),
            created_at: crate::clock::unix_rfc3339(record.created_at),
        }
    }
}

fn random(bytes: usize) -> Result<Vec<u8>, Problem> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer)
        .map_err(|e| Problem::unavailable(format!("no randomness for a new key: {e}")))?;
    Ok(buffer)
}

fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ApiKeySpec {
    /// A new key for this spec: its record and the key to show once.
    pub fn issue(self, now: u64) -> Result<(ApiKeyRecord, String), Problem> {
        if self.name.is_empty() || self.name.len() > MAX_NAME {
            return Err(Problem::bad_request(format!(
                "a key's name has 1 to {MAX_NAME} bytes, not {}",
                self.name.len()
            )));
        }
        if self.scopes.is_empty() {
            return Err(Problem::bad_request(
                "a key needs at least one scope: events:write, endpoints:read, endpoints:write, messages:read, event-types:write or apps:admin",
            ));
        }
        if let Some(app) = &self.app {
            check_id("application", app).map_err(Problem::bad_request)?;
        }
        let id: String = random(8)?.iter().map(|b| format!("{b:02x}")).collect();
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random(32)?);
        let record = ApiKeyRecord {
            secret_sha256: sha256_hex(&secret),
            id: id.clone(),
            name: self.name,
            scopes: self.scopes.into_iter().collect(),
            created_at: now,
            app: self.app,
        };
        Ok((record, format!("{PREFIX}{id}_{secret}")))
    }
}

/// The id and secret of what looks like a key; `None` for anything else.
pub fn parse(offered: &str) -> Option<(&str, &str)> {
    let rest = offered.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty())
        .then_some((id, secret))
}

impl ApiKeyRecord {
    /// Whether `secret` is this key's, in constant time.
    pub fn matches(&self, secret: &str) -> bool {
        bool::from(
            sha256_hex(secret)
                .as_bytes()
                .ct_eq(self.secret_sha256.as_bytes()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn routes_need_their_scope_and_anything_else_the_admin() {
        let cases = [
            (
                Method::POST,
                "/api/v1/events",
                Needs::Scope(Scope::EventsWrite),
            ),
            (
                Method::POST,
                "/api/v1/events/batch",
                Needs::Scope(Scope::EventsWrite),
            ),
            (Method::GET, "/api/v1/events", Needs::Admin),
            (
                Method::GET,
                "/api/v1/endpoints",
                Needs::Scope(Scope::EndpointsRead),
            ),
            (
                Method::GET,
                "/api/v1/endpoints/a",
                Needs::Scope(Scope::EndpointsRead),
            ),
            (
                Method::GET,
                "/api/v1/endpoints/a/stats",
                Needs::Scope(Scope::EndpointsRead),
            ),
            (
                Method::GET,
                "/api/v1/endpoints/a/attempts",
                Needs::Scope(Scope::MessagesRead),
            ),
            (
                Method::GET,
                "/api/v1/endpoints/a/dead-letters",
                Needs::Scope(Scope::MessagesRead),
            ),
            (
                Method::POST,
                "/api/v1/endpoints",
                Needs::Scope(Scope::EndpointsWrite),
            ),
            (
                Method::DELETE,
                "/api/v1/endpoints/a",
                Needs::Scope(Scope::EndpointsWrite),
            ),
            (
                Method::POST,
                "/api/v1/endpoints/a/dead-letters/1/redeliver",
                Needs::Scope(Scope::EndpointsWrite),
            ),
            (Method::GET, "/api/v1/event-types", Needs::AnyKey),
            (Method::GET, "/api/v1/event-types/x", Needs::AnyKey),
            (
                Method::PATCH,
                "/api/v1/event-types/x",
                Needs::Scope(Scope::EventTypesWrite),
            ),
            (Method::GET, "/api/v1/openapi.json", Needs::AnyKey),
            (
                Method::GET,
                "/api/v1/apps",
                Needs::BoundOr(Scope::AppsAdmin),
            ),
            (
                Method::GET,
                "/api/v1/apps/acme",
                Needs::BoundOr(Scope::AppsAdmin),
            ),
            (Method::POST, "/api/v1/apps", Needs::Scope(Scope::AppsAdmin)),
            (
                Method::DELETE,
                "/api/v1/apps/acme",
                Needs::Scope(Scope::AppsAdmin),
            ),
            (
                Method::POST,
                "/api/v1/apps/acme/events",
                Needs::Scope(Scope::EventsWrite),
            ),
            (
                Method::GET,
                "/api/v1/apps/acme/endpoints/a/attempts",
                Needs::Scope(Scope::MessagesRead),
            ),
            (
                Method::PATCH,
                "/api/v1/apps/acme/endpoints/a",
                Needs::Scope(Scope::EndpointsWrite),
            ),
            (
                Method::GET,
                "/api/v1/apps/acme/messages",
                Needs::Scope(Scope::MessagesRead),
            ),
            (
                Method::GET,
                "/api/v1/messages/req-1",
                Needs::Scope(Scope::MessagesRead),
            ),
            (Method::POST, "/api/v1/messages", Needs::Admin),
            (
                Method::POST,
                "/api/v1/apps/acme/endpoints/a/recover",
                Needs::Scope(Scope::EndpointsWrite),
            ),
            (
                Method::POST,
                "/api/v1/apps/acme/portal-links",
                Needs::Scope(Scope::AppsAdmin),
            ),
            (
                Method::POST,
                "/api/v1/endpoints/a/messages/r/resend",
                Needs::Scope(Scope::EndpointsWrite),
            ),
            (Method::GET, "/api/v1/apps/acme/event-types", Needs::Admin),
            (Method::GET, "/api/v1/apps/acme/api-keys", Needs::Admin),
            (Method::GET, "/api/v1/apps/acme/apps/x", Needs::Admin),
            (Method::GET, "/api/v1/api-keys", Needs::Admin),
            (Method::POST, "/api/v1/api-keys", Needs::Admin),
            (Method::GET, "/api/v1/endpoints/a/attempts/x", Needs::Admin),
            (Method::GET, "/api/v1/events/../api-keys", Needs::Admin),
            (Method::GET, "/metrics", Needs::Admin),
        ];
        for (method, path, expected) in cases {
            assert_eq!(needs(&method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn an_issued_key_parses_and_matches_only_its_secret() {
        let spec = ApiKeySpec {
            name: "billing".into(),
            scopes: vec![Scope::EventsWrite, Scope::EventsWrite],
            app: None,
        };
        let Ok((record, key)) = spec.issue(0) else {
            panic!("refused");
        };
        assert_eq!(record.scopes.len(), 1, "scopes kept once");
        let Some((id, secret)) = parse(&key) else {
            panic!("{key} does not parse");
        };
        assert_eq!(id, record.id);
        assert!(record.matches(secret));
        assert!(!record.matches("other"));
        assert!(
            !record.secret_sha256.contains(secret),
            "only the hash is kept"
        );
    }

    #[test]
    fn bad_specs_are_refused() {
        let no_scope = ApiKeySpec {
            name: "x".into(),
            scopes: vec![],
            app: None,
        };
        assert!(no_scope.issue(0).is_err());
        let long = ApiKeySpec {
            name: "x".repeat(201),
            scopes: vec![Scope::EventsWrite],
            app: None,
        };
        assert!(long.issue(0).is_err());
        let bad_app = ApiKeySpec {
            name: "x".into(),
            scopes: vec![Scope::EventsWrite],
            app: Some("a/b".into()),
        };
        assert!(bad_app.issue(0).is_err());
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        /// Any text offered as a token: parsed or not, never a panic; what
        /// parses has a 16-hex-digit id.
        #[test]
        fn any_offered_text_parses_or_not(offered in "(whk_)?\\PC{0,60}") {
            if let Some((id, secret)) = parse(&offered) {
                prop_assert_eq!(id.len(), 16);
                prop_assert!(!secret.is_empty());
            }
        }

        /// Any path a key sends needs something; nothing under
        /// `/api/v1/api-keys` is ever open to a key.
        #[test]
        fn key_management_is_never_open_to_a_key(tail in "\\PC{0,40}", post in any::<bool>()) {
            let method = if post { Method::POST } else { Method::GET };
            let path = format!("/api/v1/api-keys{tail}");
            let needed = needs(&method, &path);
            prop_assert!(needed == Needs::Admin || !path.starts_with("/api/v1/api-keys/") && !path.starts_with("/api/v1/api-keys?") && path != "/api/v1/api-keys", "{} {:?}", path, needed);
        }
    }
}
