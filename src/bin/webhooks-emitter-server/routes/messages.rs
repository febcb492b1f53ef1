//! `/api/v1/messages` (application `default`) and
//! `/api/v1/apps/{app}/messages`: every event the application accepted,
//! newest first, filtered; one message with its attempts at every endpoint;
//! and `…/endpoints/{id}/recover`: an endpoint sent again what it was sent
//! in a time window.

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use webhooks_emitter::{channels_admit, subscription_covers};

use super::endpoints::known;
use super::paging::page_limit;
use super::within::{AtEndpoint, InApp};
use crate::attempts::AttemptView;
use crate::clock::{parse_rfc3339_micros, unix_micros};
use crate::message::{MessageRecord, MessageView};
use crate::messages::Filter;
use crate::problem::Problem;
use crate::state::AppState;

type State = web::Data<AppState>;

/// Records one page may read, in tens of pages: a rare filter answers a
/// short page with a cursor rather than read the whole log.
const SCAN_PAGES: usize = 10;
/// Messages sent to an endpoint at once by `recover`.
const RECOVER_BATCH: usize = 500;

/// `?event=&channel=&since=&until=&limit=&cursor=` of the list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MessagesQuery {
    /// An event name, or a pattern (`order.*`, `*`).
    pub event: Option<String>,
    /// Only messages sent to this channel.
    pub channel: Option<String>,
    /// Accepted at or after this time (RFC 3339, UTC: `2026-12-05T10:00:00Z`).
    pub since: Option<String>,
    /// Accepted before this time (RFC 3339, UTC).
    pub until: Option<String>,
    /// Most messages returned (1 to 250; default 50).
    #[param(minimum = 1, maximum = 250)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of messages, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    pub data: Vec<MessageView>,
    /// For `?cursor=`: where the next page starts; absent on the last. A
    /// page may hold fewer than `limit` with a cursor (a rare filter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `cursor`'s shape, as a 400.
fn check_cursor(cursor: Option<&str>) -> Result<(), Problem> {
    if cursor
        .is_some_and(|c| c.is_empty() || c.len() > 300 || !c.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(Problem::bad_request(
            "cursor is the next_cursor of a page, as it was given",
        ));
    }
    Ok(())
}

#[utoipa::path(params(MessagesQuery),
    responses((status = 200, body = MessagePage), (status = 404, body = Problem)))]
#[get("/messages")]
pub async fn list_messages(
    state: State,
    InApp(app): InApp,
    query: web::Query<MessagesQuery>,
) -> Result<HttpResponse, Problem> {
    let query = query.into_inner();
    let limit = page_limit(query.limit)?;
    check_cursor(query.cursor.as_deref())?;
    let filter = Filter {
        event: query.event,
        channel: query.channel,
        since: query
            .since
            .as_deref()
            .map(parse_rfc3339_micros)
            .transpose()
            .map_err(Problem::bad_request)?,
        until: query
            .until
            .as_deref()
            .map(parse_rfc3339_micros)
            .transpose()
            .map_err(Problem::bad_request)?,
    };
    let page = state
        .messages
        .page(
            &app,
            &filter,
            query.cursor.as_deref(),
            limit,
            limit * SCAN_PAGES,
        )
        .await?;
    Ok(HttpResponse::Ok().json(MessagePage {
        data: page.messages.into_iter().map(MessageView::from).collect(),
        next_cursor: page.next,
    }))
}

/// A message and what became of it at each endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageDetail {
    #[serde(flatten)]
    pub message: MessageView,
    /// Its attempts at the application's endpoints, oldest first, as kept
    /// (the last `--attempts-kept` of each endpoint, within `--retention`).
    pub attempts: Vec<AttemptView>,
}

#[utoipa::path(params(("request_id" = String, Path, description = "the message's request id")),
    responses((status = 200, body = MessageDetail), (status = 404, body = Problem)))]
#[get("/messages/{request_id}")]
pub async fn read_message(
    state: State,
    InApp(app): InApp,
    request_id: web::Path<MessageId>,
) -> Result<HttpResponse, Problem> {
    let request_id = &request_id.request_id;
    let message = message_of(&state, &app, request_id).await?;
    let mut attempts = Vec::new();
    for at in state.catalog.endpoints_of(&app).await {
        attempts.extend(state.attempts.of_request(&at.key, request_id).await?);
    }
    attempts.sort_by(|a, b| a.at.cmp(&b.at));
    Ok(HttpResponse::Ok().json(MessageDetail {
        message: MessageView::from(message),
        attempts,
    }))
}

/// The message of `app` with this request id, or the 404.
async fn message_of(
    state: &AppState,
    app: &str,
    request_id: &str,
) -> Result<MessageRecord, Problem> {
    state.messages.get(app, request_id).await?.ok_or_else(|| {
        Problem::not_found(format!(
            "no message with request id `{}`",
            request_id.escape_debug()
        ))
    })
}

/// `{request_id}` of a message's route.
#[derive(Debug, Deserialize)]
pub struct MessageId {
    request_id: String,
}

/// The window of `recover`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverWindow {
    /// From this time, inclusive (RFC 3339, UTC: `2026-12-05T10:00:00Z`).
    pub since: String,
    /// To this time, exclusive (RFC 3339, UTC); now without it.
    pub until: Option<String>,
}

/// What `recover` sent again.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recovered {
    /// Messages queued for the endpoint again, in their original order and
    /// with their original request ids.
    pub recovered: usize,
    /// Messages of the window it subscribes to whose payloads have expired
    /// (`--retention`): not sent.
    pub expired: usize,
}

#[utoipa::path(params(("id" = String, Path, description = "the endpoint's id")),
    request_body = RecoverWindow,
    responses((status = 202, body = Recovered), (status = 400, body = Problem),
        (status = 404, body = Problem), (status = 503, body = Problem)))]
#[post("/endpoints/{id}/recover")]
pub async fn recover(
    state: State,
    InApp(app): InApp,
    AtEndpoint(at): AtEndpoint,
    window: web::Json<RecoverWindow>,
) -> Result<HttpResponse, Problem> {
    known(&state, &at).await?;
    let since = parse_rfc3339_micros(&window.since).map_err(Problem::bad_request)?;
    let until = match &window.until {
        Some(until) => parse_rfc3339_micros(until).map_err(Problem::bad_request)?,
        None => unix_micros(),
    };
    if since >= until {
        return Err(Problem::bad_request("since must be before until"));
    }
    let (events, channels) = state.catalog.subscription(&at).await?;
    let wanted = |message: &MessageRecord| {
        events
            .iter()
            .any(|e| subscription_covers(e, &message.event))
            && channels_admit(&channels, &message.channels)
    };
    let (mut recovered, mut expired) = (0, 0);
    let mut after: Option<String> = None;
    loop {
        let batch = state
            .messages
            .window(&app, since, until, after.as_deref(), RECOVER_BATCH)
            .await?;
        let Some((last, _)) = batch.last() else { break };
        after = Some(last.clone());
        let sending: Vec<&MessageRecord> =
            batch.iter().map(|(_, m)| m).filter(|m| wanted(m)).collect();
        expired += sending.iter().filter(|m| m.payload.is_none()).count();
        let sent = state
            .emitter
            .emit_all_durable_to(
                &at.key,
                sending.iter().filter_map(|m| {
                    m.payload
                        .as_deref()
                        .map(|payload| (m.event.as_str(), payload, Some(m.request_id.clone())))
                }),
            )
            .await?;
        recovered += sent.len();
        if batch.len() < RECOVER_BATCH {
            break;
        }
    }
    Ok(HttpResponse::Accepted().json(Recovered { recovered, expired }))
}

#[utoipa::path(params(("id" = String, Path, description = "the endpoint's id"),
        ("request_id" = String, Path, description = "the message's request id")),
    responses((status = 202, body = Recovered), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 503, body = Problem)))]
#[post("/endpoints/{id}/messages/{request_id}/resend")]
pub async fn resend(
    state: State,
    InApp(app): InApp,
    AtEndpoint(at): AtEndpoint,
    request_id: web::Path<MessageId>,
) -> Result<HttpResponse, Problem> {
    known(&state, &at).await?;
    let request_id = &request_id.request_id;
    let message = message_of(&state, &app, request_id).await?;
    let Some(payload) = message.payload.as_deref() else {
        return Err(Problem::conflict(
            "this message's payload has expired (--retention): it cannot be sent again",
        ));
    };
    state
        .emitter
        .emit_all_durable_to(
            &at.key,
            [(
                message.event.as_str(),
                payload,
                Some(message.request_id.clone()),
            )],
        )
        .await?;
    Ok(HttpResponse::Accepted().json(Recovered {
        recovered: 1,
        expired: 0,
    }))
}
