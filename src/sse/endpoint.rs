//! The actix-web side: `GET <scope>/{topic}` answers an event stream.

use std::convert::Infallible;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use bytes::Bytes;
use serde::Deserialize;

use super::broadcaster::Subscribe;
use super::slot::BroadcasterSlot;
use super::{validate_topic, SseDenied, SseOptions, ALL_TOPICS};

/// What the scope's handler needs.
#[derive(Clone)]
struct Endpoint {
    broadcaster: BroadcasterSlot,
    options: SseOptions,
}

/// The scope serving `GET <path>/{topic}`.
pub(crate) fn scope(
    path: &str,
    broadcaster: BroadcasterSlot,
    options: SseOptions,
) -> actix_web::Scope {
    web::scope(path)
        .app_data(web::Data::new(Endpoint {
            broadcaster,
            options,
        }))
        .route("/{topic}", web::get().to(subscribe))
}

/// Why a subscription was refused; also the response sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SseRejection {
    /// The topic name is not acceptable: 400.
    #[error("invalid topic: {0}")]
    InvalidTopic(&'static str),
    /// `Last-Event-ID` (or `last_event_id`) is not an id this server issues: 400.
    #[error("malformed Last-Event-ID `{0}`: expected a non-negative integer")]
    MalformedLastEventId(String),
    /// The authorization hook refused: 401 or 403.
    #[error("subscription refused")]
    Denied(SseDenied),
    /// The broadcaster is not running (after shutdown): 503.
    #[error("event stream unavailable")]
    Unavailable,
}

impl ResponseError for SseRejection {
    fn status_code(&self) -> StatusCode {
        match self {
            SseRejection::InvalidTopic(_) | SseRejection::MalformedLastEventId(_) => {
                StatusCode::BAD_REQUEST
            }
            SseRejection::Denied(SseDenied::Unauthorized) => StatusCode::UNAUTHORIZED,
            SseRejection::Denied(SseDenied::Forbidden) => StatusCode::FORBIDDEN,
            SseRejection::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(self.to_string())
    }
}

#[derive(Deserialize)]
struct ResumeQuery {
    last_event_id: Option<String>,
}

async fn subscribe(
    request: HttpRequest,
    topic: web::Path<String>,
    endpoint: web::Data<Endpoint>,
) -> Result<HttpResponse, SseRejection> {
    let topic = topic.into_inner();
    if topic != ALL_TOPICS {
        validate_topic(&topic).map_err(SseRejection::InvalidTopic)?;
    }
    if let Some(authorize) = &endpoint.options.authorize {
        authorize(&topic, &request).map_err(SseRejection::Denied)?;
    }
    let last_event_id = last_event_id(&request)?;
    let frames = endpoint
        .broadcaster
        .get()
        .send(Subscribe {
            topic,
            last_event_id,
        })
        .await
        .map_err(|_| SseRejection::Unavailable)?;
    let body = futures_util::stream::unfold(frames, |mut frames| async move {
        frames
            .recv()
            .await
            .map(|frame| (Ok::<Bytes, Infallible>(frame), frames))
    });
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/event-stream"))
        .insert_header((CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        // Compression would buffer frames; `identity` also keeps actix's
        // Compress middleware away.
        .insert_header((CONTENT_ENCODING, "identity"))
        .streaming(body))
}

/// The id to resume after: the `Last-Event-ID` header, else the
/// `last_event_id` query parameter (browsers cannot set headers on EventSource).
fn last_event_id(request: &HttpRequest) -> Result<Option<u64>, SseRejection> {
    let from_header = request
        .headers()
        .get("last-event-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let raw = match from_header {
        Some(raw) => Some(raw),
        None => web::Query::<ResumeQuery>::from_query(request.query_string())
            .ok()
            .and_then(|q| q.into_inner().last_event_id),
    };
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(id) => id
            .parse()
            .map(Some)
            .map_err(|_| SseRejection::MalformedLastEventId(id.escape_debug().to_string())),
    }
}
