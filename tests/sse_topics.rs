//! Several topics on one SSE stream (`GET /sse?topic=a&topic=b`), read by an
//! independent parser (`eventsource-stream`): composite ids, resume of every
//! topic at once, `sse-lost` per topic, and the 400s.
#![cfg(feature = "sse")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use support::live::{next, serve, subscribe, take, wait_for_clients, Live};
use webhooks_emitter::sse::{SseDenied, SseOptions, LOST_EVENTS_EVENT};

/// `a:1,b:2` as a map (the test's own reading of the format).
fn positions(id: &str) -> HashMap<String, u64> {
    id.split(',')
        .map(|pair| {
            let (topic, n) = pair.rsplit_once(':').unwrap();
            (
                topic
                    .replace("%3A", ":")
                    .replace("%2C", ",")
                    .replace("%25", "%"),
                n.parse().unwrap(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn one_stream_carries_both_topics_with_composite_ids() {
    let Live { emitter, sse, .. } = serve(SseOptions::default());
    // Events from before the stream opened set its starting positions.
    for n in 1..=5 {
        emitter.broadcast("comments", "comment.update", &n).unwrap();
    }
    let (status, headers, mut both) =
        subscribe(&format!("{sse}?topic=tickets&topic=comments"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("content-type").unwrap(), "text/event-stream");
    let (_, _, mut tickets_only) = subscribe(&format!("{sse}/tickets"), &[]).await;
    wait_for_clients(&emitter, "tickets", 2).await;
    wait_for_clients(&emitter, "comments", 1).await;

    emitter
        .broadcast("tickets", "ticket.update", &json!({"t": 1}))
        .unwrap();
    emitter
        .broadcast("tickets", "ticket.update", &json!({"t": 2}))
        .unwrap();
    emitter.broadcast("comments", "comment.update", &6).unwrap();
    emitter.broadcast("elsewhere", "noise", &0).unwrap();
    emitter
        .broadcast("tickets", "ticket.update", &json!({"t": 3}))
        .unwrap();

    let seen: Vec<(String, String, String)> = take(&mut both, 4)
        .await
        .into_iter()
        .map(|e| (e.id, e.event, e.data))
        .collect();
    let expected = [
        ("tickets:1,comments:5", "ticket.update", r#"{"t":1}"#),
        ("tickets:2,comments:5", "ticket.update", r#"{"t":2}"#),
        ("tickets:2,comments:6", "comment.update", "6"),
        ("tickets:3,comments:6", "ticket.update", r#"{"t":3}"#),
    ]
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    assert_eq!(seen, expected);

    // A stream of one topic keeps plain ids.
    let plain: Vec<String> = take(&mut tickets_only, 3)
        .await
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(plain, ["1", "2", "3"]);
}

#[actix_web::test]
async fn resuming_two_topics_has_no_gap_or_duplicate_under_load() {
    let options = SseOptions::default()
        .replay(10_000)
        .replay_bytes(usize::MAX)
        .client_buffer(4096);
    let Live { emitter, sse, .. } = serve(options);
    let url = format!("{sse}?topic=a&topic=b%3Ax");
    let (_, _, mut first) = subscribe(&url, &[]).await;
    wait_for_clients(&emitter, "a", 1).await;

    let publisher = emitter.clone();
    let publishing = std::thread::spawn(move || {
        for n in 1..=1000u64 {
            publisher.broadcast("a", "a", &n).unwrap();
            publisher.broadcast("b:x", "b", &n).unwrap();
            if n % 5 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let mut events = take(&mut first, 300).await;
    let last_id = events.last().unwrap().id.clone();
    drop(first);

    // Reconnect while events keep coming, as a browser does: the last id
    // seen, in the header.
    let (status, _, mut second) = subscribe(&url, &[("Last-Event-ID", &last_id)]).await;
    assert_eq!(status, 200);
    events.extend(take(&mut second, 1700).await);
    publishing.join().unwrap();

    let mut per_topic: HashMap<String, Vec<u64>> = HashMap::new();
    for event in &events {
        per_topic
            .entry(event.event.clone())
            .or_default()
            .push(event.data.parse().unwrap());
        // Each id is the stream's position in both topics at that event.
        let at = positions(&event.id);
        let topic = if event.event == "a" { "a" } else { "b:x" };
        assert_eq!(at[topic].to_string(), event.data, "{}", event.id);
    }
    let all: Vec<u64> = (1..=1000).collect();
    assert_eq!(per_topic["a"], all);
    assert_eq!(per_topic["b"], all);
}

#[actix_web::test]
async fn lost_events_are_reported_per_topic() {
    let Live { emitter, sse, .. } = serve(SseOptions::default().replay(4));
    for n in 1..=10 {
        emitter.broadcast("tickets", "ticket", &n).unwrap();
    }
    for n in 1..=2 {
        emitter.broadcast("comments", "comment", &n).unwrap();
    }
    let url = format!("{sse}?topic=tickets&topic=comments");
    let (_, _, mut events) = subscribe(&url, &[("Last-Event-ID", "tickets:2,comments:1")]).await;

    let lost = next(&mut events).await;
    assert_eq!(lost.event, LOST_EVENTS_EVENT);
    let data: serde_json::Value = serde_json::from_str(&lost.data).unwrap();
    assert_eq!(
        data,
        json!({"topic": "tickets", "last_event_id": 2, "first_available_id": 7})
    );
    let replay: Vec<(String, String)> = take(&mut events, 5)
        .await
        .into_iter()
        .map(|e| (e.id, e.data))
        .collect();
    let expected = [
        ("tickets:7,comments:1", "7"),
        ("tickets:8,comments:1", "8"),
        ("tickets:9,comments:1", "9"),
        ("tickets:10,comments:1", "10"),
        ("tickets:10,comments:2", "2"),
    ]
    .map(|(a, b)| (a.to_owned(), b.to_owned()));
    assert_eq!(replay, expected);

    // A topic missing from the id starts at the present, like a new stream.
    let (_, _, mut partial) = subscribe(&url, &[("Last-Event-ID", "comments:2")]).await;
    wait_for_clients(&emitter, "tickets", 2).await;
    emitter.broadcast("tickets", "ticket", &11).unwrap();
    assert_eq!(next(&mut partial).await.id, "tickets:11,comments:2");
}

#[actix_web::test]
async fn bad_topic_lists_and_position_vectors_get_400() {
    let options = SseOptions::default().authorize(|topic, _| {
        if topic == "private" {
            Err(SseDenied::Forbidden)
        } else {
            Ok(())
        }
    });
    let Live { sse, .. } = serve(options);
    let too_many: String = (0..33).map(|n| format!("topic=t{n}&")).collect();
    let far_too_many: String = (0..2000).map(|n| format!("topic=t{n}&")).collect();
    let client = awc::Client::default();
    for (query, header, status, says) in [
        (
            too_many.as_str(),
            None,
            400,
            "1 to 32 `topic` parameters, got 33",
        ),
        (far_too_many.as_str(), None, 400, "got 2000"),
        ("", None, 400, "got 0"),
        ("other=x", None, 400, "got 0"),
        ("topic=a&topic=*", None, 400, "`*` has ids of its own"),
        ("topic=a&topic=b%0Ac", None, 400, "invalid topic"),
        ("topic=a&topic=", None, 400, "invalid topic"),
        ("topic=a&topic=b", Some("5"), 400, "expected `topic:id"),
        ("topic=a&topic=b", Some("a:x"), 400, "expected `topic:id"),
        (
            "topic=a&topic=b",
            Some("a:1,,b:2"),
            400,
            "expected `topic:id",
        ),
        ("topic=a&topic=b", Some("a:-1"), 400, "expected `topic:id"),
        ("topic=a&topic=b", Some("%zz:1"), 400, "expected `topic:id"),
        ("topic=a&topic=private", None, 403, "refused"),
    ] {
        let mut request = client.get(format!("{sse}?{query}"));
        if let Some(id) = header {
            request = request.insert_header(("Last-Event-ID", id));
        }
        let mut response = request.send().await.unwrap();
        // Checked before the body: an accepted stream would never end.
        assert_eq!(response.status().as_u16(), status, "{query} {header:?}");
        let body = response.body().await.unwrap();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains(says), "{query} {header:?}: {body}");
    }

    // 32 topics, the limit, and repeats counted once.
    let mut at_limit: String = (0..32).map(|n| format!("topic=t{n}&")).collect();
    at_limit.push_str("topic=t0");
    let (status, _, _) = subscribe(&format!("{sse}?{at_limit}"), &[]).await;
    assert_eq!(status, 200);
}
