//! Sending side of issue "signatures": Standard Webhooks, timestamped legacy
//! signatures, auth headers, checked against independent implementations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{fast_config, next_final, Received, Receiver};
use webhooks_emitter::verify::{LegacyVerifier, StandardVerifier, Verifier};
use webhooks_emitter::{
    parse_standard_secret, sign, sign_standard, sign_timestamped, AttachError, Config, ConfigError,
    Outcome, WebhooksEmitter,
};

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
    let mut receiver = Receiver::start();
    receiver.script_statuses([500]);
    let emitter = WebhooksEmitter::start();
    let mut reports = emitter.reports();
    let config = fast_config(receiver.url("/")).standard_webhooks(KEY_A);
    emitter.attach("std", "user.created", config).await.unwrap();
    let id = emitter
        .emit(
            "user.created",
            &json!({"email": "a@b.c"}),
            Some("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W".into()),
        )
        .unwrap();
    assert!(matches!(
        next_final(&mut reports).await.outcome,
        Outcome::Delivered { attempts: 2, .. }
    ));

    for request in receiver.take(2).await {
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
    let mut receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    let config = fast_config(receiver.url("/"))
        .standard_webhooks(KEY_A)
        .standard_webhooks(KEY_B);
    emitter.attach("rot", "ping", config).await.unwrap();
    emitter.emit("ping", &json!({"n": 1}), None).unwrap();
    let request = receiver.next().await;
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
    let mut receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    let config = fast_config(receiver.url("/"))
        .secret("legacy-secret")
        .timestamped_signature()
        .standard_webhooks(KEY_A);
    emitter.attach("both", "ping", config).await.unwrap();
    emitter.emit("ping", &json!({"n": 1}), None).unwrap();
    let request = receiver.next().await;

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
    let mut receiver = Receiver::start();
    let emitter = WebhooksEmitter::start();
    let bearer = fast_config(receiver.url("/bearer")).bearer_token("tok-123");
    let basic = fast_config(receiver.url("/basic")).basic_auth("aladdin", "opensesame");
    assert!(!format!("{bearer:?}{basic:?}").contains("tok-123"));
    assert!(!format!("{basic:?}").contains("opensesame"));
    emitter.attach("bearer", "ping", bearer).await.unwrap();
    emitter.pause("bearer").await.unwrap();
    emitter.attach("basic", "ping", basic).await.unwrap();
    emitter.emit("ping", &json!({}), None).unwrap();
    let request = receiver.next().await;
    assert_eq!(request.path, "/basic");
    // RFC 7617's example credentials.
    assert_eq!(
        request.header("authorization"),
        Some("Basic YWxhZGRpbjpvcGVuc2VzYW1l")
    );
    emitter.restart("bearer").await.unwrap();
    let request = receiver.next().await;
    assert_eq!(request.path, "/bearer");
    assert_eq!(request.header("authorization"), Some("Bearer tok-123"));
}

#[actix_web::test]
async fn bad_secrets_and_credentials_are_refused_without_showing_them() {
    let emitter = WebhooksEmitter::start();
    let url = "http://127.0.0.1:1/";
    let cases = [
        (
            Config::new(url).standard_webhooks("C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
            "whsec_",
        ),
        (
            Config::new(url).standard_webhooks("whsec_not*base64!"),
            "base64",
        ),
        (
            Config::new(url).standard_webhooks("whsec_c2hvcnQ="),
            "at least 16",
        ),
    ];
    for (config, expected) in cases {
        let err = emitter.attach("bad", "ping", config).await.unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(
                &err,
                AttachError::InvalidConfig {
                    source: ConfigError::InvalidStandardSecret { .. },
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(text.contains(expected), "{text}");
        assert!(
            !text.contains("C2FVsBQIhrscChlQIMV") && !text.contains("c2hvcnQ"),
            "{text}"
        );
    }
    let err = emitter
        .attach(
            "bad",
            "ping",
            Config::new(url).bearer_token("zq9-secret\r\nx: y"),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AttachError::InvalidConfig {
            source: ConfigError::InvalidCredentials { .. },
            ..
        }
    ));
    assert!(!format!("{err} {err:?}").contains("zq9-secret"));
    let err = emitter
        .attach("bad", "ping", Config::new(url).basic_auth("a:b", "p"))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AttachError::InvalidConfig {
            source: ConfigError::InvalidCredentials { .. },
            ..
        }
    ));
    let twice = Config::new(url)
        .bearer_token("t")
        .additional_header("Authorization", "other");
    let err = emitter.attach("bad", "ping", twice).await.unwrap_err();
    assert!(matches!(
        err,
        AttachError::InvalidConfig {
            source: ConfigError::ReservedHeader { .. },
            ..
        }
    ));
    let forged = Config::new(url)
        .standard_webhooks(KEY_A)
        .additional_header("webhook-id", "x");
    let err = emitter.attach("bad", "ping", forged).await.unwrap_err();
    assert!(matches!(
        err,
        AttachError::InvalidConfig {
            source: ConfigError::ReservedHeader { .. },
            ..
        }
    ));
}
