//! `--retention`: messages keep their payloads, and attempts are kept, for
//! this long. A background task drops what is older, in bounded batches
//! (one transaction each, a pause between them), so that a long backlog
//! never holds the store for long.

use std::time::Duration;

use actix_web::web;

use crate::clock::unix_micros;
use crate::state::AppState;

/// Messages read per batch.
const BATCH: usize = 500;
/// Between two batches: the store serves requests meanwhile.
const PAUSE: Duration = Duration::from_millis(10);
/// How often a pass runs, at most; a short retention runs it more often (a
/// tenth of the retention), so that nothing outlives it by much.
const LONGEST_WAIT: Duration = Duration::from_secs(60);

/// Runs a pass now and then, for as long as the server runs.
pub async fn enforce(state: web::Data<AppState>) {
    let every = (state.retention / 10).clamp(Duration::from_millis(100), LONGEST_WAIT);
    loop {
        tokio::time::sleep(every).await;
        pass(&state).await;
    }
}

/// One pass: what is past the retention now is dropped.
async fn pass(state: &AppState) {
    let retention = u64::try_from(state.retention.as_micros()).unwrap_or(u64::MAX);
    let cutoff = unix_micros().saturating_sub(retention);
    for app in state.catalog.apps.ids() {
        loop {
            match state.messages.expire(&app, cutoff, BATCH).await {
                Ok(read) if read == BATCH => tokio::time::sleep(PAUSE).await,
                Ok(_) => break,
                Err(problem) => {
                    tracing::warn!(%app, %problem, "expired messages not cleaned; next pass retries");
                    break;
                }
            }
        }
    }
    for endpoint in state.catalog.keys().await {
        if let Err(problem) = state.attempts.expire(&endpoint, cutoff).await {
            tracing::warn!(%endpoint, %problem, "expired attempts not cleaned; next pass retries");
        }
    }
}
