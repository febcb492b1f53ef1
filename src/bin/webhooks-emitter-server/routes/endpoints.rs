//! `/api/v1/endpoints` (application `default`) and
//! `/api/v1/apps/{app}/endpoints`: create, list, read, change, remove,
//! pause, resume, test.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::within::{AtEndpoint, InApp};
use crate::endpoint::{EndpointPatch, EndpointSpec, EndpointView};
use crate::problem::Problem;
use crate::state::AppState;

type State = web::Data<AppState>;

#[utoipa::path(request_body = EndpointSpec,
    responses((status = 201, body = EndpointView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
#[post("/endpoints")]
pub async fn create(
    state: State,
    InApp(app): InApp,
    spec: web::Json<EndpointSpec>,
) -> Result<HttpResponse, Problem> {
    let view = state.catalog.create(&app, spec.into_inner()).await?;
    // An id used before starts with an empty attempt history.
    state
        .attempts
        .forget(&crate::ids::emitter_id(&app, &view.id))
        .await?;
    state.catalog.propagated().await;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(responses((status = 200, body = Vec<EndpointView>), (status = 401, body = Problem),
    (status = 404, body = Problem)))]
#[get("/endpoints")]
pub async fn list(state: State, InApp(app): InApp) -> HttpResponse {
    HttpResponse::Ok().json(state.catalog.list(&app).await)
}

#[utoipa::path(params(("id" = String, Path, description = "the endpoint's id")),
    responses((status = 200, body = EndpointView), (status = 404, body = Problem)))]
#[get("/endpoints/{id}")]
pub async fn read(state: State, AtEndpoint(at): AtEndpoint) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(state.catalog.get(&at).await?))
}

#[utoipa::path(params(("id" = String, Path, description = "the endpoint's id")),
    request_body = EndpointPatch,
    responses((status = 200, body = EndpointView), (status = 400, body = Problem),
        (status = 404, body = Problem)))]
#[patch("/endpoints/{id}")]
pub async fn change(
    state: State,
    AtEndpoint(at): AtEndpoint,
    patch: web::Json<EndpointPatch>,
) -> Result<HttpResponse, Problem> {
    let view = state.catalog.update(&at, patch.into_inner()).await?;
    state.catalog.propagated().await;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(params(("id" = String, Path, description = "the endpoint's id")),
    responses((status = 204), (status = 404, body = Problem)))]
#[delete("/endpoints/{id}")]
pub async fn remove(state: State, AtEndpoint(at): AtEndpoint) -> Result<HttpResponse, Problem> {
    state.remove_endpoints(std::slice::from_ref(&at)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(params(("id" = String, Path, description = "the endpoint's id")),
    responses((status = 200, body = EndpointView), (status = 404, body = Problem)))]
#[post("/endpoints/{id}/pause")]
pub async fn pause(state: State, AtEndpoint(at): AtEndpoint) -> Result<HttpResponse, Problem> {
    known(&state, &at).await?;
    state.emitter.pause(&at.key).await?;
    state.catalog.propagated().await;
    Ok(HttpResponse::Ok().json(state.catalog.get(&at).await?))
}

#[utoipa::path(params(("id" = String, Path, description = "the endpoint's id")),
    responses((status = 200, body = EndpointView), (status = 404, body = Problem)))]
#[post("/endpoints/{id}/resume")]
pub async fn resume(state: State, AtEndpoint(at): AtEndpoint) -> Result<HttpResponse, Problem> {
    known(&state, &at).await?;
    state.emitter.restart(&at.key).await?;
    state.catalog.propagated().await;
    Ok(HttpResponse::Ok().json(state.catalog.get(&at).await?))
}

/// 404 for an endpoint the catalog does not have, named as the client named
/// it (the library's own 404 would name its emitter id).
pub(super) async fn known(
    state: &AppState,
    at: &crate::endpoint::EndpointAt,
) -> Result<(), Problem> {
    if state.catalog.contains(at).await {
        Ok(())
    } else {
        Err(at.unknown())
    }
}

/// What `POST …/test` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestResult {
    pub request_id: String,
    /// Whether the endpoint answered 2xx.
    pub ok: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: f64,
}

#[utoipa::path(params(("id" = String, Path, description = "the endpoint's id")),
    responses((status = 200, body = TestResult), (status = 404, body = Problem)))]
#[post("/endpoints/{id}/test")]
pub async fn test(state: State, AtEndpoint(at): AtEndpoint) -> Result<HttpResponse, Problem> {
    known(&state, &at).await?;
    let delivery = state.emitter.test(&at.key).await?;
    let (status, error) = match &delivery.outcome {
        Ok(status) => (Some(*status), None),
        Err(failure) => (failure.status(), Some(failure.to_string())),
    };
    Ok(HttpResponse::Ok().json(TestResult {
        request_id: delivery.request_id.to_string(),
        ok: delivery.outcome.is_ok(),
        status,
        error,
        latency_ms: delivery.latency.as_secs_f64() * 1e3,
    }))
}
