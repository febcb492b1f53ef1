//! `/api/v1/apps`: the applications, each with endpoints of its own (their
//! routes are the endpoint and event routes under `/api/v1/apps/{app}`).
//! Create, list (by id, with a cursor), read, change, delete. (Handler names
//! are the OpenAPI operation ids, which must be unique: hence the suffixes.)

use actix_web::http::StatusCode;
use actix_web::{delete, get, patch, post, web, HttpMessage, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::paging::page_limit;
use super::within::InApp;
use crate::app::{AppPatch, AppSpec, AppView};
use crate::auth::BoundTo;
use crate::ids::DEFAULT_APP;
use crate::problem::Problem;
use crate::state::AppState;

type State = web::Data<AppState>;

#[utoipa::path(request_body = AppSpec,
    responses((status = 201, body = AppView), (status = 400, body = Problem),
        (status = 409, body = Problem), (status = 503, body = Problem)))]
#[post("/apps")]
pub async fn create_app(
    state: State,
    req: HttpRequest,
    spec: web::Json<AppSpec>,
) -> Result<HttpResponse, Problem> {
    if req.extensions().get::<BoundTo>().is_some() {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "a key bound to an application may not create applications",
        ));
    }
    let view = state.catalog.apps.create(spec.into_inner()).await?;
    // Known to every node before the answer: its routes work anywhere.
    state.catalog.propagated().await;
    Ok(HttpResponse::Created().json(view))
}

/// `?limit=&cursor=` of the list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AppsQuery {
    /// Most applications returned, by id (1 to 250; default 50).
    #[param(minimum = 1, maximum = 250)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of applications, by id.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppPage {
    pub data: Vec<AppView>,
    /// For `?cursor=`: the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[utoipa::path(params(AppsQuery), responses((status = 200, body = AppPage)))]
#[get("/apps")]
pub async fn list_apps(
    state: State,
    req: HttpRequest,
    query: web::Query<AppsQuery>,
) -> Result<HttpResponse, Problem> {
    let limit = page_limit(query.limit)?;
    let bound = req.extensions().get::<BoundTo>().map(|b| b.0.clone());
    let page = state
        .catalog
        .apps
        .list(query.cursor.as_deref(), limit, bound.as_deref());
    Ok(HttpResponse::Ok().json(AppPage {
        data: page.apps,
        next_cursor: page.next,
    }))
}

#[utoipa::path(params(("app" = String, Path, description = "the application's id")),
    responses((status = 200, body = AppView), (status = 404, body = Problem)))]
#[get("/apps/{app}")]
pub async fn read_app(state: State, InApp(app): InApp) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(state.catalog.apps.get(&app)?))
}

#[utoipa::path(params(("app" = String, Path, description = "the application's id")),
    request_body = AppPatch,
    responses((status = 200, body = AppView), (status = 400, body = Problem),
        (status = 404, body = Problem)))]
#[patch("/apps/{app}")]
pub async fn change_app(
    state: State,
    InApp(app): InApp,
    patch: web::Json<AppPatch>,
) -> Result<HttpResponse, Problem> {
    let view = state.catalog.apps.update(&app, patch.into_inner()).await?;
    state.catalog.propagated().await;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(params(("app" = String, Path, description = "the application's id")),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
#[delete("/apps/{app}")]
pub async fn delete_app(state: State, InApp(app): InApp) -> Result<HttpResponse, Problem> {
    if app == DEFAULT_APP {
        return Err(Problem::conflict(
            "the application `default` holds the routes without /apps/{app}: it cannot be deleted",
        ));
    }
    // What it holds first (endpoints, keys, messages), the application
    // last: a delete cut short leaves the application, to be deleted again,
    // never endpoints without one.
    let endpoints = state.catalog.endpoints_of(&app).await;
    state.remove_endpoints(&endpoints).await?;
    state.catalog.api_keys.revoke_bound_to(&app).await?;
    state.messages.forget(&app).await?;
    state.catalog.apps.remove(&app).await?;
    // One created here while the others went: gone with its application.
    let late = state.catalog.endpoints_of(&app).await;
    if !late.is_empty() {
        state.remove_endpoints(&late).await?;
    }
    state.catalog.propagated().await;
    Ok(HttpResponse::NoContent().finish())
}

/// The body of `POST /api/v1/apps/{app}/portal-links` (`{}` for the default).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalLinkSpec {
    /// Seconds the link opens the portal (1 to 604,800; default 3,600).
    #[schema(minimum = 1, maximum = 604800)]
    pub expires_in: Option<u64>,
}

/// A link to an application's portal: give it to the customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalLink {
    /// Opens the portal; the token is in the fragment (`#wpl_…`), which
    /// browsers never send to a server.
    pub url: String,
    /// RFC 3339.
    pub expires_at: String,
}

#[utoipa::path(params(("app" = String, Path, description = "the application's id")),
    request_body = PortalLinkSpec,
    responses((status = 201, body = PortalLink), (status = 400, body = Problem),
        (status = 404, body = Problem)))]
#[post("/apps/{app}/portal-links")]
pub async fn create_portal_link(
    state: State,
    InApp(app): InApp,
    req: HttpRequest,
    spec: web::Json<PortalLinkSpec>,
) -> Result<HttpResponse, Problem> {
    use crate::portal_link::{DEFAULT_LIFE, MAX_LIFE, MIN_LIFE};
    let life = spec.expires_in.unwrap_or(DEFAULT_LIFE);
    if !(MIN_LIFE..=MAX_LIFE).contains(&life) {
        return Err(Problem::bad_request(format!(
            "expires_in is {MIN_LIFE} to {MAX_LIFE} seconds, not {life}"
        )));
    }
    let expires = crate::clock::unix_now().saturating_add(life);
    let token = state.portal.links.issue(&app, expires);
    let base = match &state.portal.public_url {
        Some(url) => url.clone(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    };
    Ok(HttpResponse::Created().json(PortalLink {
        url: format!("{base}/portal#{token}"),
        expires_at: crate::clock::unix_rfc3339(expires),
    }))
}
