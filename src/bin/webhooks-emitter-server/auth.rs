//! The admin token, or a scoped API key, on every request that needs one:
//! `Authorization: Bearer <token>` for the API and the metrics; for SSE and
//! WebSocket also `?token=` (browsers' `EventSource` and `WebSocket` cannot
//! send headers). Which scope a route needs is `api_key::needs`.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse, ResponseError};

use crate::api_key::{needs, Needs, Scope};
use crate::catalog::Grant;
use crate::portal_link;
use crate::problem::Problem;
use crate::secrets::AdminToken;
use crate::state::AppState;

/// The token from an `Authorization: Bearer …` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// 401 with a problem body and the challenge.
fn unauthorized() -> HttpResponse {
    let problem = Problem::new(
        StatusCode::UNAUTHORIZED,
        "send the admin token, an API key or a portal link's token as `Authorization: Bearer <token>` (a portal link expires: ask for a new one)",
    );
    let mut response = problem.error_response();
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        actix_web::http::header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// Middleware: the request goes on only with the admin token in the header.
pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let offered = bearer(req.headers()).map(str::to_owned);
    admit(req, next, offered).await
}

/// Middleware for live connections (WebSocket): the admin token in the
/// header or in `?token=`, since browsers cannot set headers there.
pub async fn require_token_or_query(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let offered = offered_token(req.request());
    admit(req, next, offered).await
}

/// Lets the request go on if `offered` is the admin token, or an API key
/// with the scope the route needs (see [`needs`]); 401 for anything else,
/// 403 for a key without the scope.
async fn admit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    offered: Option<String>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let admin = req
        .app_data::<web::Data<AdminToken>>()
        .is_some_and(|token| token.accepts(offered.as_deref()));
    if !admin {
        if let Some(refusal) = key_refusal(&req, offered.as_deref()) {
            return Ok(req.into_response(refusal));
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Why `offered`, not the admin token, may not make this request; `None`
/// if it is a key with what the route needs.
fn key_refusal(req: &ServiceRequest, offered: Option<&str>) -> Option<HttpResponse> {
    let state = req.app_data::<web::Data<AppState>>();
    let (Some(state), Some(offered)) = (state, offered) else {
        return Some(unauthorized());
    };
    let grant = if offered.starts_with(portal_link::PREFIX) {
        state
            .portal
            .links
            .check(offered, crate::clock::unix_now())
            .map(|app| Grant {
                scopes: portal_link::SCOPES.to_vec(),
                app: Some(app),
            })
    } else {
        state.catalog.api_keys.grant(offered)
    };
    let Some(grant) = grant else {
        return Some(unauthorized());
    };
    // A node that cannot read the store may not know of a revocation.
    if !state.catalog.current() {
        return Some(
            Problem::unavailable(
                "this node cannot confirm that its API keys are current (the database does not answer): retry, or use another node",
            )
            .error_response(),
        );
    }
    let forbidden = |detail: String| Problem::new(StatusCode::FORBIDDEN, detail).error_response();
    let needed = needs(req.method(), req.match_info().as_str());
    if let Some(app) = grant.app.clone() {
        if needed == Needs::Scope(Scope::EventTypesWrite) {
            return Some(forbidden(
                "a key bound to an application may not change the event types, which every application shares".into(),
            ));
        }
        // Which application the route is in is for the route to say, once
        // it has matched (`routes::within`): not a guess from the path here.
        req.extensions_mut().insert(BoundTo(app));
    }
    let bound = grant.app.is_some();
    match needed {
        Needs::AnyKey => None,
        Needs::BoundOr(_) if bound => None,
        Needs::Scope(scope) | Needs::BoundOr(scope) if grant.scopes.contains(&scope) => None,
        Needs::Scope(scope) | Needs::BoundOr(scope) => Some(forbidden(format!(
            "this API key lacks the scope `{}` that this route needs",
            scope.name()
        ))),
        Needs::Admin => Some(forbidden(
            "this route needs the admin token; no API key may use it".into(),
        )),
    }
}

/// Set on a request made with an API key bound to an application: the
/// routes of any other application answer it 404, as if it did not exist.
#[derive(Debug, Clone)]
pub struct BoundTo(pub String);

/// The token from the header, or from `?token=` (SSE and WebSocket).
fn offered_token(req: &HttpRequest) -> Option<String> {
    if let Some(token) = bearer(req.headers()) {
        return Some(token.to_owned());
    }
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned())
}
