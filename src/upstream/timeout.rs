//! Timeouts on an upstream request. `upstream.connect_timeout_secs` bounds
//! the TCP connection and TLS handshake together ([`Connector`]). Once the
//! connection is open, `upstream.response_timeout_secs` bounds every wait:
//!
//! - a write to the upstream connection (request head, body, or the flush
//!   before closing) that makes no progress for that time fails the
//!   connection ([`WriteTimeoutIo`]);
//! - the response head must arrive within that time after the request body
//!   is sent ([`TrackedBody`] and [`expire`]);
//! - the response body must send data at least once in that time while it
//!   is read ([`ResponseBody`]).
//!
//! Time spent waiting for the request body's own source, such as a client
//! upload, does not count, because a large upload may take many minutes
//! and the client body has its own idle timeout.

use super::{BoxError, UpstreamBody};
use bytes::Bytes;
use http::Uri;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

/// An upstream wait that exceeded `upstream.response_timeout_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Timeout {
    #[error("the upstream took no request data for {0:?}")]
    Write(Duration),
    #[error("the upstream sent no response head within {0:?} after the request was sent")]
    ResponseHead(Duration),
    #[error("the upstream sent no response body data for {0:?}")]
    ResponseBody(Duration),
}

/// The error of a connection, TLS handshake included, that took longer than
/// `upstream.connect_timeout_secs`. It is not a [`Timeout`], so the client
/// gets 502 as for an upstream that refuses connections.
#[derive(Debug, thiserror::Error)]
#[error("connecting to the upstream, TLS handshake included, took longer than {0:?}")]
pub struct ConnectTimedOut(Duration);

/// Returns whether `error` or one of its sources is a [`Timeout`], as when
/// a streamed copy fails because its source's response body stalled.
pub fn is_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<Timeout>() {
            return true;
        }
        // `io::Error::source` skips the error that it wraps, which is where
        // `WriteTimeoutIo` puts its `Timeout`.
        let wrapped = error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref);
        if wrapped.is_some_and(|inner| inner.is::<Timeout>()) {
            return true;
        }
        next = error.source();
    }
    false
}

/// A request body that reports when it is completely sent, so that the
/// response head timeout starts then.
pub struct TrackedBody {
    inner: UpstreamBody,
    /// `None` for a body that is empty from the start, which hyper never
    /// polls and which counts as sent at once.
    sent: Option<watch::Sender<bool>>,
}

impl TrackedBody {
    /// Wraps `inner` and returns the receiver that [`expire`] waits on, or
    /// `None` when the body is empty and the timer can start at once.
    pub(super) fn new(inner: UpstreamBody) -> (Self, Option<watch::Receiver<bool>>) {
        if inner.is_end_stream() {
            return (Self { inner, sent: None }, None);
        }
        let (sent, receiver) = watch::channel(false);
        (
            Self {
                inner,
                sent: Some(sent),
            },
            Some(receiver),
        )
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let poll = Pin::new(&mut self.inner).poll_frame(cx);
        // An error also ends the body, and hyper fails the request with it.
        let ended = match &poll {
            Poll::Pending => false,
            Poll::Ready(Some(Ok(_))) => self.inner.is_end_stream(),
            Poll::Ready(_) => true,
        };
        if ended {
            if let Some(sent) = &self.sent {
                sent.send_replace(true);
            }
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Waits until the request body is sent and then for `timeout`, and
/// returns [`Timeout::ResponseHead`].
pub(super) async fn expire(mut sent: watch::Receiver<bool>, timeout: Duration) -> Timeout {
    // The sender is dropped with the body. hyper 1.13 drops a body with a
    // known length once it has written that many bytes, without polling
    // for its end, so a dropped body counts as sent.
    let _ = sent.wait_for(|sent| *sent).await;
    tokio::time::sleep(timeout).await;
    Timeout::ResponseHead(timeout)
}

/// A response body from the upstream that fails with
/// [`Timeout::ResponseBody`] when no data arrives for `timeout` while it is
/// polled. Time while it is not polled, such as while a slow client reads
/// earlier data, does not count.
pub struct ResponseBody {
    inner: Incoming,
    idle: IdleDeadline,
}

impl ResponseBody {
    pub(super) fn new(inner: Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            idle: IdleDeadline::new(timeout),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_frame(cx);
        match this.idle.check(poll, cx) {
            Ok(poll) => poll.map(|frame| frame.map(|result| result.map_err(Into::into))),
            Err(timeout) => Poll::Ready(Some(Err(Box::new(Timeout::ResponseBody(timeout))))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A timer that runs while an operation stays pending and restarts after
/// each completed one.
struct IdleDeadline {
    timeout: Duration,
    /// Created the first time the operation is pending, so that a response
    /// body or connection that never waits allocates no timer.
    deadline: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl IdleDeadline {
    fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            deadline: None,
            armed: false,
        }
    }

    /// Passes `poll` on, or returns `Err` with the timeout when the
    /// operation has been pending for that long.
    fn check<T>(&mut self, poll: Poll<T>, cx: &mut Context<'_>) -> Result<Poll<T>, Duration> {
        if poll.is_ready() {
            self.armed = false;
            return Ok(poll);
        }
        let armed = std::mem::replace(&mut self.armed, true);
        let deadline = match &mut self.deadline {
            Some(deadline) if armed => deadline,
            Some(deadline) => {
                deadline.as_mut().reset(Instant::now() + self.timeout);
                deadline
            }
            None => self
                .deadline
                .insert(Box::pin(tokio::time::sleep(self.timeout))),
        };
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Err(self.timeout),
            Poll::Pending => Ok(Poll::Pending),
        }
    }
}

/// The connection type of the upstream client.
pub type UpstreamIo = WriteTimeoutIo<MaybeHttpsStream<TokioIo<TcpStream>>>;

/// Connects to the upstream as `HttpsConnector` does, within
/// `connect_timeout`, and wraps each connection in a [`WriteTimeoutIo`]
/// with `write_timeout`.
///
/// `HttpConnector`'s own connect timeout covers the TCP connection only,
/// and hyper-rustls 0.27 sets none for the TLS handshake.
#[derive(Clone)]
pub struct Connector {
    inner: HttpsConnector<HttpConnector>,
    connect_timeout: Duration,
    write_timeout: Duration,
}

impl Connector {
    pub(super) fn new(
        inner: HttpsConnector<HttpConnector>,
        connect_timeout: Duration,
        write_timeout: Duration,
    ) -> Self {
        Self {
            inner,
            connect_timeout,
            write_timeout,
        }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = UpstreamIo;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<UpstreamIo, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let (connect_timeout, write_timeout) = (self.connect_timeout, self.write_timeout);
        Box::pin(async move {
            let stream = tokio::time::timeout(connect_timeout, connecting)
                .await
                .map_err(|_| ConnectTimedOut(connect_timeout))??;
            Ok(WriteTimeoutIo::new(stream, write_timeout))
        })
    }
}

/// A connection whose writes, flushes and shutdown fail with
/// [`Timeout::Write`] after `timeout` without progress, as when the upstream
/// stops reading the request.
///
/// hyper's connection task flushes its buffer before it closes a
/// connection, also after the request was given up, and keeps the request
/// body until then. Without this timeout, a connection to an upstream that
/// stops reading stays open.
pub struct WriteTimeoutIo<T> {
    inner: T,
    idle: IdleDeadline,
}

impl<T> WriteTimeoutIo<T> {
    fn new(inner: T, timeout: Duration) -> Self {
        Self {
            inner,
            idle: IdleDeadline::new(timeout),
        }
    }

    fn check<R>(
        &mut self,
        poll: Poll<std::io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<R>> {
        match self.idle.check(poll, cx) {
            Ok(poll) => poll,
            Err(timeout) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                Timeout::Write(timeout),
            ))),
        }
    }
}

impl<T: Read + Unpin> Read for WriteTimeoutIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for WriteTimeoutIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(poll, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(poll, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(poll, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(poll, cx)
    }
}

impl<T: Connection> Connection for WriteTimeoutIo<T> {
    fn connected(&self) -> Connected {
        self.inner.connected()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::UpstreamError;
    use http_body_util::BodyExt;

    const SHORT: Duration = Duration::from_millis(50);

    #[test]
    fn timeouts_found_in_source_chains() {
        let write = std::io::Error::new(std::io::ErrorKind::TimedOut, Timeout::Write(SHORT));
        assert!(is_timeout(&write));
        assert!(is_timeout(&UpstreamError::TimedOut(Timeout::ResponseHead(
            SHORT
        ))));

        let connect = std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
        assert!(!is_timeout(&connect));
        assert!(!is_timeout(&ConnectTimedOut(SHORT)));
    }

    #[tokio::test]
    async fn head_timer_starts_after_body() {
        let unfinished = http_body_util::StreamBody::new(futures_util::stream::pending::<
            Result<Frame<Bytes>, BoxError>,
        >())
        .boxed_unsync();
        let (body, sent) = TrackedBody::new(unfinished);
        let sent = sent.unwrap();
        let waiting = tokio::time::timeout(10 * SHORT, expire(sent.clone(), SHORT)).await;
        assert!(waiting.is_err(), "the timer ran while the body was unsent");

        drop(body);
        let expired = tokio::time::timeout(Duration::from_secs(10), expire(sent, SHORT)).await;
        assert_eq!(expired, Ok(Timeout::ResponseHead(SHORT)));
    }

    #[tokio::test]
    async fn empty_body_needs_no_send_signal() {
        let (_body, sent) = TrackedBody::new(crate::upstream::empty_body());
        assert!(sent.is_none());
    }

    #[tokio::test]
    async fn last_frame_marks_body_sent() {
        let (mut body, sent) = TrackedBody::new(crate::upstream::full_body("data"));
        let sent = sent.unwrap();
        assert!(!*sent.borrow());
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "data");
        assert!(*sent.borrow());
    }
}
