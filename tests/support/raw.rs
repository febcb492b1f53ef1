//! A receiver written on raw sockets, for what a well-behaved server would not
//! do: interim (1xx) responses, responses cut in pieces, TLS with a
//! self-signed certificate. It reads each request (head and body, keep-alive
//! honoured) and writes the scripted bytes back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::DEADLINE;

/// One request's head, as received.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub head: String,
}

impl RawRequest {
    /// A header's value (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// The bytes to answer one request with, written piece by piece.
pub type Answer = Vec<Vec<u8>>;

/// A raw receiver on 127.0.0.1.
pub struct RawReceiver {
    pub addr: SocketAddr,
    requests: mpsc::UnboundedReceiver<RawRequest>,
}

impl RawReceiver {
    /// Plain TCP; `answer(n)` is the answer to the `n`th request (from 0).
    pub fn start(answer: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Self {
        Self::spawn(None, answer)
    }

    /// TLS with a self-signed certificate for `localhost`.
    pub fn start_tls(answer: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Self {
        Self::spawn(Some(tls_acceptor()), answer)
    }

    fn spawn(
        tls: Option<tokio_rustls::TlsAcceptor>,
        answer: impl Fn(usize) -> Answer + Send + Sync + 'static,
    ) -> Self {
        let (seen, requests) = mpsc::unbounded_channel();
        let (bound_tx, bound) = std::sync::mpsc::channel();
        let answer = Arc::new(answer);
        let count = Arc::new(Mutex::new(0usize));
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                bound_tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let Ok((socket, _)) = listener.accept().await else {
                        return;
                    };
                    let (seen, answer, count, tls) =
                        (seen.clone(), answer.clone(), count.clone(), tls.clone());
                    tokio::spawn(async move {
                        match tls {
                            None => serve(socket, seen, answer, count).await,
                            Some(tls) => {
                                if let Ok(socket) = tls.accept(socket).await {
                                    serve(socket, seen, answer, count).await;
                                }
                            }
                        }
                    });
                }
            });
        });
        RawReceiver {
            addr: bound.recv().unwrap(),
            requests,
        }
    }

    /// The next request received, failing the test after [`DEADLINE`].
    pub async fn next(&mut self) -> RawRequest {
        tokio::time::timeout(DEADLINE, self.requests.recv())
            .await
            .expect("no request reached the raw receiver in time")
            .expect("raw receiver stopped")
    }

    /// A request received already, if any.
    pub fn try_next(&mut self) -> Option<RawRequest> {
        self.requests.try_recv().ok()
    }
}

type Shared<T> = Arc<T>;

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut socket: S,
    seen: mpsc::UnboundedSender<RawRequest>,
    answer: Shared<dyn Fn(usize) -> Answer + Send + Sync>,
    count: Shared<Mutex<usize>>,
) {
    let mut buffer = Vec::new();
    loop {
        let Some(head) = read_request(&mut socket, &mut buffer).await else {
            return;
        };
        let n = {
            let mut count = count.lock().unwrap();
            *count += 1;
            *count - 1
        };
        let _ = seen.send(RawRequest { head });
        for piece in answer(n) {
            if socket.write_all(&piece).await.is_err() || socket.flush().await.is_err() {
                return;
            }
            // Pieces arrive separately, as they would over a network.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Reads one request (head, then a body of `content-length` bytes).
async fn read_request<S: AsyncRead + Unpin>(
    socket: &mut S,
    buffer: &mut Vec<u8>,
) -> Option<String> {
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length: usize = RawRequest { head: head.clone() }
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    buffer.drain(..head_end + length);
    Some(head)
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(certified.key_pair.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// `HTTP/1.1 <status>` with an empty body, as one piece.
pub fn status(code: u16, extra_headers: &str) -> Vec<u8> {
    format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\n{extra_headers}\r\n").into_bytes()
}
