//! Production delivery policy: Retry-After, 410, parallel mode, auto-disable,
//! SSRF guard, envelopes, relative URLs, stats and test sends.
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use support::{all_delivered, fast_config, Harness, Received, Reply};
use webhooks_emitter::{
    ControlError, DeadLetterReason, EmitError, Failure, Outcome, PauseReason, SsrfGuard,
    WebhooksEmitter, DEFAULT_MAX_PAYLOAD_BYTES, TEST_EVENT,
};

fn retry_in(outcome: &Outcome) -> Duration {
    match outcome {
        Outcome::AttemptFailed { retry_in, .. } => *retry_in,
        other => panic!("expected a failed attempt, got {other:?}"),
    }
}

#[actix_web::test]
async fn retry_after_seconds_sets_the_wait() {
    let mut h = Harness::start();
    h.receiver.script([Reply::RetryAfter(503, "1".into())]);
    h.attach("ra", "ping", h.config()).await;
    h.emitter.emit("ping", &json!({}), None).unwrap();
    let failed = h.next_outcome().await;
    assert!(matches!(
        &failed,
        Outcome::AttemptFailed { failure: Failure::Status { status: 503, retry_after: Some(d) }, .. } if *d == Duration::from_secs(1)
    ));
    // The backoff alone would be 5–10 ms: Retry-After wins.
    assert_eq!(retry_in(&failed), Duration::from_secs(1));
    assert!(matches!(
        h.next_final().await.outcome,
        Outcome::Delivered { attempts: 2, .. }
    ));
    assert_eq!(h.receiver.take(2).await.len(), 2);
}

#[actix_web::test]
async fn retry_after_http_date_and_the_ceiling() {
    let mut h = Harness::start();
    let in_ten_seconds = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(10));
    h.receiver.script([
        Reply::RetryAfter(429, in_ten_seconds),
        Reply::RetryAfter(429, "3600".into()),
    ]);
    let config = h.config().retry_after_limit(Duration::from_millis(300));
    h.attach("ra", "ping", config).await;
    h.emitter.emit("ping", &json!({}), None).unwrap();
    // An HTTP date about 10 s ahead (whole seconds), then an hour: both
    // clamped to the 300 ms ceiling.
    for _ in 0..2 {
        assert_eq!(
            retry_in(&h.next_outcome().await),
            Duration::from_millis(300)
        );
    }
    assert!(matches!(
        h.next_final().await.outcome,
        Outcome::Delivered { attempts: 3, .. }
    ));
    assert_eq!(h.receiver.take(3).await.len(), 3);

    // Without a low ceiling, a date 10 s ahead gives a wait of 5–10 s (whole seconds
    // on the wire), well above the 40 ms backoff cap.
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(10));
    h.receiver.script([Reply::RetryAfter(503, date)]);
    h.attach("date", "date", h.config().max_retries(1)).await;
    h.emitter.emit("date", &json!({}), None).unwrap();
    // max_retries(1): no retry is scheduled, the failure carries the parsed wait.
    match h.next_outcome().await {
        Outcome::DeadLettered {
            reason:
                DeadLetterReason::AttemptsExhausted {
                    last_failure:
                        Failure::Status {
                            retry_after: Some(wait),
                            ..
                        },
                },
            ..
        } => assert!(
            wait >= Duration::from_secs(5) && wait <= Duration::from_secs(10),
            "{wait:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.receiver.take(1).await.len(), 1);
}

#[actix_web::test]
async fn gone_pauses_the_emitter_and_keeps_the_event() {
    let mut h = Harness::start();
    h.receiver.script_statuses([410]);
    h.attach("gone", "ping", h.config()).await;
    h.emit_numbers("ping", [1]);
    assert_eq!(
        h.next_outcome().await,
        Outcome::EmitterPaused {
            reason: PauseReason::Gone
        }
    );
    assert!(!h.emitter.is_started("gone").await);
    h.emit_numbers("ping", [2]);
    let stats = h.emitter.stats("gone").await.unwrap();
    assert!(stats.paused);
    assert_eq!((stats.queued, stats.retrying, stats.in_flight), (1, 1, 0));
    assert_eq!(stats.last_status, Some(410));
    assert_eq!(h.receiver.take(1).await.len(), 1);

    h.emitter.restart("gone").await.unwrap();
    assert_eq!(
        h.receiver.numbers(2).await,
        [1, 2],
        "the event that met 410 is kept and goes first"
    );
    assert!(all_delivered(&h.finals(2).await));
}

#[actix_web::test]
async fn parallel_mode_overlaps_requests_and_loses_nothing() {
    let mut h = Harness::with(WebhooksEmitter::builder().report_capacity(10_000));
    let gate = Arc::new(tokio::sync::Barrier::new(8));
    h.receiver.script((0..8).map(|_| Reply::Gate(gate.clone())));
    // Then a few failures scattered among the next requests.
    h.receiver.script_statuses([200, 500, 503, 200, 502]);
    let config = h.config().max_in_flight(8).max_retries(5);
    h.attach("par", "tick", config).await;
    // The first 8 requests only return once all 8 are in flight together.
    let ids: HashSet<String> = h
        .emit_numbers("tick", 0..200)
        .iter()
        .map(|id| id.to_string())
        .collect();
    let outcomes = h.finals(200).await;
    assert!(all_delivered(&outcomes));
    let delivered: HashSet<String> = outcomes
        .iter()
        .map(|r| r.event.request_id().to_string())
        .collect();
    assert_eq!(delivered, ids, "each event delivered once");

    let mut per_event: HashMap<i64, usize> = HashMap::new();
    for n in h.receiver.numbers(203).await {
        *per_event.entry(n).or_default() += 1;
    }
    assert_eq!(per_event.len(), 200);
    assert_eq!(
        per_event.values().filter(|&&c| c == 2).count(),
        3,
        "three events were retried once each"
    );
    let stats = h.emitter.stats("par").await.unwrap();
    assert_eq!(
        (stats.delivered, stats.failed_attempts, stats.dead_lettered),
        (200, 3, 0)
    );
}

#[actix_web::test]
async fn auto_disable_after_consecutive_dead_letters() {
    let mut h = Harness::start();
    h.receiver.script_statuses([500; 10]);
    let config = h.config().max_retries(1).auto_disable_after_dead_letters(2);
    h.attach("auto", "ping", config).await;
    h.emit_numbers("ping", 1..=3);
    for _ in 0..2 {
        assert!(matches!(
            h.next_outcome().await,
            Outcome::DeadLettered { .. }
        ));
    }
    assert_eq!(
        h.next_outcome().await,
        Outcome::EmitterPaused {
            reason: PauseReason::ConsecutiveDeadLetters(2)
        }
    );
    let stats = h.emitter.stats("auto").await.unwrap();
    assert!(stats.paused);
    assert_eq!(
        (stats.queued, stats.dead_lettered, stats.dead_letters),
        (1, 2, 2)
    );
    assert_eq!(h.emitter.list_emitters().await, Vec::<String>::new());
    assert_eq!(h.receiver.take(2).await.len(), 2);
    assert!(h.receiver.try_next().is_none(), "the third event waits");
}

#[actix_web::test]
async fn auto_disable_after_failing_for_a_while() {
    let mut h = Harness::start();
    h.receiver.script_statuses([500; 10]);
    // Failing for 1 ms: true at the second failure, which comes a backoff (>= 5 ms) later.
    let config = h
        .config()
        .auto_disable_after_failing_for(Duration::from_millis(1));
    h.attach("auto", "ping", config).await;
    h.emitter.emit("ping", &json!({}), None).unwrap();
    for attempt in 1..=2 {
        assert!(matches!(
            h.next_outcome().await,
            Outcome::AttemptFailed { attempt: a, .. } if a == attempt
        ));
    }
    assert_eq!(
        h.next_outcome().await,
        Outcome::EmitterPaused {
            reason: PauseReason::FailingFor(Duration::from_millis(1))
        }
    );
    assert!(!h.emitter.is_started("auto").await);
}

#[actix_web::test]
async fn payloads_above_the_default_limit_are_refused() {
    let emitter = WebhooksEmitter::start();
    let just_fits = "x".repeat(DEFAULT_MAX_PAYLOAD_BYTES - 2); // plus two quotes
    assert!(emitter.emit("big", &just_fits, None).is_ok());
    let too_big = "x".repeat(DEFAULT_MAX_PAYLOAD_BYTES - 1);
    assert_eq!(
        emitter.emit("big", &too_big, None),
        Err(EmitError::PayloadTooLarge {
            size: DEFAULT_MAX_PAYLOAD_BYTES + 1,
            limit: DEFAULT_MAX_PAYLOAD_BYTES
        })
    );
}

#[actix_web::test]
async fn test_sends_one_signed_event_now() {
    let mut h = Harness::start();
    h.attach("t", "ping", h.config().secret("k")).await;
    h.emitter.pause("t").await.unwrap();
    let result = h.emitter.test("t").await.unwrap();
    assert_eq!(result.outcome, Ok(200));
    let request = h.receiver.next().await;
    assert_eq!(request.header("x-webhooks-event"), Some(TEST_EVENT));
    assert_eq!(
        request.header("x-webhooks-delivery"),
        Some(result.request_id.as_str())
    );
    assert_eq!(request.json(), json!({"test": true, "emitter": "t"}));
    assert_eq!(
        request.header("x-webhooks-signature").unwrap(),
        webhooks_emitter::sign(b"k", &request.body)
    );

    h.receiver.script_statuses([500]);
    let failed = h.emitter.test("t").await.unwrap();
    assert_eq!(failed.outcome, Err(Failure::status_code(500)));
    assert_eq!(h.receiver.take(1).await.len(), 1, "no retry");
    assert_eq!(
        h.emitter.stats("t").await.unwrap().failed_attempts,
        0,
        "tests do not count"
    );
    assert_eq!(
        h.emitter.test("nope").await.unwrap_err(),
        ControlError::UnknownEmitter { id: "nope".into() }
    );
}

#[actix_web::test]
async fn ssrf_guard_checks_dns_answers_and_does_not_retry() {
    // The guard for the whole emitter applies to configs that set none.
    let mut h = Harness::with(WebhooksEmitter::builder().ssrf_guard(SsrfGuard::new()));
    let port = h.receiver.addr.port();
    let url = format!("http://localhost:{port}/");
    // `localhost` (and `*.localhost`) is loopback by definition: refused at
    // attach, like 127.0.0.1, not accepted and dead-lettered later.
    for local in [url.clone(), format!("http://API.LocalHost.:{port}/")] {
        let refused = h.emitter.attach("local", "ping", fast_config(&local)).await;
        assert!(
            matches!(
                refused,
                Err(webhooks_emitter::AttachError::InvalidConfig {
                    source: webhooks_emitter::ConfigError::BlockedTarget { .. },
                    ..
                })
            ),
            "{local}: {refused:?}"
        );
    }
    // Another name that resolves to loopback (this machine's own name) is
    // refused when it is resolved, without retries.
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let name = name.trim();
    let loopback = std::net::ToSocketAddrs::to_socket_addrs(&(name, port))
        .map(|mut addrs| addrs.any(|a| a.ip().is_loopback()))
        .unwrap_or(false);
    if loopback {
        let by_name = format!("http://{name}:{port}/");
        h.attach("dns", "ping", fast_config(&by_name).max_retries(5))
            .await;
        h.emit_numbers("ping", [1]);
        match h.next_outcome().await {
            Outcome::DeadLettered {
                attempts: 1,
                reason:
                    DeadLetterReason::NotRetryable {
                        failure: Failure::Blocked(why),
                    },
            } => {
                assert!(why.contains(name), "{why}")
            }
            other => panic!("expected a refusal without retries, got {other:?}"),
        }
    } else {
        eprintln!(
            "{name} does not resolve to loopback here: the resolver's check is not exercised"
        );
    }

    // An allow-list on the config replaces the emitter-wide guard.
    let guard = SsrfGuard::new()
        .allow_subnet("127.0.0.0/8")
        .allow_subnet("::1/128");
    h.attach("dns-allowed", "ping2", fast_config(&url).ssrf_guard(guard))
        .await;
    h.emit_numbers("ping2", [2]);
    assert!(matches!(
        h.next_final().await.outcome,
        Outcome::Delivered { .. }
    ));
    assert_eq!(
        h.receiver.next().await.n(),
        2,
        "the refused event never reached the receiver"
    );
}

#[actix_web::test]
async fn envelope_wraps_the_payload() {
    let mut h = Harness::start();
    h.attach("env", "order.created", h.config().envelope().secret("k"))
        .await;
    let before = SystemTime::now();
    let id = h
        .emitter
        .emit("order.created", &json!({"order": 42}), None)
        .unwrap();
    let request: Received = h.receiver.next().await;
    let body: Value = request.json();
    let keys: HashSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, HashSet::from(["id", "timestamp", "event", "data"]));
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["event"], "order.created");
    assert_eq!(body["data"], json!({"order": 42}));
    let at = humantime::parse_rfc3339(body["timestamp"].as_str().unwrap()).unwrap();
    let skew = at.duration_since(before).unwrap_or_else(|e| e.duration());
    assert!(skew < Duration::from_secs(60), "{skew:?}");
    assert_eq!(
        request.header("x-webhooks-signature").unwrap(),
        webhooks_emitter::sign(b"k", &request.body)
    );
}

#[actix_web::test]
async fn relative_urls_use_the_base_url() {
    let mut receiver = support::Receiver::start();
    let emitter = WebhooksEmitter::builder()
        .base_url(receiver.url("/v1/"))
        .start();
    emitter
        .attach("rel", "ping", fast_config("/api/hooks"))
        .await
        .unwrap();
    emitter.emit("ping", &json!({}), None).unwrap();
    assert_eq!(receiver.next().await.path, "/v1/api/hooks");
}

#[actix_web::test]
async fn stats_count_what_happened() {
    let mut h = Harness::start();
    h.receiver.script_statuses([500, 500, 201]);
    h.attach("s", "ping", h.config().max_retries(2)).await;
    h.attach("idle", "other", h.config()).await;
    h.emit_numbers("ping", [1, 2]); // 1: 500, 500, dead letter; 2: 201
    h.finals(2).await;
    let stats = h.emitter.stats("s").await.unwrap();
    assert_eq!(stats.id, "s");
    assert_eq!(
        (
            stats.delivered,
            stats.failed_attempts,
            stats.dead_lettered,
            stats.dead_letters
        ),
        (1, 2, 1, 1)
    );
    assert_eq!(stats.last_status, Some(201));
    assert!(stats.last_latency.is_some());
    assert_eq!(
        (stats.queued, stats.in_flight, stats.retrying, stats.paused),
        (0, 0, 0, false)
    );
    let all = h.emitter.stats_all().await;
    assert_eq!(
        all.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["idle", "s"]
    );
    assert_eq!(all[0].delivered, 0);
    assert_eq!(h.receiver.take(3).await.len(), 3);
    assert_eq!(
        h.emitter.stats("nope").await.unwrap_err(),
        ControlError::UnknownEmitter { id: "nope".into() }
    );
}
