//! The server binary for operators: metrics in Prometheus text format,
//! the OpenAPI document, health and readiness, SSE and WebSocket rooms behind
//! the token, and
//! refusing to start without a token.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use awc::http::Method;
use futures_util::StreamExt;
use serde_json::json;
use support::live::Socket;
use support::server::{problem, ServerProcess, TOKEN};
use support::{Receiver, ScratchDir, DEADLINE};

#[actix_web::test]
async fn metrics_parse_as_prometheus_text_and_count_the_deliveries() {
    let dir = ScratchDir::new("server-metrics");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let mut receiver = Receiver::start();
    receiver.script_statuses([500]);
    let spec = json!({"id": "crm", "url": receiver.url("/"), "events": ["e"],
        "backoff_ms": {"start": 10, "limit": 10}});
    server.create(spec).await;
    for n in 0..3 {
        server.emit("e", json!({"n": n})).await;
    }
    for _ in 0..4 {
        receiver.next().await;
    }
    let client = awc::Client::builder().timeout(DEADLINE).finish();
    let scrape = loop {
        let mut response = client
            .get(server.url("/metrics"))
            .insert_header(("authorization", format!("Bearer {TOKEN}")))
            .send()
            .await
            .unwrap();
        assert!(response
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        let text = String::from_utf8(response.body().await.unwrap().to_vec()).unwrap();
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .expect("Prometheus text format");
        if value(&scrape, "webhooks_deliveries_total", &[("emitter", "crm")]) == Some(3.0) {
            break scrape;
        }
        actix_web::rt::task::yield_now().await;
    };
    assert_eq!(
        value(&scrape, "webhooks_events_emitted_total", &[("event", "e")]),
        Some(3.0)
    );
    assert_eq!(
        value(
            &scrape,
            "webhooks_attempts_total",
            &[("emitter", "crm"), ("outcome", "success")]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &scrape,
            "webhooks_attempts_total",
            &[("emitter", "crm"), ("outcome", "http_error")]
        ),
        Some(1.0)
    );
    // Gauges are there at once, not after a refresh tick.
    assert!(
        value(&scrape, "webhooks_queue_depth", &[("emitter", "crm")]).is_some(),
        "queue depth of an endpoint that has delivered"
    );
    // Latencies are histograms with buckets (they add up across instances
    // and do not fall to 0 when idle), not summaries.
    for name in [
        "webhooks_attempt_duration_seconds",
        "webhooks_delivery_lag_seconds",
    ] {
        let found = scrape.samples.iter().find(|s| s.metric == name);
        let buckets = found.map(|s| &s.value);
        assert!(
            matches!(buckets, Some(prometheus_parse::Value::Histogram(b)) if b.len() >= 10),
            "{name}: {buckets:?}"
        );
    }

    // An SSE client counts as soon as it is connected.
    let mut stream = client
        .get(server.url(&format!("/sse/live?token={TOKEN}")))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    // The stream is answered once the client is registered: read at once.
    let text = server.api(Method::GET, "/metrics", None).await.text;
    assert!(
        text.contains(r#"webhooks_sse_clients{topic="live"} 1"#),
        "{text}"
    );
    drop(stream.next());
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .and_then(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        })
}

#[actix_web::test]
async fn every_documented_operation_is_served_and_public_ones_need_no_token() {
    // The document is read off the route tree, so every route is in it; this
    // checks the other way: each documented method and path reaches a
    // handler, never the "no such route" fallback.
    let dir = ScratchDir::new("server-openapi");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let doc = server.api(Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(doc.status, 200);
    assert!(doc.json["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc.json["paths"].as_object().unwrap();
    assert!(paths.len() >= 18, "{:?}", paths.keys());
    for (path, item) in paths {
        if path == "/ws" || path.starts_with("/sse") {
            continue; // upgrades and streams: covered by their own tests
        }
        let concrete = path.replace("{id}", "nope").replace("{n}", "1");
        for (method, operation) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let answer = server.api(method.clone(), &concrete, None).await;
            assert!(
                !answer.text.contains("no such route") && answer.status != 405,
                "{method} {path} is documented but not served: {answer:?}"
            );
            let public = operation["security"] == serde_json::json!([{}]);
            assert_eq!(public, path == "/health" || path == "/ready", "{path}");
            if !public {
                assert!(operation["responses"]["401"].is_object(), "{method} {path}");
            }
        }
    }
    assert!(doc.json["components"]["schemas"]["EndpointSpec"].is_object());
    assert!(doc.json["components"]["securitySchemes"]["bearer"].is_object());
}

#[actix_web::test]
async fn health_and_readiness_need_no_token() {
    let dir = ScratchDir::new("server-health");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let health = server.call(Method::GET, "/health", None, None, &[]).await;
    assert_eq!(
        (health.status, health.json["status"].clone()),
        (200, json!("ok"))
    );
    let ready = server.call(Method::GET, "/ready", None, None, &[]).await;
    assert_eq!(
        (ready.status, ready.json["status"].clone()),
        (200, json!("ready"))
    );
    let page = server.call(Method::GET, "/", None, None, &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"));
    assert!(page.headers.get("content-security-policy").is_some());
}

#[actix_web::test]
async fn sse_needs_the_token_in_a_header_or_the_query() {
    let dir = ScratchDir::new("server-sse");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let client = awc::Client::builder().timeout(DEADLINE).finish();
    let denied = client.get(server.url("/sse/orders")).send().await.unwrap();
    assert_eq!(denied.status(), 401);
    let wrong = client
        .get(server.url("/sse/orders?token=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let mut stream = client
        .get(server.url(&format!("/sse/orders?token={TOKEN}")))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    // Clients connect asynchronously: emit until the event shows up.
    let mut seen = String::new();
    while !seen.contains("\"n\":7") {
        server.emit("orders", json!({"n": 7})).await;
        if let Ok(Some(Ok(chunk))) =
            tokio::time::timeout(std::time::Duration::from_millis(200), stream.next()).await
        {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(seen.contains("event: orders"), "{seen}");
}

#[actix_web::test]
async fn without_a_token_it_refuses_to_start_and_says_how_to_fix_it() {
    let dir = ScratchDir::new("server-refuse");
    let journal = dir.file("j.redb");
    let run = |args: &[&str], token: Option<&str>| {
        let mut command = ServerProcess::binary();
        command
            .args(args)
            .arg("--journal")
            .arg(&journal)
            .env_remove("WEBHOOKS_ADMIN_TOKEN");
        if let Some(token) = token {
            command.env("WEBHOOKS_ADMIN_TOKEN", token);
        }
        command.output().unwrap()
    };
    let out = run(&["--listen", "127.0.0.1:0"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WEBHOOKS_ADMIN_TOKEN"));
    let out = run(&["--listen", "0.0.0.0:0", "--insecure-no-auth"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback only"));
    let out = run(&["--listen", "127.0.0.1:0"], Some("short"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 16"));
    assert!(!journal.exists(), "nothing created when refusing to start");
}

#[actix_web::test]
async fn no_secret_reaches_the_logs_even_at_trace_level() {
    let dir = ScratchDir::new("server-secrets");
    let log = dir.file("server.log");
    let server = ServerProcess::start_logging(&dir.file("j.redb"), &[], &log);
    let mut receiver = Receiver::start();
    receiver.script_statuses([500]);
    let legacy = "legacy-secret-5f1d2c";
    let header = "header-secret-9a8b7c";
    let spec = json!({"id": "crm", "url": receiver.url("/").replace("http://", "http://user:url-pass-3e4f@"),
        "events": ["e"], "secret": legacy, "headers": {"authorization": header},
        "standard_webhooks_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "backoff_ms": {"start": 10, "limit": 10}});
    server.create(spec).await;
    let (_, new_key) = server.rotate("crm").await;
    server.emit("e", json!({"n": 1})).await;
    receiver.next().await;
    receiver.next().await; // the retry after the 500
    let client = awc::Client::builder().timeout(DEADLINE).finish();
    let sse = client
        .get(server.url(&format!("/sse/e?token={TOKEN}")))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    drop(sse);
    problem(
        &server
            .call(
                Method::GET,
                "/api/v1/endpoints",
                None,
                Some("wrong-token-123456789"),
                &[],
            )
            .await,
        401,
    );
    assert!(server.terminate().success());

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("crm"),
        "the log has something to check: {logged}"
    );
    for secret in [
        TOKEN,
        legacy,
        header,
        "url-pass-3e4f",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        &new_key,
        "wrong-token-123456789",
    ] {
        assert!(!logged.contains(secret), "{secret} logged");
    }
}

#[actix_web::test]
async fn every_setting_can_come_from_the_environment() {
    let dir = ScratchDir::new("server-env");
    let journal = dir.file("from-env.redb");
    let mut command = ServerProcess::binary();
    command
        .env("WEBHOOKS_ADMIN_TOKEN", TOKEN)
        .env("WEBHOOKS_LISTEN", "127.0.0.1:0")
        .env("WEBHOOKS_JOURNAL", &journal)
        .env("WEBHOOKS_MAX_PAYLOAD_BYTES", "100")
        .env("WEBHOOKS_DRAIN_TIMEOUT", "1s")
        .env("WEBHOOKS_ROTATION_GRACE", "1h")
        .env("WEBHOOKS_ALLOW_PRIVATE_TARGETS", "true")
        .env("RUST_LOG", "warn");
    let server = ServerProcess::run(command, &journal);
    assert!(
        server.base.starts_with("http://127.0.0.1:"),
        "{}",
        server.base
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(&journal.metadata().unwrap().permissions());
    assert_eq!(
        mode & 0o777,
        0o600,
        "the journal from WEBHOOKS_JOURNAL, private: it holds secrets"
    );
    let big = json!({"event": "e", "payload": "x".repeat(200)});
    let answer = server.api(Method::POST, "/api/v1/events", Some(big)).await;
    let detail = problem(&answer, 413);
    assert!(
        detail.contains("100 bytes"),
        "the payload limit from the environment: {detail}"
    );
}

#[actix_web::test]
async fn without_auth_it_serves_loopback_and_says_so_on_stderr() {
    let dir = ScratchDir::new("server-no-auth");
    let log = dir.file("stderr.log");
    let mut command = ServerProcess::binary();
    command
        .args(["--listen", "127.0.0.1:0", "--insecure-no-auth", "--journal"])
        .arg(dir.file("j.redb"))
        .env_remove("WEBHOOKS_ADMIN_TOKEN")
        .env("RUST_LOG", "error")
        .stderr(std::fs::File::create(&log).unwrap());
    let server = ServerProcess::run(command, &dir.file("j.redb"));
    let listed = server
        .call(Method::GET, "/api/v1/endpoints", None, None, &[])
        .await;
    assert_eq!(listed.status, 200, "open without a token");
    drop(server);
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(stderr.contains("NO AUTHENTICATION"), "{stderr}");
}

#[actix_web::test]
async fn websocket_rooms_need_the_token_and_carry_emitted_events() {
    let dir = ScratchDir::new("server-ws");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let ws = server.url("/ws").replacen("http://", "ws://", 1);
    let client = awc::Client::builder().timeout(DEADLINE).finish();
    for url in [ws.clone(), format!("{ws}?token=not-the-token")] {
        let refused = match client.ws(&url).connect().await {
            Err(awc::error::WsClientError::InvalidResponseStatus(status)) => status.as_u16(),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("a WebSocket without the token was accepted"),
        };
        assert_eq!(refused, 401, "{url}");
    }

    let mut socket = Socket::connect(&format!("{ws}?token={TOKEN}")).await;
    socket.send(&json!({"op": "join", "topic": "orders"})).await;
    assert_eq!(
        socket.recv().await,
        json!({"op": "joined", "topic": "orders"})
    );
    server.emit("orders", json!({"n": 5})).await;
    let frame = socket.recv().await;
    assert_eq!(
        (frame["topic"].clone(), frame["data"].clone()),
        (json!("orders"), json!({"n": 5})),
        "{frame}"
    );
}
