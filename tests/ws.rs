//! Live updates over WebSocket, with rooms: a real awc WebSocket client
//! against the emitter's `ws_route()` on loopback.
#![cfg(feature = "sse")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use actix_ws::Item;
use awc::ws::Message;
use serde_json::{json, Value};
use support::live::{outpace_a_slow_client, serve, wait_for_clients, Ended, Live, Socket};
use webhooks_emitter::__test_hooks::crash_sse;
use webhooks_emitter::sse::{SseDenied, SseOptions};

/// Sends `request` and returns the server's answer.
async fn ask(socket: &mut Socket, request: Value) -> Value {
    socket.send(&request).await;
    socket.recv().await
}

async fn join(socket: &mut Socket, topic: &str) {
    let answer = ask(socket, json!({"op": "join", "topic": topic})).await;
    assert_eq!(answer, json!({"op": "joined", "topic": topic}));
}

/// The `reason` of an `error` frame (fails on any other frame).
fn error_reason(frame: &Value) -> &str {
    assert_eq!(frame["op"], "error", "{frame}");
    frame["reason"].as_str().unwrap()
}

fn ids(frames: &[Value]) -> Vec<u64> {
    frames.iter().map(|f| f["id"].as_u64().unwrap()).collect()
}

#[actix_web::test]
async fn two_rooms_in_order_then_one_after_leaving() {
    let Live { emitter, ws, .. } = serve(SseOptions::default());
    let mut socket = Socket::connect(&ws).await;
    join(&mut socket, "tickets").await;
    join(&mut socket, "comments").await;
    // WebSocket clients count like SSE clients.
    wait_for_clients(&emitter, "tickets", 1).await;
    wait_for_clients(&emitter, "comments", 1).await;

    for n in 1..=5 {
        emitter
            .broadcast("tickets", "ticket.update", &json!({ "n": n }))
            .unwrap();
        emitter
            .broadcast("comments", "comment.update", &json!({ "n": n }))
            .unwrap();
    }
    for n in 1..=5u64 {
        let ticket = socket.recv().await;
        assert_eq!(
            ticket,
            json!({"topic": "tickets", "id": n, "event": "ticket.update", "data": {"n": n}})
        );
        let comment = socket.recv().await;
        assert_eq!(
            comment,
            json!({"topic": "comments", "id": n, "event": "comment.update", "data": {"n": n}})
        );
    }

    let left = ask(&mut socket, json!({"op": "leave", "topic": "tickets"})).await;
    assert_eq!(left, json!({"op": "left", "topic": "tickets"}));
    wait_for_clients(&emitter, "tickets", 0).await;
    emitter.broadcast("tickets", "ticket.update", &6).unwrap();
    emitter.broadcast("comments", "comment.update", &6).unwrap();
    let next = socket.recv().await;
    assert_eq!(
        (next["topic"].as_str(), next["id"].as_u64()),
        (Some("comments"), Some(6))
    );
    assert_eq!(emitter.sse_clients().await.get("comments"), Some(&1));
}

#[actix_web::test]
async fn text_and_multi_line_json_arrive_as_one_frame_each() {
    let Live { emitter, ws, .. } = serve(SseOptions::default());
    let mut socket = Socket::connect(&ws).await;
    join(&mut socket, "page").await;
    // A Serialize impl may write JSON over several lines; each event is
    // still one WebSocket message.
    let spread = serde_json::value::RawValue::from_string("{\n\"a\":\r\n[1,\n2]}".into()).unwrap();
    emitter.broadcast("page", "json", &spread).unwrap();
    emitter
        .broadcast_text("page", "html", "<p>one</p>\n<p>two é</p>")
        .unwrap();
    assert_eq!(socket.recv().await["data"], json!({"a": [1, 2]}));
    assert_eq!(
        socket.recv().await["data"],
        json!("<p>one</p>\n<p>two é</p>")
    );
}

#[actix_web::test]
async fn resume_with_last_id_under_load_has_no_gap_or_duplicate() {
    let options = SseOptions::default()
        .replay(10_000)
        .replay_bytes(usize::MAX)
        .client_buffer(4096);
    let Live { emitter, ws, .. } = serve(options);
    let publisher = emitter.clone();
    let publishing = std::thread::spawn(move || {
        for n in 1..=2000 {
            publisher.broadcast("feed", "tick", &n).unwrap();
            if n % 10 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });

    let mut first = Socket::connect(&ws).await;
    let joined = ask(
        &mut first,
        json!({"op": "join", "topic": "feed", "last_id": 0}),
    )
    .await;
    assert_eq!(joined["op"], "joined");
    let mut seen = Vec::new();
    for _ in 0..300 {
        seen.push(first.recv().await);
    }
    drop(first);
    assert_eq!(ids(&seen), (1..=300).collect::<Vec<_>>());

    // Reconnect while events keep coming: replay and live meet exactly.
    let mut second = Socket::connect(&ws).await;
    let joined = ask(
        &mut second,
        json!({"op": "join", "topic": "feed", "last_id": 300}),
    )
    .await;
    assert_eq!(joined["op"], "joined");
    let mut rest = Vec::new();
    for _ in 301..=2000 {
        rest.push(second.recv().await);
    }
    assert_eq!(ids(&rest), (301..=2000).collect::<Vec<_>>());
    assert!(rest.iter().all(|f| f["data"] == f["id"]));
    publishing.join().unwrap();
}

#[actix_web::test]
async fn an_id_older_than_the_buffer_gets_lost_then_what_is_left() {
    let Live { emitter, ws, .. } = serve(SseOptions::default().replay(4));
    for n in 1..=10 {
        emitter.broadcast("news", "item", &n).unwrap();
    }
    let mut socket = Socket::connect(&ws).await;
    let joined = ask(
        &mut socket,
        json!({"op": "join", "topic": "news", "last_id": 2}),
    )
    .await;
    assert_eq!(joined, json!({"op": "joined", "topic": "news"}));
    assert_eq!(
        socket.recv().await,
        json!({"op": "lost", "topic": "news", "last_event_id": 2, "first_available_id": 7})
    );
    let replay = [
        socket.recv().await,
        socket.recv().await,
        socket.recv().await,
        socket.recv().await,
    ];
    assert_eq!(ids(&replay), vec![7, 8, 9, 10]);

    // An id this server never issued is answered the same way, and the
    // connection stays usable.
    let mut other = Socket::connect(&ws).await;
    let joined = ask(
        &mut other,
        json!({"op": "join", "topic": "news", "last_id": u64::MAX}),
    )
    .await;
    assert_eq!(joined["op"], "joined");
    let lost = other.recv().await;
    assert_eq!(lost["op"], "lost");
    assert_eq!(lost["last_event_id"], json!(u64::MAX));
    assert_eq!(ids(&[other.recv().await]), vec![7]);
    for _ in 8..=10 {
        other.recv().await;
    }
    assert_eq!(
        ask(&mut other, json!({"op": "ping"})).await,
        json!({"op": "pong"})
    );
}

#[actix_web::test]
async fn a_refused_join_gets_an_error_and_the_connection_stays() {
    let options = SseOptions::default().authorize(|topic, request| {
        if topic != "private" || request.query_string() == "token=good" {
            Ok(())
        } else if request.query_string().is_empty() {
            Err(SseDenied::Unauthorized)
        } else {
            Err(SseDenied::Forbidden)
        }
    });
    let Live { emitter, ws, .. } = serve(options);

    let mut anonymous = Socket::connect(&ws).await;
    let refused = ask(&mut anonymous, json!({"op": "join", "topic": "private"})).await;
    assert_eq!(
        error_reason(&refused),
        "join `private` refused: unauthorized"
    );
    let mut wrong = Socket::connect(&format!("{ws}?token=bad")).await;
    let refused = ask(&mut wrong, json!({"op": "join", "topic": "private"})).await;
    assert_eq!(error_reason(&refused), "join `private` refused: forbidden");

    join(&mut anonymous, "public").await;
    let mut allowed = Socket::connect(&format!("{ws}?token=good")).await;
    join(&mut allowed, "private").await;
    emitter.broadcast("private", "secret", &1).unwrap();
    emitter.broadcast("public", "news", &2).unwrap();
    // The refused client gets the public event and nothing of the private one.
    assert_eq!(anonymous.recv().await["event"], "news");
    assert_eq!(allowed.recv().await["event"], "secret");
    assert_eq!(emitter.sse_clients().await.get("private"), Some(&1));
}

#[actix_web::test]
async fn a_slow_client_is_closed_while_a_fast_one_keeps_up() {
    let Live { emitter, ws, .. } = serve(SseOptions::default().client_buffer(4).replay(0));
    // The slow client joins, then reads nothing until the end.
    let mut slow = Socket::connect(&ws).await;
    join(&mut slow, "stream").await;
    let mut fast = Socket::connect(&ws).await;
    join(&mut fast, "stream").await;
    wait_for_clients(&emitter, "stream", 2).await;

    outpace_a_slow_client(&emitter, "stream", async || {
        let frame = fast.recv().await;
        frame["data"].as_str().unwrap().to_owned()
    })
    .await;

    // Read at last, the slow client finds what was queued, then the reason.
    match slow.until_end().await {
        Ended::Closed(code, reason) => {
            assert_eq!(code, Some(1013));
            assert!(reason.starts_with("too slow"), "{reason}");
        }
        Ended::Dropped => panic!("closed without a reason"),
    }
}

#[actix_web::test]
async fn every_bad_input_gets_an_error_frame_and_the_connection_stays() {
    let Live { emitter, ws, .. } = serve(SseOptions::default().max_topics(2));
    let mut socket = Socket::connect(&ws).await;
    let text = |s: &str| Message::Text(s.to_owned().into());
    for (message, expected) in [
        (text("not json"), "not JSON"),
        (text("{\"op\":"), "not JSON"),
        (text(r#"{"op":"dance"}"#), "not a request"),
        (text(r#"{"op":"join"}"#), "not a request"),
        (
            text(r#"{"op":"join","topic":"t","last_id":-1}"#),
            "not a request",
        ),
        (
            text(r#"{"op":"join","topic":"t","last_id":1e400}"#),
            "not JSON",
        ),
        (text(r#"{"op":"ping","extra":true}"#), "not a request"),
        (text("[]"), "not a request"),
        (
            Message::Binary("{}".into()),
            "binary frames are not supported",
        ),
        (text(r#"{"op":"join","topic":""}"#), "invalid topic"),
        (text(r#"{"op":"join","topic":"a\nb"}"#), "invalid topic"),
        (text(r#"{"op":"join","topic":"a/b"}"#), "invalid topic"),
        (
            text(r#"{"op":"join","topic":"nul\u0000"}"#),
            "invalid topic",
        ),
        (
            text(r#"{"op":"leave","topic":"nowhere"}"#),
            "not in room `nowhere`",
        ),
        // Not echoed back: a topic that is not valid is refused as such.
        (
            text(&json!({"op": "leave", "topic": "x".repeat(60_000)}).to_string()),
            "invalid topic: it is longer than 256 bytes",
        ),
    ] {
        socket.send_raw(message).await;
        let answer = socket.recv().await;
        assert!(error_reason(&answer).starts_with(expected), "{answer}");
    }

    join(&mut socket, "a").await;
    let again = ask(&mut socket, json!({"op": "join", "topic": "a"})).await;
    assert_eq!(error_reason(&again), "already in room `a`");
    join(&mut socket, "b").await;
    let third = ask(&mut socket, json!({"op": "join", "topic": "c"})).await;
    assert_eq!(
        error_reason(&third),
        "too many rooms: at most 2 per connection"
    );
    assert_eq!(
        ask(&mut socket, json!({"op": "ping"})).await,
        json!({"op": "pong"})
    );

    // Still joined to what it joined, and nothing else.
    emitter.broadcast("c", "e", &0).unwrap();
    emitter.broadcast("a", "e", &1).unwrap();
    assert_eq!(socket.recv().await["topic"], "a");

    // Over 64 KiB in one frame: closed with 1009.
    socket.send_raw(text(&"x".repeat(64 * 1024 + 1))).await;
    assert_eq!(
        socket.until_end().await,
        Ended::Closed(Some(1009), "message over 64 KiB".into())
    );
    wait_for_clients(&emitter, "a", 0).await;
}

#[actix_web::test]
async fn fragments_adding_up_to_over_64_kib_are_closed_with_1009() {
    let Live { ws, .. } = serve(SseOptions::default());
    let mut socket = Socket::connect(&ws).await;
    // Under the limit in fragments: one request.
    socket
        .send_raw(Message::Continuation(Item::FirstText(r#"{"op":"#.into())))
        .await;
    socket
        .send_raw(Message::Continuation(Item::Last(r#""ping"}"#.into())))
        .await;
    assert_eq!(socket.recv().await, json!({"op": "pong"}));

    let half = "x".repeat(40 * 1024);
    socket
        .send_raw(Message::Continuation(Item::FirstText(half.clone().into())))
        .await;
    socket
        .send_raw(Message::Continuation(Item::Last(half.into())))
        .await;
    assert_eq!(
        socket.until_end().await,
        Ended::Closed(Some(1009), "message over 64 KiB".into())
    );
}

#[actix_web::test]
async fn a_peer_that_never_pongs_is_closed_and_one_that_does_stays() {
    let interval = Duration::from_millis(200);
    let Live { emitter, ws, .. } = serve(SseOptions::default().ws_ping(interval));
    let mut silent = Socket::connect(&ws).await;
    silent.answer_pings = false;
    join(&mut silent, "t").await;
    let mut alive = Socket::connect(&ws).await;
    join(&mut alive, "t").await;

    // Both read at once: the live one answers every ping as it comes.
    let (silent_end, alive_answer) = tokio::join!(silent.until_end(), async {
        alive.wait_for_pings(6).await?;
        Ok::<_, Ended>(ask(&mut alive, json!({"op": "ping"})).await)
    });
    assert_eq!(
        silent_end,
        Ended::Closed(Some(1008), "no pong within two pings".into())
    );
    assert!(silent.pings >= 2, "closed after {} pings", silent.pings);
    assert_eq!(alive_answer, Ok(json!({"op": "pong"})));
    wait_for_clients(&emitter, "t", 1).await;
}

#[actix_web::test]
async fn a_broadcaster_restart_closes_connections_so_they_rejoin() {
    let Live { emitter, ws, .. } = serve(SseOptions::default());
    let mut socket = Socket::connect(&ws).await;
    join(&mut socket, "feed").await;
    emitter.broadcast("feed", "tick", &1).unwrap();
    assert_eq!(socket.recv().await["id"], 1);

    crash_sse(&emitter);
    match socket.until_end().await {
        Ended::Closed(code, reason) => {
            assert_eq!(code, Some(1012));
            assert!(reason.contains("join with last_id"), "{reason}");
        }
        Ended::Dropped => panic!("closed without a reason"),
    }
    // Rejoining with the last id seen: ids continue, nothing is issued twice.
    emitter.broadcast("feed", "tick", &2).unwrap();
    let mut again = Socket::connect(&ws).await;
    let deadline = tokio::time::Instant::now() + support::DEADLINE;
    loop {
        // Until the successor runs, a join is refused with a reason.
        let answer = ask(
            &mut again,
            json!({"op": "join", "topic": "feed", "last_id": 1}),
        )
        .await;
        if answer["op"] == "joined" {
            break;
        }
        assert!(error_reason(&answer).contains("try again"), "{answer}");
        assert!(tokio::time::Instant::now() < deadline, "no successor");
        tokio::time::sleep(Duration::from_millis(10)).await; // polling an observable
    }
    assert_eq!(
        again.recv().await,
        json!({"topic": "feed", "id": 2, "event": "tick", "data": 2})
    );
}

#[actix_web::test]
async fn a_plain_get_on_the_websocket_route_is_refused() {
    let Live { ws, .. } = serve(SseOptions::default());
    let http = ws.replacen("ws://", "http://", 1);
    let response = awc::Client::default().get(&http).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
}
