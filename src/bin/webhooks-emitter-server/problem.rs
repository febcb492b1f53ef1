//! Errors as `application/problem+json` (RFC 9457): a status, a short title
//! and a `detail` that says what to fix.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;
use webhooks_emitter::{AttachError, ConfigError, ControlError, EmitError, StoreError};

/// One error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, and what to change.
    pub detail: String,
    /// Where a payload fails its event type's schema (422 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<Violation>>,
}

/// One place where a payload does not match its schema.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Violation {
    /// The JSON pointer (RFC 6901) into the payload; `""` is the payload itself.
    pub pointer: String,
    /// What the schema wanted there (the value itself is not repeated).
    pub message: String,
}

impl Problem {
    /// A problem with `status` and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: None,
        }
    }

    /// 422: the payload does not match its event type's schema.
    pub fn unprocessable(detail: impl Into<String>, violations: Vec<Violation>) -> Self {
        Problem {
            errors: Some(violations),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }

    pub fn unknown_endpoint(id: &str) -> Self {
        Self::not_found(format!("no endpoint with id `{id}`"))
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .content_type("application/problem+json")
            .json(self)
    }
}

impl From<AttachError> for Problem {
    fn from(error: AttachError) -> Self {
        match error {
            AttachError::AlreadyExists { id } => {
                Self::conflict(format!("an endpoint with id `{id}` already exists"))
            }
            AttachError::UnknownEmitter { id } => Self::unknown_endpoint(&id),
            AttachError::ShutDown | AttachError::NotRunning => Self::unavailable(error.to_string()),
            // The server's word is "endpoint", not the library's "emitter".
            AttachError::InvalidConfig {
                id,
                source: source @ ConfigError::BlockedTarget { .. },
            } => Self::bad_request(format!(
                "endpoint `{id}`: {source}; start the server with --allow-private-targets \
                 (WEBHOOKS_ALLOW_PRIVATE_TARGETS=true) to allow private targets"
            )),
            AttachError::InvalidConfig { id, source } => {
                Self::bad_request(format!("endpoint `{id}`: {source}"))
            }
            AttachError::NoEvents { id } => {
                Self::bad_request(format!("endpoint `{id}` needs at least one event name"))
            }
            other => Self::bad_request(other.to_string()),
        }
    }
}

impl From<ControlError> for Problem {
    fn from(error: ControlError) -> Self {
        match error {
            ControlError::UnknownEmitter { id } => Self::unknown_endpoint(&id),
            ControlError::UnknownDeadLetter { id, dead_letter } => {
                Self::not_found(format!("endpoint `{id}` has no dead letter {dead_letter}"))
            }
            ControlError::QueueFull { id } => Self::conflict(format!(
                "endpoint `{id}` has a full queue; dead letters kept"
            )),
            ControlError::Crashed { id } => Self::unavailable(format!(
                "endpoint `{id}` crashed while answering; it is being restarted: try again"
            )),
            ControlError::Store(store) => store.into(),
            other => Self::unavailable(other.to_string()),
        }
    }
}

impl From<EmitError> for Problem {
    fn from(error: EmitError) -> Self {
        match error {
            EmitError::PayloadTooLarge { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, error.to_string())
            }
            EmitError::Store(store) => store.into(),
            EmitError::ShuttingDown | EmitError::NotRunning => Self::unavailable(error.to_string()),
            EmitError::UnknownEmitter { id } => {
                Self::unknown_endpoint(crate::ids::endpoint_of(&id))
            }
            other => Self::bad_request(other.to_string()),
        }
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "store failed");
        Self::unavailable(format!("the store cannot be written: {error}"))
    }
}

/// The JSON extractor's errors as problems: 413 over the body limit, 415
/// without a JSON content type, 400 for the rest (with serde's message, which
/// names an unknown or missing field).
pub fn json_error(error: actix_web::error::JsonPayloadError) -> Problem {
    use actix_web::error::JsonPayloadError as E;
    match &error {
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is over the limit of {limit} bytes"),
        ),
        E::ContentType => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON, with `content-type: application/json`",
        ),
        E::Deserialize(inner) => Problem::bad_request(format!("invalid JSON body: {inner}")),
        _ => Problem::bad_request(format!("invalid request body: {error}")),
    }
}

/// Query string errors (e.g. `?limit=abc`) as problems.
pub fn query_error(error: actix_web::error::QueryPayloadError) -> Problem {
    Problem::bad_request(format!("invalid query string: {error}"))
}

/// Path segment errors (e.g. a dead letter id that is not a number).
pub fn path_error(error: actix_web::error::PathError) -> Problem {
    Problem::bad_request(format!("invalid path: {error}"))
}
