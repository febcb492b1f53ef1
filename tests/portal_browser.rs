//! The customer portal in a real browser: headless Chromium, driven by
//! `tests/console/portal.cjs` (playwright-core), against the server binary
//! and loopback receivers. The operator makes a link; the customer opens
//! it, adds an endpoint with two event types, receives a test, reads a
//! failed attempt's response body, sends the message again, recovers the
//! last minute; a link of one
//! application never shows another's; a link past its end is refused.
//! Screenshots land in `target/console-e2e/`.
//!
//! Needs `chromium` and the npm package, as `tests/console_browser.rs` does
//! (`.ci/run` installs both). Without them this test fails and says so.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use awc::http::Method;
use serde_json::json;
use support::server::{ServerProcess, TOKEN};
use support::{Receiver, Reply, ScratchDir};

#[actix_web::test]
async fn a_customer_manages_endpoints_and_messages_through_a_portal_link() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (scripts, browser) = support::browser();
    let shots = root.join("target/console-e2e");
    std::fs::create_dir_all(&shots).unwrap();

    let dir = ScratchDir::new("portal-e2e");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let mut receiver = Receiver::start();
    let globex_receiver = Receiver::start();
    // The test event; the message's first attempt (failing, with a body),
    // its retry; and the copy sent again from the portal.
    receiver.script([
        Reply::Status(200),
        Reply::Body(500, "out of stock".into()),
        Reply::Status(200),
        Reply::Status(200),
    ]);
    for (id, name) in [("acme", "Acme Inc."), ("globex", "Globex")] {
        let made = server
            .api(
                Method::POST,
                "/api/v1/apps",
                Some(json!({"id": id, "name": name})),
            )
            .await;
        assert_eq!(made.status, 201, "{made:?}");
    }
    for (name, description) in [
        ("order.created", "An order was placed"),
        ("order.paid", "An order was paid"),
        ("user.deleted", "A user left"),
    ] {
        let made = server
            .api(
                Method::POST,
                "/api/v1/event-types",
                Some(json!({"name": name, "description": description})),
            )
            .await;
        assert_eq!(made.status, 201, "{made:?}");
    }
    let made = server
        .api(
            Method::POST,
            "/api/v1/apps/globex/endpoints",
            Some(json!({"id": "g", "url": globex_receiver.url("/globex"), "events": ["*"]})),
        )
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    let link = |app: &'static str, expires_in: u64| {
        let server = &server;
        async move {
            let made = server
                .api(
                    Method::POST,
                    &format!("/api/v1/apps/{app}/portal-links"),
                    Some(json!({"expires_in": expires_in})),
                )
                .await;
            assert_eq!(made.status, 201, "{made:?}");
            made.json["url"].as_str().unwrap().to_owned()
        }
    };
    let (acme_link, globex_link) = (link("acme", 600).await, link("globex", 600).await);

    let url = server.url("");
    let (receiver_url, globex_url) = (receiver.url("/hooks"), globex_receiver.url("/globex"));
    let output = actix_web::rt::task::spawn_blocking(move || {
        Command::new("node")
            .arg(scripts.join("portal.cjs"))
            .env("SERVER_URL", url)
            .env("TOKEN", TOKEN)
            .env("ACME_LINK", acme_link)
            .env("GLOBEX_LINK", globex_link)
            .env("RECEIVER_URL", receiver_url)
            .env("GLOBEX_RECEIVER_URL", globex_url)
            .env("SHOTS", &shots)
            .env("CHROMIUM", browser)
            .output()
    })
    .await
    .unwrap()
    .expect("node is needed to drive the browser (apt-get install nodejs)");
    assert!(
        output.status.success(),
        "the browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // What the customer's receiver saw: the test, the message failing then
    // delivered, the copy sent again and the one recovered, with the same
    // id, all signed with the key the portal showed.
    let test = receiver.next().await;
    assert_eq!(test.header("x-webhooks-event"), Some("webhook_test"));
    let copies = receiver.take(4).await;
    assert!(copies.iter().all(|r| r.n() == 1));
    let ids: Vec<_> = copies
        .iter()
        .map(|r| r.header("x-webhooks-delivery").unwrap().to_owned())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert!(copies
        .iter()
        .all(|r| r.header("webhook-signature").is_some()));
    let shot = root.join("target/console-e2e/portal.png");
    assert!(
        shot.metadata().is_ok_and(|m| m.len() > 10_000),
        "portal.png missing"
    );
}
