//! The one test harness: a scriptable receiver on loopback, an emitter, and
//! waits on delivery reports (never on sleeps).
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "emitter")]
mod raw;
mod receiver;

use std::time::Duration;

#[cfg(feature = "emitter")]
pub use raw::{status, Answer, RawReceiver, RawRequest};
pub use receiver::{refused_addr, Received, Receiver, Reply};

/// How long any wait may take before the test fails instead of hanging. Far
/// above what a passing run needs, even on a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Waits until `check` holds, polling the state it reads (not a timing);
/// fails the test after [`DEADLINE`].
pub async fn until(what: &str, mut check: impl FnMut() -> bool) {
    eventually(what, || std::future::ready(check())).await;
}

/// [`until`] for a check that has to wait (asks an actor).
pub async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// This test binary, run again as a child process that runs only its test
/// `name` (a test that does nothing unless its environment says so), with
/// its output as it comes: for tests that kill a real process.
pub fn this_test_binary(name: &str) -> std::process::Command {
    let mut command =
        std::process::Command::new(std::env::current_exe().expect("the test binary's path"));
    command.args(["--exact", name, "--nocapture", "--test-threads", "1"]);
    command
}

#[cfg(feature = "emitter")]
mod harness;
#[cfg(feature = "emitter")]
pub use harness::*;
#[cfg(feature = "emitter")]
mod journal;
#[cfg(feature = "emitter")]
pub use journal::{durable_emitter, reopen};
// `postgres.rs` loads `scratch.rs` itself (the bench includes it alone).
#[cfg(all(feature = "emitter", not(feature = "postgres")))]
mod scratch;
#[cfg(feature = "postgres")]
pub use postgres::ScratchDir;
#[cfg(all(feature = "emitter", not(feature = "postgres")))]
pub use scratch::ScratchDir;
#[cfg(feature = "sse")]
pub mod live;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "server")]
pub mod server;

/// Record keys whose byte order differs from a language's collation
/// (punctuation, case, digits), for the stores' paging tests.
pub fn paging_keys() -> Vec<String> {
    [
        "a-b", "ab", "a.b", "A", "a_b", "~x", "0-9", "00", "a", "B", "a b", "Z~",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `keys` sorted byte by byte.
pub fn in_byte_order(keys: &[String]) -> Vec<String> {
    let mut sorted = keys.to_vec();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    sorted
}

/// What the browser tests need: the directory of their scripts, with
/// playwright-core installed, and Chromium's path. Fails, saying how to get
/// them, rather than let a test pass without a browser.
pub fn browser() -> (std::path::PathBuf, std::path::PathBuf) {
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    assert!(
        scripts.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci --prefix tests/console` (.ci/run does)"
    );
    let chromium = ["CHROMIUM", "CHROME_BIN"]
        .iter()
        .filter_map(|var| std::env::var_os(var).map(std::path::PathBuf::from))
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(std::path::PathBuf::from))
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!("Chromium not found: install it (`apt-get install chromium`, as .ci/run does) or set CHROMIUM to its path")
        });
    (scripts, chromium)
}
