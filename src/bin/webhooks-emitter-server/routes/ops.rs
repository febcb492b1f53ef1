//! For operators: liveness, readiness, Prometheus metrics, the OpenAPI document.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::{get, web, HttpResponse};

use crate::state::AppState;

#[utoipa::path(responses((status = 200, description = "the process runs")))]
#[get("/health")]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

#[utoipa::path(responses((status = 200, description = "store readable, actors answering, endpoints current"),
        (status = 503, description = "starting, draining, endpoints not current, or the store or actors do not answer")))]
#[get("/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let not_ready =
        |why: &str| HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": why }));
    if state.draining.load(Ordering::Relaxed) {
        return not_ready("draining");
    }
    if !state.catalog.current() {
        return not_ready("endpoints not current");
    }
    let probe = async {
        state.store.records("endpoints").await.is_ok() && {
            state.emitter.stats_all().await;
            true
        }
    };
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(true) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Ok(false) => not_ready("store unreadable"),
        Err(_) => not_ready("no answer within 2 s"),
    }
}

#[utoipa::path(responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
#[get("")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state.metrics.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

#[utoipa::path(responses((status = 200, description = "this document")))]
#[get("/openapi.json")]
pub async fn openapi(document: web::Data<super::ApiDocument>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document.0.clone())
}
