//! The paced SSE body every streamed answer of the mock is: a [`Script`] says which frames a
//! wire format sends (a head sent at once, one content event per token, a tail sent at once),
//! and [`Paced`] releases them on the clock: the head and content event 0 at once, content event
//! `i` on the `i`-th tick of a `--chunk-interval-ms` interval, the tail right after the last
//! content event. Every wire format is paced by the same code, so their streams take the same
//! time and differ only in the bytes of their frames.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Interval, MissedTickBehavior};

/// The frames of one streamed answer in one wire format.
pub trait Script: Send + Unpin + 'static {
    /// How many frames precede the first content event (sent at once).
    fn head_len(&self) -> usize;
    /// Head frame `i` (`i < head_len()`).
    fn head(&self, i: usize) -> Bytes;
    /// Content event `i`: one token of the answer.
    fn content(&self, i: usize) -> Bytes;
    /// How many frames follow the last content event (sent at once).
    fn tail_len(&self) -> usize;
    /// Tail frame `i` (`i < tail_len()`).
    fn tail(&self, i: usize) -> Bytes;
}

/// A streamed answer produced lazily: see the module documentation.
pub struct Paced {
    script: Box<dyn Script>,
    head: usize,
    chunks: usize,
    total: usize,
    interval: Option<Interval>,
    /// Index of the next frame: head, then content, then tail.
    next: usize,
}

impl Paced {
    pub fn new(script: Box<dyn Script>, chunks: usize, chunk_interval: Duration) -> Self {
        let interval = (!chunk_interval.is_zero()).then(|| {
            // The first content event goes out at once (see `poll_frame`); the
            // interval paces the rest. Polling an already-due tokio timer would
            // cost up to a millisecond of timer-wheel granularity.
            let start = tokio::time::Instant::now() + chunk_interval;
            let mut interval = tokio::time::interval_at(start, chunk_interval);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        let head = script.head_len();
        let total = head + chunks + script.tail_len();
        Self {
            script,
            head,
            chunks,
            total,
            interval,
            next: 0,
        }
    }
}

impl Body for Paced {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        let n = this.next;
        let bytes = if n < this.head {
            this.script.head(n)
        } else if n < this.head + this.chunks {
            let i = n - this.head;
            if i > 0
                && let Some(interval) = this.interval.as_mut()
                && interval.poll_tick(cx).is_pending()
            {
                return Poll::Pending;
            }
            this.script.content(i)
        } else if n < this.total {
            this.script.tail(n - this.head - this.chunks)
        } else {
            return Poll::Ready(None);
        };
        this.next += 1;
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.total
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
