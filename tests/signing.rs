//! Sending side of issue "signatures": Standard Webhooks, timestamped legacy
//! signatures, auth headers, checked against independent implementations.
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{Harness, Received};
use webhooks_emitter::verify::{LegacyVerifier, StandardVerifier, Verifier};
use webhooks_emitter::{parse_standard_secret, sign, sign_standard, sign_timestamped, Outcome};

const KEY_A: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const KEY_B: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The received headers as an `http` 1.x map, for the `standardwebhooks` crate.
fn http_headers(request: &Received) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in request.headers.iter() {
        map.append(
            http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    map
}

/// The reference crate and our verifier both accept `request` under `key`.
fn assert_both_verify(key: &str, request: &Received) {
    let reference = standardwebhooks::Webhook::new(key).unwrap();
    reference
        .verify(&request.body, &http_headers(request))
        .unwrap();
    StandardVerifier::new(key)
        .unwrap()
        .verify(&request.headers, &request.body)
        .unwrap();
}

#[test]
fn published_standard_webhooks_vectors() {
    let vectors = [
        (
            KEY_A,
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            r#"{"email":"test@example.com","username":"test_user"}"#,
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        ),
        (
            KEY_B,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
    ];
    for (secret, id, timestamp, body, expected) in vectors {
        let key = parse_standard_secret(secret).unwrap();
        assert_eq!(
            sign_standard(&key, id, timestamp, body.as_bytes()),
            expected
        );
        let timestamp_text = timestamp.to_string();
        let headers = [
            ("webhook-id", id),
            ("webhook-timestamp", timestamp_text.as_str()),
            ("webhook-signature", expected),
        ];
        let verified = StandardVerifier::new(secret)
            .unwrap()
            .verify_at(&headers, body.as_bytes(), timestamp)
            .unwrap();
        assert_eq!(verified.id, id);
        assert_eq!(verified.timestamp, Some(timestamp));
    }
}

#[actix_web::test]
async fn standard_webhooks_requests_verify_with_the_reference_crate() {
    let mut h = Harness::start();
    h.receiver.script_statuses([500]);
    h.attach("std", "user.created", h.config().standard_webhooks(KEY_A))
        .await;
    let id = h
        .emitter
        .emit(
            "user.created",
            &json!({"email": "a@b.c"}),
            Some("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W".into()),
        )
        .unwrap();
    assert!(matches!(
        h.next_final().await.outcome,
        Outcome::Delivered { attempts: 2, .. }
    ));

    for request in h.receiver.take(2).await {
        // webhook-id is the request id, unchanged, on every attempt.
        assert_eq!(request.header("webhook-id"), Some(id.as_str()));
        assert_eq!(request.header("x-webhooks-delivery"), Some(id.as_str()));
        assert!(
            request.header("x-webhooks-signature").is_none(),
            "no legacy secret was set"
        );
        assert_both_verify(KEY_A, &request);
    }
}

#[test]
fn our_verifier_accepts_what_the_reference_crate_signs() {
    let reference = standardwebhooks::Webhook::new(KEY_B).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let body = br#"{"type":"invoice.paid","data":{"id":7}}"#;
    let signature = reference.sign("msg_abc", now, body).unwrap();
    let now_text = now.to_string();
    let headers = [
        ("webhook-id", "msg_abc"),
        ("webhook-timestamp", now_text.as_str()),
        ("webhook-signature", signature.as_str()),
    ];
    let verified = StandardVerifier::new(KEY_B)
        .unwrap()
        .verify(&headers, body)
        .unwrap();
    assert_eq!(verified.id, "msg_abc");
}

#[actix_web::test]
async fn rotated_keys_each_sign_and_either_verifies() {
    let mut h = Harness::start();
    let config = h.config().standard_webhooks(KEY_A).standard_webhooks(KEY_B);
    h.attach("rot", "ping", config).await;
    h.emit_numbers("ping", [1]);
    let request = h.receiver.next().await;
    let signatures: Vec<&str> = request
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(signatures.len(), 2);
    assert!(signatures.iter().all(|s| s.starts_with("v1,")));
    for key in [KEY_A, KEY_B] {
        assert_both_verify(key, &request);
    }
    // A receiver that already rotated to a third key, keeping B as the old one.
    let third = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY";
    let rotated = StandardVerifier::new(third)
        .unwrap()
        .add_key(KEY_B)
        .unwrap();
    rotated.verify(&request.headers, &request.body).unwrap();
}

#[actix_web::test]
async fn legacy_and_standard_headers_together_with_a_timestamp() {
    let mut h = Harness::start();
    let config = h
        .config()
        .secret("legacy-secret")
        .timestamped_signature()
        .standard_webhooks(KEY_A);
    h.attach("both", "ping", config).await;
    h.emit_numbers("ping", [1]);
    let request = h.receiver.next().await;

    let timestamp: i64 = request
        .header("x-webhooks-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        request.header("webhook-timestamp").unwrap(),
        timestamp.to_string()
    );
    let signature = request.header("x-webhooks-signature").unwrap();
    assert_eq!(
        signature,
        sign_timestamped(b"legacy-secret", timestamp, &request.body)
    );
    assert_ne!(signature, sign(b"legacy-secret", &request.body));
    let delivery = LegacyVerifier::new("legacy-secret")
        .require_timestamp()
        .verify(&request.headers, &request.body)
        .unwrap();
    assert_eq!(delivery.timestamp, Some(timestamp));
    assert_eq!(delivery.event.as_deref(), Some("ping"));
    assert_both_verify(KEY_A, &request);
}

#[actix_web::test]
async fn bearer_and_basic_auth_headers() {
    let mut h = Harness::start();
    let url = |path| support::fast_config(h.receiver.url(path));
    let bearer = url("/bearer").bearer_token("tok-123");
    let basic = url("/basic").basic_auth("aladdin", "opensesame");
    assert!(!format!("{bearer:?}{basic:?}").contains("tok-123"));
    assert!(!format!("{basic:?}").contains("opensesame"));
    h.attach("bearer", "ping", bearer).await;
    h.emitter.pause("bearer").await.unwrap();
    h.attach("basic", "ping", basic).await;
    h.emitter.emit("ping", &json!({}), None).unwrap();
    let request = h.receiver.next().await;
    assert_eq!(request.path, "/basic");
    // RFC 7617's example credentials.
    assert_eq!(
        request.header("authorization"),
        Some("Basic YWxhZGRpbjpvcGVuc2VzYW1l")
    );
    h.emitter.restart("bearer").await.unwrap();
    let request = h.receiver.next().await;
    assert_eq!(request.path, "/bearer");
    assert_eq!(request.header("authorization"), Some("Bearer tok-123"));
}
