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

/// Creates endpoint `crm` to `receiver` (201), and answers what it showed.
async fn create(server: &ServerProcess, receiver: &Receiver) -> support::server::Answer {
    server.create(endpoint("crm", receiver)).await
}

/// Emits `payload` as `order.created`; its request id.
async fn emit(server: &ServerProcess, payload: Value) -> String {
    server.emit("order.created", payload).await
}

#[actix_web::test]
async fn create_then_emit_delivers_signed_and_shows_secrets_masked() {
    let dir = ScratchDir::new("server-create");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let mut receiver = Receiver::start();

    let created = create(&server, &receiver).await;
    assert_eq!(created.json["secret"], "***");
    assert_eq!(created.json["standard_webhooks_secret"], "***");
    assert_eq!(created.json["headers"]["authorization"], "***");
    assert_eq!(created.json["state"], "active");
    // Times are RFC 3339 everywhere, as in attempts and dead letters.
    let created_at = created.json["created_at"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(created_at).is_ok(), "{created_at}");
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
        detail.contains("endpoint `a`") && detail.contains("url") && !detail.contains("emitter"),
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

    server.create(endpoint("a", &receiver)).await;
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

#[actix_web::test]
async fn an_idempotency_key_replays_the_first_answer_and_emits_once() {
    let dir = ScratchDir::new("server-idem");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let mut receiver = Receiver::start();
    create(&server, &receiver).await;
    let body = json!({"event": "order.created", "payload": {"n": 1}});
    let send = |body: Value| {
        server.call(
            Method::POST,
            "/api/v1/events",
            Some(body),
            Some(TOKEN),
            &[("idempotency-key", "k-1")],
        )
    };
    let first = send(body.clone()).await;
    let again = send(body.clone()).await;
    assert_eq!((first.status, again.status), (202, 202));
    assert_eq!(first.json["request_id"], again.json["request_id"]);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    assert!(first.headers.get("idempotent-replayed").is_none());
    let other = send(json!({"event": "order.created", "payload": {"n": 2}})).await;
    assert!(problem(&other, 422).contains("different request body"));

    // After a restart the key is still known.
    let journal = server.journal.clone();
    assert!(server.terminate().success());
    let server = ServerProcess::start(&journal, &[]);
    let after = server
        .call(
            Method::POST,
            "/api/v1/events",
            Some(body),
            Some(TOKEN),
            &[("idempotency-key", "k-1")],
        )
        .await;
    assert_eq!(after.json["request_id"], first.json["request_id"]);
    assert_eq!(
        after
            .headers
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true"),
        "answered from the key, not emitted again"
    );
    // A fresh event marks the end: exactly one delivery came before it.
    let marker = emit(&server, json!({"n": 99})).await;
    assert_eq!(receiver.next().await.n(), 1);
    let next = receiver.next().await;
    assert_eq!(next.header("x-webhooks-delivery"), Some(marker.as_str()));
}

/// A journal written by an earlier version keeps each key's record under
/// the key itself, with no `key` field: such a key still replays, after
/// which a new key and a repeat of both survive another restart.
#[actix_web::test]
async fn a_key_stored_by_an_earlier_version_still_replays() {
    use sha2::{Digest, Sha256};
    let dir = ScratchDir::new("server-idem-legacy");
    let path = dir.file("j.redb");
    let body = json!({"event": "order.created", "payload": {"n": 7}});
    let fingerprint: String = Sha256::digest(serde_json::to_vec(&body).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    {
        let journal = webhooks_emitter::Journal::open(&path).unwrap();
        let legacy = json!({"fingerprint": fingerprint, "request_id": "legacy-id", "at": now});
        journal
            .put_record(
                "idempotency",
                "old-key",
                serde_json::to_vec(&legacy).unwrap(),
            )
            .await
            .unwrap();
    }
    async fn send(server: &ServerProcess, key: &str, body: Value) -> support::server::Answer {
        server
            .call(
                Method::POST,
                "/api/v1/events",
                Some(body),
                Some(TOKEN),
                &[("idempotency-key", key)],
            )
            .await
    }
    let server = ServerProcess::start(&path, &[]);
    let replayed = send(&server, "old-key", body.clone()).await;
    assert_eq!(replayed.status, 202, "{replayed:?}");
    assert_eq!(replayed.json["request_id"], "legacy-id");
    assert!(replayed.headers.get("idempotent-replayed").is_some());
    let fresh = send(&server, "new-key", body.clone()).await;
    assert!(fresh.headers.get("idempotent-replayed").is_none());
    assert!(server.terminate().success());
    let server = ServerProcess::start(&path, &[]);
    for (key, id) in [
        ("old-key", json!("legacy-id")),
        ("new-key", fresh.json["request_id"].clone()),
    ] {
        let again = send(&server, key, body.clone()).await;
        assert_eq!(again.json["request_id"], id, "{key}");
        assert!(again.headers.get("idempotent-replayed").is_some(), "{key}");
    }
}

#[actix_web::test]
async fn a_rotated_key_and_the_previous_one_both_verify_during_the_grace_period() {
    let dir = ScratchDir::new("server-rotate");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let mut receiver = Receiver::start();
    create(&server, &receiver).await;
    let (rotated, new_key) = server.rotate("crm").await;
    assert!(new_key.starts_with("whsec_") && new_key != KEY);
    assert!(
        rotated.json["previous_key_signs_until"].is_string(),
        "{rotated:?}"
    );
    let shown = server.api(Method::GET, "/api/v1/endpoints/crm", None).await;
    assert!(
        !shown.json.to_string().contains(&new_key),
        "the key is shown once"
    );
    assert_eq!(
        shown.json["retiring_keys_until"].as_array().map(Vec::len),
        Some(1)
    );

    emit(&server, json!({"n": 1})).await;
    let request = receiver.next().await;
    for key in [KEY, new_key.as_str()] {
        StandardVerifier::new(key)
            .unwrap()
            .verify(&request.headers, &request.body)
            .unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    let stranger = "whsec_c2VjcmV0LWtleS1vZi0yNC1ieXRlcyE=";
    assert!(StandardVerifier::new(stranger)
        .unwrap()
        .verify(&request.headers, &request.body)
        .is_err());
}

#[actix_web::test]
async fn dead_letters_are_listed_and_redelivered_and_attempts_recorded() {
    let dir = ScratchDir::new("server-dead");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let mut receiver = Receiver::start();
    receiver.script_statuses([500, 500, 503, 503]);
    create(&server, &receiver).await;
    emit(&server, json!({"n": 1})).await;
    emit(&server, json!({"n": 2})).await;
    for _ in 0..4 {
        receiver.next().await; // two attempts each, all failing
    }
    let letters = loop {
        let answer = server
            .api(Method::GET, "/api/v1/endpoints/crm/dead-letters", None)
            .await;
        if answer.json.as_array().is_some_and(|l| l.len() == 2) {
            break answer.json;
        }
        actix_web::rt::task::yield_now().await;
    };
    assert_eq!(letters[0]["payload"], json!({"n": 1}));
    assert_eq!(letters[0]["attempts"], 2);
    let first = letters[0]["id"].as_u64().unwrap();

    let one = server
        .api(
            Method::POST,
            &format!("/api/v1/endpoints/crm/dead-letters/{first}/redeliver"),
            None,
        )
        .await;
    assert_eq!(one.status, 202, "{one:?}");
    assert_eq!(receiver.next().await.n(), 1);
    let all = server
        .api(
            Method::POST,
            "/api/v1/endpoints/crm/dead-letters/redeliver-all",
            None,
        )
        .await;
    assert_eq!(all.json["redelivered"], 1, "{all:?}");
    assert_eq!(receiver.next().await.n(), 2);

    let attempts = loop {
        let answer = server
            .api(Method::GET, "/api/v1/endpoints/crm/attempts?limit=10", None)
            .await;
        if answer.json[0]["outcome"] == "delivered" && answer.json.as_array().unwrap().len() >= 6 {
            break answer.json;
        }
        actix_web::rt::task::yield_now().await;
    };
    assert_eq!(attempts[0]["status"], 200);
    let outcomes: Vec<&str> = attempts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert!(
        outcomes.contains(&"dead_lettered") && outcomes.contains(&"failed"),
        "{outcomes:?}"
    );
    for attempt in attempts.as_array().unwrap() {
        if matches!(attempt["outcome"].as_str(), Some("failed" | "delivered")) {
            assert!(
                attempt["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
                "a failed attempt has its latency too: {attempt}"
            );
            assert!(attempt["at"].as_str().unwrap().ends_with('Z'));
        }
    }
    let stats = server
        .api(Method::GET, "/api/v1/endpoints/crm/stats", None)
        .await;
    assert_eq!(stats.json["delivered"], 2, "{stats:?}");
    assert_eq!(stats.json["dead_lettered"], 2);
}

#[actix_web::test]
async fn pause_resume_test_change_and_delete() {
    let dir = ScratchDir::new("server-control");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let mut receiver = Receiver::start();
    let mut second = Receiver::start();
    create(&server, &receiver).await;
    let paused = server
        .api(Method::POST, "/api/v1/endpoints/crm/pause", None)
        .await;
    assert_eq!(paused.json["state"], "paused", "{paused:?}");
    emit(&server, json!({"n": 1})).await;
    let changed = server
        .api(
            Method::PATCH,
            "/api/v1/endpoints/crm",
            Some(json!({"url": second.url("/v2"), "secret": null, "events": ["order.created", "order.paid"]})),
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    assert_eq!(changed.json["secret"], Value::Null);
    assert_eq!(
        changed.json["state"], "paused",
        "the queue and the pause are kept"
    );
    assert_eq!(changed.json["stats"]["queued"], 1);
    let resumed = server
        .api(Method::POST, "/api/v1/endpoints/crm/resume", None)
        .await;
    assert_eq!(resumed.json["state"], "active");
    let request = second.next().await;
    assert_eq!((request.n(), request.path.as_str()), (1, "/v2"));
    assert!(
        request.header("x-webhooks-signature").is_none(),
        "secret removed"
    );
    assert!(receiver.try_next().is_none());

    let tested = server
        .api(Method::POST, "/api/v1/endpoints/crm/test", None)
        .await;
    assert_eq!(
        (tested.json["ok"].clone(), tested.json["status"].clone()),
        (json!(true), json!(200))
    );
    assert_eq!(
        second.next().await.header("x-webhooks-event"),
        Some("webhook_test")
    );

    let bad = server
        .api(
            Method::PATCH,
            "/api/v1/endpoints/crm",
            Some(json!({"url": "nope"})),
        )
        .await;
    problem(&bad, 400);
    let unknown = server
        .api(
            Method::PATCH,
            "/api/v1/endpoints/crm",
            Some(json!({"id": "other"})),
        )
        .await;
    problem(&unknown, 400);
    let kept = server.api(Method::GET, "/api/v1/endpoints/crm", None).await;
    assert!(
        kept.json["url"].as_str().unwrap().ends_with("/v2"),
        "a refused change changes nothing"
    );

    assert_eq!(
        server
            .api(Method::DELETE, "/api/v1/endpoints/crm", None)
            .await
            .status,
        204
    );
    problem(
        &server.api(Method::GET, "/api/v1/endpoints/crm", None).await,
        404,
    );
    assert_eq!(
        server
            .api(Method::GET, "/api/v1/endpoints", None)
            .await
            .json,
        json!([])
    );
}

#[actix_web::test]
async fn a_restart_keeps_endpoints_and_queued_events_and_sigterm_exits_zero() {
    let dir = ScratchDir::new("server-restart");
    let journal = dir.file("j.redb");
    let server = ServerProcess::start(&journal, &["--drain-timeout", "200ms"]);
    let mut receiver = Receiver::start();
    create(&server, &receiver).await;
    server
        .api(Method::POST, "/api/v1/endpoints/crm/pause", None)
        .await;
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(emit(&server, json!({"n": n})).await);
    }
    let status = server.terminate();
    assert!(status.success(), "SIGTERM: {status:?}");

    let server = ServerProcess::start(&journal, &[]);
    let shown = server.api(Method::GET, "/api/v1/endpoints/crm", None).await;
    assert_eq!(shown.json["state"], "paused", "{shown:?}");
    assert_eq!(shown.json["stats"]["stored"], 3, "{shown:?}");
    server
        .api(Method::POST, "/api/v1/endpoints/crm/resume", None)
        .await;
    for (n, id) in ids.iter().enumerate() {
        let request = receiver.next().await;
        assert_eq!(request.n(), n as i64 + 1);
        assert_eq!(request.header("x-webhooks-delivery"), Some(id.as_str()));
        let legacy = webhooks_emitter::sign(b"legacy-secret", &request.body);
        assert_eq!(
            request.header("x-webhooks-signature"),
            Some(legacy.as_str()),
            "secrets kept"
        );
    }
}

#[actix_web::test]
async fn a_rotated_out_key_stops_signing_when_its_grace_period_ends() {
    let dir = ScratchDir::new("server-rotate-expiry");
    let server = ServerProcess::start(&dir.file("j.redb"), &["--rotation-grace", "1s"]);
    let mut receiver = Receiver::start();
    create(&server, &receiver).await;
    let (_, new_key) = server.rotate("crm").await;
    // The server retires the key by itself; wait until it says so.
    loop {
        let shown = server.api(Method::GET, "/api/v1/endpoints/crm", None).await;
        if shown.json["retiring_keys_until"] == json!([]) {
            break;
        }
        actix_web::rt::task::yield_now().await;
    }
    emit(&server, json!({"n": 1})).await;
    let request = receiver.next().await;
    StandardVerifier::new(&new_key)
        .unwrap()
        .verify(&request.headers, &request.body)
        .expect("the new key signs");
    assert!(
        StandardVerifier::new(KEY)
            .unwrap()
            .verify(&request.headers, &request.body)
            .is_err(),
        "the old key no longer signs"
    );
}

#[actix_web::test]
async fn hostile_bodies_and_extreme_settings_get_400_and_the_server_stays_up() {
    let dir = ScratchDir::new("server-hostile");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let receiver = Receiver::start();
    let list = "/api/v1/endpoints";
    let with = |field: &str, value: Value| {
        let mut spec = endpoint("x", &receiver);
        spec[field] = value;
        spec
    };
    for spec in [
        with("max_retries", json!(0)),
        with("max_retries", json!(-1)),
        with("max_retries", json!(1e30)),
        with("max_retries", json!("3")),
        with("timeout_ms", json!(0)),
        with("backoff_ms", json!({"start": 100, "limit": 10})),
        with("backoff_ms", json!({"start": 0, "limit": 10})),
        with("backoff_ms", json!({"start": 1})),
        with("max_in_flight", json!(0)),
        with("rate_limit", json!({"per_second": 0})),
        with("rate_limit", json!({"per_second": 2_000_000})),
        with("rate_limit", json!({"per_second": 10, "burst": 0})),
        with("rate_limit", json!({"per_second": -1})),
        with("rate_limit", json!({"burst": 5})),
        with("rate_limit", json!(10)),
        with("circuit_breaker", json!(0)),
        with("circuit_breaker", json!(-3)),
        with("headers", json!({"x-evil": "a\r\nb: c"})),
        with("headers", json!({"bad name": "v"})),
        with("headers", json!({"x-webhooks-signature": "forged"})),
        with("secret", json!("")),
        with("standard_webhooks_secret", json!("not-a-key")),
        with("url", json!("http://user:pw@")),
        with("url", json!("javascript:alert(1)")),
        with("events", json!(["ok", "bad\nname"])),
        with("events", json!("order.created")),
        with("id", json!("")),
        with("id", json!("é")),
        with("id", json!("x".repeat(129))),
    ] {
        let answer = server.api(Method::POST, list, Some(spec)).await;
        let detail = problem(&answer, 400);
        assert!(
            !detail.contains("pw@") || !detail.contains("user:pw"),
            "{detail}"
        );
        let _ = spec;
    }
    let deep = format!("{}1{}", "[".repeat(500_000), "]".repeat(500_000));
    let body = format!("{{\"event\":\"e\",\"payload\":{deep}}}");
    // Valid JSON under the size limit, however deep, is accepted as is (and
    // skipping over it must not overflow the stack).
    let deep_answer = server
        .send_raw(
            Method::POST,
            "/api/v1/events",
            Some(&body),
            Some(TOKEN),
            &[],
        )
        .await;
    assert_eq!(deep_answer.status, 202, "{deep_answer:?}");
    for raw in [
        "",
        "null",
        "[]",
        "\"x\"",
        "{\"event\":1,\"payload\":1}",
        "\u{feff}{}",
    ] {
        problem(
            &server
                .send_raw(Method::POST, list, Some(raw), Some(TOKEN), &[])
                .await,
            400,
        );
    }
    let long_key = "k".repeat(300);
    let answer = server
        .call(
            Method::POST,
            "/api/v1/events",
            Some(json!({"event": "e", "payload": 1})),
            Some(TOKEN),
            &[("idempotency-key", &long_key)],
        )
        .await;
    problem(&answer, 400);
    assert_eq!(
        server.api(Method::GET, list, None).await.json,
        json!([]),
        "nothing created"
    );
    let health = server.call(Method::GET, "/health", None, None, &[]).await;
    assert_eq!(health.status, 200);
}

#[actix_web::test]
async fn sigterm_drains_queued_events_before_exiting() {
    let dir = ScratchDir::new("server-drain");
    let journal = dir.file("j.redb");
    let server = ServerProcess::start(&journal, &["--drain-timeout", "60s"]);
    let mut receiver = Receiver::start();
    let slow = std::time::Duration::from_millis(200);
    receiver.script([
        support::Reply::Delay(slow),
        support::Reply::Delay(slow),
        support::Reply::Delay(slow),
    ]);
    create(&server, &receiver).await;
    for n in 1..=3 {
        emit(&server, json!({"n": n})).await;
    }
    assert!(server.terminate().success());
    let mut seen = Vec::new();
    while let Some(request) = receiver.try_next() {
        seen.push(request.n());
    }
    assert_eq!(
        seen,
        [1, 2, 3],
        "every queued event was sent before the exit"
    );
    let server = ServerProcess::start(&journal, &[]);
    let shown = server.api(Method::GET, "/api/v1/endpoints/crm", None).await;
    assert_eq!(
        shown.json["stats"]["stored"], 0,
        "and acknowledged: {shown:?}"
    );
}

#[actix_web::test]
async fn while_draining_ready_is_503_and_the_drain_ends_without_waiting_for_backoffs() {
    let dir = ScratchDir::new("server-drain-ready");
    let journal = dir.file("j.redb");
    let server = ServerProcess::start(&journal, &["--drain-timeout", "60s"]);
    let mut slow = Receiver::start();
    let mut failing = Receiver::start();
    slow.script([support::Reply::Delay(std::time::Duration::from_secs(2))]);
    failing.script([support::Reply::Status(500)]);
    let spec = |id: &str, receiver: &Receiver, event: &str| {
        json!({
            "id": id,
            "url": receiver.url("/"),
            "events": [event],
            "max_retries": 5,
            "backoff_ms": {"start": 60_000, "limit": 60_000},
        })
    };
    server.create(spec("slow", &slow, "s")).await;
    server.create(spec("failing", &failing, "f")).await;
    server.emit("f", json!({"n": 1})).await;
    failing.next().await; // failed once: waits out a 60 s backoff
    server.emit("s", json!({"n": 2})).await;
    slow.next().await; // in flight for 2 s
    let asked = std::time::Instant::now();
    server.send_term();
    // The listener stays open during the drain: not ready, no new events.
    support::eventually("/ready answering 503", || async {
        server
            .call(Method::GET, "/ready", None, None, &[])
            .await
            .status
            == 503
    })
    .await;
    let refused = server.emit_raw("s", json!({"n": 3})).await;
    problem(&refused, 503);
    assert!(server.wait_exit().success());
    // Only the backoff was left: the drain did not wait out its 60 s.
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(30),
        "the drain waited {:?}",
        asked.elapsed()
    );
    let server = ServerProcess::start(&journal, &[]);
    let shown = server
        .api(Method::GET, "/api/v1/endpoints/failing", None)
        .await;
    assert_eq!(shown.json["stats"]["stored"], 1, "kept for the next start");
    let shown = server
        .api(Method::GET, "/api/v1/endpoints/slow", None)
        .await;
    assert_eq!(
        shown.json["stats"]["stored"], 0,
        "the request in flight finished"
    );
}

#[actix_web::test]
async fn attempts_with_response_bodies_and_stats_survive_restarts_within_the_bound() {
    let dir = ScratchDir::new("server-attempt-log");
    let journal = dir.file("j.redb");
    let server = ServerProcess::start(&journal, &["--attempts-kept", "3"]);
    let mut receiver = Receiver::start();
    let long = "x".repeat(10_000);
    receiver.script([
        support::Reply::Body(500, "bad signature: key 2 expected".into()),
        support::Reply::Body(200, long.clone()),
    ]);
    let spec = json!({"id": "log", "url": receiver.url("/"), "events": ["e"],
        "max_retries": 3, "backoff_ms": {"start": 10, "limit": 10}});
    server.create(spec).await;
    server.emit("e", json!({"n": 1})).await;
    receiver.take(2).await;
    let path = "/api/v1/endpoints/log/attempts";
    support::eventually("both attempts logged", || async {
        server
            .api(Method::GET, path, None)
            .await
            .json
            .as_array()
            .map(Vec::len)
            == Some(2)
    })
    .await;
    let shown = server.api(Method::GET, path, None).await.json;
    assert_eq!(shown[0]["outcome"], "delivered");
    assert_eq!(
        shown[0]["response_body"].as_str().map(str::len),
        Some(4096),
        "the first 4 KiB"
    );
    assert_eq!(shown[1]["outcome"], "failed");
    assert_eq!(shown[1]["status"], 500);
    assert_eq!(shown[1]["response_body"], "bad signature: key 2 expected");
    assert!(shown[1]["latency_ms"].as_f64().is_some());

    // SIGKILL (the drop): what the API showed is in the journal.
    drop(server);
    let server = ServerProcess::start(&journal, &["--attempts-kept", "3"]);
    assert_eq!(server.api(Method::GET, path, None).await.json, shown);

    // Beyond the bound, the oldest go; counters survive a restart.
    for n in 2..=4 {
        server.emit("e", json!({"n": n})).await;
    }
    receiver.take(3).await;
    support::eventually("the newest three kept", || async {
        let all = server.api(Method::GET, path, None).await.json;
        all.as_array().map(Vec::len) == Some(3)
            && all[2]["outcome"] == "delivered"
            && all[0]["request_id"] != shown[0]["request_id"]
    })
    .await;
    assert!(server.terminate().success());
    let server = ServerProcess::start(&journal, &["--attempts-kept", "3"]);
    let kept = server.api(Method::GET, path, None).await.json;
    assert_eq!(kept.as_array().map(Vec::len), Some(3));
    assert!(kept
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["outcome"] == "delivered"));
    let stats = server
        .api(Method::GET, "/api/v1/endpoints/log/stats", None)
        .await;
    assert_eq!(stats.json["delivered"], 4, "{stats:?}");
    assert_eq!(stats.json["failed_attempts"], 1, "{stats:?}");

    // A deleted endpoint's history goes with it.
    server
        .api(Method::DELETE, "/api/v1/endpoints/log", None)
        .await;
    server
        .create(json!({"id": "log", "url": receiver.url("/"), "events": ["e"]}))
        .await;
    assert_eq!(server.api(Method::GET, path, None).await.json, json!([]));
}

/// An endpoint's rate limit and circuit breaker: set at create, shown in its
/// view and stats, changed and removed by PATCH, and in effect: the limited
/// endpoint's deliveries keep to its rate.
#[actix_web::test]
async fn rate_limit_and_circuit_breaker_are_set_shown_and_changed() {
    let dir = ScratchDir::new("server-pacing");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let mut receiver = Receiver::start();
    let mut spec = endpoint("crm", &receiver);
    spec["rate_limit"] = json!({"per_second": 10});
    spec["circuit_breaker"] = json!(5);
    let created = server.create(spec).await;
    assert_eq!(
        created.json["rate_limit"],
        json!({"per_second": 10, "burst": 1})
    );
    assert_eq!(created.json["circuit_breaker"], 5);
    let view = server.api(Method::GET, "/api/v1/endpoints/crm", None).await;
    assert_eq!(view.json["stats"]["circuit_open"], false, "{view:?}");
    for n in 0..6 {
        emit(&server, json!({ "n": n })).await;
    }
    let got = receiver.take(6).await;
    let span = got[5].at.duration_since(got[0].at);
    assert!(
        span >= std::time::Duration::from_millis(450),
        "10 a second: {span:?}"
    );

    let patch = json!({"rate_limit": null, "circuit_breaker": 2});
    let changed = server
        .api(Method::PATCH, "/api/v1/endpoints/crm", Some(patch))
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    assert!(
        changed.json.get("rate_limit").is_none_or(Value::is_null),
        "{changed:?}"
    );
    assert_eq!(changed.json["circuit_breaker"], 2);
    let wrong = server
        .api(
            Method::PATCH,
            "/api/v1/endpoints/crm",
            Some(json!({"rate_limit": {"per_second": 0}})),
        )
        .await;
    assert!(problem(&wrong, 400).contains("rate_limit"), "{wrong:?}");
}

/// SIGKILL right after keyed 202s: the key's answer may not be on disk yet
/// (it follows its promise without being waited for), but its promise is,
/// with the request id: after a restart every repeat answers that same id,
/// and every delivery of each event carries it. Nothing is lost; a
/// duplicate, if any, has the first id.
#[actix_web::test]
async fn keyed_events_keep_their_request_id_across_a_sigkill() {
    async fn send(server: &ServerProcess, n: i64) -> String {
        let key = format!("k-{n}");
        let body = json!({"event": "order.created", "payload": {"n": n}});
        let answer = server
            .call(
                Method::POST,
                "/api/v1/events",
                Some(body),
                Some(TOKEN),
                &[("idempotency-key", key.as_str())],
            )
            .await;
        assert_eq!(answer.status, 202, "{answer:?}");
        answer.json["request_id"].as_str().unwrap().to_owned()
    }
    let dir = ScratchDir::new("server-idem-kill");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let mut receiver = Receiver::start();
    create(&server, &receiver).await;
    let mut first = Vec::new();
    for n in 0..30 {
        first.push(send(&server, n).await);
    }
    let journal = server.journal.clone();
    server.kill();
    let server = ServerProcess::start(&journal, &[]);
    for (n, id) in first.iter().enumerate() {
        assert_eq!(&send(&server, n as i64).await, id, "key k-{n}");
    }
    let marker = emit(&server, json!({"n": 99})).await;
    let mut seen = std::collections::HashMap::new();
    loop {
        let got = receiver.next().await;
        let id = got.header("x-webhooks-delivery").unwrap().to_owned();
        if id == marker {
            break;
        }
        assert_eq!(
            &id,
            &first[got.n() as usize],
            "event {} keeps its id",
            got.n()
        );
        seen.insert(got.n(), id);
    }
    assert_eq!(seen.len(), 30, "every keyed event delivered");
}
