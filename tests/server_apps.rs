//! Applications over real HTTP on loopback: made, listed with a cursor,
//! read, changed and deleted with what they hold; each with endpoints of its
//! own under `/api/v1/apps/{app}`, events that reach only them, idempotency
//! keys of its own; API keys bound to one application, to which every
//! other is 404; all of it kept across a restart.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use awc::http::Method;
use serde_json::{json, Value};
use support::server::{problem, Answer, ServerProcess};
use support::{Receiver, ScratchDir};

async fn make_app(server: &ServerProcess, id: &str) {
    let made = server
        .api(
            Method::POST,
            "/api/v1/apps",
            Some(json!({"id": id, "name": format!("{id} Inc."), "metadata": {"plan": "pro"}})),
        )
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    assert_eq!(made.json["id"], id);
}

/// Endpoint `crm` of `app` to `receiver`, subscribed to `order.*`.
async fn make_endpoint(server: &ServerProcess, app: &str, receiver: &Receiver) {
    let made = server
        .api(
            Method::POST,
            &format!("/api/v1/apps/{app}/endpoints"),
            Some(json!({"id": "crm", "url": receiver.url("/h"), "events": ["order.*"], "max_retries": 1})),
        )
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    assert_eq!(made.json["id"], "crm");
}

async fn emit_in(server: &ServerProcess, app: &str, payload: Value) -> Answer {
    let body = json!({"event": "order.created", "payload": payload});
    server
        .api(
            Method::POST,
            &format!("/api/v1/apps/{app}/events"),
            Some(body),
        )
        .await
}

fn ids(answer: &Answer) -> Vec<String> {
    answer.json["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer:?}"))
        .iter()
        .map(|app| app["id"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn applications_are_made_listed_by_cursor_read_changed_and_deleted() {
    let dir = ScratchDir::new("apps-crud");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    // `default` is there from the start.
    let listed = server.api(Method::GET, "/api/v1/apps", None).await;
    assert_eq!(ids(&listed), ["default"]);
    for id in ["d-app", "a-app", "c-app", "b-app"] {
        make_app(&server, id).await;
    }
    let again = server
        .api(
            Method::POST,
            "/api/v1/apps",
            Some(json!({"id": "a-app", "name": "again"})),
        )
        .await;
    problem(&again, 409);

    // Pages of two, by id, each cursor the last id of its page.
    let mut seen = Vec::new();
    let mut path = "/api/v1/apps?limit=2".to_owned();
    loop {
        let page = server.api(Method::GET, &path, None).await;
        assert_eq!(page.status, 200, "{page:?}");
        assert!(ids(&page).len() <= 2);
        seen.extend(ids(&page));
        match page.json["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/apps?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["a-app", "b-app", "c-app", "d-app", "default"]);
    for bad in ["limit=0", "limit=251", "limit=x", "other=1"] {
        let refused = server
            .api(Method::GET, &format!("/api/v1/apps?{bad}"), None)
            .await;
        problem(&refused, 400);
    }

    let read = server.api(Method::GET, "/api/v1/apps/b-app", None).await;
    assert_eq!(read.json["name"], "b-app Inc.");
    assert_eq!(read.json["metadata"], json!({"plan": "pro"}));
    let changed = server
        .api(
            Method::PATCH,
            "/api/v1/apps/b-app",
            Some(json!({"name": "Bee", "metadata": {}})),
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    assert_eq!(changed.json["name"], "Bee");
    assert_eq!(changed.json["metadata"], json!({}));
    for patch in [
        json!({"name": null}),
        json!({"name": ""}),
        json!({"id": "x"}),
        json!({"metadata": {"": "v"}}),
    ] {
        let refused = server
            .api(Method::PATCH, "/api/v1/apps/b-app", Some(patch.clone()))
            .await;
        problem(&refused, 400);
    }
    for spec in [
        json!({"id": "a/b", "name": "x"}),
        json!({"id": "..", "name": "x"}),
        json!({"id": "a~b", "name": "x"}),
        json!({"id": "ok", "name": ""}),
        json!({"id": "ok", "name": "x", "metadata": {"k": "v".repeat(1025)}}),
        json!({"id": "ok"}),
    ] {
        let refused = server
            .api(Method::POST, "/api/v1/apps", Some(spec.clone()))
            .await;
        problem(&refused, 400);
    }

    let deleted = server.api(Method::DELETE, "/api/v1/apps/b-app", None).await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    for (method, path) in [
        (Method::GET, "/api/v1/apps/b-app"),
        (Method::DELETE, "/api/v1/apps/b-app"),
        (Method::GET, "/api/v1/apps/b-app/endpoints"),
        (Method::GET, "/api/v1/apps/nope/endpoints/crm"),
    ] {
        let gone = server.api(method.clone(), path, None).await;
        problem(&gone, 404);
    }
    let default = server
        .api(Method::DELETE, "/api/v1/apps/default", None)
        .await;
    problem(&default, 409);
    let listed = server.api(Method::GET, "/api/v1/apps", None).await;
    assert_eq!(ids(&listed), ["a-app", "c-app", "d-app", "default"]);
}

#[actix_web::test]
async fn each_application_gets_only_its_own_events_on_its_own_routes() {
    let dir = ScratchDir::new("apps-isolation");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let (mut acme, mut globex, mut default) =
        (Receiver::start(), Receiver::start(), Receiver::start());
    make_app(&server, "acme").await;
    make_app(&server, "globex").await;
    // One endpoint id in three applications.
    make_endpoint(&server, "acme", &acme).await;
    make_endpoint(&server, "globex", &globex).await;
    make_endpoint(&server, "default", &default).await;

    let to_acme = emit_in(&server, "acme", json!("a1")).await;
    assert_eq!(to_acme.status, 202, "{to_acme:?}");
    assert_eq!(to_acme.json["endpoints"], 1, "only acme's endpoint");
    let batch = server
        .api(
            Method::POST,
            "/api/v1/apps/globex/events/batch",
            Some(json!({"events": [{"event": "order.paid", "payload": "g1"}]})),
        )
        .await;
    assert_eq!(batch.json["results"][0]["endpoints"], 1, "{batch:?}");
    server.emit("order.created", json!("d1")).await;
    let to_nobody = emit_in(&server, "nope", json!("x")).await;
    problem(&to_nobody, 404);
    assert_eq!(acme.next().await.json(), json!("a1"));
    assert_eq!(globex.next().await.json(), json!("g1"));
    assert_eq!(default.next().await.json(), json!("d1"));

    // One idempotency key in two applications: two events, not a replay.
    for (app, payload) in [("acme", "a2"), ("globex", "g2")] {
        let keyed = server
            .call(
                Method::POST,
                &format!("/api/v1/apps/{app}/events"),
                Some(json!({"event": "order.created", "payload": payload})),
                Some(support::server::TOKEN),
                &[("idempotency-key", "same-key")],
            )
            .await;
        assert_eq!(keyed.status, 202, "{keyed:?}");
        assert_eq!(keyed.headers.get("idempotent-replayed"), None, "{keyed:?}");
    }
    // Each receiver gets its own next, nothing of the others' in between.
    assert_eq!(acme.next().await.json(), json!("a2"));
    assert_eq!(globex.next().await.json(), json!("g2"));

    // Every endpoint route, under the application.
    let base = "/api/v1/apps/acme/endpoints";
    let listed = server.api(Method::GET, base, None).await;
    assert_eq!(listed.json.as_array().map(Vec::len), Some(1), "{listed:?}");
    // Written by the attempt log as the reports come: polled.
    let attempts = tokio::time::timeout(support::DEADLINE, async {
        loop {
            let answer = server
                .api(Method::GET, &format!("{base}/crm/attempts"), None)
                .await;
            if answer.json.as_array().is_some_and(|a| a.len() == 2) {
                return answer;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("two attempts logged");
    assert_eq!(attempts.json[0]["endpoint"], "crm", "{attempts:?}");
    assert!(
        !attempts.text.contains("g1") && !attempts.text.contains("d1"),
        "{attempts:?}"
    );
    for (method, path, status) in [
        (Method::GET, format!("{base}/crm"), 200),
        (Method::GET, format!("{base}/crm/stats"), 200),
        (Method::GET, format!("{base}/crm/dead-letters"), 200),
        (Method::POST, format!("{base}/crm/pause"), 200),
        (Method::POST, format!("{base}/crm/resume"), 200),
        (Method::POST, format!("{base}/crm/secret/rotate"), 200),
        (
            Method::POST,
            format!("{base}/crm/dead-letters/redeliver-all"),
            202,
        ),
        (Method::GET, format!("{base}/other"), 404),
        (Method::GET, format!("{base}/other/attempts"), 404),
        (Method::POST, format!("{base}/other/pause"), 404),
    ] {
        let answer = server.api(method.clone(), &path, None).await;
        assert_eq!(answer.status, status, "{method} {path}: {answer:?}");
    }
    let tested = server
        .api(Method::POST, &format!("{base}/crm/test"), None)
        .await;
    assert_eq!(tested.json["ok"], true, "{tested:?}");
    assert_eq!(acme.next().await.json()["test"], true);
    let changed = server
        .api(
            Method::PATCH,
            &format!("{base}/crm"),
            Some(json!({"events": ["user.*"]})),
        )
        .await;
    assert_eq!(changed.json["events"], json!(["user.*"]), "{changed:?}");
    // globex's and default's endpoints did not change.
    let theirs = server
        .api(Method::GET, "/api/v1/apps/globex/endpoints/crm", None)
        .await;
    assert_eq!(theirs.json["events"], json!(["order.*"]));
    assert_eq!(theirs.json["state"], "active");
    let deleted = server
        .api(Method::DELETE, &format!("{base}/crm"), None)
        .await;
    assert_eq!(deleted.status, 204);
    let still = server.api(Method::GET, "/api/v1/endpoints/crm", None).await;
    assert_eq!(still.status, 200, "default's crm stays: {still:?}");
    server.emit("order.created", json!("d2")).await;
    assert_eq!(default.next().await.json(), json!("d2"));
}

#[actix_web::test]
async fn deleting_an_application_removes_its_endpoints_and_keys_for_good() {
    let dir = ScratchDir::new("apps-delete");
    let journal = dir.file("j.redb");
    let mut server = ServerProcess::start(&journal, &[]);
    let (mut acme, mut globex) = (Receiver::start(), Receiver::start());
    make_app(&server, "acme").await;
    make_app(&server, "globex").await;
    make_endpoint(&server, "acme", &acme).await;
    make_endpoint(&server, "globex", &globex).await;
    let key = server
        .api(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "acme", "scopes": ["endpoints:read"], "app": "acme"})),
        )
        .await;
    let key = key.json["key"].as_str().unwrap().to_owned();
    assert_eq!(emit_in(&server, "acme", json!(1)).await.status, 202);
    assert_eq!(acme.next().await.json(), json!(1));

    let deleted = server.api(Method::DELETE, "/api/v1/apps/acme", None).await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    let refused = server
        .call(
            Method::GET,
            "/api/v1/apps/acme/endpoints",
            None,
            Some(&key),
            &[],
        )
        .await;
    problem(&refused, 401);
    let keys = server.api(Method::GET, "/api/v1/api-keys", None).await;
    assert_eq!(keys.json, json!([]), "its keys are revoked");

    // Made again with the same id, after a restart: empty, the old key
    // still refused, the old endpoint not back.
    drop(server);
    server = ServerProcess::start(&journal, &[]);
    make_app(&server, "acme").await;
    let endpoints = server
        .api(Method::GET, "/api/v1/apps/acme/endpoints", None)
        .await;
    assert_eq!(endpoints.json, json!([]), "{endpoints:?}");
    let messages = server
        .api(Method::GET, "/api/v1/apps/acme/messages", None)
        .await;
    assert_eq!(messages.json["data"], json!([]), "its messages went too");
    let answer = emit_in(&server, "acme", json!(2)).await;
    assert_eq!(answer.json["endpoints"], 0, "{answer:?}");
    let old_key = server
        .call(Method::GET, "/api/v1/apps", None, Some(&key), &[])
        .await;
    problem(&old_key, 401);
    // globex kept its endpoint, and acme's receiver gets nothing more:
    // globex's event comes and acme's receiver is still empty after it.
    assert_eq!(emit_in(&server, "globex", json!(3)).await.status, 202);
    assert_eq!(globex.next().await.json(), json!(3));
    assert!(acme.try_next().is_none(), "nothing after the delete");
}

#[actix_web::test]
async fn a_key_bound_to_an_application_sees_only_it() {
    let dir = ScratchDir::new("apps-keys");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let mut acme = Receiver::start();
    let globex = Receiver::start();
    make_app(&server, "acme").await;
    make_app(&server, "globex").await;
    make_endpoint(&server, "globex", &globex).await;
    let all = [
        "events:write",
        "endpoints:read",
        "endpoints:write",
        "messages:read",
        "event-types:write",
        "apps:admin",
    ];
    let made = server
        .api(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "acme's", "scopes": all, "app": "acme"})),
        )
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    assert_eq!(made.json["app"], "acme");
    let key = made.json["key"].as_str().unwrap().to_owned();
    let as_key = |method: Method, path: String, body: Option<Value>| {
        let (server, key) = (&server, key.clone());
        async move { server.call(method, &path, body, Some(&key), &[]).await }
    };

    // Its own application: everything its scopes allow.
    let spec = json!({"id": "crm", "url": acme.url("/h"), "events": ["order.*"]});
    let created = as_key(
        Method::POST,
        "/api/v1/apps/acme/endpoints".into(),
        Some(spec),
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");
    let sent = as_key(
        Method::POST,
        "/api/v1/apps/acme/events".into(),
        Some(json!({"event": "order.created", "payload": "mine"})),
    )
    .await;
    assert_eq!(sent.status, 202, "{sent:?}");
    assert_eq!(acme.next().await.json(), json!("mine"));
    let own = as_key(Method::GET, "/api/v1/apps/acme".into(), None).await;
    assert_eq!(own.status, 200, "{own:?}");
    let renamed = as_key(
        Method::PATCH,
        "/api/v1/apps/acme".into(),
        Some(json!({"name": "ACME"})),
    )
    .await;
    assert_eq!(renamed.status, 200, "{renamed:?}");
    let listed = as_key(Method::GET, "/api/v1/apps".into(), None).await;
    assert_eq!(ids(&listed), ["acme"], "only its own application");

    // Any other application, `default` included, is 404, in the words a
    // missing one gets.
    let missing = as_key(Method::GET, "/api/v1/apps/nope/endpoints".into(), None).await;
    let missing = problem(&missing, 404).replace("nope", "X");
    for (method, path, app) in [
        (Method::GET, "/api/v1/apps/globex", "globex"),
        (Method::GET, "/api/v1/apps/globex/endpoints", "globex"),
        (Method::GET, "/api/v1/apps/globex/endpoints/crm", "globex"),
        (
            Method::GET,
            "/api/v1/apps/globex/endpoints/crm/attempts",
            "globex",
        ),
        (Method::DELETE, "/api/v1/apps/globex", "globex"),
        (Method::POST, "/api/v1/apps/globex/events", "globex"),
        (Method::GET, "/api/v1/endpoints", "default"),
        (Method::POST, "/api/v1/events", "default"),
        (Method::GET, "/api/v1/apps/default", "default"),
    ] {
        let body = (method == Method::POST)
            .then(|| json!({"event": "order.created", "payload": "theirs"}));
        let answer = as_key(method.clone(), path.into(), body).await;
        let detail = problem(&answer, 404);
        assert_eq!(detail.replace(app, "X"), missing, "{method} {path}");
    }
    // What every application shares, or makes one: refused.
    let new_app = as_key(
        Method::POST,
        "/api/v1/apps".into(),
        Some(json!({"id": "mine2", "name": "x"})),
    )
    .await;
    problem(&new_app, 403);
    let new_type = as_key(
        Method::POST,
        "/api/v1/event-types".into(),
        Some(json!({"name": "order.created"})),
    )
    .await;
    problem(&new_type, 403);
    // globex's endpoint was not touched.
    let theirs = server
        .api(Method::GET, "/api/v1/apps/globex/endpoints/crm", None)
        .await;
    assert_eq!(theirs.status, 200);
    assert_eq!(theirs.json["stats"]["delivered"], 0, "{theirs:?}");

    // A key bound to an application that does not exist is not made.
    let unbound = server
        .api(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "x", "scopes": ["events:write"], "app": "nope"})),
        )
        .await;
    problem(&unbound, 400);
}

#[actix_web::test]
async fn applications_and_their_endpoints_survive_a_restart() {
    let dir = ScratchDir::new("apps-restart");
    let journal = dir.file("j.redb");
    let (mut acme, mut default) = (Receiver::start(), Receiver::start());
    {
        let server = ServerProcess::start(&journal, &[]);
        make_app(&server, "acme").await;
        make_endpoint(&server, "acme", &acme).await;
        make_endpoint(&server, "default", &default).await;
        assert_eq!(server.terminate().code(), Some(0));
    }
    let server = ServerProcess::start(&journal, &[]);
    let read = server.api(Method::GET, "/api/v1/apps/acme", None).await;
    assert_eq!(read.json["name"], "acme Inc.", "{read:?}");
    assert_eq!(
        emit_in(&server, "acme", json!("a")).await.json["endpoints"],
        1
    );
    server.emit("order.created", json!("d")).await;
    assert_eq!(acme.next().await.json(), json!("a"));
    assert_eq!(default.next().await.json(), json!("d"));
    // Each still only its own: one more each, and it comes next.
    assert_eq!(emit_in(&server, "acme", json!("a2")).await.status, 202);
    server.emit("order.created", json!("d2")).await;
    assert_eq!(acme.next().await.json(), json!("a2"));
    assert_eq!(default.next().await.json(), json!("d2"));
}

/// Run as a child process by the test below (it does nothing otherwise):
/// with the library alone, writes a journal as the server wrote it before
/// applications: an endpoint record without `app`, and an event queued for
/// that endpoint's emitter id, not yet delivered (its emitter here points
/// to a closed port).
#[actix_web::test]
async fn child_writes_a_journal_from_before_applications() {
    let (Some(path), Some(url)) = (
        std::env::var_os("OLD_JOURNAL"),
        std::env::var("OLD_RECEIVER").ok(),
    ) else {
        return;
    };
    let journal = webhooks_emitter::Journal::open(&path).unwrap();
    let record = json!({
        "spec": {"id": "crm", "url": url, "events": ["order.created"]},
        "retiring_keys": [],
        "created_at": 1_700_000_000u64,
    });
    journal
        .put_record("endpoints", "crm", serde_json::to_vec(&record).unwrap())
        .await
        .unwrap();
    let emitter = webhooks_emitter::WebhooksEmitter::builder()
        .store(journal)
        .start();
    let closed = format!("http://{}/h", support::refused_addr());
    emitter
        .attach("crm", "order.created", support::fast_config(closed))
        .await
        .unwrap();
    emitter
        .emit_durable("order.created", &json!({"n": 1}), None)
        .await
        .unwrap();
    // The process exits here: the event stays queued in the file.
}

/// A journal from before applications loads unchanged: its endpoint is the
/// application `default`'s under the same id, and the event queued for it
/// then is delivered.
#[actix_web::test]
async fn a_journal_from_before_applications_loads_as_the_default_application() {
    let dir = ScratchDir::new("apps-old-journal");
    let journal = dir.file("j.redb");
    let mut receiver = Receiver::start();
    let written = support::this_test_binary("child_writes_a_journal_from_before_applications")
        .env("OLD_JOURNAL", &journal)
        .env("OLD_RECEIVER", receiver.url("/h"))
        .status()
        .unwrap();
    assert!(written.success());
    let server = ServerProcess::start(&journal, &[]);
    assert_eq!(receiver.numbers(1).await, [1], "the event queued before");
    let read = server
        .api(Method::GET, "/api/v1/apps/default/endpoints/crm", None)
        .await;
    assert_eq!(read.status, 200, "{read:?}");
    server.emit("order.created", json!({"n": 2})).await;
    assert_eq!(receiver.numbers(1).await, [2]);
}
