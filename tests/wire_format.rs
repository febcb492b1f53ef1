//! What goes on the wire: headers, body, signature, request ids.
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use support::Harness;
use webhooks_emitter::{Outcome, USER_AGENT_VALUE};

/// The signature as a receiver would compute it, written without the crate.
fn independent_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    // RFC 4648 base32hex, lowercase, unpadded, spelled out by hand.
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for byte in digest {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    format!("sha256:{out}")
}

#[actix_web::test]
async fn sends_exact_headers_body_and_signature() {
    let mut h = Harness::start();
    let config = fast_config_hooks(&h)
        .secret("supersecret")
        .additional_header("authorization", "bearer 4242");
    h.attach("crm", "order.created", config).await;

    let payload = json!({"order": 42, "items": ["a", "b"], "note": "ünïcode"});
    let id = h.emitter.emit("order.created", &payload, None).unwrap();
    let request = h.receiver.next().await;

    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hooks");
    assert_eq!(request.body, serde_json::to_vec(&payload).unwrap());
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("user-agent"), Some(USER_AGENT_VALUE));
    assert_eq!(
        USER_AGENT_VALUE,
        format!("WebHooks-Emitter/{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(request.header("x-webhooks-event"), Some("order.created"));
    assert_eq!(request.header("x-webhooks-delivery"), Some(id.as_str()));
    assert_eq!(request.header("authorization"), Some("bearer 4242"));

    let signature = request.header("x-webhooks-signature").unwrap();
    assert_eq!(
        signature,
        independent_signature("supersecret", &request.body)
    );
    assert_eq!(signature.len(), "sha256:".len() + 52);
    assert_eq!(
        signature,
        webhooks_emitter::sign(b"supersecret", &request.body)
    );
}

fn fast_config_hooks(h: &Harness) -> webhooks_emitter::Config {
    support::fast_config(h.receiver.url("/hooks"))
}

#[actix_web::test]
async fn no_signature_header_without_a_secret() {
    let mut h = Harness::start();
    h.attach("plain", "ping", h.config()).await;
    h.emitter.emit("ping", &json!({}), None).unwrap();
    let request = h.receiver.next().await;
    assert!(request.header("x-webhooks-signature").is_none());
    assert_eq!(request.header("x-webhooks-event"), Some("ping"));
}

#[actix_web::test]
async fn header_identifier_names_the_headers() {
    let mut h = Harness::start();
    let config = h.config().secret("k").header_identifier("Yourapp");
    h.attach("custom", "ping", config).await;
    h.emitter
        .emit("ping", &json!({"x": 1}), Some("req-42".into()))
        .unwrap();
    let request = h.receiver.next().await;
    assert_eq!(request.header("x-yourapp-event"), Some("ping"));
    assert_eq!(request.header("x-yourapp-delivery"), Some("req-42"));
    assert_eq!(
        request.header("x-yourapp-signature").unwrap(),
        independent_signature("k", &request.body)
    );
    assert!(request.header("x-webhooks-event").is_none());
}

#[actix_web::test]
async fn caller_and_generated_request_ids() {
    let mut h = Harness::start();
    h.attach("ids", "ping", h.config()).await;
    let emitter = &h.emitter;
    let given = emitter
        .emit("ping", &1, Some("req-42".to_string()))
        .unwrap();
    assert_eq!(given.as_str(), "req-42");
    assert_eq!(given.to_string(), "req-42");
    let generated = emitter.emit("ping", &2, None).unwrap();
    let uuid = uuid::Uuid::parse_str(generated.as_ref()).unwrap();
    assert_eq!(uuid.get_version_num(), 4);
    let other = emitter.emit("ping", &3, None).unwrap();
    assert_ne!(generated, other);

    let seen: Vec<String> = h
        .receiver
        .take(3)
        .await
        .iter()
        .map(|r| r.header("x-webhooks-delivery").unwrap().to_owned())
        .collect();
    assert_eq!(
        seen,
        [given.to_string(), generated.to_string(), other.to_string()]
    );
}

#[actix_web::test]
async fn request_id_is_the_same_on_every_retry() {
    let mut h = Harness::start();
    h.receiver.script_statuses([500, 502]);
    h.attach("retry", "ping", h.config().secret("s")).await;
    let id = h.emit_numbers("ping", [1]).remove(0);
    let attempts = h.receiver.take(3).await;
    for attempt in &attempts {
        assert_eq!(attempt.header("x-webhooks-delivery"), Some(id.as_str()));
        assert_eq!(attempt.body, attempts[0].body);
    }
    let report = h.next_final().await;
    assert!(
        matches!(
            report.outcome,
            Outcome::Delivered {
                status: 200,
                attempts: 3,
                ..
            }
        ),
        "{report:?}"
    );
}
