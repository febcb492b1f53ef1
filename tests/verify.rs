//! Receiving side: verifiers, the idempotency store and the actix-web extractor
//! (feature `verify-actix`).
#![cfg(feature = "verify")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use webhooks_emitter::verify::{
    IdempotencyStore, LegacyVerifier, StandardVerifier, Verifier, VerifyError,
};
use webhooks_emitter::{parse_standard_secret, sign, sign_standard, sign_timestamped};

const KEY: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const OTHER_KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const T: i64 = 1_700_000_000;
const BODY: &[u8] = br#"{"order":42}"#;

fn standard_headers(key: &str, id: &str, timestamp: i64, body: &[u8]) -> Vec<(String, String)> {
    let key = parse_standard_secret(key).unwrap();
    vec![
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), timestamp.to_string()),
        (
            "webhook-signature".into(),
            sign_standard(&key, id, timestamp, body),
        ),
    ]
}

fn legacy_headers(secret: &str, timestamp: Option<i64>, body: &[u8]) -> Vec<(String, String)> {
    let mut headers = vec![("x-webhooks-delivery".to_string(), "req-1".to_string())];
    match timestamp {
        Some(t) => {
            headers.push(("x-webhooks-timestamp".into(), t.to_string()));
            headers.push((
                "x-webhooks-signature".into(),
                sign_timestamped(secret.as_bytes(), t, body),
            ));
        }
        None => headers.push(("x-webhooks-signature".into(), sign(secret.as_bytes(), body))),
    }
    headers
}

fn set(headers: &mut [(String, String)], name: &str, value: &str) {
    headers.iter_mut().find(|(n, _)| n == name).unwrap().1 = value.to_owned();
}

#[test]
fn standard_verifier_refuses_what_is_not_authentic_or_fresh() {
    let verifier = StandardVerifier::new(KEY).unwrap();
    let good = standard_headers(KEY, "msg_1", T, BODY);
    assert_eq!(verifier.verify_at(&good, BODY, T).unwrap().id, "msg_1");
    assert!(
        verifier.verify_at(&good, BODY, T + 300).is_ok(),
        "exactly at the tolerance"
    );

    assert_eq!(
        verifier.verify_at(&good, br#"{"order":43}"#, T),
        Err(VerifyError::BadSignature)
    );
    let mut tampered = good.clone();
    set(&mut tampered, "webhook-timestamp", &(T + 1).to_string());
    assert_eq!(
        verifier.verify_at(&tampered, BODY, T),
        Err(VerifyError::BadSignature)
    );
    let mut tampered = good.clone();
    set(&mut tampered, "webhook-id", "msg_2");
    assert_eq!(
        verifier.verify_at(&tampered, BODY, T),
        Err(VerifyError::BadSignature)
    );
    let wrong_key = standard_headers(OTHER_KEY, "msg_1", T, BODY);
    assert_eq!(
        verifier.verify_at(&wrong_key, BODY, T),
        Err(VerifyError::BadSignature)
    );

    assert!(matches!(
        verifier.verify_at(&good, BODY, T + 301),
        Err(VerifyError::TooOld { age_secs: 301, .. })
    ));
    assert!(matches!(
        verifier.verify_at(&good, BODY, T - 301),
        Err(VerifyError::TooNew {
            ahead_secs: 301,
            ..
        })
    ));
    let strict = StandardVerifier::new(KEY)
        .unwrap()
        .tolerance(Duration::from_secs(10));
    assert!(matches!(
        strict.verify_at(&good, BODY, T + 11),
        Err(VerifyError::TooOld { .. })
    ));

    let mut unknown_version = good.clone();
    let sig = good[2].1.replacen("v1,", "v2,", 1);
    set(&mut unknown_version, "webhook-signature", &sig);
    // Only versions this verifier does not know: no matching signature (401),
    // as the reference libraries answer, not a malformed request.
    let err = verifier.verify_at(&unknown_version, BODY, T).unwrap_err();
    assert!(
        err == VerifyError::BadSignature && err.status() == 401,
        "{err:?}"
    );
    let mut garbage = good.clone();
    set(&mut garbage, "webhook-signature", "not-a-signature");
    let err = verifier.verify_at(&garbage, BODY, T).unwrap_err();
    assert!(
        matches!(err, VerifyError::BadFormat { .. }) && err.status() == 400,
        "{err:?}"
    );
    let missing: Vec<(String, String)> = good[..2].to_vec();
    assert_eq!(
        verifier.verify_at(&missing, BODY, T),
        Err(VerifyError::MissingHeader {
            header: "webhook-signature".into()
        })
    );
    let mut several = good.clone();
    let both = format!("v1,AAAA {} v1a,zzz", good[2].1);
    set(&mut several, "webhook-signature", &both);
    assert!(
        verifier.verify_at(&several, BODY, T).is_ok(),
        "any matching candidate is enough"
    );
}

#[test]
fn legacy_verifier_with_and_without_timestamp() {
    let verifier = LegacyVerifier::new("s3cret");
    let plain = legacy_headers("s3cret", None, BODY);
    let delivery = verifier.verify_at(&plain, BODY, T).unwrap();
    assert_eq!((delivery.id.as_str(), delivery.timestamp), ("req-1", None));
    assert_eq!(
        verifier
            .clone()
            .require_timestamp()
            .verify_at(&plain, BODY, T),
        Err(VerifyError::MissingHeader {
            header: "x-webhooks-timestamp".into()
        })
    );

    let stamped = legacy_headers("s3cret", Some(T), BODY);
    assert_eq!(
        verifier.verify_at(&stamped, BODY, T).unwrap().timestamp,
        Some(T)
    );
    assert_eq!(
        verifier.verify_at(&stamped, b"{}", T),
        Err(VerifyError::BadSignature)
    );
    assert!(matches!(
        verifier.verify_at(&stamped, BODY, T + 301),
        Err(VerifyError::TooOld { .. })
    ));
    assert!(matches!(
        verifier.verify_at(&stamped, BODY, T - 301),
        Err(VerifyError::TooNew { .. })
    ));
    let mut moved = stamped.clone();
    set(&mut moved, "x-webhooks-timestamp", &(T + 60).to_string());
    assert_eq!(
        verifier.verify_at(&moved, BODY, T + 60),
        Err(VerifyError::BadSignature)
    );
    // Stripping the timestamp does not turn a stamped signature into a plain one.
    let stripped: Vec<(String, String)> = stamped
        .iter()
        .filter(|(n, _)| n != "x-webhooks-timestamp")
        .cloned()
        .collect();
    assert_eq!(
        verifier.verify_at(&stripped, BODY, T),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        LegacyVerifier::new("other").verify_at(&plain, BODY, T),
        Err(VerifyError::BadSignature)
    );

    let mut malformed = plain.clone();
    set(&mut malformed, "x-webhooks-signature", "sha1:abc");
    assert!(matches!(
        verifier.verify_at(&malformed, BODY, T),
        Err(VerifyError::BadFormat { .. })
    ));
    let custom = vec![
        ("X-Yourapp-Signature".to_string(), sign(b"s3cret", BODY)),
        ("X-Yourapp-Delivery".to_string(), "d".to_string()),
    ];
    assert!(LegacyVerifier::new("s3cret")
        .header_identifier("Yourapp")
        .verify_at(&custom, BODY, T)
        .is_ok());
    assert!(!format!("{verifier:?}").contains("s3cret"));
}

#[test]
fn idempotency_store_is_bounded_and_time_limited() {
    let store = IdempotencyStore::new(2, Duration::from_secs(3600));
    for id in ["a", "b", "c"] {
        store.claim(id).unwrap().done();
    }
    assert_eq!(store.len(), 2);
    assert!(!store.is_processed("a"), "the oldest was forgotten");
    assert!(store.is_processed("b") && store.is_processed("c"));

    let expiring = IdempotencyStore::new(10, Duration::ZERO);
    expiring.claim("x").unwrap().done();
    std::thread::sleep(Duration::from_millis(2)); // lets a zero TTL pass; asserts no timing
    assert!(
        expiring.claim("x").is_ok(),
        "an expired id can be claimed again"
    );
}

/// axum and hyper hand the verifiers the `http` crate's header map as is
/// (feature `verify-http`), with no actix in the build.
#[cfg(feature = "verify-http")]
#[test]
fn the_http_crates_header_map_serves_the_verifiers() {
    let body = br#"{"order":42}"#;
    let mut headers = http::HeaderMap::new();
    for (name, value) in legacy_headers("shared", None, body) {
        let name = http::HeaderName::from_bytes(name.to_uppercase().as_bytes()).unwrap();
        headers.insert(name, value.parse().unwrap());
    }
    let delivery = LegacyVerifier::new("shared")
        .verify(&headers, body)
        .unwrap();
    assert_eq!(delivery.id, "req-1", "read from X-WEBHOOKS-DELIVERY");
    assert!(matches!(
        LegacyVerifier::new("other").verify(&headers, body),
        Err(VerifyError::BadSignature)
    ));
}

/// The actix-web extractor (feature `verify-actix`).
#[cfg(feature = "verify-actix")]
mod extractor {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use actix_web::{web, App, HttpResponse, HttpServer};
    use serde_json::Value;
    use tokio::sync::mpsc;
    use webhooks_emitter::verify::{VerifiedWebhook, WebhookVerification};

    use super::*;

    struct Handled(mpsc::UnboundedSender<(String, Value)>);

    async fn hook(
        mut webhook: VerifiedWebhook<Value>,
        handled: web::Data<Handled>,
        failed_once: web::Data<AtomicBool>,
    ) -> HttpResponse {
        if webhook["fail_once"] == true && !failed_once.swap(true, Ordering::SeqCst) {
            // No `done`: the claim is released and the retry must be processed.
            return HttpResponse::InternalServerError().finish();
        }
        let _ = handled
            .0
            .send((webhook.delivery().id.clone(), webhook.payload().clone()));
        webhook.done();
        HttpResponse::NoContent().finish()
    }

    /// A receiving app on loopback using the extractor; returns its URL.
    fn start_app(
        verification: WebhookVerification,
    ) -> (String, mpsc::UnboundedReceiver<(String, Value)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handled = web::Data::new(Handled(tx));
        let failed_once = web::Data::from(Arc::new(AtomicBool::new(false)));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(verification.clone())
                .app_data(handled.clone())
                .app_data(failed_once.clone())
                .route("/hooks", web::post().to(hook))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let url = format!("http://{}/hooks", server.addrs()[0]);
        actix_web::rt::spawn(server.run());
        (url, rx)
    }

    #[cfg(feature = "emitter")]
    #[actix_web::test]
    async fn extractor_round_trip_dedupes_and_processes_retries() {
        use serde_json::json;
        use support::{fast_config, next_final};
        use webhooks_emitter::{Outcome, WebhooksEmitter};

        let verification =
            WebhookVerification::new(LegacyVerifier::new("shared").require_timestamp())
                .idempotency(IdempotencyStore::new(1000, Duration::from_secs(3600)));
        let (url, mut handled) = start_app(verification);
        let emitter = WebhooksEmitter::start();
        let mut reports = emitter.reports();
        let config = fast_config(url).secret("shared").timestamped_signature();
        emitter
            .attach("app", "order.created", config)
            .await
            .unwrap();

        emitter
            .emit("order.created", &json!({"n": 1}), Some("order-1".into()))
            .unwrap();
        assert_eq!(
            handled.recv().await.unwrap(),
            ("order-1".to_string(), json!({"n": 1}))
        );
        assert!(matches!(
            next_final(&mut reports).await.outcome,
            Outcome::Delivered { status: 204, .. }
        ));

        // The sender's retry of a delivery whose response was lost: answered 200, not handled again.
        emitter
            .emit("order.created", &json!({"n": 1}), Some("order-1".into()))
            .unwrap();
        assert!(matches!(
            next_final(&mut reports).await.outcome,
            Outcome::Delivered { status: 200, .. }
        ));

        // A handler failure releases the id: the retry is processed.
        emitter
            .emit(
                "order.created",
                &json!({"n": 2, "fail_once": true}),
                Some("order-2".into()),
            )
            .unwrap();
        let report = next_final(&mut reports).await;
        assert!(
            matches!(
                report.outcome,
                Outcome::Delivered {
                    status: 204,
                    attempts: 2,
                    ..
                }
            ),
            "{report:?}"
        );
        let (id, payload) = handled.recv().await.unwrap();
        assert_eq!(
            (id.as_str(), payload["n"].as_i64()),
            ("order-2", Some(2)),
            "order-1 was not handled twice"
        );
    }

    #[actix_web::test]
    async fn extractor_answers_clear_errors() {
        let verification =
            WebhookVerification::new(StandardVerifier::new(KEY).unwrap()).max_body_bytes(64);
        let (url, _handled) = start_app(verification);
        let client = awc::Client::default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;

        let send = |headers: Vec<(String, String)>, body: &'static [u8]| {
            let mut request = client.post(&url);
            for (name, value) in headers {
                request = request.insert_header((name, value));
            }
            async move {
                let mut response = request.send_body(body).await.unwrap();
                let text = String::from_utf8(response.body().await.unwrap().to_vec()).unwrap();
                (response.status().as_u16(), text)
            }
        };
        let (status, text) = send(standard_headers(KEY, "m1", now, BODY), BODY).await;
        assert_eq!(status, 204, "{text}");
        let (status, text) = send(standard_headers(OTHER_KEY, "m2", now, BODY), BODY).await;
        assert_eq!(
            (status, text.as_str()),
            (401, "webhook verification failed: signature does not match")
        );
        let (status, text) = send(standard_headers(KEY, "m3", now - 3600, BODY), BODY).await;
        assert_eq!(status, 401);
        assert!(text.contains("old"), "{text}");
        let (status, text) = send(vec![], BODY).await;
        assert_eq!(status, 401);
        assert!(text.contains("missing header `webhook-id`"), "{text}");
        let not_json: &[u8] = b"not json";
        let (status, text) = send(standard_headers(KEY, "m4", now, not_json), not_json).await;
        assert_eq!(status, 400);
        assert!(text.contains("not the expected JSON"), "{text}");
        let big: &[u8] = &[b' '; 100];
        let (status, _) = send(standard_headers(KEY, "m5", now, big), big).await;
        assert_eq!(status, 413);
    }
}
