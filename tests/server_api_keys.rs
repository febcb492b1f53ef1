//! Scoped API keys over real HTTP on loopback: made with the admin token,
//! shown once, stored as hashes; each route needs its scope (403 naming it),
//! key management and live routes need the admin token; revoked keys are
//! refused at once, and keys survive a restart.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use awc::http::Method;
use serde_json::{json, Value};
use support::server::{problem, Answer, ServerProcess};
use support::{Receiver, ScratchDir};

const KEYS: &str = "/api/v1/api-keys";

/// Makes a key with `scopes` (201); the key.
async fn make_key(server: &ServerProcess, scopes: &[&str]) -> String {
    let made = server
        .api(
            Method::POST,
            KEYS,
            Some(json!({"name": "test key", "scopes": scopes})),
        )
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    made.json["key"].as_str().unwrap().to_owned()
}

async fn as_key(
    server: &ServerProcess,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    server.call(method, path, body, Some(key), &[]).await
}

fn endpoint(receiver: &Receiver) -> Value {
    json!({"id": "crm", "url": receiver.url("/h"), "events": ["order.created"], "max_retries": 1})
}

#[actix_web::test]
async fn a_key_is_shown_once_and_listed_without_its_secret() {
    let dir = ScratchDir::new("keys-once");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let made = server
        .api(
            Method::POST,
            KEYS,
            Some(json!({"name": "billing", "scopes": ["events:write"]})),
        )
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    let key = made.json["key"].as_str().unwrap();
    let id = made.json["id"].as_str().unwrap();
    assert!(key.starts_with(&format!("whk_{id}_")), "{key}");
    assert_eq!(made.json["scopes"], json!(["events:write"]));

    let listed = server.api(Method::GET, KEYS, None).await;
    assert_eq!(listed.json.as_array().map(Vec::len), Some(1), "{listed:?}");
    assert_eq!(listed.json[0]["id"], id);
    assert_eq!(listed.json[0].get("key"), None);
    // The secret is base64url: it may hold `_` itself.
    let secret = key.strip_prefix(&format!("whk_{id}_")).unwrap();
    assert!(secret.len() >= 43, "{secret}");
    assert!(
        !listed.text.contains(secret),
        "the secret is never shown again"
    );
    let journal = std::fs::read(dir.file("j.redb")).unwrap();
    let stored = String::from_utf8_lossy(&journal);
    assert!(!stored.contains(secret), "only the secret's hash is stored");
}

#[actix_web::test]
async fn each_route_needs_its_scope_and_says_which() {
    let dir = ScratchDir::new("keys-scopes");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let mut receiver = Receiver::start();
    server.create(endpoint(&receiver)).await;
    let writer = make_key(&server, &["events:write"]).await;
    let reader = make_key(&server, &["endpoints:read"]).await;
    let history = make_key(&server, &["messages:read"]).await;
    let admin_of_endpoints = make_key(&server, &["endpoints:write", "endpoints:read"]).await;
    let event = json!({"event": "order.created", "payload": {"n": 1}});

    // events:write sends events, and nothing else.
    let sent = as_key(
        &server,
        &writer,
        Method::POST,
        "/api/v1/events",
        Some(event.clone()),
    )
    .await;
    assert_eq!(sent.status, 202, "{sent:?}");
    assert_eq!(receiver.next().await.json(), json!({"n": 1}));
    let batch = json!({"events": [{"event": "order.created", "payload": 2}]});
    assert_eq!(
        as_key(
            &server,
            &writer,
            Method::POST,
            "/api/v1/events/batch",
            Some(batch)
        )
        .await
        .status,
        200
    );
    let read = as_key(&server, &writer, Method::GET, "/api/v1/endpoints", None).await;
    assert!(problem(&read, 403).contains("`endpoints:read`"));

    // endpoints:read reads endpoints and stats, not attempts, not changes.
    assert_eq!(
        as_key(&server, &reader, Method::GET, "/api/v1/endpoints", None)
            .await
            .status,
        200
    );
    assert_eq!(
        as_key(
            &server,
            &reader,
            Method::GET,
            "/api/v1/endpoints/crm/stats",
            None
        )
        .await
        .status,
        200
    );
    let attempts = as_key(
        &server,
        &reader,
        Method::GET,
        "/api/v1/endpoints/crm/attempts",
        None,
    )
    .await;
    assert!(problem(&attempts, 403).contains("`messages:read`"));
    let pause = as_key(
        &server,
        &reader,
        Method::POST,
        "/api/v1/endpoints/crm/pause",
        None,
    )
    .await;
    assert!(problem(&pause, 403).contains("`endpoints:write`"));
    let emit = as_key(
        &server,
        &reader,
        Method::POST,
        "/api/v1/events",
        Some(event),
    )
    .await;
    assert!(problem(&emit, 403).contains("`events:write`"));

    // messages:read reads attempts and dead letters.
    for path in [
        "/api/v1/endpoints/crm/attempts",
        "/api/v1/endpoints/crm/dead-letters",
    ] {
        assert_eq!(
            as_key(&server, &history, Method::GET, path, None)
                .await
                .status,
            200,
            "{path}"
        );
    }
    // endpoints:write changes endpoints; event types need their own scope.
    let paused = as_key(
        &server,
        &admin_of_endpoints,
        Method::POST,
        "/api/v1/endpoints/crm/pause",
        None,
    )
    .await;
    assert_eq!(paused.status, 200, "{paused:?}");
    let typed = json!({"name": "order.created"});
    let refused = as_key(
        &server,
        &admin_of_endpoints,
        Method::POST,
        "/api/v1/event-types",
        Some(typed),
    )
    .await;
    assert!(problem(&refused, 403).contains("`event-types:write`"));

    // Any key reads the catalog and the document; none manages keys, sees
    // metrics or live updates.
    for path in ["/api/v1/event-types", "/api/v1/openapi.json"] {
        assert_eq!(
            as_key(&server, &writer, Method::GET, path, None)
                .await
                .status,
            200,
            "{path}"
        );
    }
    // Paths spelled another way reach the same routes, and need the same.
    for path in [
        "/api/v1/%61pi-keys",
        "/api/v1//api-keys",
        "/api/v1/events/../api-keys",
        "/api/v1/./api-keys",
    ] {
        let answer = as_key(&server, &admin_of_endpoints, Method::GET, path, None).await;
        assert!(matches!(answer.status, 403 | 404), "{path}: {answer:?}");
    }
    for (method, path) in [
        (Method::GET, KEYS),
        (Method::POST, KEYS),
        (Method::GET, "/metrics"),
        (Method::GET, "/sse/order.created"),
        (Method::GET, "/ws"),
    ] {
        let body =
            (method == Method::POST).then(|| json!({"name": "x", "scopes": ["events:write"]}));
        let answer = as_key(&server, &admin_of_endpoints, method, path, body).await;
        assert!(
            problem(&answer, 403).contains("admin token"),
            "{path}: {answer:?}"
        );
    }
}

#[actix_web::test]
async fn a_revoked_key_is_refused_at_once_and_made_up_keys_never_pass() {
    let dir = ScratchDir::new("keys-revoke");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let key = make_key(&server, &["endpoints:read"]).await;
    assert_eq!(
        as_key(&server, &key, Method::GET, "/api/v1/endpoints", None)
            .await
            .status,
        200
    );
    let id = key.split('_').nth(1).unwrap();
    let revoked = server
        .api(Method::DELETE, &format!("{KEYS}/{id}"), None)
        .await;
    assert_eq!(revoked.status, 204, "{revoked:?}");
    problem(
        &as_key(&server, &key, Method::GET, "/api/v1/endpoints", None).await,
        401,
    );
    let again = server
        .api(Method::DELETE, &format!("{KEYS}/{id}"), None)
        .await;
    assert!(problem(&again, 404).contains(id));

    let live = make_key(&server, &["endpoints:read"]).await;
    let live_id = live.split('_').nth(1).unwrap();
    for made_up in [
        format!("whk_{live_id}_wrong-secret"),
        format!("whk_{live_id}_"),
        "whk_0123456789abcdef_secret".to_owned(),
        "whk_".to_owned(),
        live.to_uppercase(),
    ] {
        let answer = as_key(&server, &made_up, Method::GET, "/api/v1/endpoints", None).await;
        problem(&answer, 401);
        assert!(!answer.text.contains(&made_up), "{answer:?}");
    }
}

#[actix_web::test]
async fn bad_key_requests_are_refused_and_nothing_is_made() {
    let dir = ScratchDir::new("keys-bad");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let refused = [
        (json!({"name": "x", "scopes": []}), "at least one scope"),
        (
            json!({"name": "x", "scopes": ["apps:everything"]}),
            "unknown variant",
        ),
        (
            json!({"name": "", "scopes": ["events:write"]}),
            "1 to 200 bytes",
        ),
        (
            json!({"name": "x".repeat(201), "scopes": ["events:write"]}),
            "1 to 200 bytes",
        ),
        (json!({"scopes": ["events:write"]}), "missing field `name`"),
        (
            json!({"name": "x", "scopes": ["events:write"], "app": "a"}),
            "no application with id `a`",
        ),
        (
            json!({"name": "x", "scopes": ["events:write"], "app": "a/b"}),
            "invalid application id",
        ),
        (
            json!({"name": "x", "scopes": ["events:write"], "other": 1}),
            "unknown field",
        ),
    ];
    for (body, expected) in refused {
        let answer = server.api(Method::POST, KEYS, Some(body.clone())).await;
        assert!(
            problem(&answer, 400).contains(expected),
            "{body}: {answer:?}"
        );
    }
    assert_eq!(server.api(Method::GET, KEYS, None).await.json, json!([]));
}

#[actix_web::test]
async fn keys_survive_a_restart() {
    let dir = ScratchDir::new("keys-restart");
    let journal = dir.file("j.redb");
    let server = ServerProcess::start(&journal, &[]);
    let key = make_key(&server, &["endpoints:read"]).await;
    server.kill();
    let server = ServerProcess::start(&journal, &[]);
    assert_eq!(
        as_key(&server, &key, Method::GET, "/api/v1/endpoints", None)
            .await
            .status,
        200
    );
}
