//! The floor for SSE fan-out: the least a server can do to hold the same
//! connections and send them the same bytes, written directly on tokio TCP
//! sockets (no actix-web, no actors). Same response head as the crate's SSE
//! endpoint, same chunked frames, the same bounded buffer per client (a
//! broadcast channel of 256 frames; a client that lags is dropped), and as
//! many threads as actix-web's workers (one per core).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

/// The crate's SSE response head, byte for byte (the date is a fixed one of
/// the same length).
const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\ncontent-encoding: identity\r\ncache-control: no-cache\r\nx-accel-buffering: no\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n";

/// Frames each client may lag behind before it is dropped, as
/// `SseOptions::client_buffer`'s default.
const BUFFER: usize = 256;

/// A running floor server.
pub struct Floor {
    sender: broadcast::Sender<Bytes>,
    clients: Arc<AtomicUsize>,
    /// Where it listens on 127.0.0.1.
    pub ports: Vec<u16>,
    next_id: u64,
    /// Its threads; shut down on drop.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Floor {
    fn drop(&mut self) {
        // Without waiting: it may be dropped inside another runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Floor {
    /// Listens on `ports` ports of 127.0.0.1.
    pub fn start(ports: usize) -> std::io::Result<Floor> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
            .enable_all()
            .build()?;
        let (sender, _) = broadcast::channel(BUFFER);
        let clients = Arc::new(AtomicUsize::new(0));
        let mut bound = Vec::new();
        for _ in 0..ports {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind("127.0.0.1:0".parse().map_err(std::io::Error::other)?)?;
            let listener = {
                let _inside = runtime.enter();
                socket.listen(4096)?
            };
            bound.push(listener.local_addr()?.port());
            runtime.spawn(accept(listener, sender.clone(), clients.clone()));
        }
        Ok(Floor {
            sender,
            clients,
            ports: bound,
            next_id: 0,
            runtime: Some(runtime),
        })
    }

    /// Counts the clients that received the response head and wait for
    /// frames.
    pub fn counter(&self) -> Arc<AtomicUsize> {
        self.clients.clone()
    }

    /// Sends one event to every client: the frame the crate would write,
    /// chunk-encoded once and shared.
    pub fn publish(&mut self, event: &str, payload: &serde_json::Value) {
        self.next_id += 1;
        let data = serde_json::to_string(payload).unwrap_or_default();
        let frame = format!("id: {}\nevent: {event}\ndata: {data}\n\n", self.next_id);
        let chunk = format!("{:X}\r\n{frame}\r\n", frame.len());
        let _ = self.sender.send(Bytes::from(chunk));
    }
}

async fn accept(
    listener: TcpListener,
    sender: broadcast::Sender<Bytes>,
    clients: Arc<AtomicUsize>,
) {
    while let Ok((socket, _)) = listener.accept().await {
        tokio::spawn(serve(socket, sender.clone(), clients.clone()));
    }
}

/// Reads the request head, answers the response head, then writes every
/// frame until the client goes or lags.
async fn serve(mut socket: TcpStream, sender: broadcast::Sender<Bytes>, clients: Arc<AtomicUsize>) {
    // Boxed, so that its buffer is freed instead of staying in the task.
    if Box::pin(read_head(&mut socket)).await.is_none() {
        return;
    }
    let mut frames = sender.subscribe();
    if socket.write_all(HEAD).await.is_err() {
        return;
    }
    clients.fetch_add(1, Ordering::Relaxed);
    while let Ok(frame) = frames.recv().await {
        if socket.write_all(&frame).await.is_err() {
            break;
        }
    }
    clients.fetch_sub(1, Ordering::Relaxed);
}

/// Reads up to the blank line ending the request head (at most 4 KiB); the
/// buffer is freed before the connection starts waiting for frames.
async fn read_head(socket: &mut TcpStream) -> Option<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 || head.len() > 4096 {
            return None;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Some(())
}
