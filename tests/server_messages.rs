//! Messages over real HTTP on loopback: every accepted event is logged per
//! application, listed newest first with filters and a cursor, read with
//! its attempts at each endpoint, sent again to one endpoint (`recover`)
//! in its original order with its original ids, and dropped to its metadata
//! once `--retention` is over; kept across a restart.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use awc::http::Method;
use serde_json::{json, Value};
use support::server::{problem, Answer, ServerProcess};
use support::{Receiver, Reply, ScratchDir};

async fn make_endpoint(server: &ServerProcess, app: &str, id: &str, spec: Value) {
    let mut spec = spec;
    spec["id"] = json!(id);
    let made = server
        .api(
            Method::POST,
            &format!("/api/v1/apps/{app}/endpoints"),
            Some(spec),
        )
        .await;
    assert_eq!(made.status, 201, "{made:?}");
}

async fn send(server: &ServerProcess, app: &str, body: Value) -> Answer {
    let sent = server
        .api(
            Method::POST,
            &format!("/api/v1/apps/{app}/events"),
            Some(body),
        )
        .await;
    assert_eq!(sent.status, 202, "{sent:?}");
    sent
}

/// The version digit of a UUID, if `id` looks like one.
fn uuid_version(id: &str) -> Option<char> {
    (id.len() == 36).then(|| id.chars().nth(14)).flatten()
}

/// The request ids of a page, in its order.
fn ids(page: &Answer) -> Vec<String> {
    page.json["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{page:?}"))
        .iter()
        .map(|m| m["request_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn list(server: &ServerProcess, app: &str, query: &str) -> Answer {
    let page = server
        .api(
            Method::GET,
            &format!("/api/v1/apps/{app}/messages?{query}"),
            None,
        )
        .await;
    assert_eq!(page.status, 200, "{query}: {page:?}");
    page
}

/// Polls `read` (a state the server shows, not a timing) until `done`.
async fn until_shown(
    mut read: impl AsyncFnMut() -> Answer,
    done: impl Fn(&Answer) -> bool,
) -> Answer {
    tokio::time::timeout(support::DEADLINE, async {
        loop {
            let answer = read().await;
            if done(&answer) {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the server never showed it")
}

#[actix_web::test]
async fn every_accepted_event_is_a_message_listed_newest_first_with_filters() {
    let dir = ScratchDir::new("messages-list");
    let journal = dir.file("j.redb");
    let mut server = ServerProcess::start(&journal, &[]);
    let receiver = Receiver::start();
    server.make_app("acme", "acme").await;
    server.make_app("globex", "globex").await;
    make_endpoint(
        &server,
        "acme",
        "crm",
        json!({"url": receiver.url("/h"), "events": ["order.*"], "channels": ["eu"]}),
    )
    .await;
    let mut sent = Vec::new();
    for (n, event, channels) in [
        (1, "order.created", json!([])),
        (2, "user.deleted", json!(["eu"])),
        (3, "order.paid", json!(["us"])),
    ] {
        let body = json!({"event": event, "payload": {"n": n}, "channels": channels});
        sent.push(
            send(&server, "acme", body).await.json["request_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let batch = server
        .api(
            Method::POST,
            "/api/v1/apps/acme/events/batch",
            Some(json!({"events": [
                {"event": "order.created", "payload": {"n": 4}, "request_id": "given-4"},
                {"event": "bad name", "payload": {"n": 5}},
            ]})),
        )
        .await;
    assert_eq!(batch.json["accepted"], 1, "{batch:?}");
    sent.push("given-4".into());
    // Keyed twice: one message.
    for _ in 0..2 {
        let keyed = server
            .call(
                Method::POST,
                "/api/v1/apps/acme/events",
                Some(
                    json!({"event": "order.created", "payload": {"n": 6}, "request_id": "keyed-6"}),
                ),
                Some(support::server::TOKEN),
                &[("idempotency-key", "k6")],
            )
            .await;
        assert_eq!(keyed.status, 202, "{keyed:?}");
    }
    sent.push("keyed-6".into());
    send(
        &server,
        "globex",
        json!({"event": "order.created", "payload": {"n": 7}}),
    )
    .await;

    let newest_first: Vec<String> = sent.iter().rev().cloned().collect();
    let all = list(&server, "acme", "").await;
    assert_eq!(ids(&all), newest_first);
    assert_eq!(all.json.get("next_cursor"), None);
    let first = &all.json["data"][4];
    assert_eq!(first["event"], "order.created");
    assert_eq!(first["payload"], json!({"n": 1}));
    assert_eq!(first["expired"], false);
    assert_eq!(first["endpoints"], 1);
    assert_eq!(all.json["data"][3]["channels"], json!(["eu"]));

    // Found by request id: those the server made (UUIDv7, found by their
    // millisecond) and those given (found by an index record).
    for (id, n) in [(&sent[0], 1), (&sent[2], 3), (&sent[3], 4), (&sent[4], 6)] {
        let one = server
            .api(
                Method::GET,
                &format!("/api/v1/apps/acme/messages/{id}"),
                None,
            )
            .await;
        assert_eq!(one.json["payload"], json!({"n": n}), "{id}: {one:?}");
    }
    let v7 = uuid_version(&sent[0]);
    assert_eq!(v7, Some('7'), "{}", sent[0]);

    // Pages of two, each going on where the last stopped.
    let mut paged = Vec::new();
    let mut query = "limit=2".to_owned();
    loop {
        let page = list(&server, "acme", &query).await;
        paged.extend(ids(&page));
        match page.json["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged, newest_first);

    // Filters.
    let orders = list(&server, "acme", "event=order.*").await;
    assert_eq!(
        ids(&orders),
        [&sent[4], &sent[3], &sent[2], &sent[0]].map(String::clone)
    );
    let created = list(&server, "acme", "event=order.created").await;
    assert_eq!(
        ids(&created),
        [&sent[4], &sent[3], &sent[0]].map(String::clone)
    );
    let eu = list(&server, "acme", "channel=eu").await;
    assert_eq!(ids(&eu), [sent[1].clone()]);
    let times: Vec<String> = all.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["accepted_at"].as_str().unwrap().to_owned())
        .collect();
    // Since the second's time: the second and after (times are shown to
    // the millisecond, and events a millisecond apart may share one).
    let since = list(&server, "acme", &format!("since={}", times[3])).await;
    assert!(ids(&since).contains(&sent[1]), "{since:?}");
    assert!(!ids(&since).contains(&sent[0]) || times[4] == times[3]);
    let until = list(&server, "acme", &format!("until={}", times[3])).await;
    assert!(!ids(&until).contains(&sent[1]), "{until:?}");
    let globex = list(&server, "globex", "").await;
    assert_eq!(globex.json["data"].as_array().map(Vec::len), Some(1));

    for bad in [
        "limit=0",
        "limit=251",
        "since=yesterday",
        "until=2026-13-01T00:00:00Z",
        "cursor=%20",
        "other=1",
    ] {
        let refused = server
            .api(
                Method::GET,
                &format!("/api/v1/apps/acme/messages?{bad}"),
                None,
            )
            .await;
        problem(&refused, 400);
    }
    problem(
        &server
            .api(Method::GET, "/api/v1/apps/nope/messages", None)
            .await,
        404,
    );

    // Kept across a restart.
    drop(server);
    server = ServerProcess::start(&journal, &[]);
    assert_eq!(ids(&list(&server, "acme", "").await), newest_first);
}

#[actix_web::test]
async fn a_message_shows_its_attempts_at_each_endpoint() {
    let dir = ScratchDir::new("messages-read");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let (mut failing, mut fine) = (Receiver::start(), Receiver::start());
    failing.script([Reply::Body(500, "out of cheese".into()), Reply::Status(200)]);
    server.make_app("acme", "acme").await;
    let retry =
        json!({"events": ["order.*"], "max_retries": 3, "backoff_ms": {"start": 10, "limit": 20}});
    let mut spec = retry.clone();
    spec["url"] = json!(failing.url("/h"));
    make_endpoint(&server, "acme", "failing", spec).await;
    let mut spec = retry;
    spec["url"] = json!(fine.url("/h"));
    make_endpoint(&server, "acme", "fine", spec).await;
    let sent = send(
        &server,
        "acme",
        json!({"event": "order.created", "payload": {"n": 1}, "request_id": "req-1"}),
    )
    .await;
    assert_eq!(sent.json["endpoints"], 2);
    failing.take(2).await;
    fine.next().await;

    let path = "/api/v1/apps/acme/messages/req-1";
    let read = until_shown(
        async || server.api(Method::GET, path, None).await,
        |answer| {
            answer.json["attempts"]
                .as_array()
                .is_some_and(|a| a.len() == 3)
        },
    )
    .await;
    assert_eq!(read.json["request_id"], "req-1");
    assert_eq!(read.json["payload"], json!({"n": 1}));
    let attempts = read.json["attempts"].as_array().unwrap();
    let at = |endpoint: &str, outcome: &str| {
        attempts
            .iter()
            .find(|a| a["endpoint"] == endpoint && a["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {outcome} at {endpoint}: {attempts:?}"))
    };
    let failed = at("failing", "failed");
    assert_eq!(failed["status"], 500);
    assert_eq!(failed["response_body"], "out of cheese");
    assert_eq!(at("failing", "delivered")["attempt"], 2);
    assert_eq!(at("fine", "delivered")["status"], 200);

    problem(
        &server
            .api(Method::GET, "/api/v1/apps/acme/messages/nope", None)
            .await,
        404,
    );
    server.make_app("globex", "globex").await;
    problem(
        &server
            .api(Method::GET, "/api/v1/apps/globex/messages/req-1", None)
            .await,
        404,
    );
    problem(
        &server
            .api(Method::GET, "/api/v1/messages/req-1", None)
            .await,
        404,
    );
}

#[actix_web::test]
async fn recover_sends_an_endpoint_again_what_it_subscribes_to_in_order_with_the_original_ids() {
    let dir = ScratchDir::new("messages-recover");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let (mut first, mut late) = (Receiver::start(), Receiver::start());
    server.make_app("acme", "acme").await;
    make_endpoint(
        &server,
        "acme",
        "first",
        json!({"url": first.url("/h"), "events": ["*"]}),
    )
    .await;
    let mut sent = Vec::new();
    for (n, event, channels) in [
        (1, "order.created", json!([])),
        (2, "user.deleted", json!([])),
        (3, "order.paid", json!(["us"])),
        (4, "order.paid", json!(["eu"])),
        (5, "order.created", json!([])),
    ] {
        let body = json!({"event": event, "payload": {"n": n}, "channels": channels});
        sent.push(
            send(&server, "acme", body).await.json["request_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // On no channel, it gets only the events sent without one.
    assert_eq!(first.numbers(3).await, [1, 2, 5]);
    let all = list(&server, "acme", "").await;
    let oldest = all.json["data"][4]["accepted_at"]
        .as_str()
        .unwrap()
        .to_owned();

    // An endpoint made afterwards, on `order.*` and channel `eu`.
    make_endpoint(
        &server,
        "acme",
        "late",
        json!({"url": late.url("/h"), "events": ["order.*"], "channels": ["eu"]}),
    )
    .await;
    let recover = "/api/v1/apps/acme/endpoints/late/recover";
    let answer = server
        .api(Method::POST, recover, Some(json!({"since": oldest})))
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(answer.json, json!({"recovered": 3, "expired": 0}));
    let got = late.take(3).await;
    assert_eq!(got.iter().map(|r| r.n()).collect::<Vec<_>>(), [1, 4, 5]);
    let delivered: Vec<&str> = got
        .iter()
        .map(|r| r.header("x-webhooks-delivery").unwrap())
        .collect();
    assert_eq!(delivered, [&sent[0], &sent[3], &sent[4]]);
    // The first endpoint got nothing again: its next is a new event.
    send(
        &server,
        "acme",
        json!({"event": "order.created", "payload": {"n": 6}}),
    )
    .await;
    assert_eq!(first.numbers(1).await, [6]);

    // A window that ends before the last two.
    let until = all.json["data"][1]["accepted_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let part = server
        .api(
            Method::POST,
            recover,
            Some(json!({"since": oldest, "until": until})),
        )
        .await;
    // Of 1 to 3 (the 4th's time is the end, exclusive), `late` subscribes
    // to the 1st only (the 2nd is `user.deleted`, the 3rd on `us`).
    assert_eq!(part.json, json!({"recovered": 1, "expired": 0}), "{part:?}");
    // After the 6th, sent to every endpoint live meanwhile.
    assert_eq!(late.numbers(2).await, [6, 1]);

    // One message, sent again to one endpoint, with its id.
    let resend = format!(
        "/api/v1/apps/acme/endpoints/late/messages/{}/resend",
        sent[1]
    );
    let again = server.api(Method::POST, &resend, None).await;
    assert_eq!(again.status, 202, "{again:?}");
    let got = late.next().await;
    assert_eq!(got.n(), 2, "sent whatever its subscription");
    assert_eq!(got.header("x-webhooks-delivery"), Some(sent[1].as_str()));
    for path in [
        "/api/v1/apps/acme/endpoints/late/messages/nope/resend",
        "/api/v1/apps/acme/endpoints/nope/messages/x/resend",
    ] {
        problem(&server.api(Method::POST, path, None).await, 404);
    }

    for bad in [
        json!({}),
        json!({"since": "yesterday"}),
        json!({"since": oldest, "until": oldest}),
        json!({"since": oldest, "other": 1}),
    ] {
        let refused = server.api(Method::POST, recover, Some(bad.clone())).await;
        problem(&refused, 400);
    }
    let unknown = server
        .api(
            Method::POST,
            "/api/v1/apps/acme/endpoints/nope/recover",
            Some(json!({"since": oldest})),
        )
        .await;
    problem(&unknown, 404);
}

#[actix_web::test]
async fn past_the_retention_a_message_keeps_its_metadata_and_attempts_go() {
    let dir = ScratchDir::new("messages-retention");
    let server = ServerProcess::start(&dir.file("j.redb"), &["--retention", "2s"]);
    let mut receiver = Receiver::start();
    server.make_app("acme", "acme").await;
    make_endpoint(
        &server,
        "acme",
        "crm",
        json!({"url": receiver.url("/h"), "events": ["order.created"]}),
    )
    .await;
    let sent = send(
        &server,
        "acme",
        json!({"event": "order.created", "payload": {"n": 1}, "request_id": "old"}),
    )
    .await;
    assert_eq!(sent.json["endpoints"], 1);
    receiver.next().await;
    let fresh = server
        .api(Method::GET, "/api/v1/apps/acme/messages/old", None)
        .await;
    assert_eq!(fresh.json["payload"], json!({"n": 1}), "{fresh:?}");
    let oldest = fresh.json["accepted_at"].as_str().unwrap().to_owned();

    let expired = until_shown(
        async || {
            server
                .api(Method::GET, "/api/v1/apps/acme/messages/old", None)
                .await
        },
        |answer| answer.json["expired"] == true,
    )
    .await;
    assert_eq!(expired.json["payload"], Value::Null);
    assert_eq!(expired.json["event"], "order.created");
    assert_eq!(expired.json["request_id"], "old");
    until_shown(
        async || {
            server
                .api(
                    Method::GET,
                    "/api/v1/apps/acme/endpoints/crm/attempts",
                    None,
                )
                .await
        },
        |answer| answer.json == json!([]),
    )
    .await;
    let recovered = server
        .api(
            Method::POST,
            "/api/v1/apps/acme/endpoints/crm/recover",
            Some(json!({"since": oldest})),
        )
        .await;
    assert_eq!(
        recovered.json,
        json!({"recovered": 0, "expired": 1}),
        "{recovered:?}"
    );
    let resend = server
        .api(
            Method::POST,
            "/api/v1/apps/acme/endpoints/crm/messages/old/resend",
            None,
        )
        .await;
    problem(&resend, 409);
    // Nothing was sent: the next request is a new event.
    send(
        &server,
        "acme",
        json!({"event": "order.created", "payload": {"n": 2}}),
    )
    .await;
    assert_eq!(receiver.numbers(1).await, [2]);
}

/// A page reads at most ten pages' worth of records: a filter that matches
/// only old messages answers short pages with a cursor, and following the
/// cursors finds them.
#[actix_web::test]
async fn a_rare_filter_answers_short_pages_with_a_cursor_until_it_finds() {
    let dir = ScratchDir::new("messages-rare");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    server.make_app("acme", "acme").await;
    send(&server, "acme", json!({"event": "rare", "payload": 0})).await;
    for n in 1..=25 {
        send(&server, "acme", json!({"event": "common", "payload": n})).await;
    }
    let mut query = "event=rare&limit=1".to_owned();
    let mut pages = 0;
    let found = loop {
        let page = list(&server, "acme", &query).await;
        pages += 1;
        if let Some(message) = page.json["data"].as_array().and_then(|d| d.first()) {
            break message.clone();
        }
        let cursor = page.json["next_cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("an empty last page: {page:?}"));
        query = format!("event=rare&limit=1&cursor={cursor}");
    };
    assert_eq!(found["event"], "rare");
    // 10 records read per page of 1: two empty pages, then the third.
    assert_eq!(pages, 3);
}
