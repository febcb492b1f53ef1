//! `webhooks-emitter-server`: the crate as a service. A REST API manages
//! endpoints and accepts events from any language; everything is kept in the
//! journal, or in PostgreSQL for several nodes (`catalog/sync.rs`); Prometheus metrics at `/metrics`; SSE at `/sse`, WebSocket rooms
//! at `/ws`; a web console at `/`.
//!
//! It uses only the library's public API. Layout:
//!
//! - [`cli`]: flags and environment; [`secrets`]: the admin token, new keys;
//! - [`endpoint`]: an endpoint as sent, stored and shown; [`catalog`]: all
//!   of them, in the emitter and in the journal, and the event types;
//! - [`event_type`]: an event type as sent, stored and shown, its schema;
//! - [`api_key`]: a scoped API key, and the scope each route needs;
//! - [`routes`]: the API and its OpenAPI document; [`auth`]: the token on
//!   requests; [`problem`]: errors as problem+json;
//! - [`idempotency`]: `Idempotency-Key` on `POST /api/v1/events`, on the
//!   journal or cluster-wide on PostgreSQL;
//! - [`records`]: the server's store, the journal or PostgreSQL; [`clock`]:
//!   times as stored and as shown;
//! - [`attempts`]: recent attempts and the console's live feed;
//! - [`app`]: an application (a customer), with endpoints of its own;
//!   [`message`], [`messages`]: every accepted event, per application;
//!   [`retention`]: what is dropped when;
//! - [`console`]: the embedded web page; [`portal`]: the customers' page,
//!   opened by [`portal_link`]s; [`state`]: what handlers share.

mod api_key;
mod app;
mod attempts;
mod auth;
mod catalog;
mod cli;
mod clock;
mod console;
mod endpoint;
mod event_type;
mod idempotency;
mod ids;
mod message;
mod messages;
mod portal;
mod portal_link;
mod problem;
mod records;
mod retention;
mod routes;
mod secrets;
mod state;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use clap::Parser;
use metrics_exporter_prometheus::PrometheusBuilder;
use utoipa_actix_web::AppExt;
use webhooks_emitter::{Journal, PgStore, SsrfGuard, WebhooksEmitter};

use crate::attempts::Attempts;
use crate::catalog::Catalog;
use crate::cli::Cli;
use crate::idempotency::IdempotencyKeys;
use crate::messages::Messages;
use crate::portal_link::PortalLinks;
use crate::records::ServerStore;
use crate::secrets::AdminToken;
use crate::state::AppState;
use crate::state::Portal;

/// The bin's property tests: a fixed seed and 512 cases, so that CI runs are
/// repeatable; `PROPTEST_CASES` raises the count for longer hunts.
#[cfg(test)]
pub(crate) fn proptest_config() -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512),
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed),
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}

/// Room for the JSON around a payload of the largest size.
const BODY_OVERHEAD: usize = 64 * 1024;
/// How often rotated-out signing keys past their grace period are retired.
const KEY_CHECK: Duration = Duration::from_secs(1);
/// How often idempotency keys older than 24 h are forgotten.
const KEY_PRUNE: Duration = Duration::from_secs(60);
/// How long requests in progress may finish once a stop is asked for.
const HTTP_GRACE: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let token = match cli.admin_token() {
        Ok(token) => token,
        Err(why) => {
            eprintln!("webhooks-emitter-server: {why}");
            return ExitCode::from(2);
        }
    };
    match actix_web::rt::System::new().block_on(run(cli, token)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("webhooks-emitter-server: {why}");
            ExitCode::FAILURE
        }
    }
}

/// Buckets of the attempt latency histogram, in seconds: webhook receivers
/// answer in milliseconds to the request timeout (5 s by default, 30 s at
/// most in practice).
const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0,
];
/// Buckets of the delivery lag histogram (emit to 2xx), in seconds: from an
/// immediate delivery to a day of retries and pauses.
const LAG_BUCKETS: [f64; 14] = [
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0,
];

/// The Prometheus recorder: histograms with buckets (they add up across
/// instances, unlike summaries, and do not decay to 0 when idle).
fn recorder() -> Result<metrics_exporter_prometheus::PrometheusHandle, String> {
    use metrics_exporter_prometheus::Matcher;
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("webhooks_attempt_duration_seconds".into()),
            &LATENCY_BUCKETS,
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("webhooks_delivery_lag_seconds".into()),
                &LAG_BUCKETS,
            )
        })
        .map_err(|e| format!("cannot set the histogram buckets: {e}"))?
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))
}

/// The journal, or PostgreSQL with `--database-url`.
async fn open_store(cli: &Cli) -> Result<ServerStore, String> {
    let Some(url) = &cli.database_url else {
        create_private(&cli.journal)?;
        let journal = Journal::options()
            .commit_interval(cli.commit_interval)
            .open(&cli.journal)
            .map_err(|e| format!("cannot open the journal {}: {e}", cli.journal.display()))?;
        return Ok(ServerStore::Journal(journal));
    };
    // Live updates (SSE, WebSocket, the console) show every node's events
    // and deliveries, with ids that resume on any node, unless told not to.
    let mut options = PgStore::options()
        .lease_expiry(cli.lease_expiry)
        .commit_interval(cli.commit_interval)
        .shared_live_updates(!cli.local_live_updates);
    if let Some(name) = &cli.node_name {
        options = options.node_name(name);
    }
    // The error never repeats the URL (it may hold a password).
    let store = options
        .connect(url)
        .await
        .map_err(|e| format!("cannot use the database: {e}"))?;
    tracing::info!(node = %store.node_name(), "on PostgreSQL");
    Ok(ServerStore::Postgres(store))
}

/// Opens the store, starts the emitter, re-attaches the stored endpoints.
async fn open(cli: &Cli, admin_token: Option<&str>) -> Result<web::Data<AppState>, String> {
    let metrics = recorder()?;
    let store = open_store(cli).await?;
    let mut builder = WebhooksEmitter::builder()
        .store(store.queues())
        .max_payload_bytes(cli.max_payload_bytes);
    if !cli.allow_private_targets {
        builder = builder.ssrf_guard(SsrfGuard::new());
    }
    let emitter = builder.start();
    let body_limit = cli.max_payload_bytes.saturating_add(BODY_OVERHEAD);
    let state = web::Data::new(AppState {
        catalog: Arc::new(Catalog::load(emitter.clone(), store.clone()).await?),
        keys: IdempotencyKeys::load(store.clone()).await?,
        attempts: Arc::new(Attempts::new(store.clone(), cli.attempts_kept)),
        messages: Messages::new(store.clone()),
        retention: cli.retention,
        portal: Portal {
            links: PortalLinks::new(admin_token),
            public_url: cli.public_url.clone(),
            frame_ancestors: cli.portal_frame_ancestors.clone(),
        },
        emitter: emitter.clone(),
        store,
        metrics,
        rotation_grace: cli.rotation_grace,
        body_limit,
        draining: AtomicBool::new(false),
    });
    Ok(state)
}

async fn run(cli: Cli, token: Option<String>) -> Result<(), String> {
    if token.is_none() {
        // On stderr whatever the log level: this must not go unnoticed.
        eprintln!(
            "webhooks-emitter-server: WARNING: NO AUTHENTICATION (--insecure-no-auth): anyone who can reach {} controls this server",
            cli.listen
        );
    }
    let state = open(&cli, token.as_deref()).await?;
    let token = AdminToken::new(token.as_deref());
    let (emitter, body_limit) = (state.emitter.clone(), state.body_limit);
    actix_web::rt::spawn(state.attempts.clone().follow(emitter.clone()));
    actix_web::rt::spawn(housekeeping(state.clone()));
    actix_web::rt::spawn(retention::enforce(state.clone()));
    if state.store.shared() {
        actix_web::rt::spawn(catalog::follow(state.catalog.clone()));
    }

    let (app_state, app_token, app_emitter) =
        (state.clone(), web::Data::new(token), emitter.clone());
    let frame_ancestors = state.portal.frame_ancestors.clone();
    let (document, known_paths) = routes::document();
    let (document, known_paths) = (web::Data::new(document), web::Data::new(known_paths));
    let server = HttpServer::new(move || {
        let (api, _) = App::new()
            .into_utoipa_app()
            .configure(|cfg| routes::configure(cfg, body_limit))
            .split_for_parts();
        api.app_data(app_state.clone())
            .app_data(app_token.clone())
            .app_data(document.clone())
            .app_data(known_paths.clone())
            // The token middleware answers a refusal as problem+json, like
            // every other route (the SSE hook would answer plain text).
            .service(
                app_emitter
                    .sse_scope("/sse")
                    .wrap(actix_web::middleware::from_fn(auth::require_token_or_query)),
            )
            .service(
                web::resource("/ws")
                    .wrap(actix_web::middleware::from_fn(auth::require_token_or_query))
                    .route(app_emitter.ws_route()),
            )
            .configure(console::configure)
            .configure(|cfg| portal::configure(cfg, &frame_ancestors))
            .default_service(web::to(routes::no_route))
    })
    .disable_signals()
    .shutdown_timeout(HTTP_GRACE.as_secs())
    .bind(cli.listen)
    .map_err(|e| format!("cannot listen on {}: {e}", cli.listen))?;
    for addr in server.addrs() {
        // On stdout, for scripts and tests that start it on port 0.
        println!("webhooks-emitter-server listening on http://{addr}");
    }
    let server = server.run();
    let handle = server.handle();
    let serving = actix_web::rt::spawn(server);
    let signal = stop_signal().await?;
    stop(&state, signal, cli.drain_timeout, handle).await;
    let _ = serving.await;
    Ok(())
}

/// After SIGTERM or SIGINT: drains the deliveries while the listener stays
/// open (so that `/ready` says 503 and new events get 503 until they are
/// done), then stops the HTTP server.
async fn stop(
    state: &web::Data<AppState>,
    signal: &str,
    drain_timeout: Duration,
    server: actix_web::dev::ServerHandle,
) {
    tracing::info!(%signal, drain = ?drain_timeout, "stopping: no new requests; draining deliveries");
    state.draining.store(true, Ordering::Relaxed);
    let report = drain(&state.emitter, drain_timeout).await;
    server.stop(true).await;
    state.store.close().await;
    let stored: usize = report.stored.iter().map(|s| s.events).sum();
    tracing::info!(
        undelivered = report.undelivered.len(),
        left_in_journal = stored,
        "stopped"
    );
}

/// Creates the journal file readable by its owner only, if it does not exist
/// yet: it will hold the endpoints' secrets.
fn create_private(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create the journal {}: {e}", path.display())),
    }
}

/// Lets deliveries finish, until `deadline`: it ends as soon as no request
/// is in flight and nothing is ready to be sent (events waiting out a backoff
/// or behind a pause stay in the journal for the next start), then stops the
/// emitter.
async fn drain(emitter: &WebhooksEmitter, deadline: Duration) -> webhooks_emitter::ShutdownReport {
    let until = std::time::Instant::now() + deadline;
    loop {
        let busy = emitter
            .stats_all()
            .await
            .iter()
            .any(|s| s.in_flight > 0 || (s.queued > 0 && s.retrying == 0 && !s.paused));
        if !busy || std::time::Instant::now() >= until {
            break;
        }
        // Polling the emitter's counters: a drain lasts seconds at most.
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    emitter.shutdown(Duration::ZERO).await
}

/// Waits for SIGTERM or SIGINT; names it.
async fn stop_signal() -> Result<&'static str, String> {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let listen = |kind| signal(kind).map_err(|e| format!("cannot listen for signals: {e}"));
    let (mut term, mut int) = (
        listen(SignalKind::terminate())?,
        listen(SignalKind::interrupt())?,
    );
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

/// Retires rotated-out signing keys on time; forgets old idempotency keys;
/// keeps the metrics recorder's memory flat whether or not anyone scrapes.
async fn housekeeping(state: web::Data<AppState>) {
    let mut tick = actix_web::rt::time::interval(KEY_CHECK);
    let mut last_prune = std::time::Instant::now();
    loop {
        tick.tick().await;
        state.metrics.run_upkeep();
        state.catalog.retire_expired_keys().await;
        if last_prune.elapsed() >= KEY_PRUNE {
            state.keys.prune().await;
            last_prune = std::time::Instant::now();
        }
    }
}
