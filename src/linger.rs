//! Lingering close for server connections.
//!
//! A server that responds before it has read a request body, as with an
//! error for a rejected upload, closes the connection with body bytes
//! still unread. The kernel then resets the connection, and a client that
//! is still sending gets `EPIPE` or `ECONNRESET` before it reads the
//! response, so it reports a broken connection instead of the error.
//! [`Lingering`] shuts down the sending side first and reads and discards
//! what the client still sends, for a bounded time, as web servers such
//! as nginx do (`lingering_close`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Maximum time to keep reading after the shutdown.
pub const LINGER_MAX: Duration = Duration::from_secs(5);

/// The read ends when the client sends nothing for this long.
pub const LINGER_IDLE: Duration = Duration::from_secs(1);

/// Size of the buffer that discarded bytes pass through.
const DISCARD_BUFFER: usize = 16 * 1024;

/// A connection whose `poll_shutdown` shuts down the sending side, then,
/// once armed, reads until the client closes its side, an error,
/// [`LINGER_IDLE`] without data, or [`LINGER_MAX`] in all.
pub struct Lingering<S> {
    inner: S,
    armed: LingerSwitch,
    /// Set once the sending side is shut down.
    state: Option<LingerState>,
    /// Set once the discarding read has ended.
    closed: bool,
}

struct LingerState {
    deadline: Instant,
    idle: Pin<Box<Sleep>>,
    buffer: Box<[u8]>,
}

/// Arms the lingering close of one connection. The server sets it for
/// each request: armed when the request announced a body, which the
/// response may leave unread, or when the response closes the connection.
/// A connection whose last request had no body closes at once when it is
/// closed idle, as at shutdown.
#[derive(Clone, Default)]
pub struct LingerSwitch(Arc<AtomicBool>);

impl LingerSwitch {
    pub fn arm(&self) {
        self.set(true);
    }

    pub fn set(&self, armed: bool) {
        self.0.store(armed, Ordering::Relaxed);
    }

    fn is_armed(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl<S> Lingering<S> {
    /// Wraps `inner`, which lingers on close once `armed` is armed.
    pub fn new(inner: S, armed: LingerSwitch) -> Self {
        Self {
            inner,
            armed,
            state: None,
            closed: false,
        }
    }

    /// Wraps `inner`, which always lingers on close.
    pub fn always(inner: S) -> Self {
        let armed = LingerSwitch::default();
        armed.arm();
        Self::new(inner, armed)
    }
}

impl<S: AsyncRead + Unpin> Lingering<S> {
    /// Reads and discards until the connection has nothing more to give or
    /// a time limit passes. Errors end the read: the connection closes
    /// either way.
    fn poll_discard(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(state) = self.state.as_mut() else {
            return Poll::Ready(());
        };
        loop {
            let mut buf = ReadBuf::new(&mut state.buffer);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {
                    let now = Instant::now();
                    if now >= state.deadline {
                        return Poll::Ready(());
                    }
                    let next = (now + LINGER_IDLE).min(state.deadline);
                    state.idle.as_mut().reset(next);
                }
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => {
                    return match state.idle.as_mut().poll(cx) {
                        Poll::Ready(()) => Poll::Ready(()),
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Lingering<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.closed {
            return Poll::Ready(Ok(()));
        }
        if this.state.is_none() {
            std::task::ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            if !this.armed.is_armed() {
                this.closed = true;
                return Poll::Ready(Ok(()));
            }
            let now = Instant::now();
            this.state = Some(LingerState {
                deadline: now + LINGER_MAX,
                idle: Box::pin(tokio::time::sleep_until(now + LINGER_IDLE)),
                buffer: vec![0u8; DISCARD_BUFFER].into_boxed_slice(),
            });
        }
        std::task::ready!(this.poll_discard(cx));
        this.closed = true;
        this.state = None;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn unarmed_shutdown_returns_at_once() {
        let (local, _peer) = tokio::io::duplex(64);
        let mut stream = Lingering::new(local, LingerSwitch::default());

        let shutdown = tokio::time::timeout(Duration::from_millis(100), stream.shutdown()).await;

        assert!(
            shutdown.is_ok(),
            "an unarmed connection waited for its peer"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn armed_shutdown_reads_until_peer_closes() {
        let (local, mut peer) = tokio::io::duplex(64);
        let mut stream = Lingering::always(local);

        let peer_task = tokio::spawn(async move {
            // The peer reads the end of the response before it stops sending.
            let mut response = Vec::new();
            peer.read_to_end(&mut response).await.unwrap();
            for _ in 0..100 {
                peer.write_all(&[7u8; 1000]).await.unwrap();
            }
            drop(peer);
        });
        let started = Instant::now();
        stream.shutdown().await.unwrap();

        peer_task.await.unwrap();
        assert!(
            started.elapsed() < LINGER_IDLE,
            "the read did not end at the peer's close"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn armed_shutdown_ends_after_idle_time() {
        let (local, _peer) = tokio::io::duplex(64);
        let mut stream = Lingering::always(local);

        let started = Instant::now();
        stream.shutdown().await.unwrap();

        assert_eq!(started.elapsed(), LINGER_IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn armed_shutdown_ends_at_max_time() {
        let (local, mut peer) = tokio::io::duplex(64);
        let mut stream = Lingering::always(local);

        // The peer sends a byte every half second for longer than the limit.
        tokio::spawn(async move {
            loop {
                if peer.write_all(b"x").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        let started = Instant::now();
        stream.shutdown().await.unwrap();

        let elapsed = started.elapsed();
        assert!(elapsed >= LINGER_MAX, "ended after {elapsed:?}");
        assert!(
            elapsed < LINGER_MAX + LINGER_IDLE,
            "ended after {elapsed:?}"
        );
    }
}
