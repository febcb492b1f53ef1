//! Bad input to the server gets a clear problem+json answer at once, and what
//! is accepted is shown as it was sent: content types, announced sizes,
//! stalled bodies, dot ids, URLs with whitespace, wildcard names, `null` for
//! a required field, deep payloads, SSE without a token, private targets,
//! events no endpoint wants.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use awc::http::Method;
use serde_json::{json, Value};
use support::server::{problem, ServerProcess, TOKEN};
use support::{Receiver, Reply, ScratchDir, DEADLINE};

fn endpoint(id: &str, url: &str) -> Value {
    json!({
        "id": id,
        "url": url,
        "events": ["order.created"],
        "max_retries": 1,
        "backoff_ms": {"start": 10, "limit": 20},
    })
}

/// Sends `head` (request line and headers, without the blank line) and
/// `body` over a raw connection; returns the status of the answer. The body
/// may be shorter than announced: the server must answer without it.
fn raw_status(server: &ServerProcess, head: &str, body: &[u8]) -> u16 {
    let addr = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(stream, "{head}\r\nauthorization: Bearer {TOKEN}\r\n\r\n").unwrap();
    stream.write_all(body).unwrap();
    let mut answer = [0u8; 64];
    let read = stream.read(&mut answer).unwrap();
    let line = String::from_utf8_lossy(&answer[..read]);
    line.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {line:?}"))
}

#[actix_web::test]
async fn events_refuse_other_content_types_huge_announced_bodies_and_stalls() {
    let dir = ScratchDir::new("input-events");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let body = r#"{"event":"e","payload":1}"#;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/xml"),
        None,
    ] {
        let answer = server
            .send_typed(
                Method::POST,
                "/api/v1/events",
                Some(body),
                content_type,
                Some(TOKEN),
                &[],
            )
            .await;
        let detail = problem(&answer, 415);
        assert!(detail.contains("application/json"), "{detail}");
    }
    // `+json` types are JSON.
    let answer = server
        .send_typed(
            Method::POST,
            "/api/v1/events",
            Some(body),
            Some("application/vnd.api+json"),
            Some(TOKEN),
            &[],
        )
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");

    // 10 GB announced, 25 bytes sent: 413 without waiting for the rest.
    let head = "POST /api/v1/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10000000000";
    assert_eq!(raw_status(&server, head, body.as_bytes()), 413);
    // 100 bytes announced, 10 sent, then nothing: 408 once the body-read
    // timeout passes (not a hang).
    let head = "POST /api/v1/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100";
    assert_eq!(raw_status(&server, head, b"{\"event\":\""), 408);
}

#[actix_web::test]
async fn ids_urls_bad_patterns_and_null_for_a_required_field_are_refused() {
    let dir = ScratchDir::new("input-endpoints");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let receiver = Receiver::start();
    let url = receiver.url("/hooks");
    let list = "/api/v1/endpoints";
    for id in [".", ".."] {
        let detail = problem(
            &server
                .api(Method::POST, list, Some(endpoint(id, &url)))
                .await,
            400,
        );
        assert!(detail.contains("endpoint id"), "{detail}");
    }
    for bad in [
        format!("{url}\n"),
        format!("{url}/a\r\nx-injected: 1"),
        format!("{url}/with space"),
        format!(" {url}"),
        format!("{url}\t"),
    ] {
        let detail = problem(
            &server
                .api(Method::POST, list, Some(endpoint("u", &bad)))
                .await,
            400,
        );
        assert!(detail.contains("whitespace"), "{detail}");
    }
    // `*` and `order.*` are patterns (tests/server_subscriptions.rs); any
    // other `*` is refused.
    for events in [
        json!(["*.created"]),
        json!(["order*"]),
        json!(["ok", "a*b"]),
    ] {
        let mut spec = endpoint("w", &url);
        spec["events"] = events;
        let detail = problem(&server.api(Method::POST, list, Some(spec)).await, 400);
        assert!(detail.contains("`*` may stand alone"), "{detail}");
    }
    assert_eq!(server.api(Method::GET, list, None).await.json, json!([]));

    server.create(endpoint("ok", &url)).await;
    for field in ["url", "events", "headers", "envelope"] {
        let patch = json!({ field: null });
        let answer = server
            .api(Method::PATCH, "/api/v1/endpoints/ok", Some(patch))
            .await;
        let detail = problem(&answer, 400);
        assert!(detail.contains("cannot be removed"), "{field}: {detail}");
    }
    let shown = server.api(Method::GET, "/api/v1/endpoints/ok", None).await;
    assert_eq!(shown.json["url"], json!(url), "nothing changed");
    let wildcard = server
        .api(
            Method::PATCH,
            "/api/v1/endpoints/ok",
            Some(json!({"events": ["a.*.b"]})),
        )
        .await;
    problem(&wildcard, 400);
}

#[actix_web::test]
async fn a_deep_payload_is_shown_as_sent_in_the_dead_letters() {
    let dir = ScratchDir::new("input-deep");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let receiver = Receiver::start();
    receiver.script([Reply::Status(500)]);
    server.create(endpoint("deep", &receiver.url("/d"))).await;
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let body = format!(r#"{{"event":"order.created","payload":{deep}}}"#);
    let answer = server
        .send_raw(
            Method::POST,
            "/api/v1/events",
            Some(&body),
            Some(TOKEN),
            &[],
        )
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let path = "/api/v1/endpoints/deep/dead-letters";
    support::eventually("the dead letter", || async {
        server
            .api(Method::GET, path, None)
            .await
            .text
            .contains("[[")
    })
    .await;
    let letters = server.api(Method::GET, path, None).await;
    assert!(
        letters.text.contains(&format!(r#""payload":{deep}"#)),
        "the payload as sent, not null: {}",
        &letters.text[..letters.text.len().min(300)]
    );
}

#[actix_web::test]
async fn sse_without_a_token_answers_problem_json() {
    let dir = ScratchDir::new("input-sse");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    for path in ["/sse/orders", "/sse/orders?token=wrong"] {
        let answer = server.call(Method::GET, path, None, None, &[]).await;
        problem(&answer, 401);
    }
}

#[actix_web::test]
async fn private_targets_are_refused_at_create_naming_the_flag() {
    let dir = ScratchDir::new("input-ssrf");
    let journal = dir.file("j.redb");
    // Without --allow-private-targets.
    let mut command = ServerProcess::binary();
    command
        .args(["--listen", "127.0.0.1:0", "--journal"])
        .arg(&journal)
        .env("WEBHOOKS_ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "warn");
    let server = ServerProcess::run(command, &journal);
    for url in [
        "http://127.0.0.1:9/hooks",
        "http://localhost:9/hooks",
        "http://api.localhost/hooks",
        "http://[::1]:9/hooks",
    ] {
        let answer = server
            .api(Method::POST, "/api/v1/endpoints", Some(endpoint("p", url)))
            .await;
        let detail = problem(&answer, 400);
        assert!(
            detail.contains("--allow-private-targets"),
            "{url}: {detail}"
        );
    }
    let none = server.api(Method::GET, "/api/v1/endpoints", None).await;
    assert_eq!(none.json, json!([]));
}

#[actix_web::test]
async fn the_answer_says_how_many_endpoints_got_the_event_and_labels_stay_bounded() {
    let dir = ScratchDir::new("input-routed");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let receiver = Receiver::start();
    server.create(endpoint("one", &receiver.url("/1"))).await;
    server.create(endpoint("two", &receiver.url("/2"))).await;
    let send = |event: String| {
        let server = &server;
        async move {
            let body = json!({"event": event, "payload": {}});
            server.api(Method::POST, "/api/v1/events", Some(body)).await
        }
    };
    let routed = send("order.created".into()).await;
    assert_eq!(routed.status, 202);
    assert_eq!(routed.json["endpoints"], json!(2));
    for n in 0..50 {
        let nowhere = send(format!("nobody.wants.{n}")).await;
        assert_eq!(nowhere.status, 202);
        assert_eq!(nowhere.json["endpoints"], json!(0));
    }
    let scrape = server.api(Method::GET, "/metrics", None).await;
    let text = &scrape.text;
    assert!(
        text.contains(r#"webhooks_events_emitted_total{event="order.created"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"webhooks_events_emitted_total{event="_unrouted"} 50"#),
        "{text}"
    );
    assert!(!text.contains("nobody.wants"), "no label per unrouted name");
    let _ = Duration::ZERO;
}

#[actix_web::test]
async fn a_known_path_with_another_method_is_405_with_allow_the_rest_404() {
    let dir = ScratchDir::new("input-405");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    for (method, path, allow) in [
        (Method::TRACE, "/health", "GET"),
        (Method::DELETE, "/api/v1/events", "POST"),
        (
            Method::PUT,
            "/api/v1/endpoints/any-id",
            "GET, PATCH, DELETE",
        ),
        (Method::GET, "/api/v1/endpoints/any-id/pause", "POST"),
    ] {
        let answer = server.api(method.clone(), path, None).await;
        problem(&answer, 405);
        assert_eq!(
            answer.headers.get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
    }
    for path in ["/api/v1/nope", "/nope", "/api/v1/endpoints/a/b/c/d/e"] {
        problem(&server.api(Method::GET, path, None).await, 404);
    }
    // The token still comes first on the API.
    let anonymous = server
        .call(Method::DELETE, "/api/v1/events", None, None, &[])
        .await;
    problem(&anonymous, 401);
}
