//! `POST /api/v1/events`: emit an event to every endpoint attached to its
//! name; 202 once it is in the journal.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::idempotency::{fingerprint, Claim};
use crate::problem::Problem;
use crate::state::AppState;

/// An event to emit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// The event name, e.g. `order.created`.
    pub event: String,
    /// Any JSON value; sent as the request body.
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    /// 1 to 256 visible ASCII characters; a UUID is made without it.
    pub request_id: Option<String>,
}

/// The event's request id (sent as `x-webhooks-delivery` and `webhook-id`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub request_id: String,
}

fn accepted(request_id: String, replayed: bool) -> HttpResponse {
    let mut response = HttpResponse::Accepted();
    if replayed {
        response.insert_header(("idempotent-replayed", "true"));
    }
    response.json(Accepted { request_id })
}

#[utoipa::path(post, path = "/api/v1/events", request_body = NewEvent,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "A repeat within 24 h gets the first answer and emits nothing")),
    responses((status = 202, body = Accepted), (status = 400, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem),
        (status = 422, body = Problem)))]
pub async fn emit(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, Problem> {
    // Read here, not by an extractor, so that the fingerprint is of the bytes
    // sent and an oversized body is a problem like every other error.
    let limit = state.body_limit;
    let body = match body.to_bytes_limited(limit).await {
        Ok(Ok(body)) => body,
        Ok(Err(error)) => {
            return Err(Problem::bad_request(format!(
                "request body unreadable: {error}"
            )))
        }
        Err(_) => {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is over the limit of {limit} bytes"),
            ))
        }
    };
    let event: NewEvent = serde_json::from_slice(&body)
        .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")))?;
    let key = match req.headers().get("idempotency-key") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| Problem::bad_request("Idempotency-Key must be visible ASCII"))?
                .to_owned(),
        ),
    };
    let Some(key) = key else {
        let id = emit_now(&state, event).await?;
        return Ok(accepted(id, false));
    };
    match state.keys.claim(&key, &fingerprint(&body))? {
        Claim::Replay(request_id) => Ok(accepted(request_id, true)),
        Claim::Fresh(reservation) => {
            // On an error the reservation is dropped: the key is free again.
            let id = emit_now(&state, event).await?;
            reservation.finish(id.clone()).await;
            Ok(accepted(id, false))
        }
    }
}

async fn emit_now(state: &AppState, event: NewEvent) -> Result<String, Problem> {
    let id = state
        .emitter
        .emit_durable(&event.event, &event.payload, event.request_id)
        .await?;
    Ok(id.to_string())
}
