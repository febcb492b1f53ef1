//! `Config::from_env` against the real process environment. Alone in its test
//! binary: setting variables must not race other tests reading them.
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::Receiver;
use webhooks_emitter::{Config, WebhooksEmitter};

#[actix_web::test]
async fn from_env_sends_the_api_key_as_a_bearer_token() {
    let mut receiver = Receiver::start();
    std::env::set_var("WEBHOOK_URL", receiver.url("/from-env"));
    std::env::set_var("WEBHOOK_API_KEY", "env-key-1");
    let config = Config::from_env().unwrap();
    let emitter = WebhooksEmitter::start();
    emitter.attach("env", "ping", config).await.unwrap();
    emitter.emit("ping", &json!({}), None).unwrap();
    let request = receiver.next().await;
    assert_eq!(request.path, "/from-env");
    assert_eq!(request.header("authorization"), Some("Bearer env-key-1"));
}
