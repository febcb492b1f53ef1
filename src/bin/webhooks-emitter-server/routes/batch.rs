//! `POST /api/v1/events/batch`: up to [`MAX_BATCH_EVENTS`] events in one
//! request, emitted in order and written in the same group commits; one
//! answer with a result per event. A bad event gets its own problem and the
//! others go on; each may carry its own idempotency key.

use actix_web::{post, web, HttpRequest, HttpResponse};
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::events::{accepting, keyed_request_id, read_json_body, request_id_for};
use super::within::InApp;
use crate::clock::unix_micros;
use crate::idempotency::{fingerprint, Claim, Reservation};
use crate::message::MessageRecord;
use crate::problem::Problem;
use crate::state::AppState;

/// Most events in one batch.
pub const MAX_BATCH_EVENTS: usize = 1_000;
/// Largest batch body: the single event's limit, or 16 MiB if that is more.
const MIN_BATCH_BODY: usize = 16 * 1024 * 1024;

/// Events to emit, in order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBatch {
    /// 1 to 1,000 events.
    #[schema(value_type = Vec<BatchEvent>, min_items = 1, max_items = 1000)]
    pub events: Vec<Box<RawValue>>,
}

/// One event of a batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchEvent {
    /// The event name, as in `POST /api/v1/events`.
    #[schema(pattern = r"^[!-)+-~]{1,256}$")]
    pub event: String,
    /// Any JSON value; sent as the request body.
    #[schema(value_type = serde_json::Value)]
    pub payload: Box<RawValue>,
    /// 1 to 256 visible ASCII characters; a UUID is made without it.
    #[schema(pattern = r"^[!-~]{1,256}$")]
    pub request_id: Option<String>,
    /// This event's idempotency key (1 to 255 visible ASCII characters, as
    /// the `Idempotency-Key` header): a repeat of the same event with it
    /// within 24 h, in any batch, is answered as the first time and emits
    /// nothing.
    #[schema(pattern = r"^[!-~]{1,255}$")]
    pub idempotency_key: Option<String>,
    /// Its channels, as in `POST /api/v1/events`.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub channels: Vec<String>,
}

/// What became of each event, in the order sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAccepted {
    /// How many events were accepted (202), replays included.
    pub accepted: usize,
    pub results: Vec<BatchResult>,
}

/// What became of one event.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    /// 202 when accepted (stored, or answered again for a repeated key);
    /// else the problem's status.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// How many endpoints it was routed to; absent on a replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<usize>,
    /// True when an earlier request with its idempotency key is answered again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
    /// Why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

impl BatchResult {
    fn accepted(request_id: String, endpoints: Option<usize>) -> Self {
        BatchResult {
            status: 202,
            request_id: Some(request_id),
            replayed: endpoints.is_none(),
            endpoints,
            problem: None,
        }
    }

    fn refused(problem: Problem) -> Self {
        BatchResult {
            status: problem.status,
            request_id: None,
            endpoints: None,
            replayed: false,
            problem: Some(problem),
        }
    }
}

/// An event on its way: parsed, its key claimed.
enum Step<'a> {
    Done(BatchResult),
    Emit(BatchEvent, Option<Reservation<'a>>),
}

#[utoipa::path(request_body = NewBatch,
    responses((status = 200, body = BatchAccepted), (status = 400, body = Problem),
        (status = 404, body = Problem),
        (status = 413, body = Problem), (status = 415, body = Problem),
        (status = 503, body = Problem)))]
#[post("/events/batch")]
pub async fn emit_batch(
    state: web::Data<AppState>,
    InApp(app): InApp,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, Problem> {
    accepting(&state)?;
    let limit = state.body_limit.max(MIN_BATCH_BODY);
    let body = read_json_body(&req, body, limit).await?;
    let batch: NewBatch = serde_json::from_slice(&body)
        .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")))?;
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH_EVENTS {
        return Err(Problem::bad_request(format!(
            "a batch has 1 to {MAX_BATCH_EVENTS} events, not {}",
            batch.events.len()
        )));
    }
    // Keys first (each may ask the store), then every event in order, so
    // that the events are routed, and stored, in the order sent.
    let steps = join_all(batch.events.iter().map(|raw| claim(&state, &app, raw))).await;
    let (mut results, mut emitting) = (Vec::new(), Vec::new());
    for (index, step) in steps.into_iter().enumerate() {
        match step {
            Step::Done(result) => results.push(Some(result)),
            Step::Emit(event, reservation) => {
                results.push(None);
                emitting.push((index, event, reservation));
            }
        }
    }
    // Every request id is decided now, so that a key's promise and each
    // message are written beside their event, in the same group commit.
    let accepted_at = unix_micros();
    let mut emitting: Vec<_> = emitting
        .into_iter()
        .filter_map(|(index, mut event, reservation)| {
            let given = event.request_id.as_deref();
            let decided = match &reservation {
                Some(reservation) => keyed_request_id(reservation, given, accepted_at),
                None => request_id_for(given, accepted_at),
            };
            match decided {
                Ok(id) => event.request_id = Some(id),
                Err(problem) => {
                    results[index] = Some(BatchResult::refused(problem));
                    return None;
                }
            }
            Some((index, event, reservation))
        })
        .collect();
    let endpoints: Vec<usize> = emitting
        .iter()
        .map(|(_, event, _)| {
            state
                .catalog
                .subscribers(&app, &event.event, &event.channels)
        })
        .collect();
    let channels: Vec<Vec<&str>> = emitting
        .iter()
        .map(|(_, event, _)| event.channels.iter().map(String::as_str).collect())
        .collect();
    let promises = join_all(emitting.iter().map(|(_, event, reservation)| async move {
        match (reservation, &event.request_id) {
            (Some(reservation), Some(id)) => reservation.promise(id).await,
            _ => Ok(()),
        }
    }));
    let emitter = state.emitter_for(&app)?;
    let emits = emitter.emit_all_durable_in(emitting.iter().zip(&channels).map(
        |((_, event, _), channels)| {
            (
                channels.as_slice(),
                event.event.as_str(),
                &*event.payload,
                event.request_id.clone(),
            )
        },
    ));
    let messages: Vec<MessageRecord> = emitting
        .iter()
        .zip(&endpoints)
        .map(|((_, event, _), endpoints)| MessageRecord {
            request_id: event.request_id.clone().unwrap_or_default(),
            event: event.event.clone(),
            channels: event.channels.clone(),
            payload: Some(event.payload.clone()),
            accepted_at,
            endpoints: *endpoints,
        })
        .collect();
    let (promised, emitted, logged) =
        futures_util::join!(promises, emits, state.messages.log(&app, &messages));
    if let Err(problem) = logged {
        tracing::error!(%problem, "batch accepted, but missing from the message log");
    }
    let refused: Vec<MessageRecord> = messages
        .into_iter()
        .zip(&emitted)
        .filter(|(_, outcome)| outcome.is_err())
        .map(|(message, _)| message)
        .collect();
    if !refused.is_empty() {
        state.messages.unlog(&app, &refused).await;
    }
    for (item, promised) in emitting.iter_mut().zip(promised) {
        if let Err(problem) = promised {
            results[item.0] = Some(BatchResult::refused(problem));
            item.2 = None; // its key is freed
        }
    }
    let mut finishing = Vec::new();
    for (((index, _, reservation), outcome), endpoints) in
        emitting.into_iter().zip(emitted).zip(endpoints)
    {
        if results[index].is_some() {
            continue; // its key could not be promised
        }
        results[index] = Some(match outcome {
            Ok(request_id) => {
                let request_id = request_id.to_string();
                if let Some(reservation) = reservation {
                    finishing.push(reservation.finish(request_id.clone()));
                }
                BatchResult::accepted(request_id, Some(endpoints))
            }
            // A dropped reservation frees its key.
            Err(error) => BatchResult::refused(error.into()),
        });
    }
    join_all(finishing).await;
    let results: Vec<BatchResult> = results.into_iter().flatten().collect();
    let accepted = results.iter().filter(|r| r.status == 202).count();
    Ok(HttpResponse::Ok().json(BatchAccepted { accepted, results }))
}

/// Parses one event and claims its key.
async fn claim<'a>(state: &'a AppState, app: &str, raw: &RawValue) -> Step<'a> {
    let event: BatchEvent = match serde_json::from_str(raw.get()) {
        Ok(event) => event,
        Err(e) => {
            return Step::Done(BatchResult::refused(Problem::bad_request(format!(
                "invalid event: {e}"
            ))))
        }
    };
    if let Err(problem) = state.catalog.types.check(&event.event, &event.payload) {
        return Step::Done(BatchResult::refused(problem));
    }
    let Some(key) = &event.idempotency_key else {
        return Step::Emit(event, None);
    };
    match state
        .keys
        .claim(app, key, &fingerprint(raw.get().as_bytes()))
        .await
    {
        Ok(Claim::Replay(request_id)) => Step::Done(BatchResult::accepted(request_id, None)),
        Ok(Claim::Fresh(reservation)) => Step::Emit(event, Some(reservation)),
        Err(problem) => Step::Done(BatchResult::refused(problem)),
    }
}
