//! Production delivery policy: Retry-After, 410, parallel mode, auto-disable,
//! SSRF guard, envelopes, relative URLs, stats and test sends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use support::{fast_config, finals, next_final, next_report, Receiver, Reply};
use webhooks_emitter::{
    AttachError, Config, ConfigError, ControlError, DeadLetterReason, EmitError, Failure, Outcome,
    PauseReason, SsrfGuard, WebhooksEmitter, DEFAULT_MAX_PAYLOAD_BYTES, TEST_EVENT,
};

fn retry_in(report: &webhooks_emitter::DeliveryReport) -> Duration {
    match &report.outcome {
        Outcome::AttemptFailed { retry_in, .. } => *retry_in,
        other => panic!("expected a failed attempt, got {other:?}"),
    }
}

#[actix_web::test]
async fn retry_after_seconds_sets_the_wait() {
    let mut receiver = Receiver::start();
    receiver.script([Reply::RetryAfter(503, "1".into())]);
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    emitter
        .attach("ra", "ping", fast_config(receiver.url("/")))
        .await
        .unwrap();
    emitter.emit("ping", &json!({}), None).unwrap();
    let failed = next_report(&mut reports).await;
    assert!(matches!(
        &failed.outcome,
        Outcome::AttemptFailed { failure: Failure::Status { status: 503, retry_after: Some(d) }, .. } if *d == Duration::from_secs(1)
    ));
    // The backoff alone would be 5–10 ms: Retry-After wins.
    assert_eq!(retry_in(&failed), Duration::from_secs(1));
    assert!(matches!(
        next_final(&mut reports).await.outcome,
        Outcome::Delivered { attempts: 2, .. }
    ));
    assert_eq!(receiver.take(2).await.len(), 2);
}

#[actix_web::test]
async fn retry_after_http_date_and_the_ceiling() {
    let mut receiver = Receiver::start();
    let in_ten_seconds = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(10));
    receiver.script([
        Reply::RetryAfter(429, in_ten_seconds),
        Reply::RetryAfter(429, "3600".into()),
    ]);
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    let config = fast_config(receiver.url("/")).retry_after_limit(Duration::from_millis(300));
    emitter.attach("ra", "ping", config).await.unwrap();
    emitter.emit("ping", &json!({}), None).unwrap();
    // An HTTP date about 10 s ahead (whole seconds), clamped to the 300 ms ceiling.
    assert_eq!(
        retry_in(&next_report(&mut reports).await),
        Duration::from_millis(300)
    );
    // An hour, clamped to the ceiling.
    assert_eq!(
        retry_in(&next_report(&mut reports).await),
        Duration::from_millis(300)
    );
    assert!(matches!(
        next_final(&mut reports).await.outcome,
        Outcome::Delivered { attempts: 3, .. }
    ));
    assert_eq!(receiver.take(3).await.len(), 3);

    // Without a low ceiling, a date 10 s ahead gives a wait of 5–10 s (whole seconds
    // on the wire), well above the 40 ms backoff cap.
    let mut receiver = Receiver::start();
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(10));
    receiver.script([Reply::RetryAfter(503, date)]);
    emitter
        .attach(
            "date",
            "date",
            fast_config(receiver.url("/")).max_retries(1),
        )
        .await
        .unwrap();
    emitter.emit("date", &json!({}), None).unwrap();
    let report = next_report(&mut reports).await;
    // max_retries(1): no retry is scheduled, the failure carries the parsed wait.
    match report.outcome {
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
    assert_eq!(receiver.take(1).await.len(), 1);
}

#[actix_web::test]
async fn gone_pauses_the_emitter_and_keeps_the_event() {
    let mut receiver = Receiver::start();
    receiver.script_statuses([410]);
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    emitter
        .attach("gone", "ping", fast_config(receiver.url("/")))
        .await
        .unwrap();
    emitter.emit("ping", &json!({"n": 1}), None).unwrap();
    let report = next_report(&mut reports).await;
    assert_eq!(
        report.outcome,
        Outcome::EmitterPaused {
            reason: PauseReason::Gone
        }
    );
    assert!(!emitter.is_started("gone").await);
    emitter.emit("ping", &json!({"n": 2}), None).unwrap();
    let stats = emitter.stats("gone").await.unwrap();
    assert!(stats.paused);
    assert_eq!((stats.queued, stats.retrying, stats.in_flight), (1, 1, 0));
    assert_eq!(stats.last_status, Some(410));
    assert_eq!(receiver.take(1).await.len(), 1);

    emitter.restart("gone").await.unwrap();
    let got: Vec<i64> = receiver
        .take(2)
        .await
        .iter()
        .map(|r| r.json()["n"].as_i64().unwrap())
        .collect();
    assert_eq!(got, [1, 2], "the event that met 410 is kept and goes first");
    let delivered = finals(&mut reports, 2).await;
    assert!(delivered
        .iter()
        .all(|r| matches!(r.outcome, Outcome::Delivered { .. })));
}

#[actix_web::test]
async fn parallel_mode_overlaps_requests_and_loses_nothing() {
    let mut receiver = Receiver::start();
    let gate = Arc::new(tokio::sync::Barrier::new(8));
    receiver.script((0..8).map(|_| Reply::Gate(gate.clone())));
    // Then a few failures scattered among the next requests.
    receiver.script([
        Reply::Status(200),
        Reply::Status(500),
        Reply::Status(503),
        Reply::Status(200),
        Reply::Status(502),
    ]);
    let emitter = WebhooksEmitter::builder().report_capacity(10_000).start();
    let mut reports = emitter.reports();
    emitter
        .attach(
            "par",
            "tick",
            fast_config(receiver.url("/"))
                .max_in_flight(8)
                .max_retries(5),
        )
        .await
        .unwrap();
    // The first 8 requests only return once all 8 are in flight together.
    let ids: Vec<String> = (0..200)
        .map(|n| {
            emitter
                .emit("tick", &json!({"n": n}), None)
                .unwrap()
                .to_string()
        })
        .collect();
    let outcomes = finals(&mut reports, 200).await;
    assert!(outcomes
        .iter()
        .all(|r| matches!(r.outcome, Outcome::Delivered { .. })));
    let delivered: HashSet<String> = outcomes
        .iter()
        .map(|r| r.event.request_id().to_string())
        .collect();
    assert_eq!(
        delivered,
        ids.iter().cloned().collect::<HashSet<_>>(),
        "each event delivered once"
    );

    let requests = receiver.take(203).await;
    let mut per_event: HashMap<i64, usize> = HashMap::new();
    for request in &requests {
        *per_event
            .entry(request.json()["n"].as_i64().unwrap())
            .or_default() += 1;
    }
    assert_eq!(per_event.len(), 200);
    assert_eq!(
        per_event.values().filter(|&&c| c == 2).count(),
        3,
        "three events were retried once each"
    );
    let stats = emitter.stats("par").await.unwrap();
    assert_eq!(
        (stats.delivered, stats.failed_attempts, stats.dead_lettered),
        (200, 3, 0)
    );
}

#[actix_web::test]
async fn auto_disable_after_consecutive_dead_letters() {
    let mut receiver = Receiver::start();
    receiver.script_statuses([500; 10]);
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    let config = fast_config(receiver.url("/"))
        .max_retries(1)
        .auto_disable_after_dead_letters(2);
    emitter.attach("auto", "ping", config).await.unwrap();
    for n in 1..=3 {
        emitter.emit("ping", &json!({"n": n}), None).unwrap();
    }
    assert!(matches!(
        next_report(&mut reports).await.outcome,
        Outcome::DeadLettered { .. }
    ));
    assert!(matches!(
        next_report(&mut reports).await.outcome,
        Outcome::DeadLettered { .. }
    ));
    let paused = next_report(&mut reports).await;
    assert_eq!(
        paused.outcome,
        Outcome::EmitterPaused {
            reason: PauseReason::ConsecutiveDeadLetters(2)
        }
    );
    let stats = emitter.stats("auto").await.unwrap();
    assert!(stats.paused);
    assert_eq!(
        (stats.queued, stats.dead_lettered, stats.dead_letters),
        (1, 2, 2)
    );
    assert_eq!(emitter.list_emitters().await, Vec::<String>::new());
    assert_eq!(receiver.take(2).await.len(), 2);
    assert!(receiver.try_next().is_none(), "the third event waits");
}

#[actix_web::test]
async fn auto_disable_after_failing_for_a_while() {
    let receiver = Receiver::start();
    receiver.script_statuses([500; 10]);
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    // Failing for 1 ms: true at the second failure, which comes a backoff (>= 5 ms) later.
    let config =
        fast_config(receiver.url("/")).auto_disable_after_failing_for(Duration::from_millis(1));
    emitter.attach("auto", "ping", config).await.unwrap();
    emitter.emit("ping", &json!({}), None).unwrap();
    assert!(matches!(
        next_report(&mut reports).await.outcome,
        Outcome::AttemptFailed { attempt: 1, .. }
    ));
    assert!(matches!(
        next_report(&mut reports).await.outcome,
        Outcome::AttemptFailed { attempt: 2, .. }
    ));
    let paused = next_report(&mut reports).await;
    assert_eq!(
        paused.outcome,
        Outcome::EmitterPaused {
            reason: PauseReason::FailingFor(Duration::from_millis(1))
        }
    );
    assert!(!emitter.is_started("auto").await);
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
    let mut receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    emitter
        .attach("t", "ping", fast_config(receiver.url("/")).secret("k"))
        .await
        .unwrap();
    emitter.pause("t").await.unwrap();
    let result = emitter.test("t").await.unwrap();
    assert_eq!(result.outcome, Ok(200));
    let request = receiver.next().await;
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

    receiver.script_statuses([500]);
    let failed = emitter.test("t").await.unwrap();
    assert_eq!(failed.outcome, Err(Failure::status_code(500)));
    assert_eq!(receiver.take(1).await.len(), 1, "no retry");
    assert_eq!(
        emitter.stats("t").await.unwrap().failed_attempts,
        0,
        "tests do not count"
    );
    assert_eq!(
        emitter.test("nope").await.unwrap_err(),
        ControlError::UnknownEmitter { id: "nope".into() }
    );
}

#[actix_web::test]
async fn ssrf_guard_refuses_private_ip_literals_at_attach() {
    let receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    let port = receiver.addr.port();
    for url in [
        format!("http://127.0.0.1:{port}/"),
        "http://10.1.2.3/hooks".to_string(),
        "http://169.254.169.254/latest/meta-data".to_string(),
        format!("http://[::1]:{port}/"),
        "http://[::ffff:192.168.0.1]/".to_string(),
    ] {
        let config = Config::new(&url).ssrf_guard(SsrfGuard::new());
        match emitter.attach("guarded", "ping", config).await {
            Err(AttachError::InvalidConfig {
                source: ConfigError::BlockedTarget { reason, .. },
                ..
            }) => {
                assert!(!reason.is_empty(), "{url}")
            }
            other => panic!("{url}: expected BlockedTarget, got {other:?}"),
        }
    }
    let bad_subnet =
        Config::new("http://example.com/").ssrf_guard(SsrfGuard::new().allow_subnet("nope"));
    assert!(matches!(
        emitter.attach("guarded", "ping", bad_subnet).await,
        Err(AttachError::InvalidConfig {
            source: ConfigError::InvalidSubnet { .. },
            ..
        })
    ));
    // The allow-list lets the loopback receiver through.
    let allowed =
        fast_config(receiver.url("/")).ssrf_guard(SsrfGuard::new().allow_subnet("127.0.0.0/8"));
    emitter.attach("allowed", "ping", allowed).await.unwrap();
}

#[actix_web::test]
async fn ssrf_guard_checks_dns_answers_and_does_not_retry() {
    let mut receiver = Receiver::start();
    // The guard for the whole emitter applies to configs that set none.
    let emitter = WebhooksEmitter::builder()
        .ssrf_guard(SsrfGuard::new())
        .start();
    let mut reports = emitter.reports();
    let url = format!("http://localhost:{}/", receiver.addr.port());
    emitter
        .attach("dns", "ping", fast_config(&url).max_retries(5))
        .await
        .unwrap();
    emitter.emit("ping", &json!({"n": 1}), None).unwrap();
    let report = next_report(&mut reports).await;
    match &report.outcome {
        Outcome::DeadLettered {
            attempts: 1,
            reason:
                DeadLetterReason::NotRetryable {
                    failure: Failure::Blocked(why),
                },
        } => {
            assert!(why.contains("localhost"), "{why}")
        }
        other => panic!("expected a refusal without retries, got {other:?}"),
    }

    // An allow-list on the config replaces the emitter-wide guard.
    let guard = SsrfGuard::new()
        .allow_subnet("127.0.0.0/8")
        .allow_subnet("::1/128");
    emitter
        .attach("dns-allowed", "ping2", fast_config(&url).ssrf_guard(guard))
        .await
        .unwrap();
    emitter.emit("ping2", &json!({"n": 2}), None).unwrap();
    assert!(matches!(
        next_final(&mut reports).await.outcome,
        Outcome::Delivered { .. }
    ));
    assert_eq!(
        receiver.next().await.json()["n"],
        2,
        "the refused event never reached the receiver"
    );
}

#[actix_web::test]
async fn envelope_wraps_the_payload() {
    let mut receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    emitter
        .attach(
            "env",
            "order.created",
            fast_config(receiver.url("/")).envelope().secret("k"),
        )
        .await
        .unwrap();
    let before = SystemTime::now();
    let id = emitter
        .emit("order.created", &json!({"order": 42}), None)
        .unwrap();
    let request = receiver.next().await;
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
    let mut receiver = Receiver::start();
    let emitter = WebhooksEmitter::builder()
        .base_url(receiver.url("/v1/"))
        .start();
    emitter
        .attach("rel", "ping", fast_config("/api/hooks"))
        .await
        .unwrap();
    emitter.emit("ping", &json!({}), None).unwrap();
    assert_eq!(receiver.next().await.path, "/v1/api/hooks");

    let without_base = WebhooksEmitter::start();
    match without_base
        .attach("rel", "ping", Config::new("/api/hooks"))
        .await
    {
        Err(AttachError::InvalidConfig {
            source: ConfigError::InvalidUrl { reason, .. },
            ..
        }) => {
            assert!(reason.contains("base_url"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn from_env_reads_url_and_api_key() {
    let vars = HashMap::from([
        ("WEBHOOK_URL", "https://hooks.example/in"),
        ("WEBHOOK_API_KEY", "k-123"),
    ]);
    let config = Config::from_env_with(|v| vars.get(v).map(|s| s.to_string())).unwrap();
    let debug = format!("{config:?}");
    assert!(
        debug.contains("hooks.example")
            && debug.contains("Bearer([redacted])")
            && !debug.contains("k-123")
    );
    assert_eq!(
        Config::from_env_with(|_| None).unwrap_err(),
        ConfigError::MissingEnv { var: "WEBHOOK_URL" }
    );
}

#[actix_web::test]
async fn stats_count_what_happened() {
    let mut receiver = Receiver::start();
    receiver.script_statuses([500, 500, 201]);
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    emitter
        .attach("s", "ping", fast_config(receiver.url("/")).max_retries(2))
        .await
        .unwrap();
    emitter
        .attach("idle", "other", fast_config(receiver.url("/")))
        .await
        .unwrap();
    emitter.emit("ping", &json!({"n": 1}), None).unwrap(); // 500, 500: dead letter
    emitter.emit("ping", &json!({"n": 2}), None).unwrap(); // 201
    finals(&mut reports, 2).await;
    let stats = emitter.stats("s").await.unwrap();
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
    let all = emitter.stats_all().await;
    assert_eq!(
        all.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["idle", "s"]
    );
    assert_eq!(all[0].delivered, 0);
    assert_eq!(receiver.take(3).await.len(), 3);
    assert_eq!(
        emitter.stats("nope").await.unwrap_err(),
        ControlError::UnknownEmitter { id: "nope".into() }
    );
}
