//! The WebSocket endpoint against hostile peers on raw TCP: broken
//! handshakes, frames that lie about their length, unmasked or reserved
//! frames, invalid UTF-8, oversized control frames, garbage. Each gets a
//! refusal or a close, never a panic, and the server keeps serving.
#![cfg(feature = "sse")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

use serde_json::json;
use support::live::{serve, wait_for_clients, Live, Socket};
use support::DEADLINE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use webhooks_emitter::sse::SseOptions;
use webhooks_emitter::WebhooksEmitter;

/// Panics in this test binary outside the tests' own assertions: in the
/// crate, actix, or anything the server runs.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info
                .location()
                .is_some_and(|l| l.file().ends_with("ws_hostile.rs"))
            {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            default(info);
        }));
    });
}

const HANDSHAKE: &str = "GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// Sends `request` and reads the response head.
async fn send_head(addr: &str, request: &str) -> (TcpStream, String) {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(DEADLINE, socket.read(&mut byte))
            .await
            .expect("no response head in time")
            .unwrap();
        assert!(n > 0, "closed before the response head: {head:?}");
        head.push(byte[0]);
    }
    (socket, String::from_utf8_lossy(&head).into_owned())
}

/// A connection past a valid handshake.
async fn upgraded(addr: &str) -> TcpStream {
    let (socket, head) = send_head(addr, HANDSHAKE).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    socket
}

/// Sends `request` and checks the response's status.
async fn answers(addr: &str, request: &str, status: &str) {
    let (_, head) = send_head(addr, request).await;
    assert!(
        head.starts_with(&format!("HTTP/1.1 {status}")),
        "{request:?} → {head}"
    );
}

/// A connection past the handshake that joined room `room`.
async fn joined_room(addr: &str, emitter: &WebhooksEmitter) -> TcpStream {
    let mut socket = upgraded(addr).await;
    let join = br#"{"op":"join","topic":"room"}"#;
    socket
        .write_all(&frame(0x1, join, join.len() as u64, true))
        .await
        .unwrap();
    wait_for_clients(emitter, "room", 1).await;
    socket
}

/// A client frame: FIN, `opcode`, masked with a zero key unless `masked` is
/// false, `payload` after a header that claims `claimed` bytes.
fn frame(opcode: u8, payload: &[u8], claimed: u64, masked: bool) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    let mask = if masked { 0x80 } else { 0 };
    if claimed < 126 {
        out.push(mask | claimed as u8);
    } else if claimed <= u64::from(u16::MAX) {
        out.push(mask | 126);
        out.extend_from_slice(&(claimed as u16).to_be_bytes());
    } else {
        out.push(mask | 127);
        out.extend_from_slice(&claimed.to_be_bytes());
    }
    if masked {
        out.extend_from_slice(&[0, 0, 0, 0]);
    }
    out.extend_from_slice(payload);
    out
}

/// Reads server frames until a close frame (its code) or the end (`None`).
async fn close_code(socket: &mut TcpStream) -> Option<u16> {
    let read = async {
        loop {
            let mut header = [0u8; 2];
            socket.read_exact(&mut header).await.ok()?;
            let length = match header[1] & 0x7F {
                126 => u64::from(socket.read_u16().await.ok()?),
                127 => socket.read_u64().await.ok()?,
                n => u64::from(n),
            };
            let mut payload = vec![0u8; usize::try_from(length).ok()?];
            socket.read_exact(&mut payload).await.ok()?;
            if header[0] & 0x0F == 0x8 {
                return payload
                    .get(..2)
                    .map(|code| u16::from_be_bytes([code[0], code[1]]));
            }
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("the server neither closed nor dropped the connection")
}

/// After the abuse, a well-behaved client still joins and receives.
async fn still_serves(emitter: &WebhooksEmitter, ws: &str) {
    let mut socket = Socket::connect(ws).await;
    socket.send(&json!({"op": "join", "topic": "after"})).await;
    assert_eq!(socket.recv().await["op"], "joined");
    wait_for_clients(emitter, "after", 1).await;
    emitter.broadcast("after", "ok", &1).unwrap();
    assert_eq!(socket.recv().await["event"], "ok");
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
}

#[actix_web::test]
async fn broken_handshakes_are_refused() {
    count_panics();
    let Live {
        emitter, ws, addr, ..
    } = serve(SseOptions::default());
    for (request, status) in [
        // RFC 6455 4.4: 426 with the version we speak.
        (
            HANDSHAKE.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
            "426",
        ),
        (
            HANDSHAKE.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            "400",
        ),
        (
            HANDSHAKE.replace("dGhlIHNhbXBsZSBub25jZQ==", "not base64 at all !"),
            "400",
        ),
        (HANDSHAKE.replace("Upgrade: websocket\r\n", ""), "400"),
        (
            HANDSHAKE.replace("Connection: Upgrade", "Connection: keep-alive"),
            "400",
        ),
        (
            HANDSHAKE.replace("Upgrade: websocket", "Upgrade: h2c"),
            "400",
        ),
    ] {
        answers(&addr, &request, status).await;
    }
    still_serves(&emitter, &ws).await;
}

#[actix_web::test]
async fn lying_unmasked_reserved_and_invalid_frames_are_closed() {
    count_panics();
    let Live {
        emitter, ws, addr, ..
    } = serve(SseOptions::default());
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        // A text frame claiming 2^63 bytes: refused by its header alone.
        (
            "claims 2^63 bytes",
            frame(0x1, b"{}", 1 << 63, true),
            &[1009],
        ),
        // Refused at the header, before anything of it is buffered.
        (
            "claims 64 KiB + 1",
            frame(0x1, b"{}", 64 * 1024 + 1, true),
            &[1009],
        ),
        (
            "claims 1 GiB",
            frame(0x1, &[b'x'; 4096], 1 << 30, true),
            &[1009],
        ),
        (
            "binary claims 1 GiB",
            frame(0x2, &[0; 4096], 1 << 30, true),
            &[1009],
        ),
        (
            "unmasked",
            frame(0x1, br#"{"op":"ping"}"#, 13, false),
            &[1002],
        ),
        ("reserved opcode 0x3", frame(0x3, b"", 0, true), &[1002]),
        (
            "ping over 125 bytes",
            frame(0x9, &[b'x'; 200], 200, true),
            &[1002],
        ),
        (
            "continuation without a start",
            frame(0x0, b"{}", 2, true),
            &[1002],
        ),
        (
            "invalid UTF-8 in text",
            frame(0x1, &[0xC3, 0x28, 0xFF], 3, true),
            &[1002, 1007],
        ),
    ];
    for (what, bytes, codes) in cases {
        let mut socket = upgraded(&addr).await;
        socket.write_all(&bytes).await.unwrap();
        let code = close_code(&mut socket).await;
        assert!(
            code.is_some_and(|c| codes.contains(&c)),
            "{what}: closed with {code:?}, expected one of {codes:?}"
        );
    }
    still_serves(&emitter, &ws).await;
}

#[actix_web::test]
async fn garbage_and_abrupt_ends_leave_no_client_behind() {
    count_panics();
    let Live {
        emitter, ws, addr, ..
    } = serve(SseOptions::default());
    // Joined, then garbage: the connection goes and its room is left.
    let mut socket = joined_room(&addr, &emitter).await;
    socket
        .write_all(b"\xff\xfe garbage \x00\x01\x02 not a frame at all")
        .await
        .unwrap();
    let _ = close_code(&mut socket).await;
    drop(socket);
    wait_for_clients(&emitter, "room", 0).await;

    // Joined, then the TCP connection is cut mid-frame.
    let mut socket = joined_room(&addr, &emitter).await;
    socket.write_all(&[0x81, 0xFE, 0x10]).await.unwrap();
    drop(socket);
    wait_for_clients(&emitter, "room", 0).await;
    still_serves(&emitter, &ws).await;
}

#[actix_web::test]
async fn handshakes_from_origins_outside_the_list_get_403() {
    count_panics();
    let options = SseOptions::default().ws_origins(["https://app.example/"]);
    let Live {
        emitter, ws, addr, ..
    } = serve(options);
    let with_origin = |origin: &str| {
        HANDSHAKE.replace(
            "Host: test\r\n",
            &format!("Host: test\r\nOrigin: {origin}\r\n"),
        )
    };
    for (request, status) in [
        (with_origin("https://evil.example"), "403"),
        (with_origin("null"), "403"),
        (with_origin("https://app.example.evil.example"), "403"),
        (with_origin("https://app.example"), "101"),
        // Not a browser: no Origin at all.
        (HANDSHAKE.to_owned(), "101"),
    ] {
        answers(&addr, &request, status).await;
    }
    still_serves(&emitter, &ws).await;
}
