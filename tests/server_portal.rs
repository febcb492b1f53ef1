//! Portal links over real HTTP on loopback: made by the operator (or a key
//! with `apps:admin` bound to the application), they open one application
//! for a while with a customer's powers and no more; a changed or foreign
//! link is refused; `/portal` is served with its frame policy; bad flags
//! stop the server. The page itself is driven in `tests/portal_browser.rs`.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use awc::http::Method;
use serde_json::{json, Value};
use support::server::{problem, Answer, ServerProcess};
use support::ScratchDir;

async fn link(server: &ServerProcess, app: &str, body: Value) -> Answer {
    server
        .api(
            Method::POST,
            &format!("/api/v1/apps/{app}/portal-links"),
            Some(body),
        )
        .await
}

/// The token in a link's fragment.
fn token_of(answer: &Answer) -> String {
    let url = answer.json["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer:?}"));
    url.split_once('#').unwrap().1.to_owned()
}

#[actix_web::test]
async fn a_link_opens_one_application_with_a_customers_powers_only() {
    let dir = ScratchDir::new("portal-links");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    server.make_app("acme", "acme").await;
    server.make_app("globex", "globex").await;
    let made = link(&server, "acme", json!({})).await;
    assert_eq!(made.status, 201, "{made:?}");
    let url = made.json["url"].as_str().unwrap();
    assert!(url.starts_with(&server.url("/portal#wpl_acme.")), "{url}");
    let expires = humantime::parse_rfc3339(made.json["expires_at"].as_str().unwrap()).unwrap();
    let life = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap()
        .as_secs();
    assert!((3590..=3600).contains(&life), "{life}");
    let token = token_of(&made);
    let as_link = |method: Method, path: &'static str, body: Option<Value>| {
        let (server, token) = (&server, token.clone());
        async move { server.call(method, path, body, Some(&token), &[]).await }
    };

    let endpoint = json!({"id": "crm", "url": "https://crm.example/h", "events": ["*"]});
    for (method, path, body, status) in [
        (Method::GET, "/api/v1/apps/acme", None, 200),
        (
            Method::POST,
            "/api/v1/apps/acme/endpoints",
            Some(endpoint),
            201,
        ),
        (Method::GET, "/api/v1/apps/acme/endpoints", None, 200),
        (Method::GET, "/api/v1/apps/acme/messages", None, 200),
        (Method::GET, "/api/v1/event-types", None, 200),
        // What a customer may not do.
        (
            Method::POST,
            "/api/v1/apps/acme/events",
            Some(json!({"event": "e", "payload": 1})),
            403,
        ),
        (
            Method::POST,
            "/api/v1/apps/acme/portal-links",
            Some(json!({})),
            403,
        ),
        (
            Method::PATCH,
            "/api/v1/apps/acme",
            Some(json!({"name": "x"})),
            403,
        ),
        (
            Method::POST,
            "/api/v1/apps",
            Some(json!({"id": "x", "name": "x"})),
            403,
        ),
        (Method::GET, "/api/v1/api-keys", None, 403),
        (Method::GET, "/metrics", None, 403),
        // Another application, or `default`: as if it did not exist.
        (Method::GET, "/api/v1/apps/globex", None, 404),
        (Method::GET, "/api/v1/apps/globex/endpoints", None, 404),
        (Method::GET, "/api/v1/endpoints", None, 404),
        (Method::GET, "/api/v1/messages", None, 404),
    ] {
        let answer = as_link(method.clone(), path, body).await;
        assert_eq!(answer.status, status, "{method} {path}: {answer:?}");
    }
    let listed = as_link(Method::GET, "/api/v1/apps", None).await;
    assert_eq!(
        listed.json["data"].as_array().map(Vec::len),
        Some(1),
        "{listed:?}"
    );
    assert_eq!(listed.json["data"][0]["id"], "acme");

    // A changed link is refused: another application, a later end, a
    // signature off by one character.
    let forged = [
        token.replacen("wpl_acme.", "wpl_globex.", 1),
        {
            let (head, signature) = token.rsplit_once('.').unwrap();
            let (app, _) = head.rsplit_once('.').unwrap();
            format!("{app}.99999999999.{signature}")
        },
        {
            let mut bytes = token.clone().into_bytes();
            let last = bytes.len() - 1;
            bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
            String::from_utf8(bytes).unwrap()
        },
        "wpl_acme".into(),
    ];
    for forged in forged {
        let answer = server
            .call(Method::GET, "/api/v1/apps/acme", None, Some(&forged), &[])
            .await;
        problem(&answer, 401);
    }

    for (body, status) in [
        (json!({"expires_in": 0}), 400),
        (json!({"expires_in": 604_801}), 400),
        (json!({"expires_in": "soon"}), 400),
        (json!({"other": 1}), 400),
    ] {
        problem(&link(&server, "acme", body.clone()).await, status);
    }
    problem(&link(&server, "nope", json!({})).await, 404);
    let week = link(&server, "acme", json!({"expires_in": 604_800})).await;
    assert_eq!(week.status, 201, "{week:?}");

    // A key with apps:admin bound to acme makes acme's links, no other's.
    let key = server
        .api(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "acme admin", "scopes": ["apps:admin"], "app": "acme"})),
        )
        .await;
    let key = key.json["key"].as_str().unwrap().to_owned();
    for (app, status) in [("acme", 201), ("globex", 404)] {
        let answer = server
            .call(
                Method::POST,
                &format!("/api/v1/apps/{app}/portal-links"),
                Some(json!({})),
                Some(&key),
                &[],
            )
            .await;
        assert_eq!(answer.status, status, "{app}: {answer:?}");
    }
}

#[actix_web::test]
async fn the_portal_page_is_framed_only_where_allowed_and_links_use_the_public_url() {
    let dir = ScratchDir::new("portal-page");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let page = server.call(Method::GET, "/portal", None, None, &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("<title>Webhooks</title>"));
    let policy = page.headers.get("content-security-policy").unwrap();
    assert_eq!(policy, "default-src 'self'; frame-ancestors 'none'");
    drop(server);

    let server = ServerProcess::start(
        &dir.file("j2.redb"),
        &[
            "--portal-frame-ancestors",
            "https://app.example.com 'self'",
            "--public-url",
            "https://hooks.example.com/",
        ],
    );
    let page = server
        .call(Method::GET, "/portal.js", None, None, &[])
        .await;
    let policy = page.headers.get("content-security-policy").unwrap();
    assert_eq!(
        policy,
        "default-src 'self'; frame-ancestors https://app.example.com 'self'"
    );
    server.make_app("acme", "acme").await;
    let made = link(&server, "acme", json!({})).await;
    let url = made.json["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://hooks.example.com/portal#wpl_acme."),
        "{url}"
    );
    drop(server);

    for (flag, value) in [
        (
            "--portal-frame-ancestors",
            "https://a.example; script-src *",
        ),
        ("--portal-frame-ancestors", "'none' https://a.example"),
        ("--portal-frame-ancestors", ""),
        ("--public-url", "ftp://hooks.example.com"),
        ("--public-url", "https://hooks.example.com/?x=1"),
    ] {
        let output = ServerProcess::binary()
            .env("WEBHOOKS_ADMIN_TOKEN", support::server::TOKEN)
            .args(["--listen", "127.0.0.1:0", "--journal"])
            .arg(dir.file("bad.redb"))
            .args([flag, value])
            .output()
            .unwrap();
        assert!(!output.status.success(), "{flag} {value:?} was accepted");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains(flag), "{flag} {value:?}: {said}");
    }
}
