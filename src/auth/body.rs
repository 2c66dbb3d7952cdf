//! The verified request body: decodes `aws-chunked`, checks chunk
//! signatures, digests and the declared length, and reports every failure
//! before its end of stream.

use std::error::Error as StdError;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::sync::{Arc, Mutex};

use super::checksum::{ChecksumAlgorithm, DigestCheck, DigestKind};
use super::chunked::{ChunkedDecoder, Trailer};
use crate::s3::{ErrorCode, S3Error};

pin_project! {
    /// A request body whose bytes are the decoded plaintext, verified
    /// against everything the request declared about it.
    ///
    /// Data frames are passed on as they arrive, except the one that
    /// completes the declared length. That frame waits until the checks
    /// that can only finish at the end (length, digests, trailers, the last
    /// chunk signature) have passed. A failed check is reported in its
    /// place. So a consumer never receives the whole declared length of a
    /// failed body, and an upstream that receives a forwarded body with
    /// its Content-Length never completes a failed upload. After an error
    /// the body ends.
    pub struct VerifiedBody<B> {
        #[pin]
        inner: B,
        decoder: Option<ChunkedDecoder>,
        // Input from `inner` that the decoder has not consumed yet.
        pending: Bytes,
        checks: Vec<DigestCheck>,
        declared_len: Option<u64>,
        received: u64,
        // The data that completed the declared length, until the checks at
        // the end have passed.
        final_frame: Option<Bytes>,
        finished: bool,
        checksum: VerifiedChecksum,
        // The checksum announced in `x-amz-trailer`, whose value arrives
        // after the data.
        trailing: Option<ChecksumAlgorithm>,
    }
}

/// The `x-amz-checksum-*` value of a request body, set once the body has
/// ended with every check passed. S3 returns it in the response to
/// PutObject and UploadPart.
///
/// A body that declares no checksum gets `None` here, so that most
/// requests pay for no shared slot.
#[derive(Clone, Default)]
pub struct VerifiedChecksum(Option<Arc<Mutex<Option<ChecksumValue>>>>);

/// A checksum algorithm and the digest that the body matched.
type ChecksumValue = (ChecksumAlgorithm, Vec<u8>);

impl VerifiedChecksum {
    /// Returns the checksum's header name and base64 value, or `None` when
    /// the request declared no checksum or its body has not passed yet.
    pub fn header(&self) -> Option<(HeaderName, HeaderValue)> {
        let slot = self
            .0
            .as_ref()?
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (algorithm, value) = slot.as_ref()?;
        let value = HeaderValue::from_str(&STANDARD.encode(value)).ok()?;
        Some((HeaderName::from_static(algorithm.header_name()), value))
    }

    fn set(&self, checks: &[DigestCheck]) {
        let Some(slot) = &self.0 else {
            return;
        };
        let value = checks
            .iter()
            .find_map(DigestCheck::checksum_value)
            .map(|(algorithm, value)| (algorithm, value.to_vec()));
        *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = value;
    }
}

impl<B> VerifiedBody<B> {
    pub(crate) fn new(
        inner: B,
        decoder: Option<ChunkedDecoder>,
        checks: Vec<DigestCheck>,
        declared_len: Option<u64>,
    ) -> Self {
        let declares_checksum = checks
            .iter()
            .any(|check| matches!(check.kind(), DigestKind::Checksum(_)));
        let checksum = VerifiedChecksum(declares_checksum.then(Arc::default));
        let trailing = checks.iter().find_map(DigestCheck::awaited_checksum);
        Self {
            inner,
            decoder,
            pending: Bytes::new(),
            checks,
            declared_len,
            received: 0,
            final_frame: None,
            finished: false,
            checksum,
            trailing,
        }
    }

    /// Returns the name of the checksum that the client sends in a
    /// trailer, after the data, and the length of its base64 value.
    pub fn trailing_checksum(&self) -> Option<(HeaderName, usize)> {
        self.trailing.map(|algorithm| {
            (
                HeaderName::from_static(algorithm.header_name()),
                algorithm.value_len(),
            )
        })
    }

    /// Returns a handle to the body's checksum, which is set once the body
    /// has passed its checks.
    pub fn checksum(&self) -> VerifiedChecksum {
        self.checksum.clone()
    }
}

/// Returns the error for a body whose length differs from the declared
/// one, which an `aws-chunked` body declares in
/// `x-amz-decoded-content-length`.
fn length_error(chunked: bool) -> S3Error {
    let header = if chunked {
        "x-amz-decoded-content-length"
    } else {
        "Content-Length"
    };
    S3Error::new(
        ErrorCode::IncompleteBody,
        format!("You did not provide the number of bytes specified by the {header} HTTP header"),
    )
}

/// Counts and digests one piece of decoded data, failing as soon as the
/// body grows past its declared length.
fn account(
    data: &Bytes,
    received: &mut u64,
    declared_len: Option<u64>,
    checks: &mut [DigestCheck],
    chunked: bool,
) -> Result<(), S3Error> {
    let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
    *received = received.saturating_add(len);
    if declared_len.is_some_and(|declared| *received > declared) {
        return Err(length_error(chunked));
    }
    for check in checks.iter_mut() {
        check.update(data);
    }
    Ok(())
}

/// Returns whether the data received so far completes the declared length.
fn completes(declared_len: Option<u64>, received: u64) -> bool {
    declared_len == Some(received)
}

/// Runs the end-of-body checks: the encoding ended properly, the length
/// matches, the trailers supply every announced checksum, and every digest
/// matches.
fn finish(
    decoder: Option<ChunkedDecoder>,
    received: u64,
    declared_len: Option<u64>,
    checks: &mut [DigestCheck],
) -> Result<(), S3Error> {
    let chunked = decoder.is_some();
    let trailers = match decoder {
        Some(decoder) => decoder.finish()?,
        None => Vec::new(),
    };
    if declared_len.is_some_and(|declared| received != declared) {
        return Err(length_error(chunked));
    }
    apply_trailers(&trailers, checks)?;
    for check in checks.iter() {
        check.verify()?;
    }
    Ok(())
}

/// Fills in the expected value of each trailer checksum from the trailers.
fn apply_trailers(trailers: &[Trailer], checks: &mut [DigestCheck]) -> Result<(), S3Error> {
    for trailer in trailers {
        let Some(algorithm) = ChecksumAlgorithm::from_header_name(&trailer.name) else {
            continue;
        };
        let value = algorithm.decode_value(&trailer.value)?;
        for check in checks.iter_mut() {
            if check.kind() == DigestKind::Checksum(algorithm) {
                check.set_expected(value.clone());
            }
        }
    }
    Ok(())
}

impl<B> Body for VerifiedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Data = Bytes;
    type Error = S3Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, S3Error>>> {
        let mut this = self.project();
        loop {
            if *this.finished {
                return Poll::Ready(None);
            }

            if let Some(decoder) = this.decoder.as_mut() {
                if !this.pending.is_empty() {
                    let result = decoder.decode(this.pending).and_then(|decoded| {
                        if let Some(data) = &decoded {
                            account(data, this.received, *this.declared_len, this.checks, true)?;
                        }
                        Ok(decoded)
                    });
                    match result {
                        Ok(Some(data)) if completes(*this.declared_len, *this.received) => {
                            *this.final_frame = Some(data);
                            continue;
                        }
                        Ok(Some(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                        Ok(None) => continue,
                        Err(error) => {
                            *this.finished = true;
                            return Poll::Ready(Some(Err(error)));
                        }
                    }
                }
            }

            match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => {
                    // HTTP trailers of the transport are dropped: S3
                    // checksums travel inside the aws-chunked encoding.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if this.decoder.is_some() {
                        *this.pending = data;
                        continue;
                    }
                    if data.is_empty() {
                        continue;
                    }
                    if let Err(error) =
                        account(&data, this.received, *this.declared_len, this.checks, false)
                    {
                        *this.finished = true;
                        return Poll::Ready(Some(Err(error)));
                    }
                    if completes(*this.declared_len, *this.received) {
                        *this.final_frame = Some(data);
                        continue;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(error)) => {
                    *this.finished = true;
                    // A source that fails with an S3 error (the idle timeout's
                    // RequestTimeout) keeps its code.
                    let error = match error.into().downcast::<S3Error>() {
                        Ok(error) => *error,
                        Err(error) => S3Error::new(
                            ErrorCode::IncompleteBody,
                            "The request body could not be read to its end.",
                        )
                        .with_source(error),
                    };
                    return Poll::Ready(Some(Err(error)));
                }
                None => {
                    *this.finished = true;
                    let result = finish(
                        this.decoder.take(),
                        *this.received,
                        *this.declared_len,
                        this.checks,
                    );
                    if result.is_ok() {
                        this.checksum.set(this.checks);
                    }
                    return match (result, this.final_frame.take()) {
                        (Ok(()), Some(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
                        (Ok(()), None) => Poll::Ready(None),
                        (Err(error), _) => Poll::Ready(Some(Err(error))),
                    };
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // The end-of-body checks run only when `inner` reports its end, so
        // the body never claims to be finished before they have run.
        self.finished
    }

    fn size_hint(&self) -> SizeHint {
        match self.declared_len {
            Some(declared) => SizeHint::with_exact(declared.saturating_sub(self.received)),
            None if self.decoder.is_none() => self.inner.size_hint(),
            None => SizeHint::default(),
        }
    }
}
