//! The actix-web extractor: read the body, verify, deduplicate, deserialize.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use bytes::BytesMut;
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::verify::{
    AlreadySeen, Claim, IdempotencyStore, VerifiedDelivery, Verifier, VerifyError,
};

/// Default largest body the extractor reads: 1 MiB, the emitter's default
/// payload limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// What [`VerifiedWebhook`] checks, registered with `App::app_data` (plain or
/// wrapped in `web::Data`).
///
/// ```no_run
/// use std::time::Duration;
/// use actix_web::{web, App, HttpResponse, HttpServer};
/// use webhooks_emitter::verify::{IdempotencyStore, LegacyVerifier, VerifiedWebhook, WebhookVerification};
///
/// async fn hook(mut webhook: VerifiedWebhook<serde_json::Value>) -> HttpResponse {
///     println!("{} {:?}", webhook.delivery().id, *webhook);
///     webhook.done(); // later deliveries with this id are answered 200 and skipped
///     HttpResponse::NoContent().finish()
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// let verification = WebhookVerification::new(LegacyVerifier::new("supersecret").require_timestamp())
///     .idempotency(IdempotencyStore::new(100_000, Duration::from_secs(24 * 3600)));
/// HttpServer::new(move || App::new().app_data(verification.clone()).route("/hooks", web::post().to(hook)))
///     .bind(("127.0.0.1", 8080))?
///     .run()
///     .await
/// # }
/// ```
#[derive(Clone)]
pub struct WebhookVerification {
    verifier: Arc<dyn Verifier>,
    idempotency: Option<IdempotencyStore>,
    max_body_bytes: usize,
}

impl WebhookVerification {
    /// Verifies with `verifier`; no deduplication; bodies up to 1 MiB.
    pub fn new(verifier: impl Verifier) -> Self {
        WebhookVerification {
            verifier: Arc::new(verifier),
            idempotency: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Skips deliveries whose id `store` has recorded as processed (answered
    /// 200 without calling the handler) and answers 409 to one in progress.
    pub fn idempotency(mut self, store: IdempotencyStore) -> Self {
        self.idempotency = Some(store);
        self
    }

    /// Largest body read (default 1 MiB, the emitter's default payload limit);
    /// larger ones are answered 413.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }
}

impl fmt::Debug for WebhookVerification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerification")
            .field("idempotency", &self.idempotency)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

/// A webhook whose signature (and timestamp, if any) checked out, with its JSON
/// payload deserialized into `T`. Derefs to `T`.
///
/// With deduplication on, the delivery id stays claimed while this value
/// lives; call [`done`](Self::done) once the work is committed. If it is dropped
/// without `done` (the handler failed), the id is released so the sender's
/// retry is processed.
pub struct VerifiedWebhook<T> {
    payload: T,
    delivery: VerifiedDelivery,
    claim: Option<Claim>,
}

impl<T> VerifiedWebhook<T> {
    /// The deserialized payload.
    pub fn payload(&self) -> &T {
        &self.payload
    }

    /// What verification established: delivery id, timestamp, event name.
    pub fn delivery(&self) -> &VerifiedDelivery {
        &self.delivery
    }

    /// Records the delivery id as processed (no-op without deduplication).
    pub fn done(&mut self) {
        if let Some(claim) = self.claim.take() {
            claim.done();
        }
    }

    /// The parts, the claim included, for handlers that finish the work elsewhere.
    pub fn into_parts(self) -> (T, VerifiedDelivery, Option<Claim>) {
        (self.payload, self.delivery, self.claim)
    }
}

impl<T> Deref for VerifiedWebhook<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.payload
    }
}

impl<T: fmt::Debug> fmt::Debug for VerifiedWebhook<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedWebhook")
            .field("delivery", &self.delivery)
            .field("payload", &self.payload)
            .finish()
    }
}

/// Why the extractor refused a request; also the response sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookRejection {
    /// Not authentic, not fresh or malformed: 401 or 400.
    #[error("webhook verification failed: {0}")]
    Verify(#[from] VerifyError),
    /// The body is larger than the limit: 413.
    #[error("body is larger than {limit} bytes")]
    TooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// The body could not be read: 400.
    #[error("could not read the body: {0}")]
    Body(String),
    /// The verified body is not the JSON `T` expects: 400.
    #[error("payload is not the expected JSON: {0}")]
    Json(String),
    /// Already processed: answered 200 so the sender stops retrying.
    #[error("duplicate delivery `{id}` ignored: already processed")]
    Duplicate {
        /// The delivery id.
        id: String,
    },
    /// Being processed by another request: 409, the sender retries later.
    #[error("delivery `{id}` is being processed; retry later")]
    InProgress {
        /// The delivery id.
        id: String,
    },
    /// No [`WebhookVerification`] in the app data: 500.
    #[error("server misconfigured: no WebhookVerification in App::app_data")]
    NotConfigured,
}

impl ResponseError for WebhookRejection {
    fn status_code(&self) -> StatusCode {
        match self {
            WebhookRejection::Verify(e) => {
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED)
            }
            WebhookRejection::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookRejection::Body(_) | WebhookRejection::Json(_) => StatusCode::BAD_REQUEST,
            WebhookRejection::Duplicate { .. } => StatusCode::OK,
            WebhookRejection::InProgress { .. } => StatusCode::CONFLICT,
            WebhookRejection::NotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(self.to_string())
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for VerifiedWebhook<T> {
    type Error = WebhookRejection;
    type Future = LocalBoxFuture<'static, Result<Self, WebhookRejection>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let verification = req
                .app_data::<WebhookVerification>()
                .or_else(|| {
                    req.app_data::<web::Data<WebhookVerification>>()
                        .map(|d| d.get_ref())
                })
                .cloned()
                .ok_or(WebhookRejection::NotConfigured)?;
            let limit = verification.max_body_bytes;
            let mut body = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| WebhookRejection::Body(e.to_string()))?;
                if body.len().saturating_add(chunk.len()) > limit {
                    return Err(WebhookRejection::TooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            let delivery = verification.verifier.verify(req.headers(), &body)?;
            let payload: T =
                serde_json::from_slice(&body).map_err(|e| WebhookRejection::Json(e.to_string()))?;
            let claim = match &verification.idempotency {
                None => None,
                Some(store) => Some(store.claim(&delivery.id).map_err(|seen| {
                    let id = delivery.id.clone();
                    match seen {
                        AlreadySeen::Processed => WebhookRejection::Duplicate { id },
                        AlreadySeen::InProgress => WebhookRejection::InProgress { id },
                    }
                })?),
            };
            Ok(VerifiedWebhook {
                payload,
                delivery,
                claim,
            })
        })
    }
}
