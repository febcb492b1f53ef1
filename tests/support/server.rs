//! The server binary as a child process on loopback, and a client for its API.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use awc::http::Method;
use serde_json::Value;

use super::DEADLINE;

/// The admin token every test server uses.
pub const TOKEN: &str = "test-admin-token-0123456789";

/// A running `webhooks-emitter-server`, killed when dropped.
pub struct ServerProcess {
    child: Child,
    pub base: String,
    pub journal: PathBuf,
}

/// One API answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub headers: awc::http::header::HeaderMap,
    pub json: Value,
    /// The body as text (for what JSON parsers refuse, e.g. deep nesting).
    pub text: String,
}

impl ServerProcess {
    /// Starts on a free port with the journal at `journal`, private targets
    /// allowed (the receivers are on loopback), and `extra` flags.
    pub fn start(journal: &Path, extra: &[&str]) -> Self {
        Self::spawn(journal, extra, "warn", Stdio::inherit())
    }

    /// Like `start`, logging everything (`trace`) into `log`.
    pub fn start_logging(journal: &Path, extra: &[&str], log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("log file");
        Self::spawn(journal, extra, "trace", Stdio::from(file))
    }

    fn spawn(journal: &Path, extra: &[&str], level: &str, stderr: Stdio) -> Self {
        let mut command = Self::binary();
        command
            .args([
                "--listen",
                "127.0.0.1:0",
                "--allow-private-targets",
                "--journal",
            ])
            .arg(journal)
            .args(extra)
            .env("WEBHOOKS_ADMIN_TOKEN", TOKEN)
            .env("RUST_LOG", level)
            .stderr(stderr);
        Self::run(command, journal)
    }

    /// A node on PostgreSQL at `database_url` (given by the environment, as
    /// operators should), named `name`, with `extra` flags.
    pub fn start_node(database_url: &str, name: &str, extra: &[&str]) -> Self {
        let mut command = Self::node_command(database_url, name);
        command.args(extra);
        Self::run(command, Path::new("/nonexistent-journal"))
    }

    /// A node whose leases last `lease` (`start_node`'s are 2 s).
    pub fn start_node_leasing(database_url: &str, name: &str, lease: &str) -> Self {
        let command = Self::node_command_leasing(database_url, name, lease);
        Self::run(command, Path::new("/nonexistent-journal"))
    }

    /// The command of a node, not started (for one expected to refuse).
    pub fn node_command(database_url: &str, name: &str) -> Command {
        Self::node_command_leasing(database_url, name, "2s")
    }

    fn node_command_leasing(database_url: &str, name: &str, lease: &str) -> Command {
        let mut command = Self::binary();
        command
            .args(["--listen", "127.0.0.1:0", "--allow-private-targets"])
            .args(["--node-name", name, "--lease-expiry", lease])
            .env("WEBHOOKS_DATABASE_URL", database_url)
            .env("WEBHOOKS_ADMIN_TOKEN", TOKEN)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            );
        command
    }

    /// Sends `signal` (`STOP`, `CONT`, `TERM`, …) to the process.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal}");
    }

    /// SIGKILL, at once: nothing is cleaned up.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server binary, with nothing set.
    pub fn binary() -> Command {
        Command::new(env!("CARGO_BIN_EXE_webhooks-emitter-server"))
    }

    /// Runs `command` (the binary, set up by the caller) and waits for the
    /// address it says it listens on.
    pub fn run(mut command: Command, journal: &Path) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot start the server binary");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("server stdout");
        let base = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|url| url.starts_with("http://"))
            .unwrap_or_else(|| panic!("the server did not say where it listens: {line:?}"))
            .to_owned();
        ServerProcess {
            child,
            base,
            journal: journal.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the admin token; `body` as JSON.
    pub async fn api(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call(method, path, body, Some(TOKEN), &[]).await
    }

    /// A request with any token (or none) and extra headers.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let body = body.map(|b| b.to_string());
        self.send_raw(method, path, body.as_deref(), token, headers)
            .await
    }

    /// A request with a raw body (sent as JSON).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.send_typed(method, path, body, Some("application/json"), token, headers)
            .await
    }

    /// A request with a raw body and any content type (or none).
    pub async fn send_typed(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        content_type: Option<&str>,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.try_send_typed(method, path, body, content_type, token, headers)
            .await
            .expect("request")
    }

    /// A JSON request with the admin token that may fail to connect (a node
    /// that is gone): `None` then, instead of a panic.
    pub async fn try_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Option<Answer> {
        let body = body.map(|b| b.to_string());
        let json = Some("application/json");
        self.try_send_typed(method, path, body.as_deref(), json, Some(TOKEN), headers)
            .await
    }

    async fn try_send_typed(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        content_type: Option<&str>,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Option<Answer> {
        let client = awc::Client::builder().timeout(DEADLINE).finish();
        let mut request = client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.insert_header(("authorization", format!("Bearer {token}")));
        }
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        if let (Some(_), Some(content_type)) = (body, content_type) {
            request = request.content_type(content_type);
        }
        let mut response = match body {
            Some(body) => request.send_body(body.to_owned()).await.ok()?,
            None => request.send().await.ok()?,
        };
        let bytes = response.body().limit(16 << 20).await.ok()?;
        Some(Answer {
            status: response.status().as_u16(),
            content_type: response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            headers: response.headers().clone(),
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    /// Creates application `id` named `name` (201).
    pub async fn make_app(&self, id: &str, name: &str) {
        let made = self
            .api(
                Method::POST,
                "/api/v1/apps",
                Some(serde_json::json!({"id": id, "name": name})),
            )
            .await;
        assert_eq!(made.status, 201, "{made:?}");
    }

    /// Creates an endpoint from `spec` (201); what the server showed of it.
    pub async fn create(&self, spec: Value) -> Answer {
        let created = self
            .api(Method::POST, "/api/v1/endpoints", Some(spec))
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        created
    }

    /// Emits `payload` under `event` through the API (202); its request id.
    pub async fn emit(&self, event: &str, payload: Value) -> String {
        let body = serde_json::json!({"event": event, "payload": payload});
        let answer = self.api(Method::POST, "/api/v1/events", Some(body)).await;
        assert_eq!(answer.status, 202, "{answer:?}");
        answer.json["request_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no request id: {answer:?}"))
            .to_owned()
    }

    /// Emits `payload` under `event` through the API; the answer, whatever it is.
    pub async fn emit_raw(&self, event: &str, payload: Value) -> Answer {
        let body = serde_json::json!({"event": event, "payload": payload});
        self.api(Method::POST, "/api/v1/events", Some(body)).await
    }

    /// Rotates the Standard Webhooks key of endpoint `id`; the answer (200)
    /// and the new key.
    pub async fn rotate(&self, id: &str) -> (Answer, String) {
        let path = format!("/api/v1/endpoints/{id}/secret/rotate");
        let rotated = self.api(Method::POST, &path, None).await;
        assert_eq!(rotated.status, 200, "{rotated:?}");
        let key = rotated.json["standard_webhooks_secret"]
            .as_str()
            .unwrap_or_else(|| panic!("no key: {rotated:?}"))
            .to_owned();
        (rotated, key)
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(self) -> ExitStatus {
        self.send_term();
        self.wait_exit()
    }

    /// Sends SIGTERM, without waiting.
    pub fn send_term(&self) {
        self.signal("TERM");
    }

    /// Waits for the process to exit (after a signal).
    pub fn wait_exit(mut self) -> ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20)); // polling the child's exit
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A problem+json answer with `status`; returns its detail.
pub fn problem(answer: &Answer, status: u16) -> String {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(
        answer.content_type, "application/problem+json",
        "{answer:?}"
    );
    assert_eq!(answer.json["status"], status, "{answer:?}");
    answer.json["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no detail: {answer:?}"))
        .to_owned()
}
