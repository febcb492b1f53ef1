//! Every route, the auth around them, and the OpenAPI document collected from
//! the same calls: a route is declared once, its method and path in the
//! handler's attribute, its documentation in `#[utoipa::path]` beside it.
//! [`document`] builds the app's route tree once more to read the document
//! off it, so what is served and what is described cannot drift apart.

mod api_keys;
mod apps;
mod batch;
mod delivery;
mod endpoints;
mod event_types;
mod events;
mod fallback;
mod messages;
mod ops;
mod paging;
mod spec;
mod within;

use actix_web::middleware::from_fn;
use actix_web::web;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{scope, AppExt};

use crate::auth::require_token;
use crate::problem::{json_error, path_error, query_error};

pub use fallback::{no_route, KnownPaths};
pub use spec::ApiDocument;

/// Mounts everything; `body_limit` bounds every request body.
pub fn configure(cfg: &mut ServiceConfig, body_limit: usize) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(body_limit)
            .error_handler(|e, _| json_error(e).into()),
    )
    .app_data(web::PayloadConfig::default().limit(body_limit))
    .app_data(web::QueryConfig::default().error_handler(|e, _| query_error(e).into()))
    .app_data(web::PathConfig::default().error_handler(|e, _| path_error(e).into()))
    .service(ops::health)
    .service(ops::ready)
    .service(
        scope::scope("/metrics")
            .wrap(from_fn(require_token))
            .service(ops::metrics),
    )
    .service(
        scope::scope("/api/v1")
            .wrap(from_fn(require_token))
            .service(ops::openapi)
            .configure(application_routes)
            .service(apps::create_app)
            .service(apps::list_apps)
            .service(apps::read_app)
            .service(apps::change_app)
            .service(apps::delete_app)
            .service(apps::create_portal_link)
            .service(
                scope::scope("/apps/{app}")
                    .configure(application_routes)
                    .default_service(web::to(no_route)),
            )
            .service(event_types::create_event_type)
            .service(event_types::list_event_types)
            .service(event_types::read_event_type)
            .service(event_types::change_event_type)
            .service(event_types::archive_event_type)
            .service(api_keys::create_api_key)
            .service(api_keys::list_api_keys)
            .service(api_keys::revoke_api_key)
            .default_service(web::to(no_route)),
    );
}

/// The routes every application has: under `/api/v1` for `default`, under
/// `/api/v1/apps/{app}` for each (see `within`).
fn application_routes(cfg: &mut ServiceConfig) {
    cfg.service(events::emit)
        .service(batch::emit_batch)
        .service(endpoints::create)
        .service(endpoints::list)
        .service(endpoints::read)
        .service(endpoints::change)
        .service(endpoints::remove)
        .service(endpoints::pause)
        .service(endpoints::resume)
        .service(endpoints::test)
        .service(delivery::attempts)
        .service(delivery::dead_letters)
        .service(delivery::redeliver_all)
        .service(delivery::redeliver)
        .service(delivery::stats)
        .service(delivery::rotate)
        .service(messages::list_messages)
        .service(messages::read_message)
        .service(messages::recover)
        .service(messages::resend);
}

/// The OpenAPI document of everything [`configure`] mounts (and of the live
/// routes the library serves, `/sse` and `/ws`), and the paths it lists for
/// the 405 answers.
pub fn document() -> (ApiDocument, KnownPaths) {
    let (_, api) = actix_web::App::new()
        .into_utoipa_app()
        .configure(|cfg| configure(cfg, 0))
        .split_for_parts();
    spec::finish(api)
}
