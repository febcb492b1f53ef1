//! `/api/v1/api-keys`: scoped API keys, managed with the admin token only:
//! make one (shown once), list them (no secrets), revoke one.

use actix_web::{delete, get, post, web, HttpResponse};

use crate::api_key::{ApiKeySpec, ApiKeyView, NewApiKey};
use crate::problem::Problem;
use crate::state::AppState;

type State = web::Data<AppState>;

#[utoipa::path(request_body = ApiKeySpec,
    responses((status = 201, body = NewApiKey), (status = 400, body = Problem),
        (status = 403, body = Problem), (status = 503, body = Problem)))]
#[post("/api-keys")]
pub async fn create_api_key(
    state: State,
    spec: web::Json<ApiKeySpec>,
) -> Result<HttpResponse, Problem> {
    let spec = spec.into_inner();
    if let Some(app) = spec.app.as_deref() {
        crate::ids::check_id("application", app).map_err(Problem::bad_request)?;
        if !state.catalog.apps.contains(app) {
            return Err(Problem::bad_request(format!(
                "no application with id `{}` to bind the key to",
                app.escape_debug()
            )));
        }
    }
    let made = state.catalog.api_keys.create(spec).await?;
    // Usable on every node once answered.
    state.catalog.propagated().await;
    Ok(HttpResponse::Created().json(made))
}

#[utoipa::path(responses((status = 200, body = Vec<ApiKeyView>), (status = 403, body = Problem)))]
#[get("/api-keys")]
pub async fn list_api_keys(state: State) -> HttpResponse {
    HttpResponse::Ok().json(state.catalog.api_keys.list())
}

#[utoipa::path(responses((status = 204), (status = 403, body = Problem),
    (status = 404, body = Problem), (status = 503, body = Problem)))]
#[delete("/api-keys/{id}")]
pub async fn revoke_api_key(state: State, id: web::Path<String>) -> Result<HttpResponse, Problem> {
    state.catalog.api_keys.revoke(&id).await?;
    // Refused on every live node once answered.
    state.catalog.propagated().await;
    Ok(HttpResponse::NoContent().finish())
}
