//! Regressions for the defects an independent fault suite found, against raw
//! sockets and hostile input. Each test failed before its fix.
#![cfg(feature = "sse")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use actix_web::{App, HttpServer};
use futures_util::StreamExt;
use support::{fast_config, n_of, status, Harness, RawReceiver, DEADLINE};
use webhooks_emitter::{ControlError, Outcome, WebhooksEmitter};

const INTERIM: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
const EARLY_HINTS: &[u8] = b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n";

/// 100 and 103 before the 200, each piece sent on its own.
fn interim_then_ok(_: usize) -> Vec<Vec<u8>> {
    let ok = status(200, "");
    let (head, tail) = ok.split_at(10);
    vec![
        INTERIM.to_vec(),
        EARLY_HINTS[..20].to_vec(),
        EARLY_HINTS[20..].to_vec(),
        head.to_vec(),
        tail.to_vec(),
    ]
}

#[actix_web::test]
async fn interim_responses_are_read_past_not_taken_as_the_answer() {
    let mut raw = RawReceiver::start(interim_then_ok);
    let mut h = Harness::start();
    let config = fast_config(format!("http://{}/hooks", raw.addr)).max_retries(1);
    h.attach("hints", "ping", config).await;
    let ids = h.emit_numbers("ping", 1..=3);
    for (n, report) in h.finals(3).await.into_iter().enumerate() {
        assert!(
            matches!(
                report.outcome,
                Outcome::Delivered {
                    status: 200,
                    attempts: 1,
                    ..
                }
            ),
            "{report:?}"
        );
        assert_eq!(n_of(&report.event), n as i64 + 1);
    }
    // One request per event, in order: no retry, no answer read by the wrong request.
    for id in &ids {
        let request = raw.next().await;
        assert_eq!(
            request.header("x-webhooks-delivery").as_deref(),
            Some(id.as_str())
        );
    }
    assert!(raw.try_next().is_none());
}

#[actix_web::test]
async fn interim_responses_over_tls_and_the_host_header() {
    let mut raw = RawReceiver::start_tls(interim_then_ok);
    let mut h = Harness::start();
    let url = format!("https://localhost:{}/hooks", raw.addr.port());
    h.attach(
        "tls",
        "ping",
        fast_config(&url).allow_insecure().max_retries(1),
    )
    .await;
    h.emit_numbers("ping", [1]);
    assert!(matches!(
        h.next_final().await.outcome,
        Outcome::Delivered { attempts: 1, .. }
    ));
    let request = raw.next().await;
    assert!(
        request.head.starts_with("POST /hooks HTTP/1.1"),
        "{}",
        request.head
    );
    let expected_host = format!("localhost:{}", raw.addr.port());
    assert_eq!(request.header("host"), Some(expected_host));

    // Without `allow_insecure`, the self-signed certificate is refused.
    h.attach("verified", "strict", fast_config(&url).max_retries(1))
        .await;
    h.emit_numbers("strict", [2]);
    let (attempts, reason) = h.next_dead_letter().await;
    assert_eq!(attempts, 1);
    assert!(reason.to_string().contains("connect"), "{reason}");
    assert!(raw.try_next().is_none());
}

#[actix_web::test]
async fn endless_interim_responses_fail_the_attempt() {
    let raw = RawReceiver::start(|_| vec![INTERIM.repeat(40)]);
    let mut h = Harness::start();
    let config = fast_config(format!("http://{}/", raw.addr)).max_retries(1);
    h.attach("endless", "ping", config).await;
    h.emit_numbers("ping", [1]);
    let (_, reason) = h.next_dead_letter().await;
    assert!(reason.to_string().contains("interim"), "{reason}");
}

#[actix_web::test]
async fn a_retry_after_beyond_u64_waits_the_limit() {
    let raw = RawReceiver::start(|n| match n {
        0 => vec![status(503, "retry-after: 99999999999999999999\r\n")],
        _ => vec![status(200, "")],
    });
    let mut h = Harness::start();
    let config =
        fast_config(format!("http://{}/", raw.addr)).retry_after_limit(Duration::from_millis(250));
    h.attach("ra", "ping", config).await;
    h.emit_numbers("ping", [1]);
    match h.next_outcome().await {
        Outcome::AttemptFailed { retry_in, .. } => {
            assert_eq!(retry_in, Duration::from_millis(250), "clamped, not ignored")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        h.next_final().await.outcome,
        Outcome::Delivered { attempts: 2, .. }
    ));
}

#[actix_web::test]
async fn a_refused_redelivery_changes_nothing_and_order_holds() {
    let mut h = Harness::start();
    h.attach("dl", "ping", h.config().queue_capacity(3)).await;
    h.emitter.pause("dl").await.unwrap();
    h.emit_numbers("ping", 1..=6); // 4, 5 and 6 overflow into dead letters
    let letters = h.emitter.dead_letters("dl").await.unwrap();
    let numbers = |letters: &[webhooks_emitter::DeadLetter]| {
        letters.iter().map(|l| n_of(&l.event)).collect::<Vec<_>>()
    };
    assert_eq!(numbers(&letters), [4, 5, 6]);
    let full = Err(ControlError::QueueFull { id: "dl".into() });
    assert_eq!(h.emitter.redeliver("dl", letters[1].id).await, full);
    assert_eq!(h.emitter.redeliver_all("dl").await, full.map(|()| 0));
    let after = h.emitter.dead_letters("dl").await.unwrap();
    assert_eq!(numbers(&after), [4, 5, 6], "refused means unchanged");
    assert_eq!(
        after.iter().map(|l| l.id).collect::<Vec<_>>(),
        letters.iter().map(|l| l.id).collect::<Vec<_>>()
    );

    h.emitter.restart("dl").await.unwrap();
    assert_eq!(h.receiver.numbers(3).await, [1, 2, 3]);
    assert!(h.emitter.flush(DEADLINE).await);
    assert_eq!(h.emitter.redeliver_all("dl").await, Ok(3));
    assert_eq!(h.receiver.numbers(3).await, [4, 5, 6], "emit order");
}

#[actix_web::test]
async fn a_huge_last_event_id_does_not_kill_sse() {
    let emitter = WebhooksEmitter::start();
    let for_server = emitter.clone();
    let server = HttpServer::new(move || App::new().service(for_server.sse_scope("/sse")))
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
    let base = format!("http://{}/sse", server.addrs()[0]);
    actix_web::rt::spawn(server.run());
    emitter.broadcast("news", "item", &1).unwrap();
    let client = awc::Client::builder().disable_timeout().finish();
    for id in [u64::MAX.to_string(), (u64::MAX - 1).to_string()] {
        let mut response = client
            .get(format!("{base}/news"))
            .insert_header(("last-event-id", id.as_str()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{id}");
        let first = tokio::time::timeout(DEADLINE, response.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&first);
        assert!(text.contains("event: sse-lost"), "{text}");
        assert!(text.contains(&id), "{text}");
    }
    // The broadcaster is alive: a new subscriber gets a new event.
    let mut response = client.get(format!("{base}/news")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let wait = async {
        loop {
            if emitter
                .sse_clients()
                .await
                .get("news")
                .copied()
                .unwrap_or(0)
                >= 1
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await; // polling an observable
        }
    };
    tokio::time::timeout(DEADLINE, wait).await.unwrap();
    emitter.broadcast("news", "item", &2).unwrap();
    let frame = tokio::time::timeout(DEADLINE, response.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&frame).contains("data: 2"));
}
