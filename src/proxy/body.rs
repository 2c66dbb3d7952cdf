//! Body adapters the pipeline needs between the stages: capture of the
//! first verification error of a request body, and skipping of a prefix.

use crate::metrics::{Metrics, UpstreamErrorKind};
use crate::s3::{ErrorCode, S3Error};
use crate::upstream::BoxError;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

/// Response body sent to the client.
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A client's request body, with the idle timeout that ends a stalled
/// upload.
pub type RequestBody = IdleTimeout<hyper::body::Incoming>;

pin_project! {
    /// Fails a body that sends no data for `timeout`, like S3's
    /// `RequestTimeout`, so that a stalled client does not hold an upstream
    /// request open without end.
    pub struct IdleTimeout<B> {
        #[pin]
        inner: B,
        timeout: std::time::Duration,
        // Armed only while the body waits for data, so that a body whose
        // data is already buffered never touches the timer.
        #[pin]
        deadline: tokio::time::Sleep,
        armed: bool,
    }
}

impl<B> IdleTimeout<B> {
    pub fn new(inner: B, timeout: std::time::Duration) -> Self {
        Self {
            inner,
            timeout,
            deadline: tokio::time::sleep(timeout),
            armed: false,
        }
    }
}

/// Returns S3's `RequestTimeout` error for a body that sent nothing for
/// `timeout`. SDKs retry it, as they retry S3's own.
fn body_timed_out(timeout: std::time::Duration) -> BoxError {
    Box::new(S3Error::new(
        ErrorCode::RequestTimeout,
        format!(
            "Your socket connection to the server was not read from or written to within \
             the timeout period: the client sent no body data for {} s.",
            timeout.as_secs()
        ),
    ))
}

impl<B> Body for IdleTimeout<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                *this.armed = false;
                Poll::Ready(frame.map(|result| result.map_err(Into::into)))
            }
            Poll::Pending => {
                if !*this.armed {
                    let next = tokio::time::Instant::now() + *this.timeout;
                    this.deadline.as_mut().reset(next);
                    *this.armed = true;
                }
                match std::future::Future::poll(this.deadline, cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(body_timed_out(*this.timeout)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The first error that a request body reported, kept so that the proxy can
/// return it to the client after the upstream request was aborted.
#[derive(Clone, Default, Debug)]
pub struct ErrorSlot(Arc<Mutex<Option<(ErrorCode, String)>>>);

impl ErrorSlot {
    /// Returns the recorded error, if any.
    pub fn take(&self) -> Option<S3Error> {
        let mut slot = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slot.take()
            .map(|(code, message)| S3Error::new(code, message))
    }

    fn record(&self, error: &S3Error) {
        let mut slot = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if slot.is_none() {
            *slot = Some((error.code(), error.message().to_string()));
        }
    }
}

pin_project! {
    /// Passes a body through and records its first error: a verified
    /// request body's own S3 error, or a decryption failure of a copy
    /// source as `InternalError`. Other errors are not recorded, so the
    /// caller reports them as failures of the upstream.
    pub struct CaptureErrors<B> {
        #[pin]
        inner: B,
        slot: ErrorSlot,
    }
}

impl<B> CaptureErrors<B> {
    pub fn new(inner: B, slot: ErrorSlot) -> Self {
        Self { inner, slot }
    }
}

impl<B> Body for CaptureErrors<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        match ready!(this.inner.poll_frame(cx)) {
            Some(Err(error)) => {
                let error: BoxError = error.into();
                if let Some(s3_error) = error.downcast_ref::<S3Error>() {
                    this.slot.record(s3_error);
                } else if error.downcast_ref::<crate::crypto::CryptoError>().is_some() {
                    this.slot.record(&S3Error::new(
                        ErrorCode::InternalError,
                        "the copy source failed authentication: it was altered, truncated or \
                         replaced upstream",
                    ));
                }
                Poll::Ready(Some(Err(error)))
            }
            other => Poll::Ready(other.map(|r| r.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// Drops the first `skip` bytes of a body.
    pub struct SkipPrefix<B> {
        #[pin]
        inner: B,
        skip: u64,
    }
}

impl<B> SkipPrefix<B> {
    pub fn new(inner: B, skip: u64) -> Self {
        Self { inner, skip }
    }
}

impl<B> Body for SkipPrefix<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        loop {
            let frame = match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                other => return Poll::Ready(other),
            };
            let Ok(mut data) = frame.into_data() else {
                continue;
            };
            if *this.skip == 0 {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            let len = data.len() as u64;
            if len <= *this.skip {
                *this.skip -= len;
                continue;
            }
            let rest = data.split_off(*this.skip as usize);
            *this.skip = 0;
            return Poll::Ready(Some(Ok(Frame::data(rest))));
        }
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_sub(self.skip));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_sub(self.skip));
        }
        hint
    }
}

pin_project! {
    /// A body that yields `prefix` before the bytes of `inner`.
    pub struct Prepend<B> {
        prefix: Option<Bytes>,
        #[pin]
        inner: B,
    }
}

impl<B> Prepend<B> {
    pub fn new(prefix: Bytes, inner: B) -> Self {
        Self {
            prefix: (!prefix.is_empty()).then_some(prefix),
            inner,
        }
    }
}

impl<B> Body for Prepend<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        if let Some(prefix) = this.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        this.inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let extra = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + extra);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + extra);
        }
        hint
    }
}

/// Reads the first `len` bytes of a body (fewer if it ends first) and
/// returns them with the rest of the body.
pub async fn read_prefix<B>(mut body: B, len: usize) -> Result<(Bytes, B), BoxError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    use http_body_util::BodyExt;
    let mut collected = bytes::BytesMut::new();
    while collected.len() < len {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    collected.extend_from_slice(&data);
                }
            }
            Some(Err(error)) => return Err(error.into()),
            None => break,
        }
    }
    Ok((collected.freeze(), body))
}

pin_project! {
    /// Logs how a response body ends when it does not end normally, with
    /// the request id, because the request's log line is written when the
    /// response head is ready.
    ///
    /// An error that ends the body early is logged at `warn` or `error`,
    /// because the client only sees the connection close. An error of the
    /// upstream, not of the stored ciphertext, also counts as a failed
    /// upstream request. A body that the client stops reading (it closed
    /// the connection) is logged at `info` with the bytes sent.
    pub struct LogBodyOutcome<B: Body> {
        #[pin]
        inner: B,
        request_id: String,
        metrics: Arc<Metrics>,
        sent: u64,
        // The body's exact length, when it announces one: hyper stops
        // polling a body once that many bytes are written.
        expected: Option<u64>,
        // Set once the body returned its end or an error.
        ended: bool,
    }

    impl<B: Body> PinnedDrop for LogBodyOutcome<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.ended || this.inner.is_end_stream() || *this.expected == Some(*this.sent) {
                return;
            }
            let expected = this.expected.map_or_else(|| "unknown".to_string(), |len| len.to_string());
            tracing::info!(
                req.id = %this.request_id,
                bytes_sent = *this.sent,
                bytes_expected = %expected,
                "response body abandoned: the client closed the connection before the whole body was sent"
            );
        }
    }
}

impl<B: Body> LogBodyOutcome<B> {
    pub fn new(inner: B, request_id: String, metrics: Arc<Metrics>) -> Self {
        let expected = inner.size_hint().exact();
        Self {
            inner,
            request_id,
            metrics,
            sent: 0,
            expected,
            ended: false,
        }
    }
}

impl<B> Body for LogBodyOutcome<B>
where
    B: Body<Data = Bytes, Error = BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    *this.sent += data.len() as u64;
                }
            }
            Some(Err(error)) => {
                *this.ended = true;
                if error.is::<crate::crypto::CryptoError>() {
                    tracing::error!(req.id = %this.request_id, %error, "the stored object failed authentication after the status line; the connection is aborted");
                } else {
                    this.metrics
                        .upstream_error(UpstreamErrorKind::RequestFailed);
                    tracing::warn!(req.id = %this.request_id, %error, "response body failed after the status line; the connection is aborted");
                }
            }
            None => *this.ended = true,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    /// Reads a body that fails with `error` through [`LogBodyOutcome`] and
    /// returns the rendered `request_failed` counter.
    async fn request_failed_after(error: BoxError) -> String {
        let metrics = Arc::new(Metrics::default());
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![Err(error)];
        let body = LogBodyOutcome::new(
            StreamBody::new(futures_util::stream::iter(frames)),
            "ID".into(),
            metrics.clone(),
        );
        assert!(body.collect().await.is_err());
        let mut out = String::new();
        metrics.render(&mut out);
        out.lines()
            .find(|line| line.starts_with("s3seal_upstream_errors_total{kind=\"request_failed\"}"))
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn body_failure_of_upstream_counted() {
        let io = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed");
        let line = request_failed_after(Box::new(io)).await;
        assert!(line.ends_with(" 1"), "{line}");
    }

    #[tokio::test]
    async fn body_authentication_failure_not_counted() {
        let crypto = crate::crypto::CryptoError::SegmentAuthentication { segment: 3 };
        let line = request_failed_after(Box::new(crypto)).await;
        assert!(line.ends_with(" 0"), "{line}");
    }

    #[tokio::test]
    async fn skip_prefix_across_frames() {
        let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = vec![
            Ok(Frame::data(Bytes::from_static(b"abc"))),
            Ok(Frame::data(Bytes::from_static(b"defgh"))),
        ];
        let body = SkipPrefix::new(StreamBody::new(futures_util::stream::iter(frames)), 4);
        let out = body.collect().await.unwrap().to_bytes();
        assert_eq!(&out[..], b"efgh");
    }

    #[tokio::test]
    async fn capture_records_first_error() {
        let frames: Vec<Result<Frame<Bytes>, S3Error>> = vec![
            Ok(Frame::data(Bytes::from_static(b"abc"))),
            Err(S3Error::new(ErrorCode::BadDigest, "mismatch")),
        ];
        let slot = ErrorSlot::default();
        let body = CaptureErrors::new(
            StreamBody::new(futures_util::stream::iter(frames)),
            slot.clone(),
        );
        assert!(body.collect().await.is_err());
        let error = slot.take().unwrap();
        assert_eq!(error.code(), ErrorCode::BadDigest);
        assert!(slot.take().is_none());
    }
}
