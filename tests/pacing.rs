//! Endpoints that protect their receivers: a rate limit (events above it
//! wait, none is dropped, other emitters are not slowed) and a circuit
//! breaker (after a run of failures, one request at a time until one
//! succeeds).
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::{eventually, fast_config, refused_addr, Receiver, Reply};
use webhooks_emitter::{ConfigError, RateLimit, WebhooksEmitter};

/// 20 a second with a burst of 1: 40 events arrive at 20 a second (within
/// 10 %), in order; an unlimited emitter on the same receiver gets its 40
/// before the limited one is halfway.
#[actix_web::test]
async fn a_rate_limited_emitter_queues_at_its_rate_and_slows_no_other() {
    let mut receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    let limit = RateLimit::new(20, 1).unwrap();
    emitter
        .attach(
            "slow",
            "slow.event",
            fast_config(receiver.url("/slow")).rate_limit(20, 1),
        )
        .await
        .unwrap();
    emitter
        .attach("fast", "fast.event", fast_config(receiver.url("/fast")))
        .await
        .unwrap();
    assert_eq!(emitter.stats("slow").await.unwrap().rate_limit, Some(limit));
    assert_eq!(emitter.stats("fast").await.unwrap().rate_limit, None);
    for n in 0..40 {
        emitter
            .emit("slow.event", &json!({ "n": n }), None)
            .unwrap();
        emitter
            .emit("fast.event", &json!({ "n": n }), None)
            .unwrap();
    }
    let (mut slow, mut fast) = (Vec::new(), Vec::new());
    while slow.len() < 40 || fast.len() < 40 {
        let got = receiver.next().await;
        if got.path == "/slow" {
            slow.push(got);
        } else {
            fast.push(got);
            if fast.len() == 40 {
                assert!(
                    slow.len() < 20,
                    "the fast emitter waited: {} slow first",
                    slow.len()
                );
            }
        }
    }
    let ns: Vec<i64> = slow.iter().map(|g| g.n()).collect();
    assert_eq!(ns, (0..40).collect::<Vec<i64>>(), "in order, none dropped");
    let span = slow[39].at.duration_since(slow[0].at).as_secs_f64();
    let rate = 39.0 / span;
    assert!((18.0..=22.0).contains(&rate), "{rate:.1} a second");
}

/// Retries count against the limit too, and the limit holds a queue that
/// outlasts the burst without losing an event.
#[actix_web::test]
async fn retries_take_tokens_and_nothing_is_dropped() {
    let mut receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    let config = fast_config(receiver.url("/r"))
        .max_in_flight(4)
        .rate_limit(50, 5);
    emitter.attach("r", "r.event", config).await.unwrap();
    receiver.script_statuses([500, 500, 500]);
    for n in 0..30 {
        emitter.emit("r.event", &json!({ "n": n }), None).unwrap();
    }
    let got = receiver.take(33).await;
    let mut delivered: Vec<i64> = got[3..].iter().map(|g| g.n()).collect();
    delivered.sort();
    delivered.dedup();
    assert_eq!(delivered.len(), 30, "every event delivered once");
    // 33 requests, 5 at once then 50 a second: at least 28 / 50 s.
    let span = got[32].at.duration_since(got[0].at);
    assert!(span >= Duration::from_millis(540), "{span:?}");
}

#[actix_web::test]
async fn settings_out_of_range_are_refused() {
    assert!(matches!(
        RateLimit::new(0, 1),
        Err(ConfigError::Zero { .. })
    ));
    assert!(matches!(
        RateLimit::new(1, 2_000_000),
        Err(ConfigError::OutOfRange { .. })
    ));
    let emitter = WebhooksEmitter::start();
    let refused = emitter
        .attach(
            "c",
            "e",
            fast_config("http://127.0.0.1:9/").circuit_breaker(0),
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
}

/// Eight in flight fail: the circuit opens; from then on one request at a
/// time goes (each probe arrives alone), until one succeeds; then the
/// circuit closes and every event is delivered.
#[actix_web::test]
async fn after_a_run_of_failures_one_request_at_a_time_until_one_succeeds() {
    let mut receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    let config = fast_config(receiver.url("/c"))
        .max_in_flight(8)
        .max_retries(1000)
        .backoff(Duration::from_millis(20), Duration::from_millis(20))
        // One failure opens it: with more, a retry of an early failure
        // could go before the others in flight end (on a loaded machine).
        .circuit_breaker(1);
    // Scripted at once, in arrival order: the first eight fail, then four
    // probes fail, then the receiver recovers. (Scripting the probes after
    // the circuit opened raced with the first probe, which then succeeded.)
    let slow_failure = Reply::SlowStatus(500, Duration::from_millis(50));
    receiver.script(std::iter::repeat_n(slow_failure, 8 + 4));
    emitter.attach("c", "c.event", config).await.unwrap();
    for n in 0..8 {
        emitter.emit("c.event", &json!({ "n": n }), None).unwrap();
    }
    let first = receiver.take(8).await;
    assert!(first.iter().any(|g| g.concurrent > 1), "parallel at first");
    eventually("the circuit opens", || async {
        let stats = emitter.stats("c").await.unwrap();
        stats.circuit_open && stats.failed_attempts >= 8
    })
    .await;
    // Four more failing probes, then one that succeeds.
    let probes = receiver.take(5).await;
    for probe in &probes {
        assert_eq!(probe.concurrent, 1, "a probe goes alone");
    }
    let rest = receiver.take(7).await;
    let mut delivered: Vec<i64> = rest.iter().chain(&probes[4..]).map(|g| g.n()).collect();
    delivered.sort();
    assert_eq!(delivered, (0..8).collect::<Vec<i64>>());
    eventually("the circuit closes", || async {
        !emitter.stats("c").await.unwrap().circuit_open
    })
    .await;
}

/// The circuit opens at the `n`th failure in a row, not before: every
/// snapshot of the stats of an emitter whose every attempt fails shows it
/// open exactly when three or more have failed.
#[actix_web::test]
async fn the_circuit_opens_at_the_nth_failure_in_a_row() {
    let emitter = WebhooksEmitter::start();
    let dead = format!("http://{}/", refused_addr());
    let config = fast_config(dead)
        .max_retries(1000)
        .backoff(Duration::from_millis(20), Duration::from_millis(20))
        .circuit_breaker(3);
    emitter.attach("c", "c.event", config).await.unwrap();
    emitter.emit("c.event", &json!({}), None).unwrap();
    eventually("five failures", || async {
        let stats = emitter.stats("c").await.unwrap();
        assert_eq!(
            stats.circuit_open,
            stats.failed_attempts >= 3,
            "{} failures",
            stats.failed_attempts
        );
        stats.failed_attempts >= 5
    })
    .await;
    assert!(emitter.stats("c").await.unwrap().circuit_open);
}
