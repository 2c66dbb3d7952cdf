//! PutObject, GetObject and HeadObject on encrypting buckets.

use super::forward::bad_gateway;
use super::sealed;
use crate::auth::Authenticated;
use crate::crypto::{self, DecryptBody, EncryptBody};
use crate::proxy::body::{CaptureErrors, ErrorSlot, ProxyBody, SkipPrefix};
use crate::proxy::response;
use crate::proxy::Context;
use crate::s3::range::{self, ByteRange, Resolved};
use crate::s3::{ErrorCode, S3Error};
use crate::upstream::{BoxError, UpstreamRequest};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// Largest object a single PutObject may store, as in S3: 5 GiB.
const MAX_PUT_OBJECT_BYTES: u64 = 5 * 1024 * 1024 * 1024;

pub(crate) async fn put_object(
    ctx: &Context<'_>,
    key_name: &str,
    auth: Authenticated,
    body: Incoming,
) -> Result<Response<ProxyBody>, S3Error> {
    let mut headers = ctx.parts.headers.clone();
    sealed::reject_seal_metadata(&headers)?;
    let plaintext_len = auth.plaintext_len(ctx.parts)?.ok_or_else(|| {
        S3Error::new(
            ErrorCode::MissingContentLength,
            "You must provide the Content-Length HTTP header.",
        )
    })?;
    if plaintext_len > MAX_PUT_OBJECT_BYTES {
        return Err(S3Error::new(
            ErrorCode::EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed size of 5 GiB",
        ));
    }

    let (data_key, envelope) = sealed::new_data_key(ctx, key_name, ctx.bucket(), ctx.key())?;
    let payload_mode = auth.payload_mode();
    let verified = auth.verify_body(ctx.parts, body)?;
    let slot = ErrorSlot::default();
    let plaintext = CaptureErrors::new(verified, slot.clone());
    let ciphertext =
        EncryptBody::new(plaintext, plaintext_len, &data_key, 0).map_err(crypto_error)?;

    sealed::strip_transfer_encoding_headers(&mut headers, payload_mode);
    sealed::strip_plaintext_digests(&mut headers);
    sealed::map_conditional_etags(&mut headers);
    sealed::envelope_to_headers(&envelope, &mut headers)?;
    let request = UpstreamRequest {
        method: Method::PUT,
        bucket: ctx.s3.bucket.clone(),
        key: ctx.s3.key.clone(),
        query: ctx.s3.upstream_query(),
        headers,
        content_length: Some(crypto::ciphertext_len(plaintext_len)),
    };
    let result = ctx
        .proxy
        .upstream
        .send(request, ciphertext.boxed_unsync())
        .await;
    // A body that failed verification aborts the upload, and its error is the
    // one the client needs to see, whatever the upstream made of the abort.
    if let Some(error) = slot.take() {
        return Err(error);
    }
    let upstream_response = result.map_err(bad_gateway)?;
    let mut response = response::relay_sealed(upstream_response);
    sealed::map_response_etag(response.headers_mut());
    Ok(response)
}

/// What the client asked for.
#[derive(Clone, Copy)]
enum Plan {
    Whole,
    Range(ByteRange),
}

impl Plan {
    /// Returns the upstream `Range` value that covers the requested
    /// plaintext: whole segments, so that every tag can be checked.
    fn upstream_range(self) -> Option<String> {
        match self {
            Plan::Whole => None,
            Plan::Range(ByteRange::Bounded { first, last }) => Some(format!(
                "bytes={}-{}",
                segment_start(first),
                segment_start(last) + crypto::SEALED_SEGMENT_LEN - 1
            )),
            Plan::Range(ByteRange::From { first }) => {
                Some(format!("bytes={}-", segment_start(first)))
            }
            Plan::Range(ByteRange::Suffix { len }) => {
                Some(format!("bytes=-{}", crypto::suffix_cover_len(len.max(1))))
            }
        }
    }
}

/// Sends a GET or HEAD for the requested object with the client's read
/// headers and an optional upstream range.
async fn send_read(
    ctx: &Context<'_>,
    method: Method,
    upstream_range: Option<String>,
) -> Result<Response<Incoming>, S3Error> {
    let mut headers = upstream_read_headers(ctx.parts.headers.clone());
    headers.remove(http::header::RANGE);
    if let Some(value) = upstream_range {
        headers.insert(http::header::RANGE, header_value(&value)?);
    }
    let request = UpstreamRequest {
        method,
        bucket: ctx.s3.bucket.clone(),
        key: ctx.s3.key.clone(),
        query: ctx.s3.upstream_query(),
        headers,
        content_length: None,
    };
    ctx.proxy
        .upstream
        .send(request, crate::upstream::empty_body())
        .await
        .map_err(bad_gateway)
}

/// Resolves a suffix range with a HEAD for the stored size, then reads the
/// covering segments with a bounded range.
async fn suffix_fallback(ctx: &Context<'_>, len: u64) -> Result<Response<Incoming>, S3Error> {
    let head = send_read(ctx, Method::HEAD, None).await?;
    if !head.status().is_success() {
        return Ok(head);
    }
    let stored = sealed::header_u64(head.headers(), "content-length")
        .ok_or_else(|| upstream_protocol_error("a HeadObject response without Content-Length"))?;
    let plaintext_total = crypto::plaintext_len(stored).ok_or_else(|| {
        S3Error::new(
            ErrorCode::InternalError,
            "the stored object's length is not a valid ciphertext length",
        )
    })?;
    match (ByteRange::Suffix { len }).resolve(plaintext_total) {
        Resolved::Satisfiable { first, last } => {
            send_read(
                ctx,
                Method::GET,
                Plan::Range(ByteRange::Bounded { first, last }).upstream_range(),
            )
            .await
        }
        Resolved::Unsatisfiable => Err(S3Error::new(
            ErrorCode::InvalidRange,
            "The requested range is not satisfiable",
        )),
    }
}

/// Applies the client's conditional headers to the upstream response and
/// returns the `304` response when the object is not to be sent.
fn check_conditions(
    ctx: &Context<'_>,
    upstream_headers: &HeaderMap,
) -> Result<Option<Response<ProxyBody>>, S3Error> {
    let upstream_etag = upstream_headers
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let client_etag = crate::s3::etag::to_client(upstream_etag);
    let last_modified = upstream_headers
        .get(http::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    match crate::s3::conditional::evaluate(&ctx.parts.headers, &client_etag, last_modified) {
        None => Ok(None),
        Some(StatusCode::NOT_MODIFIED) => {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::ETAG, header_value(&client_etag)?);
            if let Some(value) = upstream_headers.get(http::header::LAST_MODIFIED) {
                headers.insert(http::header::LAST_MODIFIED, value.clone());
            }
            Ok(Some(response::with_parts(
                StatusCode::NOT_MODIFIED,
                headers,
                response::empty(),
            )))
        }
        Some(_) => Err(S3Error::new(
            ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        )),
    }
}

pub(crate) async fn get_object(
    ctx: &Context<'_>,
    _auth: Authenticated,
) -> Result<Response<ProxyBody>, S3Error> {
    if ctx.s3.has_query("partNumber") {
        return Err(S3Error::new(
            ErrorCode::NotImplemented,
            "GetObject with partNumber is not supported on an encrypting bucket yet",
        ));
    }
    let plan = match ctx
        .parts
        .headers
        .get(http::header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(range::parse)
    {
        Some(byte_range) => Plan::Range(byte_range),
        None => Plan::Whole,
    };
    let mut upstream_response = send_read(ctx, Method::GET, plan.upstream_range()).await?;
    if let Plan::Range(ByteRange::Suffix { len }) = plan {
        let status = upstream_response.status();
        if status.is_server_error() || status == StatusCode::RANGE_NOT_SATISFIABLE {
            // Some stores (s3s-fs 0.14) fail a suffix longer than the object
            // instead of returning the whole object; ask for the size first.
            upstream_response = suffix_fallback(ctx, len).await?;
        }
    }
    let status = upstream_response.status();
    if status == StatusCode::RANGE_NOT_SATISFIABLE {
        return Err(S3Error::new(
            ErrorCode::InvalidRange,
            "The requested range is not satisfiable",
        ));
    }
    if !(status == StatusCode::OK || status == StatusCode::PARTIAL_CONTENT) {
        let mut response = response::relay_sealed(upstream_response);
        sealed::map_response_etag(response.headers_mut());
        return Ok(response);
    }
    if let Some(early) = check_conditions(ctx, upstream_response.headers())? {
        return Ok(early);
    }

    let (parts, body) = upstream_response.into_parts();
    let envelope = match sealed::envelope_from_headers(&parts.headers) {
        Some(envelope) => envelope?,
        None => return Err(sealed::not_encrypted(ctx.bucket(), ctx.key())),
    };
    let data_key = sealed::open_data_key(ctx, &envelope, ctx.bucket(), ctx.key())?;

    // Where the upstream body starts, and the stored object's total length.
    let (body_offset, ciphertext_total) = if status == StatusCode::PARTIAL_CONTENT {
        let content_range = parts
            .headers
            .get(http::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(range::parse_content_range);
        match content_range {
            Some((Some((first, _)), total)) => (first, total),
            _ => {
                return Err(upstream_protocol_error(
                    "a 206 response without a valid Content-Range",
                ))
            }
        }
    } else {
        match sealed::header_u64(&parts.headers, "content-length") {
            Some(total) => (0, total),
            None => {
                return Err(upstream_protocol_error(
                    "a GetObject response without Content-Length",
                ))
            }
        }
    };
    let plaintext_total = crypto::plaintext_len(ciphertext_total).ok_or_else(|| {
        S3Error::new(
            ErrorCode::InternalError,
            "the stored object's length is not a valid ciphertext length",
        )
    })?;

    let (first, last, partial) = match plan {
        Plan::Whole if plaintext_total == 0 => (0, 0, false),
        Plan::Whole => (0, plaintext_total - 1, false),
        Plan::Range(byte_range) => match byte_range.resolve(plaintext_total) {
            Resolved::Satisfiable { first, last } => (first, last, true),
            Resolved::Unsatisfiable => {
                return Err(S3Error::new(
                    ErrorCode::InvalidRange,
                    "The requested range is not satisfiable",
                ))
            }
        },
    };
    let len = if plaintext_total == 0 {
        0
    } else {
        last - first + 1
    };
    let plaintext = if partial {
        let window = crypto::segment_window(plaintext_total, first, last).map_err(crypto_error)?;
        let skip = window
            .ciphertext_start
            .checked_sub(body_offset)
            .ok_or_else(|| {
                upstream_protocol_error("a range that starts after the requested bytes")
            })?;
        DecryptBody::new(
            SkipPrefix::new(body, skip),
            &data_key,
            0,
            plaintext_total,
            &window,
        )
        .map_err(crypto_error)?
    } else {
        if body_offset != 0 {
            return Err(upstream_protocol_error(
                "a partial body for a whole-object request",
            ));
        }
        DecryptBody::full(SkipPrefix::new(body, 0), &data_key, 0, plaintext_total)
            .map_err(crypto_error)?
    };
    let body = prefetch_first_frame(plaintext).await?;

    let mut out_headers = parts.headers;
    response::strip_hop_by_hop(&mut out_headers);
    response::strip_sealed_headers(&mut out_headers);
    sealed::map_response_etag(&mut out_headers);
    out_headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    out_headers.remove(http::header::CONTENT_RANGE);
    let status = if partial {
        out_headers.insert(
            http::header::CONTENT_RANGE,
            header_value(&format!("bytes {first}-{last}/{plaintext_total}"))?,
        );
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    Ok(response::with_parts(status, out_headers, body))
}

/// Decrypts the first frame before the status line goes out, so that a
/// tampered first segment (and so any tampered object of one segment) is
/// reported as an error response instead of an aborted body.
async fn prefetch_first_frame<B>(mut body: B) -> Result<ProxyBody, S3Error>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let remaining = body.size_hint();
    if body.is_end_stream() {
        return Ok(body.map_err(Into::into).boxed_unsync());
    }
    let first = match body.frame().await {
        None => return Ok(response::empty()),
        Some(Err(error)) => {
            let error: BoxError = error.into();
            return Err(S3Error::new(
                ErrorCode::InternalError,
                "the stored object failed authentication: it was altered, truncated or replaced upstream",
            )
            .with_source(error));
        }
        Some(Ok(frame)) => frame,
    };
    let first_len = first.data_ref().map_or(0, |d| d.len() as u64);
    let head = http_body_util::StreamBody::new(futures_util::stream::once(async move {
        Ok::<_, BoxError>(first)
    }));
    let rest = body.map_err(Into::into);
    let chained = Prefixed {
        head: Some(head),
        rest,
        remaining: remaining.exact().map(|n| n.saturating_sub(first_len)),
        first_len,
    };
    Ok(chained.boxed_unsync())
}

pin_project_lite::pin_project! {
    /// A first frame followed by the rest of a body, with an exact size hint.
    struct Prefixed<H, R> {
        #[pin]
        head: Option<H>,
        #[pin]
        rest: R,
        remaining: Option<u64>,
        first_len: u64,
    }
}

impl<H, R> http_body::Body for Prefixed<H, R>
where
    H: http_body::Body<Data = bytes::Bytes, Error = BoxError>,
    R: http_body::Body<Data = bytes::Bytes, Error = BoxError>,
{
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, BoxError>>> {
        let mut this = self.project();
        if let Some(head) = this.head.as_mut().as_pin_mut() {
            match std::task::ready!(head.poll_frame(cx)) {
                Some(frame) => return std::task::Poll::Ready(Some(frame)),
                None => this.head.set(None),
            }
        }
        this.rest.poll_frame(cx)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let pending_head = if self.head.is_some() {
            self.first_len
        } else {
            0
        };
        match self.remaining {
            Some(n) => http_body::SizeHint::with_exact(n + pending_head),
            None => http_body::SizeHint::default(),
        }
    }
}

pub(crate) async fn head_object(
    ctx: &Context<'_>,
    _auth: Authenticated,
) -> Result<Response<ProxyBody>, S3Error> {
    if ctx.s3.has_query("partNumber") {
        return Err(S3Error::new(
            ErrorCode::NotImplemented,
            "HeadObject with partNumber is not supported on an encrypting bucket yet",
        ));
    }
    let upstream_response = send_read(ctx, Method::HEAD, None).await?;
    if upstream_response.status() != StatusCode::OK {
        let mut response = response::relay_sealed(upstream_response);
        sealed::map_response_etag(response.headers_mut());
        return Ok(response);
    }
    if let Some(early) = check_conditions(ctx, upstream_response.headers())? {
        return Ok(early);
    }
    let (parts, _body) = upstream_response.into_parts();
    match sealed::envelope_from_headers(&parts.headers) {
        Some(envelope) => drop(envelope?),
        None => return Err(sealed::not_encrypted(ctx.bucket(), ctx.key())),
    }
    let ciphertext_total = sealed::header_u64(&parts.headers, "content-length")
        .ok_or_else(|| upstream_protocol_error("a HeadObject response without Content-Length"))?;
    let plaintext_total = crypto::plaintext_len(ciphertext_total).ok_or_else(|| {
        S3Error::new(
            ErrorCode::InternalError,
            "the stored object's length is not a valid ciphertext length",
        )
    })?;

    let mut out_headers = parts.headers;
    response::strip_hop_by_hop(&mut out_headers);
    response::strip_sealed_headers(&mut out_headers);
    sealed::map_response_etag(&mut out_headers);
    let requested = ctx
        .parts
        .headers
        .get(http::header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(range::parse);
    let status = match requested.map(|r| r.resolve(plaintext_total)) {
        None => {
            out_headers.insert(
                http::header::CONTENT_LENGTH,
                HeaderValue::from(plaintext_total),
            );
            StatusCode::OK
        }
        Some(Resolved::Satisfiable { first, last }) => {
            out_headers.insert(
                http::header::CONTENT_LENGTH,
                HeaderValue::from(last - first + 1),
            );
            out_headers.insert(
                http::header::CONTENT_RANGE,
                header_value(&format!("bytes {first}-{last}/{plaintext_total}"))?,
            );
            StatusCode::PARTIAL_CONTENT
        }
        Some(Resolved::Unsatisfiable) => {
            return Err(S3Error::new(
                ErrorCode::InvalidRange,
                "The requested range is not satisfiable",
            ))
        }
    };
    Ok(response::with_parts(status, out_headers, response::empty()))
}

/// Request headers for an upstream read: conditional ETags mapped, body
/// headers dropped.
fn upstream_read_headers(mut headers: HeaderMap) -> HeaderMap {
    sealed::map_conditional_etags(&mut headers);
    sealed::strip_plaintext_digests(&mut headers);
    headers.remove(http::header::CONTENT_ENCODING);
    headers
}

/// Returns the ciphertext offset of the segment that holds plaintext
/// offset `offset`.
fn segment_start(offset: u64) -> u64 {
    offset / crypto::SEGMENT_LEN * crypto::SEALED_SEGMENT_LEN
}

pub(crate) fn crypto_error(error: crypto::CryptoError) -> S3Error {
    S3Error::new(ErrorCode::InternalError, "encryption failed").with_source(error)
}

fn header_value(value: &str) -> Result<HeaderValue, S3Error> {
    HeaderValue::from_str(value)
        .map_err(|e| S3Error::new(ErrorCode::InternalError, "invalid header value").with_source(e))
}

fn upstream_protocol_error(what: &str) -> S3Error {
    S3Error::new(ErrorCode::BadGateway, format!("the upstream sent {what}"))
}
