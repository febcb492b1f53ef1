//! What the OpenAPI document says beyond each handler's annotation, applied
//! to every operation at once so that no handler can forget it: the bearer
//! token (and that `/health` and `/ready` need none), the errors every route
//! can answer (400 for a bad path or query, 401 without the token, 413 and 415
//! for request bodies), all as `application/problem+json`; and the live
//! routes the library serves, `/sse/{topic}` and `/ws`.

use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::response::{ResponseBuilder, Responses};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, ObjectBuilder, OpenApi, PathItem, RefOr, Required, Type,
};
use utoipa::{PartialSchema, ToSchema};

use crate::problem::{Problem, Violation};

/// The document as served, serialized once.
pub struct ApiDocument(pub String);

/// Where each application's routes are: the same handlers as `default`'s
/// routes, without `/apps/{app}`.
const IN_APP: &str = "/api/v1/apps/{app}/";

/// Routes anyone may call.
const PUBLIC: [&str; 2] = ["/health", "/ready"];
const PROBLEM_JSON: &str = "application/problem+json";

/// Adds what every operation shares, and the live routes; serializes it.
pub fn finish(mut api: OpenApi) -> (ApiDocument, super::KnownPaths) {
    api.info = InfoBuilder::new()
        .title("webhooks-emitter-server")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Ordered, signed, retried webhooks: endpoints, events, dead letters.",
        ))
        .build();
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    components
        .schemas
        .insert(Problem::name().into_owned(), Problem::schema());
    components
        .schemas
        .insert(Violation::name().into_owned(), Violation::schema());
    for (path, item) in api.paths.paths.iter_mut() {
        let public = PUBLIC.contains(&path.as_str());
        let in_app = path.starts_with(IN_APP);
        for (method, operation) in operations(item) {
            complete(operation, method, public);
            if in_app {
                in_application(operation);
            }
        }
    }
    // The library's live routes, described whole here (their refusals of a
    // bad topic or handshake are the library's, not problem+json).
    api.paths.paths.insert("/sse/{topic}".into(), sse());
    api.paths.paths.insert("/ws".into(), websocket());
    let json = serde_json::to_string(&api).unwrap_or_else(|error| {
        tracing::error!(%error, "OpenAPI document not serializable");
        "{}".into()
    });
    let known = super::KnownPaths::of(&api);
    (ApiDocument(json), known)
}

fn operations(item: &mut PathItem) -> Vec<(HttpMethod, &mut Operation)> {
    [
        (HttpMethod::Get, item.get.as_mut()),
        (HttpMethod::Post, item.post.as_mut()),
        (HttpMethod::Patch, item.patch.as_mut()),
        (HttpMethod::Delete, item.delete.as_mut()),
        (HttpMethod::Put, item.put.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|o| (method, o)))
    .collect()
}

/// A problem+json response, with `description`.
fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    Problem::name(),
                ))))
                .build(),
        )
        .build()
        .into()
}

/// Every error as problem+json; the errors each kind of operation can meet.
fn complete(operation: &mut Operation, method: HttpMethod, public: bool) {
    let responses = &mut operation.responses;
    // The annotations name the error bodies; the media type is the server's.
    for (status, response) in responses.responses.iter_mut() {
        if status.starts_with('4') || status.starts_with('5') {
            let description = match response {
                RefOr::T(r) => r.description.clone(),
                RefOr::Ref(_) => String::new(),
            };
            let description = if description.is_empty() {
                reason(status).to_owned()
            } else {
                description
            };
            *response = problem(&description);
        }
    }
    let has_params = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let has_body = operation.request_body.is_some();
    if public {
        // An empty requirement: no authentication.
        operation.security = Some(vec![SecurityRequirement::default()]);
        return;
    }
    operation.security = Some(vec![SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
    add(
        responses,
        "401",
        "the admin token or API key is missing or wrong",
    );
    add(
        responses,
        "403",
        "an API key without the scope this route needs (or a route for the admin token only)",
    );
    if has_params || has_body {
        add(responses, "400", "invalid path, query or body");
    }
    if has_body || matches!(method, HttpMethod::Post | HttpMethod::Patch) {
        add(responses, "413", "the request body is over the limit");
        add(responses, "415", "the body is not sent as JSON");
    }
}

/// An application's copy of a `default` route: an operation id of its
/// own (ids are unique), and the `{app}` it is in.
fn in_application(operation: &mut Operation) {
    // A route of applications alone (portal links) declares `{app}` itself.
    let declared = operation
        .parameters
        .as_ref()
        .is_some_and(|p| p.iter().any(|p| p.name == "app"));
    if declared {
        return;
    }
    if let Some(id) = &mut operation.operation_id {
        id.insert_str(0, "app_");
    }
    let app = ParameterBuilder::new()
        .name("app")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some("the application's id"))
        .schema(Some(String::schema()))
        .build();
    operation
        .parameters
        .get_or_insert_with(Vec::new)
        .insert(0, app);
    add(
        &mut operation.responses,
        "404",
        "no such application (or one this API key may not see)",
    );
}

fn add(responses: &mut Responses, status: &str, description: &str) {
    responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| problem(description));
}

fn reason(status: &str) -> &'static str {
    status
        .parse::<u16>()
        .ok()
        .and_then(|s| actix_web::http::StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error")
}

/// `GET /sse/{topic}`: the library's Server-Sent Events stream.
fn sse() -> PathItem {
    let topic = ParameterBuilder::new()
        .name("topic")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some("an event name, or `*` for every event"))
        .schema(Some(String::schema()))
        .build();
    let operation = OperationBuilder::new()
        .operation_id(Some("sse"))
        .description(Some(
            "Server-Sent Events: every event emitted under `topic`. Resumes after \
             `Last-Event-ID`. The token may also be sent as `?token=` (browsers' \
             EventSource cannot set headers).",
        ))
        .parameter(topic)
        .parameter(token_query())
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .response("400", plain("an invalid topic or `Last-Event-ID`"))
        .response("401", problem("the admin token is missing or wrong"))
        .response(
            "403",
            problem("an API key: live updates take the admin token only"),
        )
        .response(
            "200",
            ResponseBuilder::new()
                .description("the event stream")
                .content(
                    "text/event-stream",
                    ContentBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                        .build(),
                ),
        )
        .build();
    PathItem::new(HttpMethod::Get, operation)
}

/// `GET /ws`: WebSocket rooms.
fn websocket() -> PathItem {
    let operation = OperationBuilder::new()
        .operation_id(Some("websocket"))
        .description(Some(
            "WebSocket rooms: send `{\"join\": topic}` or `{\"leave\": topic}`; \
             events arrive as JSON frames. The token may also be sent as `?token=`.",
        ))
        .parameter(token_query())
        .response(
            "101",
            ResponseBuilder::new().description("switching to the WebSocket protocol"),
        )
        .response("400", plain("not a WebSocket handshake"))
        .response("401", problem("the admin token is missing or wrong"))
        .response(
            "403",
            plain("an `Origin` that is not allowed; or an API key (problem+json): the admin token only"),
        )
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .build();
    PathItem::new(HttpMethod::Get, operation)
}

/// A refusal with a plain-text body (or none).
fn plain(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "text/plain",
            ContentBuilder::new().schema(Some(String::schema())).build(),
        )
        .build()
        .into()
}

fn token_query() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("token")
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some("the admin token, when a header cannot be sent"))
        .schema(Some(String::schema()))
        .build()
}
