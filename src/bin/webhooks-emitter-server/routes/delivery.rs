//! Per endpoint: recent attempts, dead letters and their redelivery, stats,
//! signing key rotation.

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use webhooks_emitter::DeadLetter;

use super::endpoints::known;
use super::within::AtEndpoint;
use crate::attempts::AttemptView;
use crate::clock::{rfc3339, unix_rfc3339};
use crate::endpoint::StatsView;
use crate::problem::Problem;
use crate::state::AppState;

type State = web::Data<AppState>;

/// `?limit=` of the attempts list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Most attempts returned, newest first (default 50; the journal keeps
    /// the last `--attempts-kept`, 1,000 by default).
    pub limit: Option<usize>,
}

#[utoipa::path(params(("id" = String, Path, description = "the endpoint's id"), Limit),
    responses((status = 200, body = Vec<AttemptView>), (status = 404, body = Problem)))]
#[get("/endpoints/{id}/attempts")]
pub async fn attempts(
    state: State,
    AtEndpoint(at): AtEndpoint,
    query: web::Query<Limit>,
) -> Result<HttpResponse, Problem> {
    known(&state, &at).await?;
    let limit = query.limit.unwrap_or(50);
    Ok(HttpResponse::Ok().json(state.attempts.recent(&at.key, limit).await?))
}

/// A dead letter as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterView {
    /// For `…/dead-letters/{n}/redeliver`.
    pub id: u64,
    pub request_id: String,
    pub event: String,
    pub attempts: u32,
    pub reason: String,
    /// RFC 3339.
    pub at: String,
    /// The payload as it was emitted: any JSON value, however deeply nested
    /// (passed through, never parsed into a tree).
    #[schema(value_type = serde_json::Value)]
    pub payload: Option<Box<serde_json::value::RawValue>>,
}

impl From<DeadLetter> for DeadLetterView {
    fn from(letter: DeadLetter) -> Self {
        DeadLetterView {
            id: letter.id,
            request_id: letter.event.request_id().to_string(),
            event: letter.event.name().to_owned(),
            attempts: letter.attempts,
            reason: letter.reason.to_string(),
            at: rfc3339(letter.at),
            payload: std::str::from_utf8(letter.event.payload())
                .ok()
                .and_then(|text| serde_json::value::RawValue::from_string(text.to_owned()).ok()),
        }
    }
}

#[utoipa::path(params(("id" = String, Path, description = "the endpoint's id")),
    responses((status = 200, body = Vec<DeadLetterView>), (status = 404, body = Problem)))]
#[get("/endpoints/{id}/dead-letters")]
pub async fn dead_letters(
    state: State,
    AtEndpoint(at): AtEndpoint,
) -> Result<HttpResponse, Problem> {
    known(&state, &at).await?;
    let letters = state.emitter.dead_letters(&at.key).await?;
    let views: Vec<DeadLetterView> = letters.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(views))
}

/// `{n}` of a dead letter's route.
#[derive(Debug, Deserialize)]
pub struct Letter {
    n: u64,
}

#[utoipa::path(params(("id" = String, Path, description = "the endpoint's id"),
        ("n" = u64, Path, description = "the dead letter's id")),
    responses((status = 202), (status = 404, body = Problem), (status = 409, body = Problem)))]
#[post("/endpoints/{id}/dead-letters/{n}/redeliver")]
pub async fn redeliver(
    state: State,
    AtEndpoint(at): AtEndpoint,
    letter: web::Path<Letter>,
) -> Result<HttpResponse, Problem> {
    known(&state, &at).await?;
    state.emitter.redeliver(&at.key, letter.n).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "redelivered": 1 })))
}

/// How many dead letters went back to the queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct Redelivered {
    pub redelivered: usize,
}

#[utoipa::path(params(("id" = String, Path, description = "the endpoint's id")),
    responses((status = 202, body = Redelivered), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
#[post("/endpoints/{id}/dead-letters/redeliver-all")]
pub async fn redeliver_all(
    state: State,
    AtEndpoint(at): AtEndpoint,
) -> Result<HttpResponse, Problem> {
    known(&state, &at).await?;
    let redelivered = state.emitter.redeliver_all(&at.key).await?;
    Ok(HttpResponse::Accepted().json(Redelivered { redelivered }))
}

#[utoipa::path(params(("id" = String, Path, description = "the endpoint's id")),
    responses((status = 200, body = StatsView), (status = 404, body = Problem)))]
#[get("/endpoints/{id}/stats")]
pub async fn stats(state: State, AtEndpoint(at): AtEndpoint) -> Result<HttpResponse, Problem> {
    known(&state, &at).await?;
    let stats = state.catalog.stats(&at.key).await?;
    Ok(HttpResponse::Ok().json(StatsView::from(stats)))
}

/// The new key, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rotated {
    /// The new Standard Webhooks key (`whsec_…`): store it now, it is not shown again.
    pub standard_webhooks_secret: String,
    /// Until when the previous key keeps signing too (RFC 3339); absent if there was none.
    pub previous_key_signs_until: Option<String>,
}

#[utoipa::path(params(("id" = String, Path, description = "the endpoint's id")),
    responses((status = 200, body = Rotated), (status = 404, body = Problem)))]
#[post("/endpoints/{id}/secret/rotate")]
pub async fn rotate(state: State, AtEndpoint(at): AtEndpoint) -> Result<HttpResponse, Problem> {
    let (key, until) = state.catalog.rotate(&at, state.rotation_grace).await?;
    state.catalog.propagated().await;
    let until = until.map(unix_rfc3339);
    Ok(HttpResponse::Ok().json(Rotated {
        standard_webhooks_secret: key,
        previous_key_signs_until: until,
    }))
}
