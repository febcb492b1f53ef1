//! The PostgreSQL store in one process: connection errors, delivery in order
//! through the database, dead letters and pause shared by two nodes, and the
//! lease moving when its holder shuts down. Each test starts a throwaway
//! PostgreSQL (see `support::postgres`).
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use std::time::Duration;
use support::postgres::{Postgres, PASSWORD};

use support::{eventually, fast_config, until, Receiver, DEADLINE};
use webhooks_emitter::{PgStore, StoreError};

#[tokio::test]
async fn connection_errors_are_typed_and_never_show_the_password() {
    let db = Postgres::start();
    let wrong = db.url_with_password("not-the-password-77");
    if db.is_local() {
        let error = PgStore::connect(&wrong).await.unwrap_err();
        assert!(
            matches!(error, StoreError::Authentication { .. }),
            "{error:?}"
        );
        let text = format!("{error} {error:?}");
        assert!(
            !text.contains("not-the-password-77") && !text.contains(PASSWORD),
            "{text}"
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = format!("postgres://u:hunter2-secret@127.0.0.1:{port}/db");
    let error = PgStore::connect(&refused).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    assert!(!format!("{error} {error:?}").contains("hunter2-secret"));
    for bad in [
        "not a url",
        "mysql://u:hunter2-secret@127.0.0.1/db",
        "postgres://u:hunter2-secret@127.0.0.1:99999999/db",
    ] {
        let error = PgStore::connect(bad).await.unwrap_err();
        assert!(
            matches!(error, StoreError::InvalidDatabaseUrl { .. }),
            "{bad}: {error:?}"
        );
        assert!(
            !format!("{error} {error:?}").contains("hunter2-secret"),
            "{error}"
        );
    }
    if db.is_local() {
        // A role that may connect but not create tables: the migration fails.
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(db.url()).await.unwrap();
        sqlx::query("CREATE ROLE reader LOGIN PASSWORD 'reader-pw-93'")
            .execute(&mut admin)
            .await
            .unwrap();
        let reader = db
            .url()
            .replacen(&format!("postgres:{PASSWORD}"), "reader:reader-pw-93", 1);
        let error = PgStore::connect(&reader).await.unwrap_err();
        assert!(matches!(error, StoreError::Migration { .. }), "{error:?}");
        assert!(error.to_string().contains("permission denied"), "{error}");
    }
    let error = PgStore::options()
        .node_name("")
        .connect(db.url())
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::InvalidSetting { .. }),
        "{error:?}"
    );
    // Connecting twice migrates once (the second finds the schema).
    let (first, second) = tokio::join!(PgStore::connect(db.url()), PgStore::connect(db.url()));
    first.unwrap();
    second.unwrap();
}

#[tokio::test]
async fn one_node_delivers_in_order_with_dead_letters_and_redelivery() {
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    let (store, emitter) = db.node("solo").await;
    let config = fast_config(receiver.url("/a")).max_retries(2);
    emitter.attach("a", "tick", config).await.unwrap();
    until("the lease", || store.held_leases() == ["a"]).await;
    // The 3rd event fails twice (one retry): a dead letter; the rest go on.
    receiver.script_statuses([200, 200, 500, 500]);
    for n in 0..200 {
        emitter
            .emit_durable("tick", &json!({ "n": n }), None)
            .await
            .unwrap();
    }
    let mut firsts = Vec::new();
    for got in receiver.take(201).await {
        if firsts.last() != Some(&got.n()) {
            firsts.push(got.n());
        }
    }
    let expected: Vec<i64> = (0..200).filter(|n| *n != 2).collect();
    let delivered: Vec<i64> = firsts.iter().copied().filter(|n| *n != 2).collect();
    assert_eq!(delivered, expected, "first deliveries in emit order");
    let letters = emitter.dead_letters("a").await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(
        letters[0]
            .event
            .payload_json::<serde_json::Value>()
            .unwrap()["n"],
        2
    );
    emitter.redeliver("a", letters[0].id).await.unwrap();
    assert_eq!(receiver.next().await.n(), 2);
    eventually("no dead letters", || async {
        emitter.dead_letters("a").await.unwrap().is_empty()
    })
    .await;
    assert!(emitter.flush(DEADLINE).await);
    let stats = emitter.stats("a").await.unwrap();
    assert_eq!(stats.delivered, 200);
    let _ = emitter.shutdown(DEADLINE).await;
    assert!(
        store.held_leases().is_empty(),
        "shutdown gives the lease back"
    );
}

#[tokio::test]
async fn pause_dead_letters_and_redelivery_are_shared_by_the_nodes() {
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    let (store_a, a) = db.node("node-a").await;
    let config = fast_config(receiver.url("/x")).max_retries(2);
    a.attach("x", "tick", config.clone()).await.unwrap();
    until("node-a's lease", || store_a.held_leases() == ["x"]).await;
    let (store_b, b) = db.node("node-b").await;
    b.attach("x", "tick", config).await.unwrap();
    // Paused from the node that does not deliver: the holder stops.
    b.pause("x").await.unwrap();
    eventually("node-a paused", || async {
        a.stats("x").await.unwrap().paused
    })
    .await;
    for n in 0..5 {
        b.emit_durable("tick", &json!({ "n": n }), None)
            .await
            .unwrap();
    }
    assert!(
        receiver.try_next().is_none(),
        "a paused emitter sends nothing"
    );
    b.restart("x").await.unwrap();
    assert_eq!(receiver.numbers(5).await, [0, 1, 2, 3, 4]);
    // Answered and acknowledged before the receiver's script changes.
    assert!(a.flush(DEADLINE).await);
    // A dead letter made by the holder is listed, and redelivered, by the other.
    receiver.script_statuses([500, 500]);
    b.emit_durable("tick", &json!({ "n": 5 }), None)
        .await
        .unwrap();
    assert_eq!(receiver.numbers(2).await, [5, 5]);
    eventually("a dead letter on node-b", || async {
        !b.dead_letters("x").await.unwrap().is_empty()
    })
    .await;
    let letters = b.dead_letters("x").await.unwrap();
    b.redeliver("x", letters[0].id).await.unwrap();
    assert_eq!(receiver.next().await.n(), 5);
    // The holder shuts down: node-b takes over at once (the lease is given
    // back) and delivers what is emitted next, in order.
    let _ = a.shutdown(DEADLINE).await;
    until("node-b's lease", || store_b.held_leases() == ["x"]).await;
    for n in 6..10 {
        b.emit_durable("tick", &json!({ "n": n }), None)
            .await
            .unwrap();
    }
    assert_eq!(receiver.numbers(4).await, [6, 7, 8, 9]);
    drop(store_a);
}

#[tokio::test]
async fn large_payloads_are_stored_in_bounded_batches() {
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    let (store, emitter) = db.node("big").await;
    emitter
        .attach("big", "blob", fast_config(receiver.url("/big")))
        .await
        .unwrap();
    until("the lease", || store.held_leases() == ["big"]).await;
    // 100 events of 200 KB (the test receiver takes up to 256 KiB): over one
    // batch's 16 MiB, emitted at once.
    let filler = "x".repeat(200_000);
    for n in 0..100 {
        emitter
            .emit("blob", &json!({ "n": n, "filler": filler }), None)
            .unwrap();
    }
    let commits = store.commits();
    let got = receiver.take(100).await;
    assert_eq!(
        got.iter().map(|r| r.n()).collect::<Vec<_>>(),
        (0..100).collect::<Vec<_>>()
    );
    assert!(got.iter().all(|r| r.body.len() > 200_000));
    assert!(store.commits() > commits, "written in several transactions");
}

#[tokio::test]
async fn the_next_holder_resumes_with_the_same_request_id_attempt_count_and_backoff() {
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    let (store_a, a) = db.node("first").await;
    // A long backoff: the event waits between attempts while the test acts.
    let config = fast_config(receiver.url("/t"))
        .max_retries(100)
        .backoff(Duration::from_secs(5), Duration::from_secs(5));
    a.attach("t", "tick", config.clone()).await.unwrap();
    until("the first node's lease", || store_a.held_leases() == ["t"]).await;
    let (store_b, b) = db.node("second").await;
    b.attach("t", "tick", config).await.unwrap();
    let mut reports = b.reports();
    receiver.script_statuses([500]);
    let id = a
        .emit_durable("tick", &json!({ "n": 1 }), None)
        .await
        .unwrap();
    let first = receiver.next().await;
    assert_eq!(first.header("x-webhooks-delivery"), Some(id.as_str()));
    // Failed once and waiting out its backoff: paused, then the holder leaves
    // (no drain to wait for: nothing is delivered while paused).
    a.pause("t").await.unwrap();
    let _ = a.shutdown(Duration::ZERO).await;
    until("the second node's lease", || store_b.held_leases() == ["t"]).await;
    b.restart("t").await.unwrap();
    let second = receiver.next().await;
    assert_eq!(second.header("x-webhooks-delivery"), Some(id.as_str()));
    assert_eq!(second.n(), 1);
    // The stored due time holds on the next node: not before the backoff
    // (5 s with equal jitter, so at least 2.5 s; a lower bound only).
    let waited = second.at.duration_since(first.at);
    assert!(
        waited + Duration::from_millis(5) >= Duration::from_millis(2_500),
        "retried {waited:?} after the failure, before its backoff"
    );
    loop {
        let report = support::next_report(&mut reports).await;
        if let webhooks_emitter::Outcome::Delivered { attempts, .. } = report.outcome {
            assert_eq!(attempts, 2, "the first node's attempt counts");
            break;
        }
    }
}

/// Two processes with one name would both think they hold that node's
/// leases: a name a live node uses is refused at connect, with the name in
/// the error; once that node has closed, the name is free again.
#[tokio::test]
async fn a_node_name_in_use_by_a_live_node_is_refused() {
    let db = Postgres::start();
    let connect = || {
        PgStore::options()
            .lease_expiry(Duration::from_secs(2))
            .node_name("twin")
            .connect(db.url())
    };
    let first = connect().await.unwrap();
    let error = connect().await.unwrap_err();
    assert!(
        matches!(&error, StoreError::NodeNameInUse { name } if name == "twin"),
        "{error:?}"
    );
    assert!(error.to_string().contains("`twin`"), "{error}");
    drop(first); // closes: its row in the node table goes
    let again = connect().await.unwrap();
    assert_eq!(again.node_name(), "twin");
}

/// `close` does what dropping the last handle does while handles live on
/// (a process whose actors outlive `main`): the name is free at once, far
/// within the lease expiry, and the remaining handles are refused.
#[tokio::test]
async fn close_frees_the_name_while_other_handles_live_on() {
    let db = Postgres::start();
    let connect = || {
        PgStore::options()
            .lease_expiry(Duration::from_secs(600))
            .node_name("closing")
            .connect(db.url())
    };
    let first = connect().await.unwrap();
    first.put_record("ns", "k", b"v".to_vec()).await.unwrap();
    let kept = first.clone();
    first.close().await;
    let again = connect().await.expect("the name is free after close");
    assert_eq!(
        again.records("ns").await.unwrap().len(),
        1,
        "written before the close"
    );
    let refused = kept.put_record("ns", "k2", b"v".to_vec()).await;
    assert!(matches!(refused, Err(StoreError::Closed)), "{refused:?}");
    kept.close().await; // twice: nothing happens
}

/// Stats are the cluster's, kept in the database by the batches that do
/// what they count: a node that attaches the emitter later (here after the
/// first node has gone) starts from them.
#[tokio::test]
async fn stats_are_kept_in_the_database_across_nodes() {
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    let (store, first) = db.node("counting").await;
    let config = fast_config(receiver.url("/c")).max_retries(2);
    first.attach("c", "count", config.clone()).await.unwrap();
    until("the lease", || store.held_leases() == ["c"]).await;
    // The 2nd event fails twice: a dead letter; 1 retry of the 3rd.
    receiver.script_statuses([200, 500, 500, 503, 200, 200]);
    for n in 0..4 {
        first
            .emit_durable("count", &json!({ "n": n }), None)
            .await
            .unwrap();
    }
    receiver.take(6).await;
    assert!(first.flush(DEADLINE).await);
    let counted =
        |s: &webhooks_emitter::EmitterStats| (s.delivered, s.failed_attempts, s.dead_lettered);
    eventually("the first node's stats", || async {
        counted(&first.stats("c").await.unwrap()) == (3, 3, 1)
    })
    .await;
    let _ = first.shutdown(DEADLINE).await;
    drop(store);
    let (_store, second) = db.node("counting-later").await;
    second.attach("c", "count", config).await.unwrap();
    assert_eq!(counted(&second.stats("c").await.unwrap()), (3, 3, 1));
}

/// Application records (the server keeps its endpoints and idempotency keys
/// there) have the journal's API on PostgreSQL, shared by the nodes: what
/// one node writes another reads, of racing inserts of one key on two nodes
/// exactly one stores, and a change of several records is all or nothing.
#[tokio::test]
async fn application_records_are_shared_by_the_nodes() {
    use webhooks_emitter::RecordChange;
    let db = Postgres::start();
    let (a, _) = db.node("records-a").await;
    let (b, _) = db.node("records-b").await;
    a.put_record("endpoints", "b", b"2".to_vec()).await.unwrap();
    a.put_record("endpoints", "a", b"1".to_vec()).await.unwrap();
    b.put_record("endpoints", "a", b"1bis".to_vec())
        .await
        .unwrap();
    a.put_record("endpointsx", "z", b"9".to_vec())
        .await
        .unwrap();
    assert_eq!(
        b.records("endpoints").await.unwrap(),
        [("a".into(), b"1bis".to_vec()), ("b".into(), b"2".to_vec())]
    );
    for _ in 0..20 {
        let key = format!("race-{}", round_key());
        let (one, two) = tokio::join!(
            a.insert_record("keys", &key, b"from a".to_vec()),
            b.insert_record("keys", &key, b"from b".to_vec())
        );
        assert!(
            one.unwrap() ^ two.unwrap(),
            "exactly one insert of {key} stores"
        );
    }
    assert!(b.delete_record("endpointsx", "z").await.unwrap());
    assert!(!a.delete_record("endpointsx", "z").await.unwrap());
    assert_eq!(
        a.record("endpoints", "b").await.unwrap(),
        Some(b"2".to_vec())
    );
    assert_eq!(a.record("endpoints", "none").await.unwrap(), None);
    // Compare and swap: of two nodes replacing one value, one succeeds.
    let (one, two) = tokio::join!(
        a.replace_record("endpoints", "b", b"2".to_vec(), b"2a".to_vec()),
        b.replace_record("endpoints", "b", b"2".to_vec(), b"2b".to_vec())
    );
    assert!(one.unwrap() ^ two.unwrap(), "exactly one swap");
    // Pruned by age in the database: nothing is a minute old yet.
    assert_eq!(
        a.prune_records("keys", Duration::from_secs(60))
            .await
            .unwrap(),
        0
    );
    assert_eq!(a.prune_records("keys", Duration::ZERO).await.unwrap(), 20);
    assert!(b.records("keys").await.unwrap().is_empty());
    // A change with a value PostgreSQL refuses (a NUL in a text key) fails
    // whole: the put before it is not kept.
    let error = a
        .change_records(vec![
            RecordChange::Put {
                namespace: "endpoints".into(),
                key: "c".into(),
                value: b"3".to_vec(),
            },
            RecordChange::Put {
                namespace: "endpoints".into(),
                key: "bad\0key".into(),
                value: b"x".to_vec(),
            },
        ])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Database { .. }), "{error:?}");
    assert_eq!(
        b.records("endpoints").await.unwrap().len(),
        2,
        "all or nothing"
    );
}

/// A key of its own per round, so that the rounds do not see each other.
fn round_key() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

/// An emitter removed for good: while a live node attaches it, `discard`
/// refuses; once none does, it deletes its queued events, dead letters,
/// lease, paused state and counters.
#[tokio::test]
async fn discard_removes_an_emitter_once_no_live_node_attaches_it() {
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    let (store, a) = db.node("discard-a").await;
    let (_store_b, b) = db.node("discard-b").await;
    let config = fast_config(receiver.url("/x"));
    a.attach("gone", "bye", config.clone()).await.unwrap();
    b.attach("gone", "bye", config.clone()).await.unwrap();
    a.pause("gone").await.unwrap();
    a.emit_durable("bye", &json!({ "n": 1 }), None)
        .await
        .unwrap();
    assert!(store.counters().await.unwrap().contains_key("gone"));
    a.detach("gone").await.unwrap();
    assert!(!store.discard("gone").await.unwrap(), "node b attaches it");
    b.detach("gone").await.unwrap();
    eventually("discarded once no node attaches it", || async {
        store.discard("gone").await.unwrap()
    })
    .await;
    assert!(!store.counters().await.unwrap().contains_key("gone"));
    // Attached anew: not paused, and the stored event is gone (the first
    // delivery is the new one).
    a.attach("gone", "bye", config).await.unwrap();
    assert!(!a.stats("gone").await.unwrap().paused);
    a.emit_durable("bye", &json!({ "n": 2 }), None)
        .await
        .unwrap();
    assert_eq!(receiver.next().await.n(), 2);
}

/// A node named `name` on `db` with the shared live feed, and the URL of its
/// SSE topic `news` (an actix-web server on loopback).
async fn live_node(db: &Postgres, name: &str) -> (webhooks_emitter::WebhooksEmitter, String) {
    let store = PgStore::options()
        .node_name(name)
        .shared_live_updates(true)
        .connect(db.url())
        .await
        .unwrap();
    let emitter = webhooks_emitter::WebhooksEmitter::builder()
        .store(store)
        .start();
    let for_server = emitter.clone();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().service(for_server.sse_scope("/sse"))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let sse = format!("http://{}/sse/news", server.addrs()[0]);
    actix_web::rt::spawn(server.run());
    (emitter, sse)
}

/// With `shared_live_updates`, the SSE clients of every node see what every
/// node publishes, with the same ids, so that a client moved to another node
/// resumes there by its `Last-Event-ID`.
#[actix_web::test]
async fn shared_live_updates_show_every_node_with_the_same_ids() {
    use support::live::{next, subscribe};
    let db = Postgres::start();
    let mut nodes = Vec::new();
    for name in ["live-a", "live-b"] {
        nodes.push(live_node(&db, name).await);
    }
    let (_, _, mut on_a) = subscribe(&nodes[0].1, &[]).await;
    let (_, _, mut on_b) = subscribe(&nodes[1].1, &[]).await;
    let mut ids = Vec::new();
    // Published on a, then on b: each one seen by both nodes' clients.
    for (n, (publisher, _)) in nodes.iter().enumerate() {
        publisher
            .broadcast("news", "headline", &json!({ "n": n }))
            .unwrap();
        let (a, b) = (next(&mut on_a).await, next(&mut on_b).await);
        assert_eq!(a.data, json!({ "n": n }).to_string());
        assert_eq!((&a.id, &a.event, &a.data), (&b.id, &b.event, &b.data));
        ids.push(a.id);
    }
    // A client of a that saw the first moves to b: it gets the second.
    let (_, _, mut moved) = subscribe(&nodes[1].1, &[("Last-Event-ID", &ids[0])]).await;
    let resumed = next(&mut moved).await;
    assert_eq!(
        (resumed.id.as_str(), resumed.event.as_str()),
        (ids[1].as_str(), "headline")
    );
    // The feed is best effort: its rows skip the WAL; its head does not.
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(db.url()).await.unwrap();
    let persistence: Vec<(String, String)> = sqlx::query_as(
        "SELECT relname::text, relpersistence::text FROM pg_class \
         WHERE relname IN ('webhooks_emitter_feed', 'webhooks_emitter_feed_head') ORDER BY relname",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    let expected = [
        ("webhooks_emitter_feed", "u"),
        ("webhooks_emitter_feed_head", "p"),
    ];
    assert_eq!(
        persistence,
        expected.map(|(table, kind)| (table.to_owned(), kind.to_owned()))
    );
}

/// Announcements reach every node listening to their topic, this one too;
/// other topics do not hear them; an oversized one is refused.
#[tokio::test]
async fn announcements_reach_every_listening_node() {
    let db = Postgres::start();
    let (a, _) = db.node("announcer").await;
    let (b, _) = db.node("listener").await;
    let mut on_b = b.announcements("changes");
    let mut on_a = a.announcements("changes");
    let mut elsewhere = b.announcements("other");
    // Listening is set up at connect; a first message may race it: retry.
    let heard = loop {
        a.announce("changes", "v1").await.unwrap();
        match tokio::time::timeout(Duration::from_millis(200), on_b.recv()).await {
            Ok(heard) => break heard.unwrap(),
            Err(_) => continue,
        }
    };
    assert_eq!(heard, "v1");
    assert_eq!(
        tokio::time::timeout(DEADLINE, on_a.recv())
            .await
            .unwrap()
            .unwrap(),
        "v1"
    );
    assert!(elsewhere.try_recv().is_err());
    let refused = a.announce("changes", &"x".repeat(8_000)).await;
    assert!(
        matches!(refused, Err(StoreError::InvalidSetting { .. })),
        "{refused:?}"
    );
}

/// `change_records` keeps the order of its changes: with a key twice (put,
/// then deleted) the last one wins; with distinct keys (written in one
/// statement per kind) every change is made.
#[tokio::test]
async fn record_changes_keep_their_order() {
    use webhooks_emitter::RecordChange;
    let db = Postgres::start();
    let (store, _) = db.node("ordering").await;
    let put = |key: &str, value: &str| RecordChange::Put {
        namespace: "n".into(),
        key: key.into(),
        value: value.as_bytes().to_vec(),
    };
    let delete = |key: &str| RecordChange::Delete {
        namespace: "n".into(),
        key: key.into(),
    };
    store
        .change_records(vec![
            put("a", "1"),
            put("b", "2"),
            delete("a"),
            put("b", "3"),
        ])
        .await
        .unwrap();
    let read = store.records("n").await.unwrap();
    assert_eq!(read, [("b".to_owned(), b"3".to_vec())]);
    store
        .change_records(vec![put("c", "4"), delete("b"), put("d", "5")])
        .await
        .unwrap();
    let read = store.records("n").await.unwrap();
    assert_eq!(
        read,
        [
            ("c".to_owned(), b"4".to_vec()),
            ("d".to_owned(), b"5".to_vec())
        ]
    );
}

/// The live feed is best effort: after PostgreSQL crashes its rows are gone
/// (they skip the WAL), its head is not, and the next publication takes an
/// id after every earlier one: a client never sees an id twice.
#[actix_web::test]
async fn after_a_crash_of_postgres_the_feed_is_empty_and_its_ids_go_on() {
    use sqlx::Connection;
    use support::live::{next, subscribe};
    let db = Postgres::start();
    if !db.is_local() {
        return; // crashing a server it did not start is not this test's to do
    }
    let (emitter, sse) = live_node(&db, "crash-feed").await;
    let (_, _, mut client) = subscribe(&sse, &[]).await;
    let mut before = Vec::new();
    for n in 0..2 {
        emitter
            .broadcast("news", "before", &json!({ "n": n }))
            .unwrap();
        before.push(next(&mut client).await.id.parse::<u64>().unwrap());
    }
    let count = |url: String| async move {
        let mut connection = sqlx::PgConnection::connect(&url).await.unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM webhooks_emitter_feed")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        let head: i64 = sqlx::query_scalar("SELECT last_id FROM webhooks_emitter_feed_head")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        (rows, head)
    };
    assert_eq!(count(db.url().to_owned()).await, (2, 2));
    // The test cluster runs with `synchronous_commit=off`: a checkpoint puts
    // the head's last update on disk, as every commit does by default.
    let mut connection = sqlx::PgConnection::connect(db.url()).await.unwrap();
    sqlx::query("CHECKPOINT")
        .execute(&mut connection)
        .await
        .unwrap();
    drop(connection);
    db.crash();
    db.start_again();
    assert_eq!(
        count(db.url().to_owned()).await,
        (0, 2),
        "rows gone, head kept"
    );
    // Publications while the node's connections are found dead are dropped
    // (best effort): publish until one comes through.
    let after = loop {
        emitter.broadcast("news", "after", &json!({})).unwrap();
        match tokio::time::timeout(Duration::from_millis(500), next(&mut client)).await {
            Ok(event) => break event,
            Err(_) => continue,
        }
    };
    assert_eq!(after.event, "after");
    let id: u64 = after.id.parse().unwrap();
    assert!(id > before[1], "{id} after {before:?}");
}

/// As on the journal: pages of records in byte order, whatever the
/// database's collation.
#[actix_web::test]
async fn records_are_read_in_pages_in_byte_order() {
    let db = Postgres::start();
    let (store, _) = db.node("pages").await;
    // A language's collation on the keys, as a database made with one has
    // (the throwaway cluster's is C, which would hide the difference).
    let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
    sqlx::query(
        "ALTER TABLE webhooks_emitter_records ALTER COLUMN key TYPE TEXT COLLATE \"en-US-x-icu\"",
    )
    .execute(&pool)
    .await
    .unwrap();
    let keys = support::paging_keys();
    for key in &keys {
        store
            .put_record("pages", key, key.as_bytes().to_vec())
            .await
            .unwrap();
    }
    store
        .put_record("pages2", "0", b"x".to_vec())
        .await
        .unwrap();
    for limit in [1, 2, 3, keys.len()] {
        let mut read = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store
                .records_after("pages", after.as_deref(), limit)
                .await
                .unwrap();
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            read.extend(page.into_iter().map(|(key, _)| key));
        }
        assert_eq!(read, support::in_byte_order(&keys), "pages of {limit}");
        // And back, the greatest first, from past the last key.
        let mut back = Vec::new();
        let mut before = "\u{7f}".to_owned();
        loop {
            let page = store.records_before("pages", &before, limit).await.unwrap();
            let Some((last, _)) = page.last() else { break };
            before = last.clone();
            back.extend(page.into_iter().map(|(key, _)| key));
        }
        back.reverse();
        assert_eq!(back, support::in_byte_order(&keys), "pages of {limit} back");
    }
}

/// Records grouped with events are written in the commit of the events sent
/// beside them, in order, and read back like any other; many callers at
/// once, each answered.
#[actix_web::test]
async fn grouped_records_are_committed_with_the_events_in_order() {
    use webhooks_emitter::RecordChange;
    let db = Postgres::start();
    let mut receiver = support::Receiver::start();
    let (store, emitter) = db.node("grouped").await;
    emitter
        .attach("log", "e", support::fast_config(receiver.url("/")))
        .await
        .unwrap();
    let put = |key: String, value: &str| RecordChange::Put {
        namespace: "log".into(),
        key,
        value: value.as_bytes().to_vec(),
    };
    let writes = (0..50).map(|n| {
        let (store, emitter) = (store.clone(), emitter.clone());
        let changes = vec![
            put(format!("{n:03}"), "first"),
            RecordChange::Delete {
                namespace: "log".into(),
                key: format!("{n:03}"),
            },
            put(format!("{n:03}"), "last"),
        ];
        async move {
            let payload = json!({"n": n});
            let (grouped, emitted) = tokio::join!(
                store.group_records(changes),
                emitter.emit_durable("e", &payload, None)
            );
            grouped.unwrap();
            emitted.unwrap();
        }
    });
    futures_util::future::join_all(writes).await;
    let read = store.records("log").await.unwrap();
    assert_eq!(read.len(), 50);
    assert!(read.iter().all(|(_, value)| value == b"last"), "{read:?}");
    assert_eq!(receiver.take(50).await.len(), 50);
    assert_eq!(store.group_records(Vec::new()).await, Ok(()));
}
