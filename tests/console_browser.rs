//! The web console in a real browser: headless Chromium, driven by
//! `tests/console/e2e.cjs` (playwright-core), against the server binary and
//! a loopback receiver: sign in, create, watch deliveries live, redeliver a
//! dead letter, pause, resume, test, redeliver all, sign out. Screenshots
//! land in `target/console-e2e/`.
//!
//! Needs `chromium` and the npm package: `.ci/run` installs both when they
//! are missing (`apt-get install chromium`, `npm ci --prefix tests/console`).
//! Without them this test fails and says so; it never passes silently.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use support::server::{ServerProcess, TOKEN};
use support::{Receiver, ScratchDir};

#[actix_web::test]
async fn a_person_creates_an_endpoint_watches_deliveries_and_redelivers_a_dead_letter() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (scripts, browser) = support::browser();
    let shots = root.join("target/console-e2e");
    std::fs::create_dir_all(&shots).unwrap();

    let dir = ScratchDir::new("console-e2e");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let mut receiver = Receiver::start();
    // Event 1 is delivered; event 2 fails both of its attempts, then its
    // redelivery and the test event pass; event 3 fails twice too.
    receiver.script_statuses([200, 500, 500, 200, 200, 500, 500]);

    let url = server.url("");
    let receiver_url = receiver.url("/hooks");
    let output = actix_web::rt::task::spawn_blocking(move || {
        Command::new("node")
            .arg(scripts.join("e2e.cjs"))
            .env("SERVER_URL", url)
            .env("TOKEN", TOKEN)
            .env("RECEIVER_URL", receiver_url)
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

    // What the receiver saw: 1, then 2 twice (failing), then 2 redelivered
    // with the same delivery id, then the test event from the Test button.
    let mut requests = Vec::new();
    for _ in 0..4 {
        requests.push(receiver.next().await);
    }
    let numbers: Vec<i64> = requests.iter().map(|r| r.n()).collect();
    assert_eq!(numbers, [1, 2, 2, 2]);
    let test = receiver.next().await;
    assert_eq!(test.header("x-webhooks-event"), Some("webhook_test"));
    let rest: Vec<i64> = [
        receiver.next().await,
        receiver.next().await,
        receiver.next().await,
    ]
    .iter()
    .map(|r| r.n())
    .collect();
    assert_eq!(rest, [3, 3, 3], "two failures, then redeliver all");
    assert_eq!(
        requests[1].header("x-webhooks-delivery"),
        requests[3].header("x-webhooks-delivery")
    );
    for shot in [
        "console-delivered.png",
        "console-dead-letter.png",
        "console-redelivered.png",
    ] {
        let path = root.join("target/console-e2e").join(shot);
        assert!(
            path.metadata().is_ok_and(|m| m.len() > 10_000),
            "{shot} missing"
        );
    }
}
