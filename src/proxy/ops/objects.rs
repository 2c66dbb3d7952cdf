//! PutObject, GetObject and HeadObject on encrypting buckets.

use super::conditions;
use super::forward::upstream_failure;
use super::read::{self, ReadOutcome, ReadRequest};
use super::sealed;
use crate::auth::Authenticated;
use crate::crypto::{self, EncryptBody};
use crate::proxy::body::RequestBody;
use crate::proxy::body::{CaptureErrors, ErrorSlot, ProxyBody};
use crate::proxy::response;
use crate::proxy::Context;
use crate::s3::range::{self, ByteRange, Resolved};
use crate::s3::{ErrorCode, S3Error};
use crate::upstream::{ResponseBody, UpstreamRequest};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;

pub(crate) async fn put_object(
    ctx: &Context<'_>,
    key_name: &str,
    auth: Authenticated,
    body: RequestBody,
) -> Result<Response<ProxyBody>, S3Error> {
    let mut headers = ctx.parts.headers.clone();
    sealed::reject_seal_metadata(&headers)?;
    let plaintext_len = super::upload_len(&auth, ctx.parts)?;

    let (data_key, envelope) = sealed::new_data_key(ctx, key_name, ctx.bucket(), ctx.key()).await?;
    let payload_mode = auth.payload_mode();
    let verified = auth.verify_body(ctx.parts, body)?;
    let checksum = verified.checksum();
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
    let upstream_response = result.map_err(upstream_failure)?;
    if upstream_response.status().is_success() {
        super::forward::upload_etag(&upstream_response)?;
    }
    let mut response = response::relay_sealed(upstream_response);
    sealed::map_response_etag(response.headers_mut());
    sealed::add_verified_checksum(&mut response, &checksum, true);
    Ok(response)
}

pub(crate) async fn get_object(
    ctx: &Context<'_>,
    _auth: Authenticated,
) -> Result<Response<ProxyBody>, S3Error> {
    let outcome = read::open(ctx, client_read_request(ctx)?).await?;
    let opened = match outcome {
        ReadOutcome::Opened(opened) => opened,
        ReadOutcome::Upstream(response) => return Ok(relay_read_failure(response)),
        ReadOutcome::NotModified(response) => return Ok(response),
    };
    let body = read::prefetch_first_frame(opened.body).await?;
    let (status, headers) = response_headers(
        opened.headers,
        opened.plaintext_total,
        opened.served,
        parts_count_for(ctx, opened.parts_count),
        opened.len,
    )?;
    Ok(response::with_parts(status, headers, body))
}

pub(crate) async fn head_object(
    ctx: &Context<'_>,
    _auth: Authenticated,
) -> Result<Response<ProxyBody>, S3Error> {
    if ctx.s3.has_query("partNumber") {
        // The part's size needs the part layout, which only a read gives.
        let outcome = read::open(ctx, client_read_request(ctx)?).await?;
        return match outcome {
            ReadOutcome::Opened(opened) => {
                let (status, headers) = response_headers(
                    opened.headers,
                    opened.plaintext_total,
                    opened.served,
                    opened.parts_count,
                    opened.len,
                )?;
                Ok(response::with_parts(status, headers, response::empty()))
            }
            ReadOutcome::Upstream(response) => Ok(relay_read_failure(response)),
            ReadOutcome::NotModified(response) => Ok(response),
        };
    }

    let mut headers = upstream_read_headers(ctx.parts.headers.clone());
    headers.remove(http::header::RANGE);
    let request = UpstreamRequest {
        method: Method::HEAD,
        bucket: ctx.s3.bucket.clone(),
        key: ctx.s3.key.clone(),
        query: ctx.s3.upstream_query(),
        headers,
        content_length: None,
    };
    let upstream_response = ctx
        .proxy
        .upstream
        .send(request, crate::upstream::empty_body())
        .await
        .map_err(upstream_failure)?;
    if upstream_response.status() != StatusCode::OK {
        return Ok(relay_read_failure(upstream_response));
    }
    if let Some(early) =
        conditions::check_preconditions(&ctx.parts.headers, upstream_response.headers(), true)?
    {
        return Ok(early);
    }
    let (parts, _body) = upstream_response.into_parts();
    match sealed::envelope_from_headers(&parts.headers) {
        Some(envelope) => drop(envelope?),
        None => return Err(sealed::not_encrypted(ctx.bucket(), ctx.key())),
    }
    let stored_total = sealed::header_u64(&parts.headers, "content-length")
        .ok_or_else(|| upstream_protocol_error("a HeadObject response without Content-Length"))?;
    let parts_count =
        read::etag_parts(&parts.headers).filter(|_| read::is_multipart_layout(&parts.headers));
    let plaintext_total = match parts_count {
        // Parts that are not multiples of 64 KiB make the length alone
        // ambiguous, so the part headers decide.
        Some(_) => multipart_head_total(ctx, &parts.headers, stored_total).await?,
        None => crypto::plaintext_len(stored_total).ok_or_else(|| {
            S3Error::new(
                ErrorCode::InternalError,
                "the stored object's length is not a valid ciphertext length",
            )
        })?,
    };

    let requested = ctx
        .parts
        .headers
        .get(http::header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(range::parse)
        .filter(|_| conditions::range_applies(&ctx.parts.headers, &parts.headers, true));
    let served = match requested.map(|r| r.resolve(plaintext_total)) {
        None => None,
        // A suffix range of an empty object gets the whole object, as on GET.
        Some(Resolved::Unsatisfiable)
            if plaintext_total == 0
                && matches!(requested, Some(ByteRange::Suffix { len }) if len > 0) =>
        {
            None
        }
        Some(Resolved::Satisfiable { first, last }) => Some((first, last)),
        Some(Resolved::Unsatisfiable) => {
            return Err(S3Error::new(
                ErrorCode::InvalidRange,
                "The requested range is not satisfiable",
            ))
        }
    };
    let len = served.map_or(plaintext_total, |(first, last)| last - first + 1);
    let parts_count = parts_count_for(ctx, parts_count);
    let (status, headers) =
        response_headers(parts.headers, plaintext_total, served, parts_count, len)?;
    Ok(response::with_parts(status, headers, response::empty()))
}

/// Returns the plaintext length of the multipart object whose HEAD
/// response has `headers`, read from its part headers. The reads carry
/// the object's ETag in `If-Match`, so an upstream that honors it (S3, and
/// the embedded store) fails them for an object replaced in between.
async fn multipart_head_total(
    ctx: &Context<'_>,
    headers: &HeaderMap,
    stored_total: u64,
) -> Result<u64, S3Error> {
    let mut read_headers = upstream_read_headers(ctx.parts.headers.clone());
    for name in [
        http::header::RANGE,
        http::header::IF_MATCH,
        http::header::IF_NONE_MATCH,
        http::header::IF_MODIFIED_SINCE,
        http::header::IF_UNMODIFIED_SINCE,
    ] {
        read_headers.remove(name);
    }
    if let Some(etag) = headers.get(http::header::ETAG) {
        read_headers.insert(http::header::IF_MATCH, etag.clone());
    }
    let req = ReadRequest {
        bucket: ctx.bucket(),
        key: ctx.key(),
        query: ctx.s3.upstream_query(),
        headers: read_headers,
        client_headers: None,
        range: None,
        part_number: None,
    };
    match read::multipart_plaintext_total(ctx, &req, headers, stored_total).await {
        Ok(total) => Ok(total),
        // A part header read fails when the object was replaced after the
        // HEAD. The HEAD still returns a response, with the size that the
        // stored length gives, and a GET checks the part headers it reads.
        Err(error) => {
            tracing::warn!(
                req.id = %ctx.access.request_id.as_deref().unwrap_or_default(),
                s3.bucket = %ctx.bucket(),
                key = ctx.key(),
                error = %error,
                "HEAD could not read the part headers of a multipart object, which may have \
                 been replaced meanwhile; its size comes from the stored length"
            );
            let parts = read::etag_parts(headers).unwrap_or(1);
            Ok(
                crypto::multipart::multipart_plaintext_len(stored_total, parts)
                    .unwrap_or(stored_total),
            )
        }
    }
}

/// Builds the read request for the client's own GET or HEAD.
fn client_read_request<'a>(ctx: &'a Context<'_>) -> Result<ReadRequest<'a>, S3Error> {
    let part_number = match ctx.s3.query_value("partNumber") {
        Some(value) => Some(
            value
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .ok_or_else(|| {
                    S3Error::new(
                        ErrorCode::InvalidArgument,
                        "Part number must be an integer between 1 and 10000, inclusive",
                    )
                })?,
        ),
        None => None,
    };
    if part_number.is_some() && ctx.parts.headers.contains_key(http::header::RANGE) {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "Cannot specify both Range header and partNumber query parameter",
        ));
    }
    let query: Vec<(String, String)> = ctx
        .s3
        .query
        .iter()
        .filter(|(name, _)| name != "partNumber")
        .cloned()
        .collect();
    Ok(ReadRequest {
        bucket: ctx.bucket(),
        key: ctx.key(),
        query: crate::proxy::request::encode_query(&query),
        headers: upstream_read_headers(ctx.parts.headers.clone()),
        client_headers: Some(&ctx.parts.headers),
        range: ctx
            .parts
            .headers
            .get(http::header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(range::parse),
        part_number,
    })
}

/// Returns the part count to send as `x-amz-mp-parts-count`, which S3
/// sends only to a request with `partNumber`.
fn parts_count_for(ctx: &Context<'_>, parts_count: Option<u32>) -> Option<u32> {
    parts_count.filter(|_| ctx.s3.has_query("partNumber"))
}

/// Relays an upstream response that carries no object (404, 304, 412, ...).
fn relay_read_failure(response: Response<ResponseBody>) -> Response<ProxyBody> {
    let mut response = response::relay_sealed(response);
    sealed::map_response_etag(response.headers_mut());
    response
}

/// Turns upstream object headers into the client's: s3seal's metadata and
/// ciphertext checksums removed, plaintext length and range, client ETag.
fn response_headers(
    mut headers: HeaderMap,
    plaintext_total: u64,
    served: Option<(u64, u64)>,
    parts_count: Option<u32>,
    len: u64,
) -> Result<(StatusCode, HeaderMap), S3Error> {
    response::strip_hop_by_hop(&mut headers);
    response::strip_sealed_headers(&mut headers);
    sealed::map_response_etag(&mut headers);
    headers.remove(http::header::CONTENT_RANGE);
    headers.remove("x-amz-mp-parts-count");
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Some(count) = parts_count {
        headers.insert("x-amz-mp-parts-count", HeaderValue::from(count));
    }
    match served {
        Some((first, last)) => {
            headers.insert(
                http::header::CONTENT_RANGE,
                header_value(&format!("bytes {first}-{last}/{plaintext_total}"))?,
            );
            Ok((StatusCode::PARTIAL_CONTENT, headers))
        }
        None => Ok((StatusCode::OK, headers)),
    }
}

/// Request headers for an upstream read: conditional ETags mapped,
/// `If-Range` and body headers dropped.
pub(crate) fn upstream_read_headers(mut headers: HeaderMap) -> HeaderMap {
    sealed::map_conditional_etags(&mut headers);
    crate::s3::conditional::drop_ignored_dates(&mut headers);
    conditions::strip_if_range(&mut headers);
    sealed::strip_plaintext_digests(&mut headers);
    headers.remove(http::header::CONTENT_ENCODING);
    headers
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
