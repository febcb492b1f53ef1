//! A scriptable actix-web receiver on 127.0.0.1. It runs on its own thread
//! with its own actix System, so it serves `#[actix_web::test]` and
//! `#[tokio::test]` alike.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::header::HeaderMap;
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use tokio::sync::mpsc;

use super::DEADLINE;

/// What the receiver answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer at once with this status.
    Status(u16),
    /// Answer at once with this status and body.
    Body(u16, String),
    /// Wait, then answer 200 (to make the emitter time out).
    Delay(Duration),
    /// Answer 302 with a Location header.
    Redirect,
    /// Answer `status` with a `Retry-After: value` header.
    RetryAfter(u16, String),
    /// Wait until as many requests as the barrier's size wait together, then
    /// answer 200: the test hangs (and fails at its deadline) unless the
    /// emitter really has that many requests in flight at once.
    Gate(Arc<tokio::sync::Barrier>),
    /// Wait, then answer this status.
    SlowStatus(u16, Duration),
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// When it arrived.
    pub at: std::time::Instant,
    /// Requests being answered when it arrived, itself included.
    pub concurrent: usize,
    pub path: String,
    pub method: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON: {e}"))
    }

    /// The `n` field of a `{"n": …}` payload, as the tests emit them.
    pub fn n(&self) -> i64 {
        self.json()["n"]
            .as_i64()
            .expect("payload has no integer `n`")
    }
}

#[derive(Clone)]
struct Shared {
    script: Arc<Mutex<VecDeque<Reply>>>,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    seen: mpsc::UnboundedSender<Received>,
}

/// A real HTTP server on loopback that records every request and answers as
/// scripted (200 once the script is used up).
pub struct Receiver {
    pub addr: SocketAddr,
    requests: mpsc::UnboundedReceiver<Received>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    server: ServerHandle,
    /// Resolves once the server's thread has ended, its System dropped and
    /// every connection closed.
    gone: tokio::sync::oneshot::Receiver<()>,
}

impl Receiver {
    /// Starts on 127.0.0.1, on a free port.
    pub fn start() -> Self {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Starts on `addr` (to come back on the port of a stopped receiver).
    pub fn start_on(addr: SocketAddr) -> Self {
        Self::start_with(addr, true)
    }

    /// Starts on a free port and closes every connection after its response,
    /// so that once stopped, no kept-alive connection can still be served.
    pub fn start_without_keep_alive() -> Self {
        Self::start_with(SocketAddr::from(([127, 0, 0, 1], 0)), false)
    }

    fn start_with(addr: SocketAddr, keep_alive: bool) -> Self {
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let (seen, requests) = mpsc::unbounded_channel();
        let shared = Shared {
            script: script.clone(),
            in_flight: Arc::default(),
            seen,
        };
        let (started_tx, started) = std::sync::mpsc::channel();
        let (gone_tx, gone) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new(shared.clone()))
                        .default_service(web::to(answer))
                })
                .workers(1)
                .keep_alive(if keep_alive {
                    actix_web::http::KeepAlive::default()
                } else {
                    actix_web::http::KeepAlive::Disabled
                })
                .disable_signals()
                .shutdown_timeout(0)
                .bind(addr);
                match server {
                    Ok(server) => {
                        let addr = server.addrs()[0];
                        let server = server.run();
                        let _ = started_tx.send(Ok((addr, server.handle())));
                        let _ = server.await;
                    }
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                    }
                }
            });
            let _ = gone_tx.send(());
        });
        let (addr, server) = started
            .recv()
            .expect("receiver thread died")
            .unwrap_or_else(|e| panic!("receiver could not bind {addr}: {e}"));
        Receiver {
            addr,
            requests,
            script,
            server,
            gone,
        }
    }

    /// `http://127.0.0.1:<port><path>`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests with `replies`, in order, then 200.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().unwrap().extend(replies);
    }

    /// Answers the next requests with these statuses, then 200.
    pub fn script_statuses(&self, statuses: impl IntoIterator<Item = u16>) {
        self.script(statuses.into_iter().map(Reply::Status));
    }

    /// The next request received, failing the test after [`DEADLINE`].
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(DEADLINE, self.requests.recv())
            .await
            .expect("no request reached the receiver in time")
            .expect("receiver stopped")
    }

    /// The next `n` requests.
    pub async fn take(&mut self, n: usize) -> Vec<Received> {
        let mut all = Vec::with_capacity(n);
        for _ in 0..n {
            all.push(self.next().await);
        }
        all
    }

    /// The `x-webhooks-event` of the next `n` requests, in arrival order.
    pub async fn event_names(&mut self, n: usize) -> Vec<String> {
        self.take(n)
            .await
            .iter()
            .map(|r| r.header("x-webhooks-event").unwrap_or_default().to_owned())
            .collect()
    }

    /// The `n` fields of the next `count` requests' payloads, in arrival order.
    pub async fn numbers(&mut self, count: usize) -> Vec<i64> {
        self.take(count).await.iter().map(Received::n).collect()
    }

    /// A request received already, if any, without waiting.
    pub fn try_next(&mut self) -> Option<Received> {
        self.requests.try_recv().ok()
    }

    /// Stops the server and waits until it is gone: its port refuses
    /// connections and kept-alive ones are closed.
    pub async fn stop(self) -> SocketAddr {
        self.server.stop(false).await;
        let _ = tokio::time::timeout(DEADLINE, self.gone).await;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while tokio::net::TcpStream::connect(self.addr).await.is_ok() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} still accepts connections",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(10)).await; // polling the port's state
        }
        self.addr
    }
}

/// Counts a request as being answered until dropped.
struct Answering(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn answer(req: HttpRequest, body: Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let concurrent = shared
        .in_flight
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        + 1;
    let _answering = Answering(shared.in_flight.clone());
    let _ = shared.seen.send(Received {
        at: std::time::Instant::now(),
        concurrent,
        path: req.path().to_owned(),
        method: req.method().to_string(),
        headers: req.headers().clone(),
        body,
    });
    let reply = shared.script.lock().unwrap().pop_front();
    match reply {
        None => HttpResponse::Ok().finish(),
        Some(Reply::Status(code)) => {
            HttpResponse::build(StatusCode::from_u16(code).unwrap()).finish()
        }
        Some(Reply::Body(code, body)) => {
            HttpResponse::build(StatusCode::from_u16(code).unwrap()).body(body)
        }
        Some(Reply::Delay(delay)) => {
            actix_web::rt::time::sleep(delay).await;
            HttpResponse::Ok().finish()
        }
        Some(Reply::SlowStatus(code, delay)) => {
            actix_web::rt::time::sleep(delay).await;
            HttpResponse::build(StatusCode::from_u16(code).unwrap()).finish()
        }
        Some(Reply::Redirect) => HttpResponse::Found()
            .insert_header(("location", "http://127.0.0.1:9/elsewhere"))
            .finish(),
        Some(Reply::RetryAfter(code, value)) => {
            HttpResponse::build(StatusCode::from_u16(code).unwrap())
                .insert_header(("retry-after", value))
                .finish()
        }
        Some(Reply::Gate(barrier)) => {
            barrier.wait().await;
            HttpResponse::Ok().finish()
        }
    }
}

/// An address on loopback where nothing listens (a port bound, then released).
pub fn refused_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}
