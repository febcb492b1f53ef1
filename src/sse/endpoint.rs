//! The actix-web side: `GET <scope>/{topic}` streams one topic,
//! `GET <scope>?topic=a&topic=b` several on one connection.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::broadcaster::{Frame, Subscribe, SubscribeMany, TopicSet};
use super::slot::BroadcasterSlot;
use super::{position, validate_followed, validate_topic, SseDenied, SseOptions, ALL_TOPICS};

/// What the scope's handlers need.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub broadcaster: BroadcasterSlot,
    pub options: SseOptions,
}

/// The scope serving `GET <path>/{topic}` and `GET <path>?topic=…`.
pub(crate) fn scope(path: &str, endpoint: Endpoint) -> actix_web::Scope {
    web::scope(path)
        .app_data(web::Data::new(endpoint))
        .route("", web::get().to(subscribe_many))
        .route("/", web::get().to(subscribe_many))
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
    /// On a stream of several topics, `Last-Event-ID` is not `topic:id,…`: 400.
    #[error("malformed Last-Event-ID `{0}`: expected `topic:id,topic:id,…`")]
    MalformedPositions(String),
    /// No `topic` in the query, or more than the limit: 400.
    #[error("a stream of several topics needs 1 to {max} `topic` parameters, got {got}")]
    TopicCount {
        /// Topics asked for.
        got: usize,
        /// The limit (`SseOptions::max_topics`).
        max: usize,
    },
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
            SseRejection::InvalidTopic(_)
            | SseRejection::MalformedLastEventId(_)
            | SseRejection::MalformedPositions(_)
            | SseRejection::TopicCount { .. } => StatusCode::BAD_REQUEST,
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

async fn subscribe(
    request: HttpRequest,
    topic: web::Path<String>,
    endpoint: web::Data<Endpoint>,
) -> Result<HttpResponse, SseRejection> {
    let topic = topic.into_inner();
    validate_followed(&topic).map_err(SseRejection::InvalidTopic)?;
    authorize(&endpoint, &topic, &request)?;
    let last_event_id = match raw_last_event_id(&request) {
        None => None,
        Some(id) => Some(
            id.parse()
                .map_err(|_| SseRejection::MalformedLastEventId(id.escape_debug().to_string()))?,
        ),
    };
    let subscribe = Subscribe {
        topic,
        last_event_id,
    };
    let frames = endpoint
        .broadcaster
        .get()
        .send(subscribe)
        .await
        .map_err(|_| SseRejection::Unavailable)?;
    Ok(stream(frames))
}

async fn subscribe_many(
    request: HttpRequest,
    endpoint: web::Data<Endpoint>,
) -> Result<HttpResponse, SseRejection> {
    let topics = requested_topics(&request, endpoint.options.max_topics)?;
    for topic in topics.iter() {
        authorize(&endpoint, topic, &request)?;
    }
    let positions = match raw_last_event_id(&request) {
        None => None,
        Some(id) => Some(
            position::parse(&id)
                .ok_or_else(|| SseRejection::MalformedPositions(id.escape_debug().to_string()))?,
        ),
    };
    let frames = endpoint
        .broadcaster
        .get()
        .send(SubscribeMany { topics, positions })
        .await
        .map_err(|_| SseRejection::Unavailable)?;
    Ok(channel_stream(frames))
}

/// The `topic` parameters: checked, without duplicates, within the limit.
fn requested_topics(request: &HttpRequest, max: usize) -> Result<TopicSet, SseRejection> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .map_err(|_| SseRejection::InvalidTopic("the query is not UTF-8 form data"))?;
    let asked = pairs.iter().filter(|(key, _)| key == "topic").count();
    let mut topics: Vec<Arc<str>> = Vec::new();
    for (key, topic) in pairs {
        if key != "topic" || topics.iter().any(|t| **t == *topic) {
            continue;
        }
        // Refused as soon as the limit is passed: the duplicate check stays
        // linear in the limit, whatever the query holds.
        if topics.len() == max {
            return Err(SseRejection::TopicCount { got: asked, max });
        }
        if topic == ALL_TOPICS {
            return Err(SseRejection::InvalidTopic(
                "`*` has ids of its own: stream it alone, at `<scope>/*`",
            ));
        }
        validate_topic(&topic).map_err(SseRejection::InvalidTopic)?;
        topics.push(Arc::from(topic));
    }
    if topics.is_empty() || topics.len() > max {
        return Err(SseRejection::TopicCount {
            got: topics.len(),
            max,
        });
    }
    Ok(Arc::from(topics))
}

fn authorize(endpoint: &Endpoint, topic: &str, request: &HttpRequest) -> Result<(), SseRejection> {
    match &endpoint.options.authorize {
        Some(authorize) => authorize(topic, request).map_err(SseRejection::Denied),
        None => Ok(()),
    }
}

/// The id to resume after: the `Last-Event-ID` header, else the
/// `last_event_id` query parameter (browsers cannot set headers on EventSource).
fn raw_last_event_id(request: &HttpRequest) -> Option<String> {
    let from_header = request
        .headers()
        .get("last-event-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let raw = from_header.or_else(|| {
        web::Query::<HashMap<String, String>>::from_query(request.query_string())
            .ok()
            .and_then(|q| q.into_inner().remove("last_event_id"))
    })?;
    let trimmed = raw.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// The event-stream response reading `frames`.
fn channel_stream(frames: mpsc::Receiver<Frame>) -> HttpResponse {
    stream(futures_util::stream::unfold(
        frames,
        |mut frames| async move {
            frames
                .recv()
                .await
                .map(|frame| (Ok::<Bytes, Infallible>(Arc::unwrap_or_clone(frame)), frames))
        },
    ))
}

/// The event-stream response sending `body`.
fn stream<S>(body: S) -> HttpResponse
where
    S: futures_util::Stream<Item = Result<Bytes, Infallible>> + 'static,
{
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/event-stream"))
        .insert_header((CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        // Compression would buffer frames; `identity` also keeps actix's
        // Compress middleware away.
        .insert_header((CONTENT_ENCODING, "identity"))
        .streaming(body)
}
