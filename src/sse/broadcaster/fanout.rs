//! A topic's frames for its one-topic SSE clients, kept once however many
//! clients there are; each client reads them at its own cursor.
//!
//! A channel per client cost a push, a pop and their synchronization per
//! client per event, and a 256-byte block per client. Here the broadcaster
//! appends the frame once, then looks at each cursor: a client more than
//! `capacity` frames behind is dropped at once (as a full channel was), the
//! others are woken. Frames every client has read are released, so a topic
//! whose clients keep up holds nothing.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use futures_util::Stream;

/// Why a client is disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Disconnect {
    Closed,
    TooSlow,
}

/// The shared frames of one topic.
#[derive(Debug)]
pub(super) struct Fanout {
    frames: RwLock<Frames>,
    capacity: u64,
}

#[derive(Debug, Default)]
struct Frames {
    /// Sequence number of `queue[0]`.
    first: u64,
    queue: VecDeque<Bytes>,
}

impl Frames {
    fn head(&self) -> u64 {
        self.first + self.queue.len() as u64
    }
}

/// Where one client is.
#[derive(Debug)]
pub(super) struct Cursor {
    /// Sequence number of the next frame it reads.
    next: AtomicU64,
    waker: AtomicWaker,
    /// Set when the broadcaster drops the client.
    dropped: AtomicBool,
}

impl Fanout {
    /// A fan-out letting clients fall at most `capacity` frames behind.
    pub(super) fn new(capacity: usize) -> Fanout {
        Fanout {
            frames: RwLock::new(Frames::default()),
            capacity: capacity.max(1) as u64,
        }
    }

    /// A cursor at the current end: the client gets what is appended next.
    pub(super) fn cursor(&self) -> Arc<Cursor> {
        Arc::new(Cursor {
            next: AtomicU64::new(self.read().head()),
            waker: AtomicWaker::new(),
            dropped: AtomicBool::new(false),
        })
    }

    /// Appends `frame`; returns the end after it.
    pub(super) fn append(&self, frame: Bytes) -> u64 {
        let mut frames = self.write();
        frames.queue.push_back(frame);
        frames.head()
    }

    /// Whether the client at `cursor` may stay, given the end `head`: wakes
    /// it if so. The broadcaster owns one reference, the client's stream
    /// the other: alone, the client is gone.
    pub(super) fn check(&self, cursor: &Arc<Cursor>, head: u64) -> Result<u64, Disconnect> {
        if Arc::strong_count(cursor) < 2 {
            return Err(Disconnect::Closed);
        }
        let next = cursor.next.load(Ordering::Acquire);
        if head.saturating_sub(next) > self.capacity {
            return Err(Disconnect::TooSlow);
        }
        cursor.waker.wake();
        Ok(next)
    }

    /// Releases the frames before `oldest_needed` (the slowest remaining
    /// client's cursor; the end if none remains).
    pub(super) fn release(&self, oldest_needed: u64) {
        let mut frames = self.write();
        while frames.first < oldest_needed && frames.queue.pop_front().is_some() {
            frames.first += 1;
        }
    }

    /// Frames appended and not yet released.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.read().queue.len()
    }

    // A panic while holding the lock cannot leave `Frames` inconsistent
    // (each change is one push or pop), so a poisoned lock is used as is.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Frames> {
        self.frames.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Frames> {
        self.frames.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Cursor {
    /// The broadcaster dropped the client: its stream ends.
    pub(super) fn drop_client(&self) {
        self.dropped.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// A client's frames: `first` (its retry field and replay), then the
/// topic's, until it is dropped or falls behind.
pub(crate) struct FanoutStream {
    first: Option<Bytes>,
    fanout: Arc<Fanout>,
    cursor: Arc<Cursor>,
}

impl FanoutStream {
    pub(super) fn new(first: Option<Bytes>, fanout: Arc<Fanout>, cursor: Arc<Cursor>) -> Self {
        FanoutStream {
            first,
            fanout,
            cursor,
        }
    }
}

impl Stream for FanoutStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        // Registered before looking, so an append after the look wakes us.
        this.cursor.waker.register(cx.waker());
        if this.cursor.dropped.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        let next = this.cursor.next.load(Ordering::Relaxed);
        let frames = this.fanout.read();
        if next < frames.first {
            // Released before we read it: we were dropped as too slow.
            return Poll::Ready(None);
        }
        let frame = usize::try_from(next - frames.first)
            .ok()
            .and_then(|at| frames.queue.get(at))
            .cloned();
        drop(frames);
        match frame {
            Some(frame) => {
                this.cursor.next.store(next + 1, Ordering::Release);
                Poll::Ready(Some(Ok(frame)))
            }
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn frame(n: u8) -> Bytes {
        Bytes::from(vec![n])
    }

    #[tokio::test]
    async fn clients_read_in_order_and_frames_are_released() {
        let fanout = Arc::new(Fanout::new(4));
        let cursor = fanout.cursor();
        let mut stream = FanoutStream::new(Some(frame(0)), fanout.clone(), cursor.clone());
        for n in 1..=3 {
            let head = fanout.append(frame(n));
            assert!(fanout.check(&cursor, head).is_ok());
        }
        for n in 0..=3 {
            assert_eq!(stream.next().await, Some(Ok(frame(n))));
        }
        fanout.release(cursor.next.load(Ordering::Acquire));
        assert_eq!(fanout.held(), 0);
    }

    #[tokio::test]
    async fn a_client_too_far_behind_is_refused_and_its_stream_ends() {
        let fanout = Arc::new(Fanout::new(2));
        let cursor = fanout.cursor();
        let mut stream = FanoutStream::new(None, fanout.clone(), cursor.clone());
        let mut verdicts = Vec::new();
        for n in 1..=3 {
            let head = fanout.append(frame(n));
            verdicts.push(fanout.check(&cursor, head).is_ok());
        }
        assert_eq!(verdicts, [true, true, false]);
        cursor.drop_client();
        assert_eq!(stream.next().await, None);
    }

    #[test]
    fn a_client_whose_stream_is_gone_is_closed() {
        let fanout = Fanout::new(2);
        let cursor = fanout.cursor();
        let head = fanout.append(frame(1));
        assert_eq!(fanout.check(&cursor, head), Err(Disconnect::Closed));
    }
}
