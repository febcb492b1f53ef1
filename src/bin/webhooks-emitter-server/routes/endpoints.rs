//! `/api/v1/endpoints`: create, list, read, change, remove, pause, resume, test.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::endpoint::{EndpointPatch, EndpointSpec, EndpointView};
use crate::problem::Problem;
use crate::state::AppState;

type State = web::Data<AppState>;

#[utoipa::path(request_body = EndpointSpec,
    responses((status = 201, body = EndpointView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 409, body = Problem)))]
#[post("/endpoints")]
pub async fn create(state: State, spec: web::Json<EndpointSpec>) -> Result<HttpResponse, Problem> {
    let view = state.catalog.create(spec.into_inner()).await?;
    // An id used before starts with an empty attempt history.
    state.attempts.forget(&view.id).await?;
    state.catalog.propagated().await;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(responses((status = 200, body = Vec<EndpointView>), (status = 401, body = Problem)))]
#[get("/endpoints")]
pub async fn list(state: State) -> HttpResponse {
    HttpResponse::Ok().json(state.catalog.list().await)
}

#[utoipa::path(responses((status = 200, body = EndpointView), (status = 404, body = Problem)))]
#[get("/endpoints/{id}")]
pub async fn read(state: State, id: web::Path<String>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(state.catalog.get(&id).await?))
}

#[utoipa::path(request_body = EndpointPatch,
    responses((status = 200, body = EndpointView), (status = 400, body = Problem),
        (status = 404, body = Problem)))]
#[patch("/endpoints/{id}")]
pub async fn change(
    state: State,
    id: web::Path<String>,
    patch: web::Json<EndpointPatch>,
) -> Result<HttpResponse, Problem> {
    let view = state.catalog.update(&id, patch.into_inner()).await?;
    state.catalog.propagated().await;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(responses((status = 204), (status = 404, body = Problem)))]
#[delete("/endpoints/{id}")]
pub async fn remove(state: State, id: web::Path<String>) -> Result<HttpResponse, Problem> {
    state.catalog.delete(&id).await?;
    state.attempts.forget(&id).await?;
    state.catalog.propagated().await;
    state.store.discard(&id).await;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(responses((status = 200, body = EndpointView), (status = 404, body = Problem)))]
#[post("/endpoints/{id}/pause")]
pub async fn pause(state: State, id: web::Path<String>) -> Result<HttpResponse, Problem> {
    state.emitter.pause(&id).await?;
    state.catalog.propagated().await;
    Ok(HttpResponse::Ok().json(state.catalog.get(&id).await?))
}

#[utoipa::path(responses((status = 200, body = EndpointView), (status = 404, body = Problem)))]
#[post("/endpoints/{id}/resume")]
pub async fn resume(state: State, id: web::Path<String>) -> Result<HttpResponse, Problem> {
    state.emitter.restart(&id).await?;
    state.catalog.propagated().await;
    Ok(HttpResponse::Ok().json(state.catalog.get(&id).await?))
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

#[utoipa::path(responses((status = 200, body = TestResult), (status = 404, body = Problem)))]
#[post("/endpoints/{id}/test")]
pub async fn test(state: State, id: web::Path<String>) -> Result<HttpResponse, Problem> {
    let delivery = state.emitter.test(&id).await?;
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
