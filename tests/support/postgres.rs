//! A throwaway PostgreSQL for a test: `initdb` into a temp dir and `pg_ctl
//! start` on a free loopback port (as the `postgres` user when running as
//! root), `fsync=off`; stopped and removed on drop. With
//! `WEBHOOKS_EMITTER_TEST_DATABASE_URL` set, a fresh database on that server
//! instead. A test that cannot get one fails and says how to fix it.
//!
//! Self-contained: the bench includes this file too (`#[path]`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

#[path = "scratch.rs"]
mod scratch;
pub use scratch::ScratchDir;

/// The password of the throwaway cluster's `postgres` user (host logins need
/// it: the tests check authentication errors).
pub const PASSWORD: &str = "throwaway-pw-4821";

pub struct Postgres {
    url: String,
    /// `None` with an external server.
    local: Option<Local>,
}

struct Local {
    dir: ScratchDir,
    bin: PathBuf,
    port: u16,
}

impl Postgres {
    pub fn start() -> Self {
        if let Ok(url) = std::env::var("WEBHOOKS_EMITTER_TEST_DATABASE_URL") {
            return Postgres {
                url: fresh_database(&url),
                local: None,
            };
        }
        let bin = find_bin().unwrap_or_else(|| {
            panic!(
                "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin: install them \
                 (`apt-get install -y postgresql`, as `.ci/run` does) or set \
                 WEBHOOKS_EMITTER_TEST_DATABASE_URL to a server the tests may create databases on"
            )
        });
        let dir = ScratchDir::new("pg");
        let data = dir.file("data");
        let pwfile = dir.file("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown of the cluster dir failed");
        }
        let initdb = run_as_postgres(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["-E", "UTF8", "--no-sync"])
            .output()
            .unwrap();
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let port = free_port();
        let local = Local { dir, bin, port };
        local.pg_ctl_start();
        Postgres {
            url: format!("postgres://postgres:{PASSWORD}@127.0.0.1:{port}/postgres"),
            local: Some(local),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL with another password.
    pub fn url_with_password(&self, password: &str) -> String {
        self.url.replacen(PASSWORD, password, 1)
    }

    /// Stops the server (fast: connections are cut).
    pub fn stop(&self) {
        let local = self.local.as_ref().expect("a local cluster");
        local.pg_ctl(&["stop", "-m", "fast", "-w"]);
    }

    /// Crashes the server (immediate: no checkpoint; the next start
    /// recovers from the WAL, as after a power cut).
    pub fn crash(&self) {
        let local = self.local.as_ref().expect("a local cluster");
        local.pg_ctl(&["stop", "-m", "immediate", "-w"]);
    }

    /// Starts it again on the same port.
    pub fn start_again(&self) {
        self.local.as_ref().expect("a local cluster").pg_ctl_start();
    }

    /// The node holding `emitter`'s lease, read from the database (a test's
    /// way to find which node of a cluster delivers it).
    pub async fn lease_owner(&self, emitter: &str) -> Option<String> {
        use sqlx::Connection;
        let mut connection = sqlx::PgConnection::connect(&self.url).await.unwrap();
        let owner: Option<Option<String>> = sqlx::query_scalar(
            "SELECT owner FROM webhooks_emitter_leases WHERE emitter = $1 AND expires_at > now()",
        )
        .bind(emitter)
        .fetch_optional(&mut connection)
        .await
        .unwrap();
        owner.flatten()
    }

    /// The application records of `namespace`, read from the database.
    pub async fn records(&self, namespace: &str) -> Vec<(String, Vec<u8>)> {
        use sqlx::Connection;
        let mut connection = sqlx::PgConnection::connect(&self.url).await.unwrap();
        sqlx::query_as(
            "SELECT key, value FROM webhooks_emitter_records WHERE namespace = $1 ORDER BY key",
        )
        .bind(namespace)
        .fetch_all(&mut connection)
        .await
        .unwrap()
    }

    pub fn is_local(&self) -> bool {
        self.local.is_some()
    }

    /// A node on this database: a store with a 2 s lease, and an emitter on
    /// its own thread (logs with `RUST_LOG`).
    pub async fn node(
        &self,
        name: &str,
    ) -> (webhooks_emitter::PgStore, webhooks_emitter::WebhooksEmitter) {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let store = webhooks_emitter::PgStore::options()
            .lease_expiry(std::time::Duration::from_secs(2))
            .node_name(name)
            .connect(self.url())
            .await
            .unwrap();
        let emitter = webhooks_emitter::WebhooksEmitter::builder()
            .store(store.clone())
            .start_in_background();
        (store, emitter)
    }
}

impl Local {
    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        self.pg_ctl(&["start", "-w", "-t", "60", "-o", &options]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let output = run_as_postgres(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.file("data"))
            .arg("-l")
            .arg(self.dir.file("log"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "pg_ctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.dir.file("log")).unwrap_or_default()
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(local) = &self.local {
            let _ = run_as_postgres(local.bin.join("pg_ctl"))
                .arg("-D")
                .arg(local.dir.file("data"))
                .args(["stop", "-m", "immediate", "-w"])
                .output();
        }
    }
}

fn find_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// PostgreSQL refuses to run as root.
fn run_as_postgres(program: PathBuf) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A new database on an external server, for one test.
fn fresh_database(url: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "webhooks_emitter_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use sqlx::Connection;
        let mut connection = sqlx::PgConnection::connect(url)
            .await
            .unwrap_or_else(|e| panic!("WEBHOOKS_EMITTER_TEST_DATABASE_URL: cannot connect: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .unwrap();
    });
    let (base, _) = url.rsplit_once('/').expect("a URL with a database name");
    format!("{base}/{name}")
}
