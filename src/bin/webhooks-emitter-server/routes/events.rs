//! `POST /api/v1/events` (application `default`) and
//! `/api/v1/apps/{app}/events`: emit an event to every endpoint of the
//! application attached to its name; 202 once it is in the journal.

use std::time::Duration;

use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;
use actix_web::{post, web, HttpMessage, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use webhooks_emitter::RequestId;

use super::within::InApp;
use crate::clock::unix_micros;
use crate::idempotency::{fingerprint, Claim, Reservation};
use crate::message::{fresh_id, MessageRecord};
use crate::problem::{json_error, Problem};
use crate::state::AppState;

/// An event to emit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// The event name, e.g. `order.created`: 1 to 256 visible ASCII
    /// characters, no `*`.
    #[schema(pattern = r"^[!-)+-~]{1,256}$")]
    pub event: String,
    /// Any JSON value; sent as the request body.
    #[schema(value_type = serde_json::Value)]
    pub payload: Box<RawValue>,
    /// 1 to 256 visible ASCII characters; a UUID is made without it.
    #[schema(pattern = r"^[!-~]{1,256}$")]
    pub request_id: Option<String>,
    /// Send it only to the endpoints on one of these channels (at most 10;
    /// each 1 to 128 letters, digits, `.`, `-`, `_` or `:`). None: to every
    /// endpoint subscribed to its name.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub channels: Vec<String>,
}

/// The event's request id (sent as `x-webhooks-delivery` and `webhook-id`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub request_id: String,
    /// How many endpoints the event was routed to (0: none is subscribed
    /// to its name, and it goes nowhere). Absent on an idempotent replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<usize>,
}

fn accepted(request_id: String, endpoints: Option<usize>) -> HttpResponse {
    let mut response = HttpResponse::Accepted();
    if endpoints.is_none() {
        response.insert_header(("idempotent-replayed", "true"));
    }
    response.json(Accepted {
        request_id,
        endpoints,
    })
}

#[utoipa::path(request_body = NewEvent,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "A repeat within 24 h gets the first answer and emits nothing")),
    responses((status = 202, body = Accepted), (status = 400, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem),
        (status = 422, body = Problem), (status = 503, body = Problem)))]
#[post("/events")]
pub async fn emit(
    state: web::Data<AppState>,
    InApp(app): InApp,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, Problem> {
    accepting(&state)?;
    // Read here, not by an extractor, so that the fingerprint is of the bytes
    // sent and an oversized body is a problem like every other error.
    let body = read_json_body(&req, body, state.body_limit).await?;
    let event: NewEvent = serde_json::from_slice(&body)
        .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")))?;
    // Before the key is claimed: a refused event leaves its key free.
    state.catalog.types.check(&event.event, &event.payload)?;
    let key = match req.headers().get("idempotency-key") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| Problem::bad_request("Idempotency-Key must be visible ASCII"))?
                .to_owned(),
        ),
    };
    let accepted_at = unix_micros();
    let Some(key) = key else {
        let (id, endpoints) = emit_now(&state, &app, event, accepted_at).await?;
        return Ok(accepted(id, Some(endpoints)));
    };
    match state.keys.claim(&app, &key, &fingerprint(&body)).await? {
        Claim::Replay(request_id) => Ok(accepted(request_id, None)),
        Claim::Fresh(reservation) => {
            let (id, endpoints) =
                emit_keyed(&state, &app, event, &reservation, accepted_at).await?;
            reservation.finish(id.clone()).await;
            Ok(accepted(id, Some(endpoints)))
        }
    }
}

/// Emits an event whose key is reserved: its request id decided first (a
/// promised key's, the client's, or a new one), so that the key's promise
/// and the event are written at once, in one group commit. On an error the
/// reservation is dropped by the caller: the key is free again.
async fn emit_keyed(
    state: &AppState,
    app: &str,
    mut event: NewEvent,
    reservation: &Reservation<'_>,
    accepted_at: u64,
) -> Result<(String, usize), Problem> {
    let request_id = keyed_request_id(reservation, event.request_id.as_deref(), accepted_at)?;
    event.request_id = Some(request_id.clone());
    let (promised, emitted) = futures_util::join!(
        reservation.promise(&request_id),
        emit_now(state, app, event, accepted_at)
    );
    promised?;
    emitted
}

/// The request id of an event with a key: a promised key's (the event is
/// emitted again with it), else as [`request_id_for`].
pub(super) fn keyed_request_id(
    reservation: &Reservation<'_>,
    given: Option<&str>,
    accepted_at: u64,
) -> Result<String, Problem> {
    match reservation.request_id() {
        Some(promised) => Ok(promised.to_owned()),
        None => request_id_for(given, accepted_at),
    }
}

/// The request id of an event accepted at `accepted_at` (Unix µs): the
/// client's, checked, or a new UUIDv7 of that millisecond (see `message`).
pub(super) fn request_id_for(given: Option<&str>, accepted_at: u64) -> Result<String, Problem> {
    match given {
        Some(given) => Ok(RequestId::parse(given)?.to_string()),
        None => Ok(fresh_id(accepted_at)),
    }
}

/// Whether this node takes events now: not while draining, nor while it
/// cannot confirm that its endpoints are current.
pub(super) fn accepting(state: &AppState) -> Result<(), Problem> {
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Problem::unavailable(
            "the server is stopping: send the event to another instance or retry later",
        ));
    }
    if !state.catalog.current() {
        return Err(Problem::unavailable(
            "this node cannot confirm that its endpoints are current (the database does not answer): retry, or send the event to another node",
        ));
    }
    Ok(())
}

/// Emits the event to the endpoints of `app`, and logs it as a message in
/// the same group commit; its request id and how many endpoints it went to.
async fn emit_now(
    state: &AppState,
    app: &str,
    event: NewEvent,
    accepted_at: u64,
) -> Result<(String, usize), Problem> {
    let endpoints = state
        .catalog
        .subscribers(app, &event.event, &event.channels);
    // Decided here, not by the library: the message is keyed by it.
    let request_id = request_id_for(event.request_id.as_deref(), accepted_at)?;
    let message = MessageRecord {
        request_id: request_id.clone(),
        event: event.event.clone(),
        channels: event.channels.clone(),
        payload: Some(event.payload.clone()),
        accepted_at,
        endpoints,
    };
    let channels: Vec<&str> = event.channels.iter().map(String::as_str).collect();
    let emitter = state.emitter_for(app)?;
    let logged = std::slice::from_ref(&message);
    let (logged_ok, emitted) = futures_util::join!(
        state.messages.log(app, logged),
        emitter.emit_durable_in(&channels, &event.event, &event.payload, Some(request_id))
    );
    match emitted {
        Err(error) => {
            state.messages.unlog(app, logged).await;
            Err(error.into())
        }
        Ok(id) => {
            if let Err(problem) = logged_ok {
                tracing::error!(%problem, request_id = %id, "event accepted, but missing from the message log");
            }
            Ok((id.to_string(), endpoints))
        }
    }
}

/// Longest a client may take to send a request body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The body of a JSON request, refused early: 415 without a JSON content
/// type, 413 at once when `Content-Length` announces more than `limit` (no
/// waiting for bytes that would be refused), 408 when the body does not
/// arrive within [`BODY_READ_TIMEOUT`].
pub(super) async fn read_json_body(
    req: &HttpRequest,
    body: web::Payload,
    limit: usize,
) -> Result<web::Bytes, Problem> {
    let json = req.mime_type().ok().flatten().is_some_and(|mime| {
        mime.subtype() == actix_web::mime::JSON || mime.suffix() == Some(actix_web::mime::JSON)
    });
    // The same answers as the JSON extractor's on the other routes.
    if !json {
        return Err(json_error(JsonPayloadError::ContentType));
    }
    let too_large = || json_error(JsonPayloadError::Overflow { limit });
    let announced = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u128>().ok());
    if announced.is_some_and(|length| length > limit as u128) {
        return Err(too_large());
    }
    match actix_web::rt::time::timeout(BODY_READ_TIMEOUT, body.to_bytes_limited(limit)).await {
        Ok(Ok(Ok(body))) => Ok(body),
        Ok(Ok(Err(error))) => Err(Problem::bad_request(format!(
            "request body unreadable: {error}"
        ))),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err(Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("request body not received within {BODY_READ_TIMEOUT:?}"),
        )),
    }
}
