//! The server as a cluster: nodes as child processes on one throwaway
//! PostgreSQL, and a black-box client that sends to any node and, when a
//! node fails, retries on the next with the same `Idempotency-Key`.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use awc::http::Method;
use serde_json::{json, Value};
use support::postgres::Postgres;
use support::server::{problem, ServerProcess};
use support::{eventually, Receiver};
use webhooks_emitter::verify::{StandardVerifier, Verifier};

/// `n` nodes named `node-1` … on `db`.
fn nodes(db: &Postgres, n: usize) -> Vec<ServerProcess> {
    (1..=n)
        .map(|i| ServerProcess::start_node(db.url(), &format!("node-{i}"), &[]))
        .collect()
}

fn endpoint(id: &str, url: String) -> Value {
    json!({
        "id": id,
        "url": url,
        "events": ["order.created"],
        "max_retries": 1000,
        "backoff_ms": {"start": 10, "limit": 50},
    })
}

async fn post(node: &ServerProcess, path: &str, body: Option<Value>) -> support::server::Answer {
    node.api(Method::POST, path, body).await
}

/// Every kind of endpoint change made on one node is in effect on the
/// others when it answers: the next event, sent to another node, is routed
/// and delivered with it.
#[actix_web::test]
async fn changes_made_on_any_node_are_in_effect_on_every_node_when_it_answers() {
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    let nodes = nodes(&db, 3);

    nodes[0].create(endpoint("crm", receiver.url("/a"))).await;
    // The change was announced, and the other two nodes said they read it
    // (its token) before it answered; node 1 hears its own announcement too.
    let read = db.records("endpoint-changes-read").await;
    let readers: Vec<&str> = read.iter().map(|(node, _)| node.as_str()).collect();
    assert!(readers.ends_with(&["node-2", "node-3"]), "{readers:?}");
    assert_eq!(read[read.len() - 2].1, read[read.len() - 1].1);
    let sent = nodes[1].emit_raw("order.created", json!({"n": 1})).await;
    assert_eq!(
        (sent.status, &sent.json["endpoints"]),
        (202, &json!(1)),
        "{sent:?}"
    );
    let got = receiver.next().await;
    assert_eq!((got.path.as_str(), got.n()), ("/a", 1));

    let patch = json!({"url": receiver.url("/b")});
    let changed = nodes[1]
        .api(Method::PATCH, "/api/v1/endpoints/crm", Some(patch))
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    nodes[2].emit("order.created", json!({"n": 2})).await;
    let got = receiver.next().await;
    assert_eq!((got.path.as_str(), got.n()), ("/b", 2), "the new URL");

    assert_eq!(
        post(&nodes[2], "/api/v1/endpoints/crm/pause", None)
            .await
            .status,
        200
    );
    nodes[0].emit("order.created", json!({"n": 3})).await;
    for node in &nodes {
        let view = node.api(Method::GET, "/api/v1/endpoints/crm", None).await;
        assert_eq!(view.json["state"], "paused", "{view:?}");
    }
    let resumed_at = Instant::now();
    assert_eq!(
        post(&nodes[1], "/api/v1/endpoints/crm/resume", None)
            .await
            .status,
        200
    );
    let got = receiver.next().await;
    assert_eq!(got.n(), 3);
    assert!(got.at > resumed_at, "held while paused, sent once resumed");

    let (_, key) = nodes[0].rotate("crm").await;
    nodes[2].emit("order.created", json!({"n": 4})).await;
    let got = receiver.next().await;
    assert_eq!(got.n(), 4);
    let verified = StandardVerifier::new(&key)
        .unwrap()
        .verify(&got.headers, &got.body);
    assert!(verified.is_ok(), "signed with the new key: {verified:?}");

    let deleted = nodes[1]
        .api(Method::DELETE, "/api/v1/endpoints/crm", None)
        .await;
    assert_eq!(deleted.status, 204);
    let sent = nodes[2].emit_raw("order.created", json!({"n": 5})).await;
    assert_eq!(sent.json["endpoints"], 0, "routed nowhere: {sent:?}");
    nodes[2].create(endpoint("erp", receiver.url("/c"))).await;
    nodes[0].emit("order.created", json!({"n": 6})).await;
    let got = receiver.next().await;
    assert_eq!(
        (got.path.as_str(), got.n()),
        ("/c", 6),
        "nothing for the deleted one"
    );
    for node in &nodes {
        let missing = node.api(Method::GET, "/api/v1/endpoints/crm", None).await;
        assert_eq!(missing.status, 404, "{missing:?}");
    }
    // Its stored rows went with it once every node had detached it.
    let store = webhooks_emitter::PgStore::connect(db.url()).await.unwrap();
    let counters = store.counters().await.unwrap();
    assert!(
        !counters.contains_key("crm") && counters.contains_key("erp"),
        "{counters:?}"
    );

    // One id created on two nodes at once: one 201, one 409.
    let (a, b) = tokio::join!(
        post(
            &nodes[0],
            "/api/v1/endpoints",
            Some(endpoint("twice", receiver.url("/t")))
        ),
        post(
            &nodes[1],
            "/api/v1/endpoints",
            Some(endpoint("twice", receiver.url("/t")))
        ),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{a:?} {b:?}");
    let conflict = if a.status == 409 { &a } else { &b };
    assert!(problem(conflict, 409).contains("already exists"));
}

/// One key sent to three nodes at once emits once; a repeat on any node
/// answers the first request id, marked replayed, and emits nothing.
#[actix_web::test]
async fn one_idempotency_key_on_three_nodes_at_once_emits_once() {
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    let nodes = nodes(&db, 3);
    nodes[0].create(endpoint("crm", receiver.url("/k"))).await;
    let body = json!({"event": "order.created", "payload": {"n": 1}});
    let key = [("idempotency-key", "order-1")];
    let send =
        |i: usize| nodes[i].try_call(Method::POST, "/api/v1/events", Some(body.clone()), &key);
    let (a, b, c) = tokio::join!(send(0), send(1), send(2));
    let answers: Vec<_> = [a, b, c].into_iter().map(Option::unwrap).collect();
    let fresh: Vec<_> = answers
        .iter()
        .filter(|a| a.status == 202 && a.headers.get("idempotent-replayed").is_none())
        .collect();
    assert_eq!(fresh.len(), 1, "one emits: {answers:?}");
    for other in answers.iter().filter(|a| a.status != 202) {
        assert_eq!(other.status, 409, "the others wait for it: {other:?}");
    }
    let request_id = fresh[0].json["request_id"].as_str().unwrap().to_owned();
    for node in &nodes {
        let again = node
            .try_call(Method::POST, "/api/v1/events", Some(body.clone()), &key)
            .await
            .unwrap();
        assert_eq!(again.status, 202, "{again:?}");
        assert_eq!(again.json["request_id"], request_id.as_str());
        assert_eq!(
            again
                .headers
                .get("idempotent-replayed")
                .map(|v| v.as_bytes()),
            Some(&b"true"[..])
        );
    }
    // Deliveries to one endpoint keep their order: a duplicate would come
    // before this marker.
    nodes[1].emit("order.created", json!({"n": 2})).await;
    let got = receiver.take(2).await;
    let ns: Vec<i64> = got.iter().map(|r| r.n()).collect();
    assert_eq!(ns, [1, 2], "emitted once");
    assert_eq!(
        got[0].header("x-webhooks-delivery"),
        Some(request_id.as_str())
    );
}

/// Two processes with one name would both think they hold its leases: the
/// second refuses to start, naming the name.
#[actix_web::test]
async fn a_second_live_node_with_the_same_name_refuses_to_start() {
    let db = Postgres::start();
    let _first = ServerProcess::start_node(db.url(), "twin", &[]);
    let refused = ServerProcess::node_command(db.url(), "twin")
        .output()
        .expect("runs");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("`twin`"), "{stderr}");
    assert!(!stderr.contains(support::postgres::PASSWORD), "{stderr}");
    // Killed, its last heartbeat ages: once older than the lease expiry
    // (2 s here) the name is free for a new process.
    _first.kill();
    let mut refused_while_fresh = 0;
    let started = Instant::now();
    loop {
        let mut child = ServerProcess::node_command(db.url(), "twin")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("runs");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).ok();
        if line.contains("listening") {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        assert!(!child.wait().expect("exits").success());
        refused_while_fresh += 1;
        assert!(
            started.elapsed() < support::DEADLINE,
            "the name never freed"
        );
        std::thread::sleep(Duration::from_millis(200)); // the heartbeat must age
    }
    assert!(
        refused_while_fresh > 0,
        "refused while the heartbeat was fresh"
    );
}

/// A client sends events one after the other to the nodes in turn, each
/// with a key of its own, and retries one that failed on the next node.
/// The node delivering the endpoint is SIGKILLed mid-run: every event that got a 202 is delivered,
/// first deliveries in the order the 202s came, a duplicate with the same
/// request id.
#[actix_web::test]
async fn a_node_killed_mid_load_loses_nothing_acknowledged() {
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    let mut nodes: Vec<Option<ServerProcess>> = nodes(&db, 3).into_iter().map(Some).collect();
    nodes[0]
        .as_ref()
        .unwrap()
        .create(endpoint("orders", receiver.url("/o")))
        .await;
    const EVENTS: i64 = 300;
    let mut acknowledged: Vec<(i64, String)> = Vec::new();
    let mut turn = 0;
    for n in 0..EVENTS {
        if n == EVENTS / 3 {
            let holder = db
                .lease_owner("orders")
                .await
                .expect("a node holds the lease");
            let index = (1..=3).position(|i| holder == format!("node-{i}")).unwrap();
            nodes[index].take().unwrap().kill();
        }
        let key = format!("event-{n}");
        let body = json!({"event": "order.created", "payload": {"n": n}});
        let request_id = loop {
            turn = (turn + 1) % nodes.len();
            let Some(node) = &nodes[turn] else { continue };
            let headers = [("idempotency-key", key.as_str())];
            match node
                .try_call(Method::POST, "/api/v1/events", Some(body.clone()), &headers)
                .await
            {
                Some(answer) if answer.status == 202 => {
                    break answer.json["request_id"].as_str().unwrap().to_owned();
                }
                _ => continue, // gone, or not ready: the next node, same key
            }
        };
        acknowledged.push((n, request_id));
    }
    let mut firsts: Vec<i64> = Vec::new();
    let mut ids: HashMap<i64, String> = HashMap::new();
    while firsts.len() < acknowledged.len() {
        let got = receiver.next().await;
        let id = got.header("x-webhooks-delivery").unwrap().to_owned();
        if let Some(first) = ids.get(&got.n()) {
            assert_eq!(first, &id, "a duplicate carries the same request id");
            continue;
        }
        ids.insert(got.n(), id);
        firsts.push(got.n());
    }
    let expected: Vec<i64> = acknowledged.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        firsts, expected,
        "first deliveries in the order of the 202s"
    );
    for (n, request_id) in &acknowledged {
        assert_eq!(ids.get(n), Some(request_id), "event {n}");
    }
}

/// While PostgreSQL is down, events are refused with 503 problem+json
/// (never a 500, never a hang) and `/ready` is 503; once it is back,
/// everything goes on and nothing acknowledged is lost.
#[actix_web::test]
async fn while_the_database_is_down_events_get_503_and_nothing_acknowledged_is_lost() {
    let db = Postgres::start();
    if !db.is_local() {
        return; // cannot stop a server of the caller's
    }
    let mut receiver = Receiver::start();
    let nodes = nodes(&db, 2);
    nodes[0].create(endpoint("crm", receiver.url("/d"))).await;
    nodes[1].emit("order.created", json!({"n": 1})).await;
    assert_eq!(receiver.next().await.n(), 1);
    let made = post(
        &nodes[0],
        "/api/v1/api-keys",
        Some(json!({"name": "reader", "scopes": ["endpoints:read"]})),
    )
    .await;
    let key = made.json["key"].as_str().unwrap().to_owned();
    assert_eq!(read_with(&nodes[1], &key).await.status, 200);

    db.stop();
    for node in &nodes {
        let asked = Instant::now();
        let refused = node.emit_raw("order.created", json!({"n": 99})).await;
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "answered in time"
        );
        assert!(!problem(&refused, 503).is_empty(), "{refused:?}");
        // A node that cannot read the database might not know of a
        // revocation: keys are refused; the admin token still reads.
        let keyed = read_with(node, &key).await;
        assert!(problem(&keyed, 503).contains("API keys"), "{keyed:?}");
        let admin = node.api(Method::GET, "/api/v1/endpoints", None).await;
        assert_eq!(admin.status, 200, "{admin:?}");
        eventually("/ready says 503", || async {
            node.api(Method::GET, "/ready", None).await.status == 503
        })
        .await;
    }

    db.start_again();
    eventually("events accepted again", || async {
        nodes[0]
            .emit_raw("order.created", json!({"n": 2}))
            .await
            .status
            == 202
    })
    .await;
    // A refused event was not acknowledged; the accepted ones all arrive.
    let mut seen = Vec::new();
    while !seen.contains(&2) {
        let n = receiver.next().await.n();
        if n != 99 {
            seen.push(n);
        }
    }
    for node in &nodes {
        eventually("/ready again", || async {
            node.api(Method::GET, "/ready", None).await.status == 200
        })
        .await;
    }
}

/// What a node shows of an endpoint's history: its stored counters, its
/// dead letters and its attempts (outcome and request id, newest first).
async fn history(node: &ServerProcess, id: &str) -> (Value, usize, Vec<(String, String)>) {
    let stats = node
        .api(Method::GET, &format!("/api/v1/endpoints/{id}/stats"), None)
        .await
        .json;
    let counters = json!([
        stats["delivered"],
        stats["failed_attempts"],
        stats["dead_lettered"]
    ]);
    let letters = node
        .api(
            Method::GET,
            &format!("/api/v1/endpoints/{id}/dead-letters"),
            None,
        )
        .await
        .json;
    let attempts = node
        .api(
            Method::GET,
            &format!("/api/v1/endpoints/{id}/attempts"),
            None,
        )
        .await
        .json;
    let attempts = attempts
        .as_array()
        .map(|list| {
            list.iter()
                .map(|a| {
                    let field = |name: &str| a[name].as_str().unwrap_or_default().to_owned();
                    (field("outcome"), field("request_id"))
                })
                .collect()
        })
        .unwrap_or_default();
    (counters, letters.as_array().map_or(0, Vec::len), attempts)
}

/// Attempts, dead letters and stats are the cluster's: every node shows
/// the same, and still does after every node has been restarted.
#[actix_web::test]
async fn attempts_dead_letters_and_stats_are_the_same_on_every_node_and_after_a_full_restart() {
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    let mut nodes = nodes(&db, 3);
    let mut spec = endpoint("crm", receiver.url("/h"));
    spec["max_retries"] = json!(2);
    nodes[0].create(spec).await;
    // The first event fails twice: a dead letter; the next two arrive.
    receiver.script_statuses([500, 500]);
    for (i, node) in nodes.iter().enumerate() {
        node.emit("order.created", json!({"n": i})).await;
    }
    receiver.take(4).await;
    let expected_counters = json!([2, 2, 1]);
    let mut seen = None;
    for node in &nodes {
        eventually("the cluster's history on every node", || async {
            let (counters, letters, attempts) = history(node, "crm").await;
            let delivered = attempts.iter().filter(|(o, _)| o == "delivered").count();
            counters == expected_counters && letters == 1 && delivered == 2
        })
        .await;
        let shown = history(node, "crm").await;
        assert!(
            seen.as_ref().is_none_or(|first| *first == shown),
            "{shown:?}"
        );
        seen = Some(shown);
    }
    for node in nodes.drain(..) {
        assert!(node.terminate().success());
    }
    let nodes = self::nodes(&db, 3);
    for node in &nodes {
        assert_eq!(Some(history(node, "crm").await), seen, "after the restart");
    }
}

/// A rolling restart under load: SIGTERM one node at a time while a client
/// keeps sending to the others. The node stopping says 503 on `/ready`, and
/// every event that got a 202 is delivered.
#[actix_web::test]
async fn a_rolling_restart_under_load_loses_nothing_acknowledged() {
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    let mut nodes: Vec<ServerProcess> = nodes(&db, 3);
    nodes[0]
        .create(endpoint("orders", receiver.url("/r")))
        .await;
    let mut acknowledged = Vec::new();
    let mut n = 0;
    for restarting in 0..nodes.len() {
        for _ in 0..40 {
            let body = json!({"event": "order.created", "payload": {"n": n}});
            let key = format!("rolling-{n}");
            let headers = [("idempotency-key", key.as_str())];
            let mut turn = n as usize;
            loop {
                turn = (turn + 1) % nodes.len();
                if turn == restarting && n % 2 == 0 {
                    continue; // most traffic on the others
                }
                let answer = nodes[turn]
                    .try_call(Method::POST, "/api/v1/events", Some(body.clone()), &headers)
                    .await;
                if answer.is_some_and(|a| a.status == 202) {
                    break;
                }
            }
            acknowledged.push(n);
            n += 1;
        }
        let stopping = &nodes[restarting];
        stopping.send_term();
        eventually(
            "the stopping node says 503 on /ready, or is gone",
            || async {
                stopping
                    .try_call(Method::GET, "/ready", None, &[])
                    .await
                    .is_none_or(|a| a.status == 503)
            },
        )
        .await;
        let name = format!("node-{}", restarting + 1);
        let old = std::mem::replace(
            &mut nodes[restarting],
            ServerProcess::start_node(db.url(), &format!("{name}-new"), &[]),
        );
        assert!(old.wait_exit().success(), "{name} stops cleanly");
    }
    let mut firsts = Vec::new();
    while firsts.len() < acknowledged.len() {
        let got = receiver.next().await.n();
        if !firsts.contains(&got) {
            firsts.push(got);
        }
    }
    assert_eq!(firsts, acknowledged, "every 202 delivered, in order");
}

/// A node's periodic read of the stored endpoints never undoes a change
/// made on that node meanwhile: each endpoint created is there at once,
/// and stays (the read that started before its insert must not remove it).
#[actix_web::test]
async fn endpoints_created_on_a_node_stay_while_it_reads_the_store() {
    let db = Postgres::start();
    let receiver = Receiver::start();
    let node = ServerProcess::start_node(db.url(), "alone", &[]);
    for i in 0..40 {
        let id = format!("e{i}");
        node.create(endpoint(&id, receiver.url("/s"))).await;
        let shown = node
            .api(Method::GET, &format!("/api/v1/endpoints/{id}"), None)
            .await;
        assert_eq!(
            shown.status, 200,
            "{id} right after its creation: {shown:?}"
        );
    }
    let listed = node.api(Method::GET, "/api/v1/endpoints", None).await;
    assert_eq!(listed.json.as_array().map(Vec::len), Some(40), "{listed:?}");
}

/// On a single node (no other to wait for), deleting an endpoint removes its
/// stored rows too: the node's own detach is committed before the discard.
#[actix_web::test]
async fn a_single_node_deleting_an_endpoint_removes_its_rows() {
    let db = Postgres::start();
    let receiver = Receiver::start();
    let node = ServerProcess::start_node(db.url(), "solo", &[]);
    node.create(endpoint("gone", receiver.url("/g"))).await;
    node.emit("order.created", json!({"n": 1})).await;
    let store = webhooks_emitter::PgStore::connect(db.url()).await.unwrap();
    assert!(store.counters().await.unwrap().contains_key("gone"));
    let deleted = node
        .api(Method::DELETE, "/api/v1/endpoints/gone", None)
        .await;
    assert_eq!(deleted.status, 204);
    assert!(!store.counters().await.unwrap().contains_key("gone"));
}

/// Keys as stored: an answered key older than 24 h counts as free (a new
/// request id), a reservation older than 60 s (its node died) is taken
/// over, a fresh reservation answers 409.
#[actix_web::test]
async fn stale_reservations_are_taken_over_and_expired_keys_are_free() {
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    let node = ServerProcess::start_node(db.url(), "keys", &[]);
    node.create(endpoint("crm", receiver.url("/i"))).await;
    let store = webhooks_emitter::PgStore::connect(db.url()).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = json!({"event": "order.created", "payload": {"n": 1}});
    let fingerprint = webhooks_emitter_fingerprint(&body);
    let record = |request_id: Option<&str>, age: u64| {
        serde_json::to_vec(&json!({
            "fingerprint": fingerprint, "request_id": request_id, "at": now - age,
        }))
        .unwrap()
    };
    let node = &node;
    let send = |key: &'static str| {
        let body = Some(body.clone());
        async move {
            node.try_call(
                Method::POST,
                "/api/v1/events",
                body,
                &[("idempotency-key", key)],
            )
            .await
        }
    };
    store
        .put_record("idempotency", "busy", record(None, 5))
        .await
        .unwrap();
    assert_eq!(send("busy").await.unwrap().status, 409, "in progress");
    store
        .put_record("idempotency", "dead", record(None, 61))
        .await
        .unwrap();
    let taken = send("dead").await.unwrap();
    assert_eq!(taken.status, 202, "{taken:?}");
    assert!(taken.headers.get("idempotent-replayed").is_none());
    let old = 25 * 60 * 60;
    store
        .put_record("idempotency", "old", record(Some("first-id"), old))
        .await
        .unwrap();
    let again = send("old").await.unwrap();
    assert_eq!(again.status, 202, "{again:?}");
    assert_ne!(
        again.json["request_id"], "first-id",
        "expired: emitted anew"
    );
    assert_eq!(receiver.take(2).await.len(), 2, "both emitted");
}

/// The body fingerprint the server keeps with a key: SHA-256 of the bytes
/// the client sends, hex (the client here sends `body` as serde_json writes it).
fn webhooks_emitter_fingerprint(body: &Value) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(body.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The console and the SSE streams of one node show what every node
/// emits and delivers, with the same ids on every node: a client that a
/// load balancer moves to another node resumes by its `Last-Event-ID`.
#[actix_web::test]
async fn live_updates_on_any_node_show_every_node_with_the_same_ids() {
    use support::live::{next, subscribe};
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    let nodes = nodes(&db, 3);
    nodes[0].create(endpoint("crm", receiver.url("/a"))).await;
    let stream = |node: &ServerProcess, topic: &str| {
        node.url(&format!("/sse/{topic}?token={}", support::server::TOKEN))
    };
    let (status, _, mut on_3) = subscribe(&stream(&nodes[2], "order.created"), &[]).await;
    assert_eq!(status, 200);
    let (_, _, mut on_1) = subscribe(&stream(&nodes[0], "order.created"), &[]).await;
    let (_, _, mut console_3) = subscribe(&stream(&nodes[2], "console%20deliveries"), &[]).await;

    // Events sent to nodes 1 and 2 (never 3).
    for n in 1..=4 {
        let sent = nodes[(n - 1) % 2]
            .emit_raw("order.created", json!({"n": n}))
            .await;
        assert_eq!(sent.status, 202, "{sent:?}");
    }
    // Each node's publications keep their order; between nodes, the feed's
    // order is the order their appends committed (each node gathers for a
    // few ms), which need not be the order of the 202s: the ids agree.
    let (mut ids, mut seen) = (Vec::new(), Vec::new());
    for _ in 1..=4 {
        let (a, b) = (next(&mut on_3).await, next(&mut on_1).await);
        let data: Value = serde_json::from_str(&a.data).unwrap();
        assert_eq!(a.event, "order.created");
        seen.push(data["n"].as_i64().unwrap());
        assert_eq!(
            (&a.id, &a.data),
            (&b.id, &b.data),
            "node 1 and node 3 agree"
        );
        ids.push(a.id.parse::<u64>().expect("a numeric id"));
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let from_node_1: Vec<i64> = seen.iter().copied().filter(|n| n % 2 == 1).collect();
    assert_eq!(from_node_1, [1, 3], "one node's order kept");
    let from_node_2: Vec<i64> = seen.iter().copied().filter(|n| n % 2 == 0).collect();
    assert_eq!(from_node_2, [2, 4], "the other node's order kept");
    seen.sort();
    assert_eq!(seen, [1, 2, 3, 4], "every event seen once");

    // The console on node 3 shows deliveries, whichever node made them.
    let mut delivered = 0;
    while delivered < 4 {
        let attempt: Value = serde_json::from_str(&next(&mut console_3).await.data).unwrap();
        if attempt["outcome"] == "delivered" && attempt["endpoint"] == "crm" {
            delivered += 1;
        }
    }
    for _ in 1..=4 {
        receiver.next().await;
    }

    // Moved to node 2 after the first event: it gets the other three, with
    // their ids, and no word of lost events.
    let last_seen = ids[0].to_string();
    let (_, _, mut moved) = subscribe(
        &stream(&nodes[1], "order.created"),
        &[("Last-Event-ID", &last_seen)],
    )
    .await;
    for id in &ids[1..] {
        let replayed = next(&mut moved).await;
        assert_eq!(replayed.event, "order.created", "{replayed:?}");
        assert_eq!(replayed.id, id.to_string());
    }
}

/// The node delivering an endpoint is frozen (SIGSTOP) past its lease: another node
/// takes over and delivers what was acknowledged meanwhile; once the frozen
/// node runs again (SIGCONT) it is fenced: first deliveries stay in the
/// order of the 202s, a duplicate carries its request id, and the node
/// serves again.
#[actix_web::test]
async fn a_node_frozen_past_its_lease_is_fenced_when_it_runs_again() {
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    let nodes = nodes(&db, 3);
    nodes[0]
        .create(endpoint("orders", receiver.url("/o")))
        .await;
    let all: Vec<&ServerProcess> = nodes.iter().collect();
    let mut turn = 0;
    let mut acknowledged = vec![accepted(&all, &mut turn, 0).await];
    assert_eq!(receiver.next().await.n(), 0);
    let holder = db
        .lease_owner("orders")
        .await
        .expect("a node holds the lease");
    let frozen = (1..=3).position(|i| holder == format!("node-{i}")).unwrap();
    let others: Vec<&ServerProcess> = (0..3).filter(|i| *i != frozen).map(|i| &nodes[i]).collect();
    // Frozen with deliveries in hand (queued or in flight).
    for n in 1..=5 {
        acknowledged.push(accepted(&all, &mut turn, n).await);
    }
    nodes[frozen].signal("STOP");
    // Acknowledged while it is frozen (the others answer 503 while its
    // transaction holds the endpoint's row, until the database ends it):
    // delivered by another node once the 2 s lease runs out.
    for n in 6..=20 {
        acknowledged.push(accepted(&others, &mut turn, n).await);
    }
    eventually("another node holds the lease", || async {
        db.lease_owner("orders")
            .await
            .is_some_and(|owner| owner != holder)
    })
    .await;
    nodes[frozen].signal("CONT");
    for n in 21..=40 {
        acknowledged.push(accepted(&all, &mut turn, n).await);
    }
    let mut firsts: Vec<i64> = vec![0];
    let mut ids: HashMap<i64, String> = HashMap::new();
    while firsts.len() < acknowledged.len() {
        let got = receiver.next().await;
        let id = got.header("x-webhooks-delivery").unwrap().to_owned();
        if let Some(first) = ids.get(&got.n()) {
            assert_eq!(first, &id, "a duplicate carries the same request id");
            continue;
        }
        if got.n() == 0 {
            continue; // the first event, seen above
        }
        ids.insert(got.n(), id);
        firsts.push(got.n());
    }
    assert_eq!(
        firsts,
        (0..=40).collect::<Vec<i64>>(),
        "first deliveries in the order of the 202s"
    );
    for (n, request_id) in acknowledged.iter().enumerate().skip(1) {
        assert_eq!(ids.get(&(n as i64)), Some(request_id), "event {n}");
    }
    eventually("the thawed node is ready again", || async {
        nodes[frozen]
            .try_call(Method::GET, "/ready", None, &[])
            .await
            .is_some_and(|a| a.status == 200)
    })
    .await;
}

/// Sends event `n` to the next node in turn until one answers 202, with one
/// `Idempotency-Key` throughout (as a client behind a load balancer would);
/// its request id.
async fn accepted(nodes: &[&ServerProcess], turn: &mut usize, n: i64) -> String {
    let key = format!("event-{n}");
    let body = json!({"event": "order.created", "payload": {"n": n}});
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        *turn = (*turn + 1) % nodes.len();
        let headers = [("idempotency-key", key.as_str())];
        let answer = nodes[*turn]
            .try_call(Method::POST, "/api/v1/events", Some(body.clone()), &headers)
            .await;
        match answer {
            Some(answer) if answer.status == 202 => {
                return answer.json["request_id"].as_str().unwrap().to_owned();
            }
            Some(answer) if answer.status != 503 && answer.status != 409 => {
                panic!("event {n}: {answer:?}")
            }
            _ => {
                assert!(Instant::now() < deadline, "event {n} never accepted");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// With `--local-live-updates`, a node's live updates are its own: node 3
/// shows the event sent to it, numbered by itself, and not node 1's.
#[actix_web::test]
async fn local_live_updates_show_only_the_node_itself() {
    use support::live::{next, subscribe};
    let db = Postgres::start();
    let flag = ["--local-live-updates"];
    let (one, three) = (
        ServerProcess::start_node(db.url(), "node-1", &flag),
        ServerProcess::start_node(db.url(), "node-3", &flag),
    );
    let stream = |node: &ServerProcess| {
        node.url(&format!(
            "/sse/order.created?token={}",
            support::server::TOKEN
        ))
    };
    let (_, _, mut on_1) = subscribe(&stream(&one), &[]).await;
    let (_, _, mut on_3) = subscribe(&stream(&three), &[]).await;
    assert_eq!(
        one.emit_raw("order.created", json!({"n": 1})).await.status,
        202
    );
    assert_eq!(next(&mut on_1).await.id, "1");
    assert_eq!(
        three
            .emit_raw("order.created", json!({"n": 2}))
            .await
            .status,
        202
    );
    let first_on_3 = next(&mut on_3).await;
    assert_eq!(
        (first_on_3.id.as_str(), first_on_3.data.as_str()),
        ("1", r#"{"n":2}"#)
    );
}

/// An event type made on one node checks events on every node when it
/// answers, and its archive frees them on every node; the same name made on
/// two nodes at once is made once.
#[actix_web::test]
async fn event_types_made_on_any_node_check_events_on_every_node_when_it_answers() {
    let db = Postgres::start();
    let nodes = nodes(&db, 3);
    let typed = json!({"name": "order.created", "schema": {"type": "object", "required": ["id"]}});
    let made = post(&nodes[0], "/api/v1/event-types", Some(typed)).await;
    assert_eq!(made.status, 201, "{made:?}");
    for node in &nodes[1..] {
        let refused = node.emit_raw("order.created", json!({"n": 1})).await;
        assert!(problem(&refused, 422).contains("order.created"));
    }
    let archived = nodes[1]
        .api(Method::DELETE, "/api/v1/event-types/order.created", None)
        .await;
    assert_eq!(archived.status, 204, "{archived:?}");
    for node in [&nodes[0], &nodes[2]] {
        let accepted = node.emit_raw("order.created", json!({"n": 2})).await;
        assert_eq!(accepted.status, 202, "{accepted:?}");
    }

    let same = json!({"name": "user.deleted"});
    let (a, b) = futures_util::join!(
        post(&nodes[0], "/api/v1/event-types", Some(same.clone())),
        post(&nodes[2], "/api/v1/event-types", Some(same)),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{a:?} {b:?}");
    let listed = nodes[1].api(Method::GET, "/api/v1/event-types", None).await;
    assert_eq!(listed.json.as_array().map(Vec::len), Some(1), "{listed:?}");
}

/// A node stopped with SIGTERM gives its leases back and leaves the live
/// nodes before it exits: it starts again at once under its name, and the
/// other node delivers its endpoint's events without waiting out the lease
/// (600 s here, far past the test's deadline).
#[actix_web::test]
async fn a_node_stopped_with_sigterm_leaves_the_cluster_at_once() {
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    let first = ServerProcess::start_node_leasing(db.url(), "node-1", "600s");
    first.create(endpoint("crm", receiver.url("/h"))).await;
    first.emit("order.created", json!({"n": 1})).await;
    receiver.take(1).await; // node 1 holds the endpoint's lease
    let second = ServerProcess::start_node_leasing(db.url(), "node-2", "600s");
    assert!(first.terminate().success());

    let again = ServerProcess::start_node_leasing(db.url(), "node-1", "600s");
    second.emit("order.created", json!({"n": 2})).await;
    assert_eq!(receiver.next().await.json(), json!({"n": 2}));
    again.emit("order.created", json!({"n": 3})).await;
    assert_eq!(receiver.next().await.json(), json!({"n": 3}));
}

/// An API key made on one node works on every node when it answers, and
/// its revocation on another node is in force everywhere when that answers.
#[actix_web::test]
async fn api_keys_made_and_revoked_on_any_node_hold_on_every_node_when_it_answers() {
    let db = Postgres::start();
    let nodes = nodes(&db, 3);
    let made = post(
        &nodes[0],
        "/api/v1/api-keys",
        Some(json!({"name": "reader", "scopes": ["endpoints:read"]})),
    )
    .await;
    assert_eq!(made.status, 201, "{made:?}");
    let key = made.json["key"].as_str().unwrap().to_owned();
    for node in &nodes {
        assert_eq!(read_with(node, &key).await.status, 200);
    }
    let id = made.json["id"].as_str().unwrap();
    let revoked = nodes[1]
        .api(Method::DELETE, &format!("/api/v1/api-keys/{id}"), None)
        .await;
    assert_eq!(revoked.status, 204, "{revoked:?}");
    for node in &nodes {
        problem(&read_with(node, &key).await, 401);
    }
}

/// `GET /api/v1/endpoints` with `key` as the bearer token.
async fn read_with(node: &ServerProcess, key: &str) -> support::server::Answer {
    node.call(Method::GET, "/api/v1/endpoints", None, Some(key), &[])
        .await
}

/// An endpoint made on one node with a pattern and channels is routed the
/// same by every node: an event sent to another node, to its channel,
/// reaches it; one sent to another channel does not.
#[actix_web::test]
async fn patterns_and_channels_route_the_same_on_every_node() {
    let db = Postgres::start();
    let mut receiver = Receiver::start();
    let nodes = nodes(&db, 2);
    let mut spec = endpoint("eu", receiver.url("/h"));
    spec["events"] = json!(["order.*"]);
    spec["channels"] = json!(["eu"]);
    nodes[0].create(spec).await;
    let elsewhere = send_to_channel(&nodes[1], "us", 1).await;
    assert_eq!(elsewhere.json["endpoints"], 0, "{elsewhere:?}");
    let here = send_to_channel(&nodes[1], "eu", 2).await;
    assert_eq!(here.json["endpoints"], 1, "{here:?}");
    assert_eq!(receiver.next().await.json(), json!(2));
}

/// `order.paid` with payload `n`, sent to `channel` through `node`.
async fn send_to_channel(node: &ServerProcess, channel: &str, n: i64) -> support::server::Answer {
    let body = json!({"event": "order.paid", "payload": n, "channels": [channel]});
    node.api(Method::POST, "/api/v1/events", Some(body)).await
}

/// An application made on one node has its routes on every node when it
/// answers; its events reach only its endpoints whichever node takes them;
/// deleted on another node, it is gone everywhere, with its keys.
#[actix_web::test]
async fn applications_made_and_deleted_on_any_node_hold_on_every_node_when_it_answers() {
    let db = Postgres::start();
    let (mut acme, mut default) = (Receiver::start(), Receiver::start());
    let nodes = nodes(&db, 2);
    let made = post(
        &nodes[0],
        "/api/v1/apps",
        Some(json!({"id": "acme", "name": "Acme"})),
    )
    .await;
    assert_eq!(made.status, 201, "{made:?}");
    let created = post(
        &nodes[1],
        "/api/v1/apps/acme/endpoints",
        Some(endpoint("crm", acme.url("/h"))),
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");
    nodes[0].create(endpoint("crm", default.url("/h"))).await;
    let key = post(
        &nodes[0],
        "/api/v1/api-keys",
        Some(json!({"name": "acme", "scopes": ["endpoints:read"], "app": "acme"})),
    )
    .await;
    let key = key.json["key"].as_str().unwrap().to_owned();
    assert_eq!(acme_endpoints(&nodes[1], &key).await.status, 200);

    for (turn, node) in nodes.iter().enumerate() {
        let n = turn as i64;
        let to_acme = post(
            node,
            "/api/v1/apps/acme/events",
            Some(json!({"event": "order.created", "payload": {"n": n}})),
        )
        .await;
        assert_eq!(to_acme.json["endpoints"], 1, "{to_acme:?}");
        let to_default = post(
            node,
            "/api/v1/events",
            Some(json!({"event": "order.created", "payload": {"n": -n - 1}})),
        )
        .await;
        assert_eq!(to_default.json["endpoints"], 1, "{to_default:?}");
    }
    // Each in order, none of the other's in between.
    assert_eq!(acme.numbers(2).await, [0, 1]);
    assert_eq!(default.numbers(2).await, [-1, -2]);

    // Changed on one node: read so on the other at once.
    let renamed = nodes[0]
        .api(
            Method::PATCH,
            "/api/v1/apps/acme",
            Some(json!({"name": "Acme Inc."})),
        )
        .await;
    assert_eq!(renamed.status, 200, "{renamed:?}");
    let read = nodes[1].api(Method::GET, "/api/v1/apps/acme", None).await;
    assert_eq!(read.json["name"], "Acme Inc.", "{read:?}");

    let deleted = nodes[1]
        .api(Method::DELETE, "/api/v1/apps/acme", None)
        .await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    problem(
        &nodes[0].api(Method::GET, "/api/v1/apps/acme", None).await,
        404,
    );
    let after = post(
        &nodes[0],
        "/api/v1/apps/acme/events",
        Some(json!({"event": "order.created", "payload": 9})),
    )
    .await;
    problem(&after, 404);
    problem(&acme_endpoints(&nodes[0], &key).await, 401);
    // `default`'s endpoint of the same id is untouched.
    let still = post(
        &nodes[0],
        "/api/v1/events",
        Some(json!({"event": "order.created", "payload": {"n": -3}})),
    )
    .await;
    assert_eq!(still.json["endpoints"], 1, "{still:?}");
    assert_eq!(default.numbers(1).await, [-3]);
}

/// `GET /api/v1/apps/acme/endpoints` with `key` as the bearer token.
async fn acme_endpoints(node: &ServerProcess, key: &str) -> support::server::Answer {
    node.call(
        Method::GET,
        "/api/v1/apps/acme/endpoints",
        None,
        Some(key),
        &[],
    )
    .await
}

/// A message accepted by one node is read, with its attempts, on another,
/// which can also send it again to an endpoint (`recover`).
#[actix_web::test]
async fn messages_accepted_on_one_node_are_read_and_recovered_on_another() {
    let db = Postgres::start();
    let (mut first, mut late) = (Receiver::start(), Receiver::start());
    let nodes = nodes(&db, 2);
    nodes[0].create(endpoint("first", first.url("/h"))).await;
    let sent = post(
        &nodes[0],
        "/api/v1/events",
        Some(json!({"event": "order.created", "payload": {"n": 1}, "request_id": "m-1"})),
    )
    .await;
    assert_eq!(sent.status, 202, "{sent:?}");
    assert_eq!(first.numbers(1).await, [1]);
    let node = &nodes[1];
    eventually("the attempt, read on the other node", || async {
        let answer = node.api(Method::GET, "/api/v1/messages/m-1", None).await;
        answer.json["attempts"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    })
    .await;
    let read = node.api(Method::GET, "/api/v1/messages/m-1", None).await;
    assert_eq!(read.json["payload"], json!({"n": 1}));
    assert_eq!(read.json["attempts"][0]["outcome"], "delivered");
    let since = read.json["accepted_at"].as_str().unwrap().to_owned();
    nodes[1].create(endpoint("late", late.url("/h"))).await;
    let recovered = post(
        &nodes[1],
        "/api/v1/endpoints/late/recover",
        Some(json!({"since": since})),
    )
    .await;
    assert_eq!(recovered.json["recovered"], 1, "{recovered:?}");
    let got = late.next().await;
    assert_eq!(got.n(), 1);
    assert_eq!(got.header("x-webhooks-delivery"), Some("m-1"));
}

/// A portal link made on one node opens its application on every node (one
/// admin token, one key for the links), and never another application.
#[actix_web::test]
async fn a_portal_link_made_on_one_node_works_on_every_node() {
    let db = Postgres::start();
    let nodes = nodes(&db, 2);
    for app in ["acme", "globex"] {
        let made = post(
            &nodes[0],
            "/api/v1/apps",
            Some(json!({"id": app, "name": app})),
        )
        .await;
        assert_eq!(made.status, 201, "{made:?}");
    }
    let link = post(&nodes[1], "/api/v1/apps/acme/portal-links", Some(json!({}))).await;
    let url = link.json["url"].as_str().unwrap();
    let token = url.split_once('#').unwrap().1.to_owned();
    for node in &nodes {
        for (path, status) in [
            ("/api/v1/apps/acme/endpoints", 200),
            ("/api/v1/apps/globex/endpoints", 404),
        ] {
            let answer = node.call(Method::GET, path, None, Some(&token), &[]).await;
            assert_eq!(answer.status, status, "{path}: {answer:?}");
        }
    }
}
