//! The server binary over real HTTP on loopback: every route, every error
//! status, problem+json bodies, idempotency, key rotation, restarts.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use awc::http::Method;
use serde_json::{json, Value};
use support::server::{problem, ServerProcess, TOKEN};
use support::{Receiver, ScratchDir};
use webhooks_emitter::verify::{StandardVerifier, Verifier};

const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn endpoint(id: &str, receiver: &Receiver) -> Value {
    json!({
        "id": id,
        "url": receiver.url("/hooks"),
        "events": ["order.created"],
        "secret": "legacy-secret",
        "standard_webhooks_secret": KEY,
        "headers": {"authorization": "Bearer receiver-token"},
        "max_retries": 2,
        "timeout_ms": 5000,
        "backoff_ms": {"start": 10, "limit": 20},
    })
}

async fn emit(server: &ServerProcess, payload: Value) -> String {
    let answer = server
        .api(
            Method::POST,
            "/api/v1/events",
            Some(json!({"event": "order.created", "payload": payload})),
        )
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    answer.json["request_id"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn create_then_emit_delivers_signed_and_shows_secrets_masked() {
    let dir = ScratchDir::new("server-create");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let mut receiver = Receiver::start();

    let created = server
        .api(
            Method::POST,
            "/api/v1/endpoints",
            Some(endpoint("crm", &receiver)),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.json["secret"], "***");
    assert_eq!(created.json["standard_webhooks_secret"], "***");
    assert_eq!(created.json["headers"]["authorization"], "***");
    assert_eq!(created.json["state"], "active");
    let text = created.json.to_string();
    assert!(
        !text.contains("legacy-secret") && !text.contains("receiver-token") && !text.contains(KEY)
    );

    let id = emit(&server, json!({"n": 1})).await;
    let request = receiver.next().await;
    assert_eq!(request.path, "/hooks");
    assert_eq!(request.header("x-webhooks-delivery"), Some(id.as_str()));
    assert_eq!(
        request.header("authorization"),
        Some("Bearer receiver-token")
    );
    let legacy = webhooks_emitter::sign(b"legacy-secret", &request.body);
    assert_eq!(
        request.header("x-webhooks-signature"),
        Some(legacy.as_str())
    );
    StandardVerifier::new(KEY)
        .unwrap()
        .verify(&request.headers, &request.body)
        .expect("Standard Webhooks signature");
    assert_eq!(request.json(), json!({"n": 1}));

    let listed = server.api(Method::GET, "/api/v1/endpoints", None).await;
    assert_eq!(listed.json.as_array().map(Vec::len), Some(1), "{listed:?}");
    let read = server.api(Method::GET, "/api/v1/endpoints/crm", None).await;
    assert_eq!(read.json["id"], "crm");
    assert!(!read.json.to_string().contains("legacy-secret"));
}

#[actix_web::test]
async fn every_error_is_problem_json_and_nothing_is_half_created() {
    let dir = ScratchDir::new("server-errors");
    let server = ServerProcess::start(&dir.file("j.redb"), &["--max-payload-bytes", "1024"]);
    let receiver = Receiver::start();
    let list = "/api/v1/endpoints";

    let none = server.call(Method::GET, list, None, None, &[]).await;
    problem(&none, 401);
    assert_eq!(none.headers.get("www-authenticate").unwrap(), "Bearer");
    problem(
        &server
            .call(Method::GET, list, None, Some("wrong-token-0123456789"), &[])
            .await,
        401,
    );
    problem(
        &server.call(Method::GET, "/metrics", None, None, &[]).await,
        401,
    );

    let invalid_json = server
        .send_raw(Method::POST, list, Some("{nope"), Some(TOKEN), &[])
        .await;
    assert!(problem(&invalid_json, 400).contains("invalid JSON"));
    let mut unknown_field = endpoint("a", &receiver);
    unknown_field["colour"] = json!("blue");
    let detail = problem(
        &server.api(Method::POST, list, Some(unknown_field)).await,
        400,
    );
    assert!(detail.contains("colour"), "{detail}");
    let mut bad_url = endpoint("a", &receiver);
    bad_url["url"] = json!("ftp://example.com/x");
    let detail = problem(&server.api(Method::POST, list, Some(bad_url)).await, 400);
    assert!(
        detail.contains("emitter `a`") && detail.contains("url"),
        "{detail}"
    );
    let mut bad_id = endpoint("a/b", &receiver);
    bad_id["id"] = json!("a/b");
    problem(&server.api(Method::POST, list, Some(bad_id)).await, 400);
    let mut no_events = endpoint("a", &receiver);
    no_events["events"] = json!([]);
    problem(&server.api(Method::POST, list, Some(no_events)).await, 400);
    let empty = server.api(Method::GET, list, None).await;
    assert_eq!(empty.json, json!([]), "nothing half-created");

    assert_eq!(
        server
            .api(Method::POST, list, Some(endpoint("a", &receiver)))
            .await
            .status,
        201
    );
    let detail = problem(
        &server
            .api(Method::POST, list, Some(endpoint("a", &receiver)))
            .await,
        409,
    );
    assert!(detail.contains("already exists"), "{detail}");

    for (method, path) in [
        (Method::GET, "/api/v1/endpoints/zz"),
        (Method::PATCH, "/api/v1/endpoints/zz"),
        (Method::DELETE, "/api/v1/endpoints/zz"),
        (Method::POST, "/api/v1/endpoints/zz/pause"),
        (Method::POST, "/api/v1/endpoints/zz/resume"),
        (Method::POST, "/api/v1/endpoints/zz/test"),
        (Method::POST, "/api/v1/endpoints/zz/secret/rotate"),
        (Method::GET, "/api/v1/endpoints/zz/attempts"),
        (Method::GET, "/api/v1/endpoints/zz/dead-letters"),
        (
            Method::POST,
            "/api/v1/endpoints/zz/dead-letters/1/redeliver",
        ),
        (
            Method::POST,
            "/api/v1/endpoints/zz/dead-letters/redeliver-all",
        ),
        (Method::GET, "/api/v1/endpoints/zz/stats"),
        (
            Method::POST,
            "/api/v1/endpoints/a/dead-letters/99/redeliver",
        ),
        (Method::GET, "/api/v1/nothing-here"),
    ] {
        let body = (method == Method::PATCH).then(|| json!({}));
        problem(&server.api(method.clone(), path, body).await, 404);
    }
    let detail = problem(
        &server
            .api(
                Method::POST,
                "/api/v1/endpoints/a/dead-letters/x/redeliver",
                None,
            )
            .await,
        400,
    );
    assert!(detail.contains("invalid path"), "{detail}");
    problem(
        &server
            .api(Method::GET, "/api/v1/endpoints/a/attempts?limit=-1", None)
            .await,
        400,
    );

    let big = json!({"event": "order.created", "payload": "x".repeat(2000)});
    let detail = problem(
        &server.api(Method::POST, "/api/v1/events", Some(big)).await,
        413,
    );
    assert!(detail.contains("1024"), "{detail}");
    let huge = format!(
        "{{\"event\":\"e\",\"payload\":\"{}\"}}",
        "x".repeat(200_000)
    );
    problem(
        &server
            .send_raw(
                Method::POST,
                "/api/v1/events",
                Some(&huge),
                Some(TOKEN),
                &[],
            )
            .await,
        413,
    );
    let bad_event = json!({"event": "has space", "payload": 1});
    problem(
        &server
            .api(Method::POST, "/api/v1/events", Some(bad_event))
            .await,
        400,
    );
    let extra = json!({"event": "e", "payload": 1, "extra": true});
    problem(
        &server
            .api(Method::POST, "/api/v1/events", Some(extra))
            .await,
        400,
    );
}
