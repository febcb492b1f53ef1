//! Skipping interim (1xx) responses below awc.
//!
//! RFC 9110 §15.2: a client must read past interim responses it did not ask
//! for, such as `100 Continue` or `103 Early Hints`. awc 3 reads a single
//! response head per request, so a 1xx would be taken as the answer (a failed
//! attempt), and the real answer left on the connection for the next request
//! to read as its own. This IO wrapper sits between the socket (or TLS) and
//! awc's HTTP/1 codec and removes interim response heads from what the codec
//! reads, so the codec sees the final response first, as if none had come.
//!
//! It knows where a response begins from awc's use of a connection: a request
//! is written whole, then its response is read; a write after a final
//! response head has been passed through starts the next request.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Largest interim head accepted (status line and fields).
const MAX_INTERIM_HEAD: usize = 16 * 1024;
/// Most interim responses accepted before one final response.
const MAX_INTERIM_RESPONSES: usize = 32;

/// Where the wrapper stands in the current response.
#[derive(Debug)]
enum State {
    /// Bytes read so far of what may be an interim head.
    AtHead { seen: usize },
    /// A final head was found: bytes go through untouched until the next request.
    Passthrough,
}

/// An IO whose reads never show an interim (1xx, except 101) response head.
#[derive(Debug)]
pub(crate) struct SkipInterim<S> {
    inner: S,
    state: State,
    /// Read from `inner` and not yet handed to the reader.
    buffer: BytesMut,
}

impl<S> SkipInterim<S> {
    pub(crate) fn new(inner: S) -> Self {
        SkipInterim {
            inner,
            state: State::AtHead { seen: 0 },
            buffer: BytesMut::new(),
        }
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// What the buffered bytes start with.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// Not enough bytes to tell.
    Undecided,
    /// An interim response head of this many bytes, blank line included.
    Interim(usize),
    /// Anything else: a final response, or bytes for the codec to judge.
    Final,
}

/// Classifies the start of a response. Only `HTTP/<version> 1xx` (other than
/// `101 Switching Protocols`, which is final) is interim.
fn classify(bytes: &[u8]) -> Head {
    const PREFIX: &[u8] = b"HTTP/";
    let compared = bytes.len().min(PREFIX.len());
    if bytes[..compared] != PREFIX[..compared] {
        return Head::Final;
    }
    let Some(line_end) = bytes.iter().position(|&b| b == b'\n') else {
        return Head::Undecided;
    };
    let line = &bytes[..line_end];
    let status = line
        .splitn(3, |&b| b == b' ')
        .nth(1)
        .filter(|code| code.len() == 3 && code.iter().all(u8::is_ascii_digit));
    match status {
        Some(code) if code[0] == b'1' && code != b"101" => match head_end(bytes) {
            Some(end) => Head::Interim(end),
            None => Head::Undecided,
        },
        _ => Head::Final,
    }
}

/// The length of a head ending in an empty line (CRLF CRLF, or bare LFs).
fn head_end(bytes: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            let line = &bytes[line_start..i];
            if line.is_empty() || line == b"\r" {
                return Some(i + 1);
            }
            line_start = i + 1;
        }
    }
    None
}

fn too_much(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

impl<S: AsyncRead + Unpin> SkipInterim<S> {
    /// Reads until the buffer starts with a final head (or the peer closed),
    /// dropping interim heads on the way.
    fn poll_fill_head(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let State::AtHead { seen } = &mut self.state else {
                return Poll::Ready(Ok(()));
            };
            match classify(&self.buffer) {
                Head::Interim(len) => {
                    *seen += 1;
                    if *seen > MAX_INTERIM_RESPONSES {
                        return Poll::Ready(Err(too_much("too many interim (1xx) responses")));
                    }
                    self.buffer.advance(len);
                    continue;
                }
                Head::Final => {
                    self.state = State::Passthrough;
                    return Poll::Ready(Ok(()));
                }
                Head::Undecided if self.buffer.len() > MAX_INTERIM_HEAD => {
                    return Poll::Ready(Err(too_much("interim (1xx) response head too large")));
                }
                Head::Undecided => {}
            }
            let mut chunk = [0u8; 4096];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut self.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                // The peer closed: let the codec see what there is.
                self.state = State::Passthrough;
                return Poll::Ready(Ok(()));
            }
            self.buffer.extend_from_slice(read.filled());
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SkipInterim<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_fill_head(cx))?;
        if this.buffer.is_empty() {
            return Pin::new(&mut this.inner).poll_read(cx, out);
        }
        let n = this.buffer.len().min(out.remaining());
        out.put_slice(&this.buffer[..n]);
        this.buffer.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SkipInterim<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if matches!(this.state, State::Passthrough) {
            // A new request: its response starts at a head again.
            this.state = State::AtHead { seen: 0 };
        }
        Pin::new(&mut this.inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const FINAL: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

    #[test]
    fn classifies_heads() {
        assert_eq!(classify(b""), Head::Undecided);
        assert_eq!(classify(b"HTT"), Head::Undecided);
        assert_eq!(classify(b"HTTP/1.1 100 Continue\r\n"), Head::Undecided);
        assert_eq!(
            classify(b"HTTP/1.1 100 Continue\r\n\r\nrest"),
            Head::Interim(25)
        );
        assert_eq!(
            classify(b"HTTP/1.1 103 Early\nLink: x\n\n"),
            Head::Interim(28)
        );
        assert_eq!(classify(b"HTTP/1.1 101 Switching\r\n\r\n"), Head::Final);
        assert_eq!(classify(b"HTTP/1.1 200 OK\r\n"), Head::Final);
        assert_eq!(classify(b"garbage"), Head::Final);
        assert_eq!(classify(b"HTTP/1.1 1x0 odd\r\n\r\n"), Head::Final);
    }

    /// Writes `chunks` from a peer, reads everything through the wrapper.
    async fn through(chunks: Vec<Vec<u8>>) -> io::Result<Vec<u8>> {
        let (client, mut server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            for chunk in chunks {
                if server.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        });
        let mut wrapped = SkipInterim::new(client);
        let mut out = Vec::new();
        let read = wrapped.read_to_end(&mut out).await;
        // Closing our end unblocks a writer the reader gave up on.
        drop(wrapped);
        let _ = writer.await;
        read.map(|_| out)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn too_many_or_too_large_interim_heads_fail_the_read() {
        let rt = runtime();
        let many = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_INTERIM_RESPONSES + 1);
        assert!(rt.block_on(through(vec![many])).is_err());
        let mut huge = b"HTTP/1.1 103 Early Hints\r\n".to_vec();
        huge.extend(b"x-filler: 0123456789\r\n".repeat(1000));
        assert!(rt.block_on(through(vec![huge])).is_err());
    }

    fn interim() -> impl Strategy<Value = Vec<u8>> {
        (
            100u16..200,
            any::<bool>(),
            proptest::collection::vec("[a-z]{1,8}: [ -~]{0,20}", 0..4),
        )
            .prop_filter("101 is final", |(code, _, _)| *code != 101)
            .prop_map(|(code, crlf, fields)| {
                let eol = if crlf { "\r\n" } else { "\n" };
                let mut head = format!("HTTP/1.1 {code} Interim{eol}");
                for field in fields {
                    head.push_str(&field);
                    head.push_str(eol);
                }
                head.push_str(eol);
                head.into_bytes()
            })
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        /// However the bytes are cut, interim heads vanish and the final
        /// response comes through byte for byte.
        #[test]
        fn interim_heads_vanish_at_any_chunking(
            heads in proptest::collection::vec(interim(), 0..5),
            cuts in proptest::collection::vec(1usize..40, 0..20),
        ) {
            let mut stream: Vec<u8> = heads.concat();
            stream.extend_from_slice(FINAL);
            let mut chunks = Vec::new();
            let mut rest = stream.as_slice();
            for cut in cuts {
                let cut = cut.min(rest.len());
                chunks.push(rest[..cut].to_vec());
                rest = &rest[cut..];
            }
            chunks.push(rest.to_vec());
            let out = runtime().block_on(through(chunks));
            prop_assert_eq!(out.ok(), Some(FINAL.to_vec()));
        }

        /// Arbitrary bytes from a peer never panic the wrapper.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = runtime().block_on(through(vec![bytes]));
        }
    }
}
