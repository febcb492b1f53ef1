//! `/api/v1/event-types`: the catalog of event names, with an optional JSON
//! Schema that every payload of the name must match: create, list, read,
//! change, archive. (Handler names are the OpenAPI operation ids, which
//! must be unique: hence the suffixes.)

use actix_web::{delete, get, patch, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::event_type::{EventTypePatch, EventTypeSpec, EventTypeView};
use crate::problem::Problem;
use crate::state::AppState;

type State = web::Data<AppState>;

#[utoipa::path(request_body = EventTypeSpec,
    responses((status = 201, body = EventTypeView), (status = 400, body = Problem),
        (status = 409, body = Problem), (status = 503, body = Problem)))]
#[post("/event-types")]
pub async fn create_event_type(
    state: State,
    spec: web::Json<EventTypeSpec>,
) -> Result<HttpResponse, Problem> {
    let view = state.catalog.types.create(spec.into_inner()).await?;
    // In force on every node before the answer, as an endpoint change is.
    state.catalog.propagated().await;
    Ok(HttpResponse::Created().json(view))
}

/// `?include_archived=` of the list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// List archived types too (default false).
    #[serde(default)]
    pub include_archived: bool,
}

#[utoipa::path(params(ListQuery), responses((status = 200, body = Vec<EventTypeView>)))]
#[get("/event-types")]
pub async fn list_event_types(state: State, query: web::Query<ListQuery>) -> HttpResponse {
    HttpResponse::Ok().json(state.catalog.types.list(query.include_archived).await)
}

#[utoipa::path(responses((status = 200, body = EventTypeView), (status = 404, body = Problem)))]
#[get("/event-types/{name}")]
pub async fn read_event_type(
    state: State,
    name: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(state.catalog.types.get(&name).await?))
}

#[utoipa::path(request_body = EventTypePatch,
    responses((status = 200, body = EventTypeView), (status = 400, body = Problem),
        (status = 404, body = Problem), (status = 503, body = Problem)))]
#[patch("/event-types/{name}")]
pub async fn change_event_type(
    state: State,
    name: web::Path<String>,
    patch: web::Json<EventTypePatch>,
) -> Result<HttpResponse, Problem> {
    let view = state
        .catalog
        .types
        .update(&name, patch.into_inner())
        .await?;
    state.catalog.propagated().await;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(responses((status = 204), (status = 404, body = Problem),
    (status = 503, body = Problem)))]
#[delete("/event-types/{name}")]
pub async fn archive_event_type(
    state: State,
    name: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    state.catalog.types.archive(&name).await?;
    state.catalog.propagated().await;
    Ok(HttpResponse::NoContent().finish())
}
