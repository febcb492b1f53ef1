//! Durable delivery on the embedded journal, in one process: what a restart
//! resumes, orphans, typed errors on opening, a failing disk. (Killing real
//! processes is in `journal_crash.rs`.)
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::{durable_emitter, fast_config, n_of, reopen, Harness, Receiver, ScratchDir};
use webhooks_emitter::{
    ControlError, DeadLetterReason, EmitError, Journal, Outcome, StoreError, WebhooksEmitter,
};

/// Shuts an emitter down and lets its journal go.
async fn stop(emitter: WebhooksEmitter) -> webhooks_emitter::ShutdownReport {
    let report = emitter.shutdown(Duration::ZERO).await;
    drop(emitter);
    report
}

#[tokio::test]
async fn stored_events_resume_first_in_order_with_their_ids_and_paused_state() {
    let dir = ScratchDir::new("resume");
    let path = dir.file("webhooks.redb");
    let mut receiver = Receiver::start();

    let first = durable_emitter(&path);
    first
        .attach("billing", "invoice.paid", fast_config(receiver.url("/")))
        .await
        .unwrap();
    first.pause("billing").await.unwrap();
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(
            first
                .emit_durable("invoice.paid", &json!({"n": n}), None)
                .await
                .unwrap(),
        );
    }
    let report = stop(first).await;
    assert!(
        report.undelivered.is_empty(),
        "nothing dropped: it stays stored"
    );
    assert_eq!(report.stored.len(), 1);
    assert_eq!(
        (&*report.stored[0].emitter_id, report.stored[0].events),
        ("billing", 5)
    );

    let second = durable_emitter(&path);
    let mut h = Harness::around(second);
    h.attach("billing", "invoice.paid", fast_config(receiver.url("/")))
        .await;
    h.emit_numbers("invoice.paid", [6]);
    let stats = loop {
        let stats = h.emitter.stats("billing").await.unwrap();
        if stats.stored == 6 {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(10)).await; // recovery is asynchronous
    };
    assert!(stats.paused, "paused before the restart, paused after");
    assert!(receiver.try_next().is_none());
    h.emitter.restart("billing").await.unwrap();
    let got = receiver.take(6).await;
    let numbers: Vec<i64> = got.iter().map(|r| r.n()).collect();
    assert_eq!(
        numbers,
        [1, 2, 3, 4, 5, 6],
        "stored events first, in emit order"
    );
    for (request, id) in got.iter().zip(&ids) {
        assert_eq!(request.header("x-webhooks-delivery"), Some(id.as_str()));
    }
    assert_eq!(h.finals(6).await.len(), 6);
    assert!(h.emitter.flush(support::DEADLINE).await);
    assert_eq!(h.emitter.stats("billing").await.unwrap().stored, 0);
}

#[tokio::test]
async fn attempts_and_dead_letters_survive_a_restart() {
    let dir = ScratchDir::new("attempts");
    let path = dir.file("webhooks.redb");
    let mut receiver = Receiver::start();
    receiver.script_statuses([500, 500]);

    let mut h = Harness::around(durable_emitter(&path));
    let config = fast_config(receiver.url("/"))
        .max_retries(3)
        .backoff(Duration::from_secs(30), Duration::from_secs(30));
    h.attach("e", "ping", config.clone()).await;
    h.attach("dl", "dead", fast_config(receiver.url("/")).max_retries(1))
        .await;
    h.emit_numbers("dead", [0]); // 500: a dead letter at once
    assert!(matches!(
        h.next_outcome().await,
        Outcome::DeadLettered { .. }
    ));
    h.emit_numbers("ping", [1]); // 500, then a 30 s backoff
    assert!(matches!(
        h.next_outcome().await,
        Outcome::AttemptFailed { attempt: 1, .. }
    ));
    drop(h.reports);
    let _ = stop(h.emitter).await;

    let mut h = Harness::around(durable_emitter(&path));
    h.attach(
        "e",
        "ping",
        config.backoff(Duration::from_millis(10), Duration::from_millis(10)),
    )
    .await;
    h.attach("dl", "dead", fast_config(receiver.url("/"))).await;
    let report = h.next_final().await;
    assert_eq!(n_of(&report.event), 1);
    assert!(
        matches!(report.outcome, Outcome::Delivered { attempts: 2, .. }),
        "the stored attempt counts: {report:?}"
    );
    let letters = h.emitter.dead_letters("dl").await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(n_of(&letters[0].event), 0);
    assert!(matches!(
        letters[0].reason,
        DeadLetterReason::AttemptsExhausted { .. }
    ));
    h.emitter.redeliver("dl", letters[0].id).await.unwrap();
    assert!(matches!(
        h.next_final().await.outcome,
        Outcome::Delivered { .. }
    ));
    assert_eq!(receiver.numbers(4).await, [0, 1, 1, 0]);
    drop(h);

    // Redelivered is gone from the journal too; the counters are not: stats
    // go on from what the earlier runs counted.
    let h = Harness::around(durable_emitter(&path));
    h.attach("dl", "dead", fast_config(receiver.url("/"))).await;
    h.attach("e", "ping", fast_config(receiver.url("/"))).await;
    assert!(h.emitter.dead_letters("dl").await.unwrap().is_empty());
    let counted =
        |s: webhooks_emitter::EmitterStats| (s.delivered, s.failed_attempts, s.dead_lettered);
    assert_eq!(
        counted(h.emitter.stats("dl").await.unwrap()),
        (1, 1, 1),
        "dl: the failure and dead letter of run 1, the redelivery of run 2"
    );
    assert_eq!(
        counted(h.emitter.stats("e").await.unwrap()),
        (1, 1, 0),
        "e: the failure of run 1, the delivery of run 2"
    );
}

#[tokio::test]
async fn thousands_stored_behind_a_window_come_back_in_order() {
    let dir = ScratchDir::new("window");
    let path = dir.file("webhooks.redb");
    let mut h = Harness::around(durable_emitter(&path));
    h.attach("w", "tick", h.config()).await;
    h.emitter.pause("w").await.unwrap();
    // Well beyond the 1,024 events a queue keeps in memory.
    for n in 0..4_000 {
        h.emitter.emit("tick", &json!({"n": n}), None).unwrap();
    }
    h.emitter
        .emit_durable("tick", &json!({"n": 4_000}), None)
        .await
        .unwrap();
    assert_eq!(h.emitter.stats("w").await.unwrap().stored, 4_001);
    h.emitter.restart("w").await.unwrap();
    let numbers = h.receiver.numbers(4_001).await;
    assert_eq!(numbers, (0..=4_000).collect::<Vec<_>>());
}

#[tokio::test]
async fn orphans_are_listed_and_discarded_on_request() {
    let dir = ScratchDir::new("orphans");
    let path = dir.file("webhooks.redb");
    let receiver = Receiver::start();
    let first = durable_emitter(&path);
    first
        .attach("old", "ping", fast_config(receiver.url("/")))
        .await
        .unwrap();
    first
        .attach("kept", "ping", fast_config(receiver.url("/")))
        .await
        .unwrap();
    first.pause("old").await.unwrap();
    first.pause("kept").await.unwrap();
    for n in 0..3 {
        first
            .emit_durable("ping", &json!({"n": n}), None)
            .await
            .unwrap();
    }
    let _ = stop(first).await;

    let second = durable_emitter(&path);
    second
        .attach("kept", "ping", fast_config(receiver.url("/")))
        .await
        .unwrap();
    assert_eq!(second.orphans().await, [("old".to_string(), 3)]);
    assert_eq!(
        second.discard_orphans("kept").await,
        Err(ControlError::Attached { id: "kept".into() })
    );
    assert_eq!(second.discard_orphans("old").await, Ok(3));
    assert!(second.orphans().await.is_empty());
    assert_eq!(second.discard_orphans("never-there").await, Ok(0));
    // In memory, there are none.
    let memory = WebhooksEmitter::start_in_background();
    assert!(memory.orphans().await.is_empty());
}

#[tokio::test]
async fn detach_removes_what_the_emitter_stored() {
    let dir = ScratchDir::new("detach");
    let path = dir.file("webhooks.redb");
    let mut h = Harness::around(durable_emitter(&path));
    h.attach("d", "ping", h.config()).await;
    h.emitter.pause("d").await.unwrap();
    for n in 0..3 {
        h.emitter
            .emit_durable("ping", &json!({"n": n}), None)
            .await
            .unwrap();
    }
    let dropped = h.emitter.detach("d").await.unwrap();
    assert_eq!(
        dropped.iter().map(|e| n_of(e)).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    for _ in 0..3 {
        assert!(matches!(h.next_outcome().await, Outcome::Dropped { .. }));
    }
    assert!(h.emitter.orphans().await.is_empty(), "nothing left behind");
}

#[tokio::test]
async fn opening_what_is_not_a_usable_journal_is_a_typed_error() {
    let dir = ScratchDir::new("open");
    let path = dir.file("webhooks.redb");
    let journal = Journal::open(&path).unwrap();
    assert!(matches!(
        Journal::open(&path),
        Err(StoreError::Locked { .. })
    ));
    drop(journal);

    let garbage = dir.file("garbage.redb");
    std::fs::write(&garbage, b"this is not a journal at all, just text").unwrap();
    let error = Journal::open(&garbage).unwrap_err();
    assert!(matches!(error, StoreError::NotAJournal { .. }), "{error}");

    let truncated = dir.file("truncated.redb");
    // Dropping the last handle closes the file before the drop returns.
    drop(Journal::open(&truncated).unwrap());
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let error = Journal::open(&truncated).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");

    // A directory the process may not write in (as root, permission bits do
    // not stop writes: `/sys` does).
    let read_only = dir.file("read-only");
    std::fs::create_dir(&read_only).unwrap();
    let mut permissions = std::fs::metadata(&read_only).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o555);
    std::fs::set_permissions(&read_only, permissions).unwrap();
    let target = if std::fs::write(read_only.join("probe"), b"").is_ok() {
        std::path::PathBuf::from("/sys/webhooks.redb")
    } else {
        read_only.join("webhooks.redb")
    };
    let error = Journal::open(&target).unwrap_err();
    assert!(
        matches!(error, StoreError::PermissionDenied { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("permission denied"), "{error}");
}

#[tokio::test]
async fn a_failing_disk_is_reported_and_nothing_accepted_is_lost() {
    let dir = ScratchDir::new("failing");
    let path = dir.file("webhooks.redb");
    let journal = reopen(&path);
    let emitter = WebhooksEmitter::builder()
        .store(journal.clone())
        .start_in_background();
    let mut h = Harness::around(emitter);
    h.attach("f", "ping", h.config()).await;
    h.emitter.pause("f").await.unwrap();
    h.emitter
        .emit_durable("ping", &json!({"n": 0}), None)
        .await
        .unwrap();

    journal.fail_next_commits(3);
    let error = h
        .emitter
        .emit_durable("ping", &json!({"n": 1}), None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, EmitError::Store(StoreError::DiskFull { .. })),
        "{error}"
    );
    let report = h.next_report().await;
    assert_eq!(n_of(&report.event), 1);
    assert!(
        matches!(report.outcome, Outcome::NotStored { .. }),
        "{report:?}"
    );

    // The writer retries; once a commit succeeds, emits are taken again.
    let deadline = tokio::time::Instant::now() + support::DEADLINE;
    loop {
        match h.emitter.emit("ping", &json!({"n": 2}), None) {
            Ok(_) => break,
            Err(EmitError::Store(_)) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the journal never recovered"
                );
                tokio::time::sleep(Duration::from_millis(20)).await; // polling the store's health
            }
            Err(other) => panic!("{other}"),
        }
    }
    h.emitter.restart("f").await.unwrap();
    assert_eq!(
        h.receiver.numbers(3).await,
        [0, 1, 2],
        "nothing accepted was dropped"
    );
}

/// A record written with `put_record_soon` is on disk after a flush (here
/// the emitter's shutdown) and read back after the journal is opened again.
#[actix_web::test]
async fn a_record_put_soon_is_kept_once_the_journal_is_flushed() {
    let dir = ScratchDir::new("journal-soon");
    let path = dir.file("j.redb");
    {
        let journal = webhooks_emitter::Journal::open(&path).unwrap();
        journal
            .put_record("keys", "k", b"promised".to_vec())
            .await
            .unwrap();
        journal
            .put_record_soon("keys", "k", b"answered".to_vec())
            .unwrap();
        let emitter = WebhooksEmitter::builder()
            .store(journal.clone())
            .start_in_background();
        let _ = emitter.shutdown(Duration::ZERO).await;
        assert_eq!(
            journal.records("keys").await.unwrap(),
            [("k".to_owned(), b"answered".to_vec())]
        );
    }
    let journal = reopen(&path);
    assert_eq!(
        journal.records("keys").await.unwrap(),
        [("k".to_owned(), b"answered".to_vec())]
    );
}

/// Keys whose byte order differs from a language's (punctuation, case),
/// read back in pages of every size: each page continues where the last
/// stopped, in byte order, and other namespaces never show.
#[actix_web::test]
async fn records_are_read_in_pages_in_byte_order() {
    let dir = ScratchDir::new("journal-pages");
    let journal = webhooks_emitter::Journal::open(dir.file("j.redb")).unwrap();
    let keys = support::paging_keys();
    for key in &keys {
        journal
            .put_record("pages", key, key.as_bytes().to_vec())
            .await
            .unwrap();
    }
    journal
        .put_record("pages2", "0", b"x".to_vec())
        .await
        .unwrap();
    journal
        .put_record("page", "~", b"x".to_vec())
        .await
        .unwrap();
    let got = journal.record("pages", "a-b").await.unwrap();
    assert_eq!(got.as_deref(), Some(&b"a-b"[..]));
    assert_eq!(journal.record("pages", "nope").await.unwrap(), None);
    for limit in 1..=keys.len() + 1 {
        let mut read = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = journal
                .records_after("pages", after.as_deref(), limit)
                .await
                .unwrap();
            assert!(page.len() <= limit);
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            read.extend(page.into_iter().map(|(key, _)| key));
        }
        assert_eq!(read, support::in_byte_order(&keys), "pages of {limit}");
        // And back, the greatest first, from past the last key.
        let mut back = Vec::new();
        let mut before = "\u{7f}".to_owned();
        loop {
            let page = journal
                .records_before("pages", &before, limit)
                .await
                .unwrap();
            let Some((last, _)) = page.last() else { break };
            before = last.clone();
            back.extend(page.into_iter().map(|(key, _)| key));
        }
        back.reverse();
        assert_eq!(back, support::in_byte_order(&keys), "pages of {limit} back");
    }
}
