//! The event-type catalog over real HTTP on loopback: every route, schema
//! validation of single and batched events (422 naming the JSON pointer),
//! archive and restore, and a restart that keeps the catalog in force.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use awc::http::Method;
use serde_json::{json, Value};
use support::server::{problem, ServerProcess};
use support::{Receiver, ScratchDir};

const TYPES: &str = "/api/v1/event-types";

fn order_created() -> Value {
    json!({
        "name": "order.created",
        "description": "An order was placed.",
        "schema": {
            "type": "object",
            "required": ["id", "total"],
            "properties": {
                "id": {"type": "string"},
                "total": {"type": "number", "minimum": 0},
                "lines": {"type": "array", "items": {"type": "object", "required": ["sku"]}}
            }
        }
    })
}

async fn endpoint_to(server: &ServerProcess, receiver: &Receiver) {
    server
        .create(json!({
            "id": "crm",
            "url": receiver.url("/hooks"),
            "events": ["order.created", "order.untyped"],
            "max_retries": 1,
        }))
        .await;
}

#[actix_web::test]
async fn every_route_creates_lists_reads_changes_and_archives() {
    let dir = ScratchDir::new("types-routes");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);

    let created = server.api(Method::POST, TYPES, Some(order_created())).await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.json["name"], "order.created");
    assert_eq!(created.json["archived"], false);
    assert_eq!(created.json["schema"]["required"], json!(["id", "total"]));
    let at = created.json["created_at"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(at).is_ok(), "{at}");

    let again = server.api(Method::POST, TYPES, Some(order_created())).await;
    assert!(problem(&again, 409).contains("already exists"));
    let plain = json!({"name": "user.deleted", "deprecated": true});
    assert_eq!(
        server.api(Method::POST, TYPES, Some(plain)).await.status,
        201
    );

    let listed = server.api(Method::GET, TYPES, None).await;
    let names: Vec<&str> = listed
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["order.created", "user.deleted"]);
    let read = server
        .api(Method::GET, &format!("{TYPES}/user.deleted"), None)
        .await;
    assert_eq!((read.status, &read.json["deprecated"]), (200, &json!(true)));
    assert_eq!(read.json.get("schema"), None, "no schema, none shown");

    let changed = server
        .api(
            Method::PATCH,
            &format!("{TYPES}/user.deleted"),
            Some(json!({"description": "Gone.", "deprecated": false})),
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    assert_eq!(
        (&changed.json["description"], &changed.json["deprecated"]),
        (&json!("Gone."), &json!(false))
    );

    let archived = server
        .api(Method::DELETE, &format!("{TYPES}/user.deleted"), None)
        .await;
    assert_eq!(archived.status, 204, "{archived:?}");
    let listed = server.api(Method::GET, TYPES, None).await;
    assert_eq!(
        listed.json.as_array().map(Vec::len),
        Some(1),
        "archived types are hidden"
    );
    let all = server
        .api(Method::GET, &format!("{TYPES}?include_archived=true"), None)
        .await;
    assert_eq!(all.json[1]["archived"], true, "{all:?}");
    let restored = server
        .api(
            Method::PATCH,
            &format!("{TYPES}/user.deleted"),
            Some(json!({"archived": false})),
        )
        .await;
    assert_eq!(restored.json["archived"], false, "{restored:?}");

    for (method, path) in [
        (Method::GET, "nope"),
        (Method::PATCH, "nope"),
        (Method::DELETE, "nope"),
    ] {
        let body = (method == Method::PATCH).then(|| json!({}));
        let answer = server.api(method, &format!("{TYPES}/{path}"), body).await;
        assert!(problem(&answer, 404).contains("no event type named `nope`"));
    }
}

#[actix_web::test]
async fn bad_names_schemas_and_fields_are_refused_and_nothing_is_stored() {
    let dir = ScratchDir::new("types-bad");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let refused = [
        (json!({"name": "a/b"}), "invalid event type name"),
        (json!({"name": ""}), "invalid event type name"),
        (json!({"name": "x".repeat(257)}), "invalid event type name"),
        (
            json!({"name": "t", "schema": {"type": "no-such-type"}}),
            "not usable",
        ),
        (
            json!({"name": "t", "schema": {"$ref": "http://127.0.0.1:9/s.json"}}),
            "not usable",
        ),
        (
            json!({"name": "t", "schema": {"$ref": "file:///etc/hostname"}}),
            "not usable",
        ),
        (
            json!({"name": "t", "description": "d".repeat(4097)}),
            "at most 4096",
        ),
        (json!({"name": "t", "colour": "red"}), "unknown field"),
        (
            json!({"name": "t", "schema": false}),
            "must be a JSON object",
        ),
        (json!({"name": "t", "schema": [1]}), "must be a JSON object"),
    ];
    for (body, expected) in refused {
        let answer = server.api(Method::POST, TYPES, Some(body.clone())).await;
        let detail = problem(&answer, 400);
        assert!(detail.contains(expected), "{body}: {detail}");
    }
    let listed = server
        .api(Method::GET, &format!("{TYPES}?include_archived=true"), None)
        .await;
    assert_eq!(listed.json, json!([]), "nothing half-created");

    // A change with a bad schema leaves the type as it was.
    server.api(Method::POST, TYPES, Some(order_created())).await;
    let bad = server
        .api(
            Method::PATCH,
            &format!("{TYPES}/order.created"),
            Some(json!({"schema": {"minimum": "zero"}})),
        )
        .await;
    assert!(problem(&bad, 400).contains("not usable"));
    let read = server
        .api(Method::GET, &format!("{TYPES}/order.created"), None)
        .await;
    assert_eq!(read.json["schema"], order_created()["schema"]);
    let query = server
        .api(
            Method::GET,
            &format!("{TYPES}?include_archived=maybe"),
            None,
        )
        .await;
    problem(&query, 400);
}

#[actix_web::test]
async fn an_event_that_does_not_match_its_schema_is_refused_with_its_pointer_and_not_delivered() {
    let dir = ScratchDir::new("types-check");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let mut receiver = Receiver::start();
    endpoint_to(&server, &receiver).await;
    server.api(Method::POST, TYPES, Some(order_created())).await;

    let bad = json!({"id": "o-1", "total": -5, "lines": [{"sku": "a"}, {"qty": 2}]});
    let refused = server.emit_raw("order.created", bad).await;
    let detail = problem(&refused, 422);
    assert!(detail.contains("order.created"), "{detail}");
    let pointers: Vec<&str> = refused.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert!(
        pointers.contains(&"/total") && pointers.contains(&"/lines/1"),
        "{pointers:?}"
    );
    let missing = server.emit_raw("order.created", json!({"id": "o-2"})).await;
    assert!(
        problem(&missing, 422).contains("at the payload itself"),
        "{missing:?}"
    );

    // A refused event with a key leaves the key free: the corrected event
    // with the same key is accepted and delivered.
    let key = [("idempotency-key", "order-3")];
    let body =
        |total: i64| json!({"event": "order.created", "payload": {"id": "o-3", "total": total}});
    let first = server
        .call(
            Method::POST,
            "/api/v1/events",
            Some(body(-1)),
            Some(support::server::TOKEN),
            &key,
        )
        .await;
    problem(&first, 422);
    let second = server
        .call(
            Method::POST,
            "/api/v1/events",
            Some(body(3)),
            Some(support::server::TOKEN),
            &key,
        )
        .await;
    assert_eq!(second.status, 202, "{second:?}");

    // Events without a type, and matching ones, go through.
    server.emit("order.untyped", json!("anything")).await;
    let request = receiver.next().await;
    assert_eq!(
        request.json(),
        json!({"id": "o-3", "total": 3}),
        "the refused ones never left"
    );
    assert_eq!(receiver.next().await.json(), json!("anything"));
}

#[actix_web::test]
async fn a_batch_refuses_only_its_events_that_do_not_match() {
    let dir = ScratchDir::new("types-batch");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    let mut receiver = Receiver::start();
    endpoint_to(&server, &receiver).await;
    server.api(Method::POST, TYPES, Some(order_created())).await;
    let events = json!({"events": [
        {"event": "order.created", "payload": {"id": "a", "total": 1}},
        {"event": "order.created", "payload": {"id": 7, "total": 1}, "idempotency_key": "k-7"},
        {"event": "order.untyped", "payload": [1, 2]},
    ]});
    let answer = server
        .api(Method::POST, "/api/v1/events/batch", Some(events))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json["accepted"], 2);
    let results = &answer.json["results"];
    assert_eq!(
        [
            &results[0]["status"],
            &results[1]["status"],
            &results[2]["status"]
        ],
        [&json!(202), &json!(422), &json!(202)]
    );
    assert_eq!(
        results[1]["problem"]["errors"][0]["pointer"], "/id",
        "{answer:?}"
    );
    assert_eq!(receiver.next().await.json(), json!({"id": "a", "total": 1}));
    assert_eq!(receiver.next().await.json(), json!([1, 2]));
}

#[actix_web::test]
async fn archived_types_stop_checking_and_a_removed_schema_too() {
    let dir = ScratchDir::new("types-archive");
    let server = ServerProcess::start(&dir.file("j.redb"), &[]);
    server.api(Method::POST, TYPES, Some(order_created())).await;
    let path = format!("{TYPES}/order.created");
    problem(&server.emit_raw("order.created", json!({})).await, 422);

    server.api(Method::DELETE, &path, None).await;
    assert_eq!(
        server.emit_raw("order.created", json!({})).await.status,
        202
    );
    server
        .api(Method::PATCH, &path, Some(json!({"archived": false})))
        .await;
    problem(&server.emit_raw("order.created", json!({})).await, 422);

    let removed = server
        .api(Method::PATCH, &path, Some(json!({"schema": null})))
        .await;
    assert_eq!(removed.json.get("schema"), None, "{removed:?}");
    assert_eq!(
        server.emit_raw("order.created", json!({})).await.status,
        202
    );
}

#[actix_web::test]
async fn the_catalog_and_its_schemas_survive_a_restart() {
    let dir = ScratchDir::new("types-restart");
    let journal = dir.file("j.redb");
    let server = ServerProcess::start(&journal, &[]);
    server.api(Method::POST, TYPES, Some(order_created())).await;
    let archived = json!({"name": "old.thing", "schema": {"type": "string"}});
    server.api(Method::POST, TYPES, Some(archived)).await;
    server
        .api(Method::DELETE, &format!("{TYPES}/old.thing"), None)
        .await;
    server.kill();

    let server = ServerProcess::start(&journal, &[]);
    let all = server
        .api(Method::GET, &format!("{TYPES}?include_archived=true"), None)
        .await;
    assert_eq!(all.json.as_array().map(Vec::len), Some(2), "{all:?}");
    assert_eq!(all.json[0]["archived"], true);
    problem(
        &server.emit_raw("order.created", json!({"id": "x"})).await,
        422,
    );
    assert_eq!(
        server.emit_raw("old.thing", json!(1)).await.status,
        202,
        "archived stays unchecked"
    );
}
