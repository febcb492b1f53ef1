//! The SSE broadcaster, read by an independent parser (`eventsource-stream`)
//! or by raw sockets, against a real actix-web server on loopback.
#![cfg(feature = "sse")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use support::live::{next, outpace_a_slow_client, serve, subscribe, take, wait_for_clients, Live};
use support::DEADLINE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use webhooks_emitter::sse::{SseDenied, SseOptions, LOST_EVENTS_EVENT};
use webhooks_emitter::EmitError;

#[actix_web::test]
async fn frames_survive_every_line_ending_and_unicode() {
    let Live {
        emitter, sse: base, ..
    } = serve(SseOptions::default());
    let (status, headers, mut events) = subscribe(&format!("{base}/chat"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("content-type").unwrap(), "text/event-stream");
    assert_eq!(headers.get("cache-control").unwrap(), "no-cache");
    assert_eq!(headers.get("x-accel-buffering").unwrap(), "no");
    assert_eq!(headers.get("content-encoding").unwrap(), "identity");
    assert!(headers.get("connection").is_none());
    wait_for_clients(&emitter, "chat", 1).await;

    let texts = [
        "line1\nline2",
        "a\rb",
        "a\r\nb",
        "ünïcødé ✓ 日本",
        "",
        "x\n",
        "\n\nlast",
    ];
    let expected = [
        "line1\nline2",
        "a\nb",
        "a\nb",
        "ünïcødé ✓ 日本",
        "",
        "x\n",
        "\n\nlast",
    ];
    for text in texts {
        emitter.broadcast_text("chat", "msg", text).unwrap();
    }
    emitter
        .broadcast("chat", "json", &json!({"k": "v\nw"}))
        .unwrap();
    let got = take(&mut events, texts.len() + 1).await;
    for (i, event) in got.iter().enumerate().take(texts.len()) {
        assert_eq!(event.data, expected[i], "frame {i}");
        assert_eq!(event.event, "msg");
        assert_eq!(event.id, (i + 1).to_string(), "ids increase per topic");
    }
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&got[7].data).unwrap(),
        json!({"k": "v\nw"})
    );
}

#[actix_web::test]
async fn emitted_events_are_published_on_their_topic_and_on_star() {
    let Live {
        emitter, sse: base, ..
    } = serve(SseOptions::default());
    let (_, _, mut orders) = subscribe(&format!("{base}/order.created"), &[]).await;
    let (_, _, mut all) = subscribe(&format!("{base}/*"), &[]).await;
    wait_for_clients(&emitter, "order.created", 1).await;
    wait_for_clients(&emitter, "*", 1).await;
    emitter
        .emit("order.created", &json!({"order": 1}), None)
        .unwrap();
    emitter
        .broadcast("session-42", "toast", &json!({"text": "hi"}))
        .unwrap();
    emitter
        .emit("order.created", &json!({"order": 2}), None)
        .unwrap();

    let got = take(&mut orders, 2).await;
    assert_eq!(
        (
            got[0].event.as_str(),
            got[0].data.as_str(),
            got[0].id.as_str()
        ),
        ("order.created", r#"{"order":1}"#, "1")
    );
    assert_eq!(
        (got[1].data.as_str(), got[1].id.as_str()),
        (r#"{"order":2}"#, "2")
    );
    let everything = take(&mut all, 3).await;
    let summary: Vec<(&str, &str)> = everything
        .iter()
        .map(|e| (e.event.as_str(), e.id.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("order.created", "1"),
            ("toast", "2"),
            ("order.created", "3")
        ],
        "`*` has ids of its own"
    );
}

#[actix_web::test]
async fn names_that_break_framing_are_refused() {
    let Live { emitter, .. } = serve(SseOptions::default());
    for topic in ["", "a\nb", "a\rb", "nul\0", "a/b", "*"] {
        assert!(
            matches!(
                emitter.broadcast_text(topic, "e", "x"),
                Err(EmitError::InvalidTopic { .. })
            ),
            "{topic:?}"
        );
    }
    for event in ["", "a\nb", "a b"] {
        assert!(
            matches!(
                emitter.broadcast_text("t", event, "x"),
                Err(EmitError::InvalidEventName(_))
            ),
            "{event:?}"
        );
    }
}

#[actix_web::test]
async fn resume_by_header_or_query_without_gap_or_duplicate() {
    let Live {
        emitter, sse: base, ..
    } = serve(SseOptions::default());
    for n in 1..=5 {
        emitter.broadcast("feed", "tick", &n).unwrap();
    }
    // Ids 1..=5 are in the ring; make sure they were published before subscribing.
    let (_, _, mut probe) = subscribe(&format!("{base}/feed"), &[("last-event-id", "4")]).await;
    assert_eq!(next(&mut probe).await.id, "5");

    let (_, _, mut by_header) = subscribe(&format!("{base}/feed"), &[("last-event-id", "3")]).await;
    let (_, _, mut by_query) = subscribe(&format!("{base}/feed?last_event_id=3"), &[]).await;
    wait_for_clients(&emitter, "feed", 3).await;
    emitter.broadcast("feed", "tick", &6).unwrap();
    for events in [&mut by_header, &mut by_query] {
        let ids: Vec<String> = take(events, 3).await.into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["4", "5", "6"]);
    }
}

#[actix_web::test]
async fn replay_and_live_meet_exactly_under_load() {
    // A buffer as large as the burst: this test is about the seam between
    // replay and live frames, not about backpressure.
    let options = SseOptions::default()
        .replay(10_000)
        .replay_bytes(usize::MAX)
        .client_buffer(4096);
    let Live {
        emitter, sse: base, ..
    } = serve(options);
    let publisher = emitter.clone();
    let publishing = std::thread::spawn(move || {
        for n in 1..=2000 {
            publisher.broadcast("busy", "tick", &n).unwrap();
        }
    });
    // Subscribe while events are still being published, resuming from 0.
    let (_, _, mut events) = subscribe(&format!("{base}/busy"), &[("last-event-id", "0")]).await;
    publishing.join().unwrap();
    let ids: Vec<u64> = take(&mut events, 2000)
        .await
        .iter()
        .map(|e| e.id.parse().unwrap())
        .collect();
    assert_eq!(ids, (1..=2000).collect::<Vec<_>>());
}

#[actix_web::test]
async fn an_id_older_than_the_buffer_gets_the_lost_events_signal() {
    let Live {
        emitter, sse: base, ..
    } = serve(SseOptions::default().replay(4));
    for n in 1..=10 {
        emitter.broadcast("news", "item", &n).unwrap();
    }
    let (_, _, mut events) = subscribe(&format!("{base}/news"), &[("last-event-id", "2")]).await;
    let lost = next(&mut events).await;
    assert_eq!(lost.event, LOST_EVENTS_EVENT);
    assert_eq!(lost.id, "", "the signal carries no id");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&lost.data).unwrap(),
        json!({"last_event_id": 2, "first_available_id": 7})
    );
    let ids: Vec<String> = take(&mut events, 4)
        .await
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, ["7", "8", "9", "10"]);

    // An id this server never issued (as after a restart) is a loss too.
    let (_, _, mut events) = subscribe(&format!("{base}/news"), &[("last-event-id", "99")]).await;
    assert_eq!(next(&mut events).await.event, LOST_EVENTS_EVENT);
}

#[actix_web::test]
async fn malformed_ids_and_topics_get_400() {
    let Live { sse: base, .. } = serve(SseOptions::default());
    let client = awc::Client::default();
    for (url, header) in [
        (format!("{base}/t"), Some("abc")),
        (format!("{base}/t"), Some("-1")),
        (format!("{base}/t?last_event_id=1.5"), None),
    ] {
        let mut request = client.get(&url);
        if let Some(value) = header {
            request = request.insert_header(("last-event-id", value));
        }
        let mut response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400, "{url} {header:?}");
        let body = String::from_utf8(response.body().await.unwrap().to_vec()).unwrap();
        assert!(body.contains("malformed Last-Event-ID"), "{body}");
    }
}

#[actix_web::test]
async fn retry_field_first_and_heartbeats_on_idle_connections() {
    let Live { emitter, addr, .. } = serve(
        SseOptions::default()
            .retry(Duration::from_millis(2500))
            .heartbeat(Duration::from_millis(100)),
    );
    let mut raw = TcpStream::connect(&addr).await.unwrap();
    raw.write_all(b"GET /sse/quiet HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let text = read_until(&mut raw, ": keep-alive").await;
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    // Chunked encoding: skip the first chunk-size line.
    let first_chunk = body.split_once("\r\n").unwrap().1;
    assert!(first_chunk.starts_with("retry: 2500\n\n"), "{body:?}");
    drop(emitter);
}

#[actix_web::test]
async fn authorization_hook_refuses_with_401_or_403() {
    let options = SseOptions::default().authorize(|topic, request| {
        match request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
        {
            None => Err(SseDenied::Unauthorized),
            Some("Bearer good") if topic != "admin" => Ok(()),
            Some(_) => Err(SseDenied::Forbidden),
        }
    });
    let Live { sse: base, .. } = serve(options);
    for (topic, authorization, status) in [
        ("public", None, 401),
        ("admin", Some("Bearer good"), 403),
        ("public", Some("Bearer bad"), 403),
        ("public", Some("Bearer good"), 200),
    ] {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| ("authorization", a))
            .into_iter()
            .collect();
        let got = subscribe(&format!("{base}/{topic}"), &headers).await.0;
        assert_eq!(got, status, "{topic} with {authorization:?}");
    }
}

#[actix_web::test]
async fn disconnected_clients_are_removed() {
    let Live {
        emitter, sse: base, ..
    } = serve(SseOptions::default().heartbeat(Duration::from_millis(50)));
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(subscribe(&format!("{base}/room"), &[]).await);
    }
    wait_for_clients(&emitter, "room", 3).await;
    drop(clients);
    wait_for_clients(&emitter, "room", 0).await;
    assert!(emitter.sse_clients().await.is_empty());
}

#[actix_web::test]
async fn a_slow_client_is_dropped_while_a_fast_one_keeps_up() {
    let Live {
        emitter,
        sse: base,
        addr,
        ..
    } = serve(SseOptions::default().client_buffer(4).replay(0));
    // The slow client sends its request and never reads.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /sse/stream HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let (_, _, mut fast) = subscribe(&format!("{base}/stream"), &[]).await;
    wait_for_clients(&emitter, "stream", 2).await;

    outpace_a_slow_client(&emitter, "stream", async || next(&mut fast).await.data).await;
    assert_eq!(emitter.sse_clients().await.get("stream"), Some(&1));
    drop(slow);
}

#[actix_web::test]
async fn a_thousand_clients_all_receive_an_event() {
    let Live { emitter, addr, .. } = serve(SseOptions::default());
    let mut sockets = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let mut socket = TcpStream::connect(&addr).await.unwrap();
        socket
            .write_all(b"GET /sse/crowd HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap();
        sockets.push(socket);
    }
    wait_for_clients(&emitter, "crowd", 1000).await;
    emitter
        .broadcast("crowd", "announcement", &json!({"to": "everyone"}))
        .unwrap();
    let mut received = 0;
    for socket in &mut sockets {
        let text = read_until(socket, "data: {\"to\":\"everyone\"}").await;
        assert!(text.contains("event: announcement"));
        received += 1;
    }
    assert_eq!(received, 1000);
    let counts: HashMap<String, usize> = emitter.sse_clients().await;
    assert_eq!(counts.get("crowd"), Some(&1000));
}

/// Reads from a raw socket until `needle` has arrived; returns all that was read.
async fn read_until(socket: &mut TcpStream, needle: &str) -> String {
    let mut text = Vec::new();
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(DEADLINE, async {
        while !String::from_utf8_lossy(&text).contains(needle) {
            let n = socket.read(&mut buffer).await.unwrap();
            assert!(n > 0, "connection closed before {needle:?}");
            text.extend_from_slice(&buffer[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{needle:?} did not arrive; got {:?}",
            String::from_utf8_lossy(&text)
        )
    });
    String::from_utf8_lossy(&text).into_owned()
}
