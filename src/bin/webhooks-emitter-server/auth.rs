//! The admin token on every request that needs it: `Authorization: Bearer
//! <token>` for the API and the metrics; for SSE and WebSocket also
//! `?token=` (browsers' `EventSource` and `WebSocket` cannot send headers).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::problem::Problem;
use crate::secrets::AdminToken;

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
        "send the admin token as `Authorization: Bearer <token>`",
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

/// Lets the request go on if `offered` is the admin token; 401 otherwise.
async fn admit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    offered: Option<String>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let accepted = req
        .app_data::<web::Data<AdminToken>>()
        .is_some_and(|token| token.accepts(offered.as_deref()));
    if !accepted {
        return Ok(req.into_response(unauthorized()));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The token from the header, or from `?token=` (SSE and WebSocket).
fn offered_token(req: &HttpRequest) -> Option<String> {
    if let Some(token) = bearer(req.headers()) {
        return Some(token.to_owned());
    }
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned())
}
