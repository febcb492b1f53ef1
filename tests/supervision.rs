//! Supervision: an actor that panics is restarted, what it held is reported,
//! and a panic in one request fails that attempt only. The panics are made by
//! test hooks, as a bug would make them.
#![cfg(feature = "sse")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use actix_web::{App, HttpServer};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use support::{eventually, fast_config, n_of, Harness, Receiver, Reply, DEADLINE};
use webhooks_emitter::__test_hooks::{crash_emitter, crash_sse, panic_next_request};
use webhooks_emitter::{DropReason, Failure, Outcome, WebhooksEmitter};

const CRASHED: Outcome = Outcome::Dropped {
    reason: DropReason::Crashed,
};

#[actix_web::test]
async fn a_crashed_emitter_reports_its_events_and_restarts_with_its_state() {
    let mut h = Harness::start();
    h.receiver.script_statuses([500]);
    h.attach("c", "ping", h.config().max_retries(1)).await;
    h.emit_numbers("ping", [0]); // becomes a dead letter
    assert!(matches!(
        h.next_outcome().await,
        Outcome::DeadLettered { .. }
    ));
    h.emitter.pause("c").await.unwrap();
    h.emit_numbers("ping", 1..=3);

    crash_emitter(&h.emitter, "c");
    for n in 1..=3 {
        let report = h.next_report().await;
        assert_eq!((n_of(&report.event), report.outcome), (n, CRASHED));
    }
    // Restarted, still paused, its dead letter kept.
    eventually("the emitter restarted", || async {
        h.emitter.stats("c").await.is_ok()
    })
    .await;
    let stats = h.emitter.stats("c").await.unwrap();
    assert!(stats.paused);
    assert_eq!((stats.queued, stats.dead_letters), (0, 1));

    h.emitter.restart("c").await.unwrap();
    h.emit_numbers("ping", [4]);
    assert!(matches!(
        h.next_final().await.outcome,
        Outcome::Delivered { .. }
    ));
    assert_eq!(h.receiver.numbers(2).await, [0, 4]);
    assert_eq!(h.emitter.list_emitters().await, ["c"]);
}

#[actix_web::test]
async fn events_routed_around_a_crash_are_delivered_in_order_or_reported() {
    let mut h = Harness::with(WebhooksEmitter::builder().report_capacity(10_000));
    h.attach("o", "tick", h.config()).await;
    h.emit_numbers("tick", 0..100);
    crash_emitter(&h.emitter, "o");
    h.emit_numbers("tick", 100..300);
    let mut outcomes: HashMap<i64, Outcome> = HashMap::new();
    let mut delivered = Vec::new();
    while outcomes.len() < 300 {
        let report = h.next_final().await;
        let n = n_of(&report.event);
        if matches!(report.outcome, Outcome::Delivered { .. }) {
            delivered.push(n);
        } else {
            assert_eq!(report.outcome, CRASHED, "event {n}");
        }
        assert!(
            outcomes.insert(n, report.outcome).is_none(),
            "event {n} twice"
        );
    }
    let mut sorted = delivered.clone();
    sorted.sort_unstable();
    assert_eq!(delivered, sorted, "deliveries kept emit order");
    // Those queued behind the crash in its mailbox are the crashed ones.
    assert!(outcomes.values().any(|o| *o == CRASHED));
    // The successor delivers what comes next.
    eventually("the emitter restarted", || async {
        h.emitter.stats("o").await.is_ok()
    })
    .await;
    h.emit_numbers("tick", [300]);
    let report = h.next_final().await;
    assert_eq!(n_of(&report.event), 300);
    assert!(matches!(report.outcome, Outcome::Delivered { .. }));
}

#[actix_web::test]
async fn an_emitter_that_keeps_crashing_is_held_paused() {
    let mut h = Harness::start();
    h.attach("loop", "ping", h.config()).await;
    for crash in 1..=6 {
        eventually("the emitter restarted", || async {
            h.emitter.stats("loop").await.is_ok()
        })
        .await;
        crash_emitter(&h.emitter, "loop");
        // The next generation answers once the crash was handled.
        let paused_after = crash > 5;
        eventually("the emitter restarted", || async {
            matches!(h.emitter.stats("loop").await, Ok(s) if s.paused == paused_after)
        })
        .await;
    }
    h.emit_numbers("ping", [1]);
    assert!(h.emitter.dead_letters("loop").await.unwrap().is_empty());
    assert!(h.receiver.try_next().is_none(), "held paused");
    h.emitter.restart("loop").await.unwrap();
    assert_eq!(h.receiver.numbers(1).await, [1]);
}

#[actix_web::test]
async fn a_panicking_request_fails_its_attempt_only() {
    let mut h = Harness::start();
    let mut slow = Receiver::start();
    slow.script([Reply::Delay(Duration::from_millis(500))]);
    h.attach("slow", "slow", fast_config(slow.url("/"))).await;
    h.attach("p", "ping", h.config()).await;
    // The slow request is in flight, on the same driver, while the other panics.
    h.emit_numbers("slow", [1]);
    slow.next().await;
    panic_next_request(&h.emitter, "p").await.unwrap();
    h.emit_numbers("ping", [2]);
    let mut by_emitter = HashMap::new();
    loop {
        let report = h.next_report().await;
        if let Outcome::AttemptFailed { failure, .. } = &report.outcome {
            assert!(
                matches!(failure, Failure::Request(why) if why.contains("panicked")),
                "{failure:?}"
            );
            continue;
        }
        by_emitter.insert(report.emitter_id.to_string(), report.outcome);
        if by_emitter.len() == 2 {
            break;
        }
    }
    assert!(matches!(
        by_emitter["p"],
        Outcome::Delivered { attempts: 2, .. }
    ));
    assert!(matches!(
        by_emitter["slow"],
        Outcome::Delivered { attempts: 1, .. }
    ));
}

#[actix_web::test]
async fn a_crashed_broadcaster_is_restarted_and_clients_resume_with_sse_lost() {
    let emitter = WebhooksEmitter::start();
    let for_server = emitter.clone();
    let server = HttpServer::new(move || App::new().service(for_server.sse_scope("/sse")))
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
    let url = format!("http://{}/sse/feed", server.addrs()[0]);
    actix_web::rt::spawn(server.run());
    let client = awc::Client::builder().disable_timeout().finish();
    let subscribe = |last: Option<&'static str>| {
        let mut request = client.get(&url);
        if let Some(last) = last {
            request = request.insert_header(("last-event-id", last));
        }
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.eventsource().boxed_local(),
            )
        }
    };
    let (_, mut events) = subscribe(None).await;
    eventually("the emitter restarted", || async {
        emitter.sse_clients().await.get("feed") == Some(&1)
    })
    .await;
    emitter.broadcast("feed", "tick", &1).unwrap();
    let first = tokio::time::timeout(DEADLINE, events.next()).await.unwrap();
    assert_eq!(first.unwrap().unwrap().id, "1");

    crash_sse(&emitter);
    let ended = tokio::time::timeout(DEADLINE, events.next()).await.unwrap();
    assert!(ended.is_none(), "the stream ended with the broadcaster");
    // Published while it restarts: kept for the successor, ids continued.
    emitter.broadcast("feed", "tick", &2).unwrap();
    eventually("the emitter restarted", || async {
        subscribe(None).await.0 == 200
    })
    .await;

    // The client that saw id 1 resumes with no gap; one that saw nothing
    // learns that history was lost with the crash.
    let (_, mut resumed) = subscribe(Some("1")).await;
    let next = tokio::time::timeout(DEADLINE, resumed.next())
        .await
        .unwrap();
    let next = next.unwrap().unwrap();
    assert_eq!((next.id.as_str(), next.data.as_str()), ("2", "2"));
    let (_, mut behind) = subscribe(Some("0")).await;
    let lost = tokio::time::timeout(DEADLINE, behind.next()).await.unwrap();
    assert_eq!(lost.unwrap().unwrap().event, "sse-lost");
    eventually("the emitter restarted", || async {
        emitter.sse_clients().await.get("feed") >= Some(&2)
    })
    .await;
    emitter.broadcast("feed", "tick", &3).unwrap();
    let live = tokio::time::timeout(DEADLINE, resumed.next())
        .await
        .unwrap();
    assert_eq!(live.unwrap().unwrap().id, "3");
}

#[actix_web::test]
async fn extreme_settings_work_without_overflow() {
    let options = webhooks_emitter::sse::SseOptions::default()
        .replay(usize::MAX)
        .replay_bytes(usize::MAX)
        .heartbeat(Duration::MAX)
        .client_buffer(usize::MAX)
        .retry(Duration::MAX)
        .idle_topic_ttl(Duration::MAX);
    let builder = WebhooksEmitter::builder()
        .report_capacity(usize::MAX)
        .max_payload_bytes(usize::MAX)
        .sse(options);
    let mut h = Harness::with(builder);
    h.receiver
        .script([Reply::RetryAfter(503, "99999999999999999999".into())]);
    let extreme = h
        .config()
        .request_timeout(Duration::MAX)
        .max_retries(u32::MAX)
        .backoff(Duration::MAX / 2, Duration::MAX)
        .retry_after_limit(Duration::MAX)
        .queue_capacity(usize::MAX)
        .dead_letter_capacity(usize::MAX)
        .max_in_flight(usize::MAX)
        .auto_disable_after_dead_letters(u32::MAX)
        .auto_disable_after_failing_for(Duration::MAX);
    h.attach("x", "ping", extreme.clone()).await;
    h.emit_numbers("ping", [1]);
    match h.next_outcome().await {
        Outcome::AttemptFailed { retry_in, .. } => assert!(retry_in >= Duration::MAX / 4),
        other => panic!("{other:?}"),
    }
    // The retry is scheduled for the end of time; the emitter still answers.
    let stats = h.emitter.stats("x").await.unwrap();
    assert_eq!((stats.retrying, stats.failed_attempts), (1, 1));
    let dropped = h.emitter.detach("x").await.unwrap();
    assert_eq!(dropped.len(), 1);

    h.attach("y", "pong", extreme).await;
    h.emit_numbers("pong", [2]);
    assert!(matches!(
        h.next_final().await.outcome,
        Outcome::Dropped { .. }
    ));
    assert!(matches!(
        h.next_final().await.outcome,
        Outcome::Delivered { .. }
    ));
}
