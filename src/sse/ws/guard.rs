//! A guard on the bytes a WebSocket client sends: it reads each frame's
//! header as the bytes pass and fails the stream as soon as a frame declares
//! a payload over the limit.
//!
//! actix-ws checks `max_frame_size` only once a frame has fully arrived, and
//! buffers everything until then: a client announcing a 1 GiB frame could
//! make the server hold 1 GiB. With the guard, nothing past the header of
//! such a frame is buffered.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use bytes::Bytes;
use futures_util::Stream;

/// Where the guard is in the client's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a frame header: the bytes so far.
    Header { bytes: [u8; 14], have: usize },
    /// Skipping a frame's payload: bytes left.
    Payload { left: u64 },
}

/// Reads frame headers; `Err` once a frame declares more than `max` bytes.
#[derive(Debug)]
pub(super) struct FrameLimit {
    state: State,
    max: u64,
}

impl FrameLimit {
    pub(super) fn new(max: usize) -> Self {
        FrameLimit {
            state: State::Header {
                bytes: [0; 14],
                have: 0,
            },
            max: max as u64,
        }
    }

    /// Follows `chunk`; `Err` if a frame in it declares too many bytes.
    pub(super) fn follow(&mut self, mut chunk: &[u8]) -> Result<(), PayloadError> {
        while !chunk.is_empty() {
            match &mut self.state {
                State::Payload { left } => {
                    let skipped = chunk
                        .len()
                        .min(usize::try_from(*left).unwrap_or(usize::MAX));
                    chunk = &chunk[skipped..];
                    *left -= skipped as u64;
                    if *left == 0 {
                        self.state = State::Header {
                            bytes: [0; 14],
                            have: 0,
                        };
                    }
                }
                State::Header { bytes, have } => {
                    let take = chunk.len().min(header_len(&bytes[..*have]) - *have);
                    bytes[*have..*have + take].copy_from_slice(&chunk[..take]);
                    *have += take;
                    chunk = &chunk[take..];
                    if *have == header_len(&bytes[..*have]) {
                        let left = payload_len(&bytes[..*have]);
                        if left > self.max {
                            return Err(PayloadError::Overflow);
                        }
                        if left > 0 {
                            self.state = State::Payload { left };
                        } else {
                            *have = 0;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The length of a header starting with `start` (at least 2 until its
/// second byte is known).
fn header_len(start: &[u8]) -> usize {
    let Some(&second) = start.get(1) else {
        return 2;
    };
    let extended = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + extended + mask
}

/// The payload length a complete header declares.
fn payload_len(header: &[u8]) -> u64 {
    match header[1] & 0x7F {
        126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        127 => header[2..10]
            .iter()
            .fold(0u64, |n, b| (n << 8) | u64::from(*b)),
        n => u64::from(n),
    }
}

/// The client's bytes, passed through unchanged while the guard allows.
pub(super) struct Guarded<S> {
    inner: S,
    limit: FrameLimit,
    failed: bool,
}

impl<S> Guarded<S> {
    pub(super) fn new(inner: S, max: usize) -> Self {
        Guarded {
            inner,
            limit: FrameLimit::new(max),
            failed: false,
        }
    }
}

impl<S> Stream for Guarded<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => match this.limit.follow(&chunk) {
                Ok(()) => Poll::Ready(Some(Ok(chunk))),
                Err(error) => {
                    this.failed = true;
                    Poll::Ready(Some(Err(error)))
                }
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A masked client frame with `len` payload bytes.
    fn frame(len: usize) -> Vec<u8> {
        let mut out = vec![0x81];
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= usize::from(u16::MAX) {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&[1, 2, 3, 4]);
        out.extend(std::iter::repeat_n(b'x', len));
        out
    }

    fn follow_in_pieces(bytes: &[u8], cuts: &[usize], max: usize) -> Result<(), PayloadError> {
        let mut limit = FrameLimit::new(max);
        let mut at = 0;
        for cut in cuts.iter().map(|c| c % (bytes.len() + 1)) {
            if cut > at {
                limit.follow(&bytes[at..cut])?;
                at = cut;
            }
        }
        limit.follow(&bytes[at..])
    }

    #[test]
    fn a_header_over_the_limit_fails_before_its_payload() {
        let mut limit = FrameLimit::new(64 * 1024);
        assert!(limit.follow(&frame(64 * 1024)).is_ok());
        // The header alone of a 64 KiB + 1 frame is refused.
        let header = &frame(64 * 1024 + 1)[..14];
        assert!(matches!(limit.follow(header), Err(PayloadError::Overflow)));
        let mut huge = vec![0x81, 0x80 | 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        huge.extend_from_slice(&[1, 2, 3, 4]);
        assert!(FrameLimit::new(10).follow(&huge).is_err());
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        /// Frames within the limit pass however the bytes are cut; one
        /// over it fails, however cut.
        #[test]
        fn frames_are_followed_across_any_cuts(
            lens in proptest::collection::vec(0usize..70_000, 1..5),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
            max in 0usize..70_000,
        ) {
            let bytes: Vec<u8> = lens.iter().flat_map(|l| frame(*l)).collect();
            let mut cuts = cuts;
            cuts.sort_unstable_by_key(|c| c % (bytes.len() + 1));
            let result = follow_in_pieces(&bytes, &cuts, max);
            prop_assert_eq!(result.is_ok(), lens.iter().all(|l| *l <= max));
        }

        #[test]
        fn any_bytes_are_followed_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = FrameLimit::new(64).follow(&bytes);
        }
    }
}
