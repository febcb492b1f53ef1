//! The command line: every flag also from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// webhooks-emitter-server: ordered, signed, retried webhooks as a service,
/// with a REST API, Prometheus metrics and a web console.
#[derive(Debug, Parser)]
#[command(name = "webhooks-emitter-server", version, about)]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, env = "WEBHOOKS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// The journal file: endpoints, queued events, dead letters (one node).
    #[arg(
        long,
        env = "WEBHOOKS_JOURNAL",
        default_value = "./webhooks-emitter.redb",
        conflicts_with = "database_url"
    )]
    pub journal: PathBuf,

    /// Run on PostgreSQL instead of the journal: several nodes with one
    /// database are one service. Prefer the environment variable: the URL
    /// holds a password, and flags show in `ps`.
    #[arg(long, env = "WEBHOOKS_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// This node's name among the nodes on one database (default: host
    /// name and process id); a name a live node uses is refused.
    #[arg(long, env = "WEBHOOKS_NODE_NAME", requires = "database_url")]
    pub node_name: Option<String>,

    /// On PostgreSQL: how long a node's hold on an endpoint lasts without
    /// renewal; a stopped node's endpoints move after about this long.
    #[arg(long, env = "WEBHOOKS_LEASE_EXPIRY", default_value = "10s", value_parser = humantime::parse_duration)]
    pub lease_expiry: Duration,

    /// On PostgreSQL: live updates (`/sse`, `/ws`, the console) show only
    /// what this node emits and delivers, with its own ids, instead of the
    /// whole cluster's. Saves the shared feed's writes and reads (a quarter
    /// of the throughput of three nodes on one 2-core machine) where nobody
    /// watches live updates, or where clients stick to one node.
    #[arg(long, env = "WEBHOOKS_LOCAL_LIVE_UPDATES", requires = "database_url")]
    pub local_live_updates: bool,

    /// Run without an admin token (the API is open): loopback only.
    #[arg(long, env = "WEBHOOKS_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,

    /// Let endpoints target private, loopback and link-local addresses
    /// (refused by default: the API must not reach into your network).
    #[arg(long, env = "WEBHOOKS_ALLOW_PRIVATE_TARGETS")]
    pub allow_private_targets: bool,

    /// Largest event payload, in bytes.
    #[arg(long, env = "WEBHOOKS_MAX_PAYLOAD_BYTES", default_value_t = webhooks_emitter::DEFAULT_MAX_PAYLOAD_BYTES)]
    pub max_payload_bytes: usize,

    /// On SIGTERM or SIGINT: how long to keep delivering before exiting
    /// (what is left stays in the journal), e.g. `10s`.
    #[arg(long, env = "WEBHOOKS_DRAIN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,

    /// How long the store gathers writes before one commit (one fsync, or
    /// one round trip to PostgreSQL), e.g. `2ms`; at most 1 s.
    #[arg(long, env = "WEBHOOKS_COMMIT_INTERVAL", default_value = "2ms", value_parser = humantime::parse_duration)]
    pub commit_interval: Duration,

    /// How long a rotated-out signing key keeps signing, e.g. `24h`.
    #[arg(long, env = "WEBHOOKS_ROTATION_GRACE", default_value = "24h", value_parser = humantime::parse_duration)]
    pub rotation_grace: Duration,

    /// Attempts kept per endpoint in the journal (status, latency, error,
    /// the first 4 KiB of the response), the oldest deleted beyond it.
    #[arg(long, env = "WEBHOOKS_ATTEMPTS_KEPT", default_value_t = crate::attempts::DEFAULT_KEPT,
        value_parser = attempts_kept)]
    pub attempts_kept: usize,

    /// How long messages keep their payloads, and attempts are kept, e.g.
    /// `30d`; 1 s to 100 years. An expired message keeps its metadata.
    #[arg(long, env = "WEBHOOKS_RETENTION", default_value = "30d", value_parser = retention)]
    pub retention: Duration,

    /// The URL customers reach this server at, for portal links, e.g.
    /// `https://hooks.example.com`; without it, the scheme and host of the
    /// request that makes the link.
    #[arg(long, env = "WEBHOOKS_PUBLIC_URL", value_parser = public_url)]
    pub public_url: Option<String>,

    /// Who may show the customer portal in a frame: `'none'`, `'self'`, or
    /// origins such as `https://app.example.com`, separated by spaces (the
    /// CSP `frame-ancestors` directive).
    #[arg(long, env = "WEBHOOKS_PORTAL_FRAME_ANCESTORS", default_value = "'none'",
        value_parser = frame_ancestors)]
    pub portal_frame_ancestors: String,
}

/// `--public-url`: http(s), no whitespace, no query or fragment; without a
/// trailing `/`.
fn public_url(text: &str) -> Result<String, String> {
    let parsed = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
        || text.chars().any(char::is_whitespace)
    {
        return Err(format!(
            "`{text}` is not an http(s) URL without a query, like https://hooks.example.com"
        ));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

/// `--portal-frame-ancestors`: `'none'`, `'self'` or origins, as CSP takes
/// them, and nothing that could end the directive (`;`, `,`, quotes).
fn frame_ancestors(text: &str) -> Result<String, String> {
    let sources: Vec<&str> = text.split_whitespace().collect();
    let valid = !sources.is_empty()
        && sources.iter().all(|source| {
            matches!(*source, "'none'" | "'self'")
                || ((source.starts_with("https://") || source.starts_with("http://"))
                    && source.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'/' | b'*')
                    }))
        })
        && (sources.len() == 1 || !sources.contains(&"'none'"));
    if valid {
        Ok(sources.join(" "))
    } else {
        Err(format!(
            "`{text}` is not `'none'`, `'self'` or origins like https://app.example.com, separated by spaces"
        ))
    }
}

/// `--retention`: a duration from 1 s to 100 years.
fn retention(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    let most = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    if (Duration::from_secs(1)..=most).contains(&duration) {
        Ok(duration)
    } else {
        Err(format!("`{text}` is not from 1s to 100 years"))
    }
}

/// `--attempts-kept`: 1 to 1,000,000.
fn attempts_kept(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err(format!("`{text}` is not a number from 1 to 1000000")),
    }
}

/// The admin token's environment variable (never a flag: flags show in `ps`).
pub const ADMIN_TOKEN_ENV: &str = "WEBHOOKS_ADMIN_TOKEN";

impl Cli {
    /// The admin token, or why the server must not start.
    pub fn admin_token(&self) -> Result<Option<String>, String> {
        let token = std::env::var(ADMIN_TOKEN_ENV)
            .ok()
            .filter(|t| !t.is_empty());
        match (token, self.insecure_no_auth) {
            (Some(token), _) if token.len() < 16 => Err(format!(
                "{ADMIN_TOKEN_ENV} is {} characters; use at least 16 (e.g. `openssl rand -hex 32`)",
                token.len()
            )),
            (Some(token), _) => Ok(Some(token)),
            (None, true) if self.listen.ip().is_loopback() => Ok(None),
            (None, true) => Err(format!(
                "--insecure-no-auth listens on loopback only; {} is not a loopback address",
                self.listen.ip()
            )),
            (None, false) => Err(format!(
                "set {ADMIN_TOKEN_ENV} (at least 16 characters), or pass --insecure-no-auth for a loopback-only server without authentication"
            )),
        }
    }
}
