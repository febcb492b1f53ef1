//! Every route, the auth around them, and the OpenAPI document made from
//! their annotations.

mod delivery;
mod endpoints;
mod events;
mod ops;

use actix_web::middleware::from_fn;
use actix_web::web;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::auth::require_token;
use crate::problem::{json_error, path_error, query_error, Problem};

/// The OpenAPI 3 document of the API.
#[derive(OpenApi)]
#[openapi(
    info(title = "webhooks-emitter-server", description = "Ordered, signed, retried webhooks: endpoints, events, dead letters."),
    paths(
        endpoints::create, endpoints::list, endpoints::read, endpoints::change, endpoints::remove,
        endpoints::pause, endpoints::resume, endpoints::test,
        delivery::attempts, delivery::dead_letters, delivery::redeliver, delivery::redeliver_all,
        delivery::stats, delivery::rotate,
        events::emit,
        ops::health, ops::ready, ops::metrics, ops::openapi,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// Declares the bearer token scheme every API route uses.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Mounts everything; `body_limit` bounds every request body.
pub fn configure(cfg: &mut web::ServiceConfig, body_limit: usize) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(body_limit)
            .error_handler(|e, _| json_error(e).into()),
    )
    .app_data(web::PayloadConfig::default().limit(body_limit))
    .app_data(web::QueryConfig::default().error_handler(|e, _| query_error(e).into()))
    .app_data(web::PathConfig::default().error_handler(|e, _| path_error(e).into()))
    .route("/health", web::get().to(ops::health))
    .route("/ready", web::get().to(ops::ready))
    .service(
        web::resource("/metrics")
            .wrap(from_fn(require_token))
            .route(web::get().to(ops::metrics)),
    )
    .service(
        web::scope("/api/v1")
            .wrap(from_fn(require_token))
            .route("/openapi.json", web::get().to(ops::openapi))
            .route("/events", web::post().to(events::emit))
            .route("/endpoints", web::post().to(endpoints::create))
            .route("/endpoints", web::get().to(endpoints::list))
            .route("/endpoints/{id}", web::get().to(endpoints::read))
            .route("/endpoints/{id}", web::patch().to(endpoints::change))
            .route("/endpoints/{id}", web::delete().to(endpoints::remove))
            .route("/endpoints/{id}/pause", web::post().to(endpoints::pause))
            .route("/endpoints/{id}/resume", web::post().to(endpoints::resume))
            .route("/endpoints/{id}/test", web::post().to(endpoints::test))
            .route(
                "/endpoints/{id}/attempts",
                web::get().to(delivery::attempts),
            )
            .route(
                "/endpoints/{id}/dead-letters",
                web::get().to(delivery::dead_letters),
            )
            .route(
                "/endpoints/{id}/dead-letters/redeliver-all",
                web::post().to(delivery::redeliver_all),
            )
            .route(
                "/endpoints/{id}/dead-letters/{n}/redeliver",
                web::post().to(delivery::redeliver),
            )
            .route("/endpoints/{id}/stats", web::get().to(delivery::stats))
            .route(
                "/endpoints/{id}/secret/rotate",
                web::post().to(delivery::rotate),
            )
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(Problem::not_found("no such API route"))
            })),
    );
}
