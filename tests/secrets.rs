//! Secrets never reach logs, `Debug` output or error messages.
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use support::{fast_config, refused_addr, Harness};
use tracing_subscriber::fmt::MakeWriter;
use webhooks_emitter::Config;

const SECRET: &str = "topsecret-4f1c9";
const TOKEN: &str = "bearer-token-77aa";
const URL_PASSWORD: &str = "url-password-9c2e";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn assert_clean(what: &str, text: &str) {
    for secret in [SECRET, TOKEN, URL_PASSWORD] {
        assert!(!text.contains(secret), "{what} contains a secret: {text}");
    }
}

#[actix_web::test]
async fn secrets_stay_out_of_logs_debug_and_errors() {
    let logs = Captured::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(logs.clone())
            .finish(),
    )
    .unwrap();

    let mut h = Harness::start();
    h.receiver.script_statuses([500]);
    let config = h
        .config()
        .secret(SECRET)
        .additional_header("authorization", format!("Bearer {TOKEN}"));
    assert_clean("Debug of Config", &format!("{config:?} {config:#?}"));
    h.attach("s", "ping", config).await;

    // A refused endpoint with credentials in its URL: failures get logged.
    let url = format!("http://user:{URL_PASSWORD}@{}/", refused_addr());
    h.attach(
        "down",
        "ping",
        fast_config(url).secret(SECRET).max_retries(2),
    )
    .await;

    // Passwords with characters that end a URL's authority: WHATWG parsing
    // refuses most (the "password" would be a port); whatever is accepted
    // must still be shown without it, in logs, `Debug` and errors.
    for (n, hostile) in [
        "http://bob:{P}/ss@127.0.0.1:1/hooks",
        "http://bob:{P}?ss@127.0.0.1:1/hooks",
        "http://bob:{P}#ss@127.0.0.1:1/hooks",
        "http://bob:{P}%2Fss@127.0.0.1:1/hooks",
        "http://bob:{P}@127.0.0.1:1/a@b",
        "http://{P}@127.0.0.1:1/",
        "http://bob:{P}:x@127.0.0.1:1/",
    ]
    .iter()
    .enumerate()
    {
        let url = hostile.replace("{P}", URL_PASSWORD);
        let config = Config::new(&url).secret(SECRET);
        assert_clean("Debug of a hostile Config", &format!("{config:?}"));
        match h
            .emitter
            .attach(format!("hostile{n}"), "never", config)
            .await
        {
            Ok(()) => {}
            Err(err) => assert_clean("error", &format!("{err} {err:?}")),
        }
    }

    h.emitter.emit("ping", &json!({"n": 1}), None).unwrap();
    let outcomes = h.finals(2).await;
    assert_clean("reports", &format!("{outcomes:?}"));
    let request = h.receiver.take(2).await.remove(1);
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );

    // Errors for bad configs name the problem, not the secret.
    let bad_url = Config::new(format!("ftp://user:{URL_PASSWORD}@host/")).secret(SECRET);
    let err = h.emitter.attach("bad", "ping", bad_url).await.unwrap_err();
    assert_clean("error", &format!("{err} {err:?}"));
    let bad_header =
        Config::new("http://127.0.0.1:1/").additional_header("authorization", format!("{TOKEN}\n"));
    let err = h
        .emitter
        .attach("bad", "ping", bad_header)
        .await
        .unwrap_err();
    assert_clean("error", &format!("{err} {err:?}"));
    assert_clean("Debug of WebhooksEmitter", &format!("{:?}", h.emitter));

    let _ = h.emitter.shutdown(std::time::Duration::from_secs(5)).await;
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("attempt failed"),
        "the test must see the failure logs: {logs}"
    );
    assert!(
        logs.contains("***@127.0.0.1"),
        "the URL is logged redacted: {logs}"
    );
    assert_clean("logs", &logs);
}
