//! Timestamps taken at the socket: when the request's first byte was written, when the
//! response's first and last bytes were read. Taken inside the connection's own reads and
//! writes, so the time to first byte does not include how long the probe's task waited to be
//! scheduled after the bytes arrived, as a browser's waterfall would not.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[derive(Debug, Default, Clone, Copy)]
pub struct Marks {
    pub wrote: Option<Instant>,
    pub first_read: Option<Instant>,
    pub last_read: Option<Instant>,
}

/// Shared between the connection (which stamps) and the exchange (which reads and resets).
#[derive(Debug, Default, Clone)]
pub struct MarkBoard(Arc<Mutex<Marks>>);

impl MarkBoard {
    /// Starts a new request on the connection.
    pub fn reset(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Marks::default();
    }

    pub fn get(&self) -> Marks {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wrote(&self) {
        let mut m = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if m.wrote.is_none() {
            m.wrote = Some(Instant::now());
        }
    }

    fn read(&self) {
        let now = Instant::now();
        let mut m = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if m.wrote.is_some() {
            m.first_read.get_or_insert(now);
            m.last_read = Some(now);
        }
    }
}

pub struct TimedIo<T> {
    inner: T,
    board: MarkBoard,
}

impl<T> TimedIo<T> {
    pub fn new(inner: T, board: MarkBoard) -> Self {
        TimedIo { inner, board }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.board.read();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.board.wrote();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.board.wrote();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
