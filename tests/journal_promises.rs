//! What the journal promises across a crash (SIGKILL of a real process) and
//! a clean restart, each checked the moment the call that reports it returns:
//! paused before, paused after (100,000 events stored behind the pause stay
//! put); a dead letter that `dead_letters()` showed is there after a kill; a
//! retry due in the future is not sent early because the process restarted.
//!
//! A child process (this test binary, run again with `PROMISE_CHILD` set)
//! does one scripted part and prints `READY` when what it reported is what
//! must survive; the parent kills it with SIGKILL at that moment and checks
//! in-process on the same file.
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{durable_emitter, fast_config, Receiver, Reply, ScratchDir, DEADLINE};
use webhooks_emitter::{Outcome, WebhooksEmitter};

/// Events stored behind the paused emitter.
const PAUSED_BACKLOG: u64 = 100_000;
/// The backoff before the second attempt in the backoff scenario.
const BACKOFF: Duration = Duration::from_secs(4);

/// Logs on stderr with `RUST_LOG`, in the parent and the child.
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
}

/// The paused emitter's config: room for its whole backlog.
fn paused_config(url: String) -> webhooks_emitter::Config {
    fast_config(url).queue_capacity(2 * PAUSED_BACKLOG as usize)
}

/// The child's side: run only when the parent starts this binary with
/// `PROMISE_CHILD` set (otherwise it does nothing and passes).
#[test]
fn child_process() {
    let Ok(part) = std::env::var("PROMISE_CHILD") else {
        return;
    };
    let journal = std::env::var("JOURNAL").unwrap();
    let receiver = std::env::var("RECEIVER").unwrap();
    let clean = std::env::var("CLEAN").is_ok();
    logs();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let emitter = durable_emitter(Path::new(&journal));
        let mut reports = emitter.reports();
        match part.as_str() {
            "pause" => {
                let config = paused_config(format!("{receiver}/paused"));
                emitter
                    .attach_many("paused", ["a", "b"], config)
                    .await
                    .unwrap();
                emitter.pause("paused").await.unwrap();
                for n in 0..PAUSED_BACKLOG {
                    emitter.emit("a", &json!({ "n": n }), None).unwrap();
                }
                emitter
                    .emit_durable("b", &json!({ "n": PAUSED_BACKLOG }), None)
                    .await
                    .unwrap();
            }
            "dead" | "redeliver" => {
                let config = fast_config(format!("{receiver}/dead")).max_retries(1);
                emitter.attach("dead", "d", config).await.unwrap();
                for n in 0..3 {
                    emitter.emit("d", &json!({ "n": n }), None).unwrap();
                }
                // Kill the moment the call reports them, not a moment later.
                loop {
                    if emitter.dead_letters("dead").await.unwrap().len() == 3 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                if part == "redeliver" {
                    // Queued again, held by the pause: killed the moment
                    // the call says so.
                    emitter.pause("dead").await.unwrap();
                    assert_eq!(emitter.redeliver_all("dead").await.unwrap(), 3);
                }
            }
            "backoff" => {
                let config = fast_config(format!("{receiver}/backoff"))
                    .backoff(BACKOFF, BACKOFF)
                    .max_retries(5);
                emitter.attach("backoff", "r", config).await.unwrap();
                emitter
                    .emit_durable("r", &json!({ "n": 1 }), None)
                    .await
                    .unwrap();
                loop {
                    let report = reports.recv().await.unwrap();
                    if matches!(report.outcome, Outcome::AttemptFailed { .. }) {
                        break;
                    }
                }
                // The attempt (and its due time) is stored within 100 ms;
                // a control call's answer waits for everything before it.
                emitter.dead_letters("backoff").await.unwrap();
            }
            other => panic!("unknown part {other}"),
        }
        if clean {
            let _ = emitter.shutdown(Duration::ZERO).await;
            println!("READY");
            return;
        }
        println!("READY");
        std::future::pending::<()>().await;
    });
}

/// Runs the child's `part` until it prints `READY`, then kills it with
/// SIGKILL (or, with `clean`, lets it shut down and exit on its own).
fn run_child(part: &str, journal: &Path, receiver: &str, clean: bool) {
    let mut command = support::this_test_binary("child_process");
    command
        .env("PROMISE_CHILD", part)
        .env("JOURNAL", journal)
        .env("RECEIVER", receiver)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if clean {
        command.env("CLEAN", "1");
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let ready = lines.any(|line| line.ends_with("READY"));
    assert!(ready, "the child ({part}) ended without saying READY");
    if clean {
        // Read to the end: the child's test harness still writes.
        lines.for_each(drop);
        assert!(child.wait().unwrap().success());
    } else {
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
}

/// [`run_child`] off the test's runtime (it blocks reading the child).
async fn child(part: &'static str, journal: &Path, receiver: String, clean: bool) {
    let journal = journal.to_owned();
    tokio::task::spawn_blocking(move || run_child(part, &journal, &receiver, clean))
        .await
        .unwrap();
}

async fn paused_stays_paused(clean: bool) {
    let dir = ScratchDir::new(if clean { "paused-clean" } else { "paused-kill" });
    let path = dir.file("webhooks.redb");
    let mut receiver = Receiver::start();
    let url = receiver.url("");
    child("pause", &path, url, clean).await;

    let emitter = durable_emitter(&path);
    emitter
        .attach_many("paused", ["a", "b"], paused_config(receiver.url("/paused")))
        .await
        .unwrap();
    assert!(
        !emitter.is_started("paused").await,
        "paused before the restart, paused the moment attach returns"
    );
    assert!(emitter.list_emitters().await.is_empty());
    let stats = emitter.stats("paused").await.unwrap();
    assert!(stats.paused);
    assert_eq!(stats.stored as u64, PAUSED_BACKLOG + 1);
    // A running emitter on the same receiver: once its event is in, the
    // paused one had every chance to send and did not.
    emitter
        .attach("probe", "probe", fast_config(receiver.url("/probe")))
        .await
        .unwrap();
    emitter.emit("probe", &json!({ "n": 0 }), None).unwrap();
    let first = receiver.next().await;
    assert_eq!(
        first.path, "/probe",
        "nothing of the paused emitter is sent"
    );
    assert_eq!(emitter.stats("paused").await.unwrap().delivered, 0);
    let _ = emitter.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_paused_emitter_is_paused_after_sigkill_with_100_000_stored() {
    paused_stays_paused(false).await;
}

#[tokio::test]
async fn a_paused_emitter_is_paused_after_a_clean_shutdown_with_100_000_stored() {
    paused_stays_paused(true).await;
}

#[tokio::test]
async fn dead_letters_reported_before_sigkill_are_there_after_it() {
    let dir = ScratchDir::new("dead-kill");
    let path = dir.file("webhooks.redb");
    let receiver = Receiver::start();
    receiver.script(std::iter::repeat_n(Reply::Status(500), 3));
    let url = receiver.url("");
    child("dead", &path, url, false).await;

    let emitter = durable_emitter(&path);
    emitter
        .attach("dead", "d", fast_config(receiver.url("/dead")))
        .await
        .unwrap();
    let letters = emitter.dead_letters("dead").await.unwrap();
    let numbers: Vec<i64> = letters.iter().map(|l| support::n_of(&l.event)).collect();
    assert_eq!(
        numbers,
        [0, 1, 2],
        "every dead letter reported before the kill"
    );
    let _ = emitter.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_redelivery_reported_before_sigkill_is_there_after_it() {
    let dir = ScratchDir::new("redeliver-kill");
    let path = dir.file("webhooks.redb");
    let receiver = Receiver::start();
    receiver.script(std::iter::repeat_n(Reply::Status(500), 3));
    child("redeliver", &path, receiver.url(""), false).await;

    let emitter = durable_emitter(&path);
    emitter
        .attach("dead", "d", fast_config(receiver.url("/dead")))
        .await
        .unwrap();
    assert!(emitter.dead_letters("dead").await.unwrap().is_empty());
    let stats = emitter.stats("dead").await.unwrap();
    assert!(stats.paused, "paused before the kill");
    assert_eq!(stats.stored, 3, "the three redelivered events are queued");
    let _ = emitter.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_retry_due_later_waits_its_backoff_after_a_sigkill() {
    logs();
    let dir = ScratchDir::new("backoff-kill");
    let path = dir.file("webhooks.redb");
    let mut receiver = Receiver::start();
    receiver.script([Reply::Status(503)]);
    let url = receiver.url("");
    child("backoff", &path, url, false).await;
    let first = receiver.next().await;
    let failed_at = first.at;

    let emitter = durable_emitter(&path);
    let config = fast_config(receiver.url("/backoff"))
        .backoff(BACKOFF, BACKOFF)
        .max_retries(5);
    emitter.attach("backoff", "r", config).await.unwrap();
    let second = receiver.next().await;
    assert_eq!(
        second.header("x-webhooks-delivery"),
        first.header("x-webhooks-delivery")
    );
    // A lower bound only: the retry may come late on a loaded machine, never
    // before its due time (the stored time has millisecond precision).
    let waited = second.at.duration_since(failed_at);
    assert!(
        waited + Duration::from_millis(5) >= BACKOFF / 2,
        "retried {waited:?} after the failure, before the stored backoff (at least half of {BACKOFF:?}, the jitter)"
    );
    assert!(Instant::now() < failed_at + DEADLINE);
    let _ = emitter.shutdown(Duration::ZERO).await;
}

/// The emitter type is used through the helpers; keep the import honest.
#[allow(dead_code)]
fn _uses(_: WebhooksEmitter) {}
