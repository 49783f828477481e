//! Timestamps taken at the socket: when the request's first byte was written, when the
//! response's first and last bytes arrived.
//!
//! A read's own clock reading is late by however long the connection's task waited to be
//! scheduled after the bytes arrived: milliseconds on a busy machine, which a browser's
//! waterfall would not count. So on Linux the TCP socket underneath ([`KernelStampedTcp`])
//! asks the kernel when it received the bytes, and the reads above it ([`TimedIo`]) take that
//! time instead of their own; where the kernel gives none, the read's own time stands.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

#[derive(Debug, Default, Clone, Copy)]
pub struct Marks {
    pub wrote: Option<Instant>,
    pub first_read: Option<Instant>,
    pub last_read: Option<Instant>,
}

#[derive(Debug, Default)]
struct Board {
    marks: Marks,
    /// When the kernel received the bytes of the socket's latest read, if it said.
    kernel_rx: Option<Instant>,
}

/// Shared between the connection (which stamps) and the exchange (which reads and resets).
#[derive(Debug, Default, Clone)]
pub struct MarkBoard(Arc<Mutex<Board>>);

impl MarkBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a new request on the connection.
    pub fn reset(&self) {
        *self.lock() = Board::default();
    }

    pub fn get(&self) -> Marks {
        self.lock().marks
    }

    fn wrote(&self, at: Instant) {
        self.lock().marks.wrote.get_or_insert(at);
    }

    /// A request is out and none of its response has been read yet.
    fn awaiting_first_read(&self) -> bool {
        let b = self.lock();
        b.marks.wrote.is_some() && b.marks.first_read.is_none()
    }

    /// The socket read bytes the kernel received at `at` (`None`: it did not say).
    fn socket_read(&self, at: Option<Instant>) {
        let mut b = self.lock();
        if b.marks.wrote.is_some() {
            b.kernel_rx = at;
        }
    }

    fn read(&self) {
        let now = Instant::now();
        let mut b = self.lock();
        let Some(wrote) = b.marks.wrote else {
            return;
        };
        // A kernel stamp from before the request went out can only come from a clock step
        // (or a server talking out of turn): the read's own time is the safer answer.
        let at = b
            .kernel_rx
            .filter(|&k| k >= wrote && k <= now)
            .unwrap_or(now);
        let first = *b.marks.first_read.get_or_insert(at);
        b.marks.last_read = Some(at.max(first));
    }
}

/// `kernel`, a CLOCK_REALTIME time, as an `Instant`, through the two clocks read together at
/// `wall_now` and `now`. `None` when the wall clock says the kernel's time is in the future:
/// it was stepped back since, and the age cannot be known.
fn kernel_instant(kernel: SystemTime, wall_now: SystemTime, now: Instant) -> Option<Instant> {
    let age = wall_now.duration_since(kernel).ok()?;
    now.checked_sub(age)
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
    // Stamped before the write: the request leaves inside the call, and a stamp taken after it
    // could land, on a busy machine, after the response's kernel stamp.
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let at = Instant::now();
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.board.wrote(at);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let at = Instant::now();
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.board.wrote(at);
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

/// What travels on the socket, which decides how its first read after a request is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// HTTP itself: the first byte read after the request is the response's, so that read
    /// takes one byte only and its stamp is the arrival of the response's first segment.
    Http,
    /// TLS records (the socket sits under rustls). The first bytes read after the request may
    /// be a TLS 1.3 session ticket rather than the response, so every read is stamped and the
    /// response's first plaintext byte takes the stamp of the socket read that completed its
    /// record: never the ticket's, and not delayed by the task's scheduling. Reads stay whole,
    /// as rustls needs records; a read that drained several segments is stamped with the last.
    Tls,
}

/// Reads past this are cut, since each read zeroes its destination first.
const MAX_STAMPED_READ: usize = 64 * 1024;

/// A TCP stream whose reads carry the kernel's receive time to a [`MarkBoard`], where
/// [`TimedIo`] above it (directly, or above rustls) takes it for its stamps. Where the kernel
/// does not stamp (not Linux, or the option was refused), it reads as a bare `TcpStream` and
/// the stamps are user space ones, as before.
pub struct KernelStampedTcp {
    tcp: TcpStream,
    board: MarkBoard,
    wire: Wire,
    /// Control-message room while the kernel stamps this socket's reads.
    control: Option<Vec<u8>>,
}

impl KernelStampedTcp {
    pub fn new(tcp: TcpStream, board: MarkBoard, wire: Wire) -> Self {
        let control = super::kernel_stamp::enable(&tcp).then(super::kernel_stamp::control_space);
        KernelStampedTcp {
            tcp,
            board,
            wire,
            control,
        }
    }
}

impl AsyncRead for KernelStampedTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(control) = this.control.as_mut() {
            let want = match this.wire {
                Wire::Http if this.board.awaiting_first_read() => 1,
                _ => MAX_STAMPED_READ,
            };
            return poll_read_stamped(&this.tcp, &this.board, control, want, cx, buf);
        }
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

fn poll_read_stamped(
    tcp: &TcpStream,
    board: &MarkBoard,
    control: &mut [u8],
    want: usize,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    let want = want.min(buf.remaining());
    if want == 0 {
        return Poll::Ready(Ok(()));
    }
    loop {
        std::task::ready!(tcp.poll_read_ready(cx))?;
        let dst = buf.initialize_unfilled_to(want);
        let result = tcp.try_io(tokio::io::Interest::READABLE, || {
            super::kernel_stamp::recv(tcp, dst, control)
        });
        match result {
            Ok((n, kernel)) => {
                let (wall_now, now) = (SystemTime::now(), Instant::now());
                buf.advance(n);
                if n > 0 {
                    board.socket_read(kernel.and_then(|k| kernel_instant(k, wall_now, now)));
                }
                return Poll::Ready(Ok(()));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for KernelStampedTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_kernel_time_becomes_the_instant_as_old() {
        let now = Instant::now();
        let wall = SystemTime::now();
        let kernel = wall - Duration::from_millis(30);
        assert_eq!(
            kernel_instant(kernel, wall, now),
            Some(now - Duration::from_millis(30))
        );
        assert_eq!(kernel_instant(wall, wall, now), Some(now));
    }

    #[test]
    fn a_kernel_time_in_the_future_is_no_time() {
        let wall = SystemTime::now();
        let kernel = wall + Duration::from_millis(5);
        assert_eq!(kernel_instant(kernel, wall, Instant::now()), None);
    }

    #[test]
    fn the_first_read_takes_the_kernel_stamp_unless_it_precedes_the_request() {
        let board = MarkBoard::default();
        let wrote = Instant::now();
        board.wrote(wrote);
        // Stepped clocks can put the kernel's time before the request: ignored.
        board.socket_read(wrote.checked_sub(Duration::from_millis(1)));
        board.read();
        let m = board.get();
        assert!(m.first_read.is_some_and(|r| r >= wrote), "{m:?}");

        board.reset();
        let wrote = Instant::now() - Duration::from_millis(1);
        board.wrote(wrote);
        let arrived = wrote + Duration::from_micros(300);
        board.socket_read(Some(arrived));
        board.read();
        assert_eq!(board.get().first_read, Some(arrived));
        // A read the kernel did not stamp keeps its own time, later than the first.
        board.socket_read(None);
        board.read();
        let m = board.get();
        assert!(m.last_read.is_some_and(|l| l > arrived), "{m:?}");
        assert_eq!(m.first_read, Some(arrived));
    }

    #[test]
    fn reads_before_any_request_stamp_nothing() {
        let board = MarkBoard::default();
        board.socket_read(Some(Instant::now()));
        board.read();
        let m = board.get();
        assert!(m.first_read.is_none() && m.last_read.is_none(), "{m:?}");
    }
}
