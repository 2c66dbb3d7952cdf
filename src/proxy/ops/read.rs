//! Reading an object of an encrypting bucket as plaintext: whole, a byte
//! range, or one part, for single-part and multipart objects alike. Used by
//! GetObject, HeadObject with `partNumber`, and the copy operations.
//!
//! A whole-object read is one upstream request. A range or part read first
//! fetches the stored object's first 32 bytes: that response carries the
//! stored length and the envelope, and for a multipart object the first
//! part header, from which the part layout follows. Then it fetches only
//! the segments that overlap the range.

use super::conditions;
use super::forward::{gateway_error_code, upstream_failure};
use super::sealed;
use crate::crypto::multipart::{
    MultipartDecryptBody, PartHeader, PartLayout, SegmentStart, PART_HEADER_LEN,
};
use crate::crypto::{self, DataKey, DecryptBody, Envelope};
use crate::proxy::body::{read_prefix, Prepend, ProxyBody, SkipPrefix};
use crate::proxy::Context;
use crate::s3::range::{self, ByteRange, Resolved};
use crate::s3::{ErrorCode, S3Error};
use crate::upstream::{self, BoxError, ResponseBody, UpstreamRequest};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;

/// Metadata field that marks an object stored in the multipart layout.
pub(crate) const LAYOUT_FIELD: &str = "x-amz-meta-s3seal-layout";
pub(crate) const LAYOUT_MULTIPART: &str = "multipart";

/// An object read: the object, the upstream request details and the
/// plaintext bytes wanted.
#[derive(Clone)]
pub(crate) struct ReadRequest<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    /// Upstream query (for example `versionId`), already encoded.
    pub query: String,
    /// Conditional and SSE headers for the upstream, ETags already mapped.
    pub headers: HeaderMap,
    /// The client's request headers, for the client's own GetObject or
    /// HeadObject. The read then evaluates their preconditions on the
    /// first upstream response, before the range, and their `If-Range`.
    pub client_headers: Option<&'a HeaderMap>,
    pub range: Option<ByteRange>,
    pub part_number: Option<u32>,
}

/// An object opened for reading.
pub(crate) struct Opened {
    /// The upstream response headers of the first request.
    pub headers: HeaderMap,
    pub plaintext_total: u64,
    /// Inclusive plaintext bounds when a range or part was served.
    pub served: Option<(u64, u64)>,
    /// Part count of a multipart object.
    pub parts_count: Option<u32>,
    pub len: u64,
    pub body: ProxyBody,
}

pub(crate) enum ReadOutcome {
    Opened(Opened),
    /// An upstream response that is not an object (404, 304, 412, ...).
    Upstream(Response<ResponseBody>),
    /// The `304` response that the client's preconditions demand.
    NotModified(Response<ProxyBody>),
}

fn invalid_range() -> S3Error {
    S3Error::new(
        ErrorCode::InvalidRange,
        "The requested range is not satisfiable",
    )
}

fn protocol_error(what: &str) -> S3Error {
    S3Error::new(ErrorCode::BadGateway, format!("the upstream sent {what}"))
}

/// Returns the request for the reads that follow the first response.
/// The first response has checked the client's conditions, so they are
/// replaced by `If-Match` with its ETag. An upstream that honors it then
/// fails a later read of an object replaced in between with `412`, which
/// [`later_read_error`] reports, instead of serving another object's
/// bytes that would fail authentication under this object's key.
fn pinned<'a>(req: &ReadRequest<'a>, first: &HeaderMap) -> ReadRequest<'a> {
    let mut pinned = req.clone();
    pinned.client_headers = None;
    for name in [
        http::header::IF_MATCH,
        http::header::IF_NONE_MATCH,
        http::header::IF_MODIFIED_SINCE,
        http::header::IF_UNMODIFIED_SINCE,
    ] {
        pinned.headers.remove(name);
    }
    if let Some(etag) = first.get(http::header::ETAG) {
        pinned.headers.insert(http::header::IF_MATCH, etag.clone());
    }
    pinned
}

/// Maps an error status of a read after the first. `412` means the
/// object was replaced since the first response, `404` that it was
/// deleted, and `416` that it was replaced by a shorter one (an upstream
/// may check the range before `If-Match`). A retry resolves each.
fn later_read_error(status: StatusCode, failure: &str) -> S3Error {
    if matches!(
        status,
        StatusCode::PRECONDITION_FAILED | StatusCode::NOT_FOUND | StatusCode::RANGE_NOT_SATISFIABLE
    ) {
        return S3Error::new(
            ErrorCode::ServiceUnavailable,
            "the object was replaced or deleted while s3seal read it; retry the request",
        );
    }
    protocol_error(failure)
}

/// Maps a failure to read an upstream response body before the client's
/// response starts: GatewayTimeout for a timeout, BadGateway otherwise.
fn failed_body(error: BoxError) -> S3Error {
    S3Error::new(
        gateway_error_code(error.as_ref()),
        "failed to read the upstream response body",
    )
    .with_source(error)
}

fn invalid_stored_length() -> S3Error {
    S3Error::new(
        ErrorCode::InternalError,
        "the stored object's length is not a valid ciphertext length",
    )
}

async fn get(
    ctx: &Context<'_>,
    req: &ReadRequest<'_>,
    method: Method,
    range: Option<(u64, Option<u64>)>,
) -> Result<Response<ResponseBody>, S3Error> {
    let mut headers = req.headers.clone();
    headers.remove(http::header::RANGE);
    if let Some((first, last)) = range {
        let value = match last {
            Some(last) => format!("bytes={first}-{last}"),
            None => format!("bytes={first}-"),
        };
        headers.insert(
            http::header::RANGE,
            HeaderValue::from_str(&value).map_err(|e| {
                S3Error::new(ErrorCode::InternalError, "invalid range header").with_source(e)
            })?,
        );
    }
    let request = UpstreamRequest {
        method,
        bucket: Some(req.bucket.to_string()),
        key: Some(req.key.to_string()),
        query: req.query.clone(),
        headers,
        content_length: None,
    };
    ctx.proxy
        .upstream
        .send(request, upstream::empty_body())
        .await
        .map_err(upstream_failure)
}

/// Returns the part count from a multipart ETag (`"...-N"`).
pub(crate) fn etag_parts(headers: &HeaderMap) -> Option<u32> {
    let etag = headers
        .get(http::header::ETAG)?
        .to_str()
        .ok()?
        .trim_matches('"');
    let (_, count) = etag.rsplit_once('-')?;
    count.parse().ok().filter(|&n| n > 0)
}

pub(crate) fn is_multipart_layout(headers: &HeaderMap) -> bool {
    headers.get(LAYOUT_FIELD).and_then(|v| v.to_str().ok()) == Some(LAYOUT_MULTIPART)
}

/// Returns the envelope of a stored object, or the not-encrypted error.
fn envelope(req: &ReadRequest<'_>, headers: &HeaderMap) -> Result<Envelope, S3Error> {
    match sealed::envelope_from_headers(headers) {
        Some(envelope) => envelope,
        None => Err(sealed::not_encrypted(req.bucket, req.key)),
    }
}

/// Opens an object of an encrypting bucket.
pub(crate) async fn open(ctx: &Context<'_>, req: ReadRequest<'_>) -> Result<ReadOutcome, S3Error> {
    if req.range.is_none() && req.part_number.is_none() {
        return open_whole(ctx, req).await;
    }
    let probe = get(ctx, &req, Method::GET, Some((0, Some(PART_HEADER_LEN - 1)))).await?;
    let status = probe.status();
    if status == StatusCode::RANGE_NOT_SATISFIABLE {
        return Err(invalid_range());
    }
    if !(status == StatusCode::OK || status == StatusCode::PARTIAL_CONTENT) {
        return Ok(ReadOutcome::Upstream(probe));
    }
    let (parts, body) = probe.into_parts();
    let envelope = envelope(&req, &parts.headers)?;
    if let Some(client) = req.client_headers {
        if let Some(not_modified) = conditions::check_preconditions(client, &parts.headers, true)? {
            return Ok(ReadOutcome::NotModified(not_modified));
        }
        if req.range.is_some() && !conditions::range_applies(client, &parts.headers, true) {
            return open_whole_pinned(ctx, pinned(&req, &parts.headers)).await;
        }
    }
    let req = pinned(&req, &parts.headers);
    let stored_total = stored_total(status, &parts.headers)?;
    let data_key = sealed::open_data_key(ctx, &envelope, req.bucket, req.key).await?;
    let (first_bytes, _) = read_prefix(body, PART_HEADER_LEN as usize)
        .await
        .map_err(failed_body)?;

    if is_multipart_layout(&parts.headers) {
        let header = PartHeader::parse(
            first_bytes
                .get(..PART_HEADER_LEN as usize)
                .unwrap_or(&first_bytes),
        )
        .map_err(stored_error)?;
        let (layout, guessed) = layout(
            ctx,
            &req,
            &parts.headers,
            header.plaintext_len,
            stored_total,
        )
        .await?;
        if layout.plaintext_len() == 0 && reads_whole_when_empty(&req) {
            let whole = ReadRequest {
                range: None,
                part_number: None,
                ..req
            };
            return open_whole(ctx, whole).await;
        }
        return serve_multipart(
            ctx,
            &req,
            parts.headers,
            data_key,
            layout,
            guessed,
            stored_total,
        )
        .await
        .map(ReadOutcome::Opened);
    }

    let plaintext_total = crypto::plaintext_len(stored_total).ok_or_else(invalid_stored_length)?;
    if plaintext_total == 0 && reads_whole_when_empty(&req) {
        let whole = ReadRequest {
            range: None,
            part_number: None,
            ..req
        };
        return open_whole(ctx, whole).await;
    }
    let (first, last) = match (req.part_number, req.range) {
        (Some(1), _) if plaintext_total > 0 => (0, plaintext_total - 1),
        (Some(_), _) => {
            return Err(S3Error::new(
                ErrorCode::InvalidPartNumber,
                "The requested partnumber is not satisfiable",
            ))
        }
        (None, Some(range)) => match range.resolve(plaintext_total) {
            Resolved::Satisfiable { first, last } => (first, last),
            Resolved::Unsatisfiable => return Err(invalid_range()),
        },
        (None, None) => return Err(invalid_range()),
    };
    let window = crypto::segment_window(plaintext_total, first, last).map_err(stored_error)?;
    let response = get(
        ctx,
        &req,
        Method::GET,
        Some((
            window.ciphertext_start,
            Some(window.ciphertext_end_inclusive),
        )),
    )
    .await?;
    if !response.status().is_success() {
        return Err(later_read_error(
            response.status(),
            "an error for a range that the first response allowed",
        ));
    }
    let offset = body_offset(response.status(), response.headers())?;
    let skip = window
        .ciphertext_start
        .checked_sub(offset)
        .ok_or_else(|| protocol_error("a range that starts after the requested bytes"))?;
    let body = DecryptBody::new(
        SkipPrefix::new(response.into_body(), skip),
        &data_key,
        0,
        plaintext_total,
        &window,
    )
    .map_err(stored_error)?;
    Ok(ReadOutcome::Opened(Opened {
        headers: parts.headers,
        plaintext_total,
        served: Some((first, last)),
        parts_count: None,
        len: last - first + 1,
        body: body.boxed_unsync(),
    }))
}

async fn open_whole(ctx: &Context<'_>, req: ReadRequest<'_>) -> Result<ReadOutcome, S3Error> {
    let response = get(ctx, &req, Method::GET, None).await?;
    let status = response.status();
    if !(status == StatusCode::OK || status == StatusCode::PARTIAL_CONTENT) {
        return Ok(ReadOutcome::Upstream(response));
    }
    let (parts, body) = response.into_parts();
    if status == StatusCode::PARTIAL_CONTENT {
        return Err(protocol_error(
            "a partial response to a whole-object request",
        ));
    }
    let stored_total = sealed::header_u64(&parts.headers, "content-length")
        .ok_or_else(|| protocol_error("a response without Content-Length"))?;
    let envelope = envelope(&req, &parts.headers)?;
    if let Some(client) = req.client_headers {
        if let Some(not_modified) = conditions::check_preconditions(client, &parts.headers, true)? {
            return Ok(ReadOutcome::NotModified(not_modified));
        }
    }
    let data_key = sealed::open_data_key(ctx, &envelope, req.bucket, req.key).await?;

    if is_multipart_layout(&parts.headers) {
        // Only a multipart object takes more reads, for its part headers.
        let req = pinned(&req, &parts.headers);
        let (first_bytes, rest) = read_prefix(body, PART_HEADER_LEN as usize)
            .await
            .map_err(failed_body)?;
        let header = PartHeader::parse(
            first_bytes
                .get(..PART_HEADER_LEN as usize)
                .unwrap_or(&first_bytes),
        )
        .map_err(stored_error)?;
        // The length goes out before the body, so it comes from a checked
        // layout, as for HEAD. The decoder also checks every part header.
        let layout = checked_layout(
            ctx,
            &req,
            &parts.headers,
            header.plaintext_len,
            stored_total,
        )
        .await?;
        let plaintext_total = layout.plaintext_len();
        let parts_count = layout.parts.len() as u32;
        let source = Prepend::new(first_bytes, rest);
        let body = MultipartDecryptBody::whole(source, data_key, layout);
        return Ok(ReadOutcome::Opened(Opened {
            headers: parts.headers,
            plaintext_total,
            served: None,
            parts_count: Some(parts_count),
            len: plaintext_total,
            body: body.boxed_unsync(),
        }));
    }

    let plaintext_total = crypto::plaintext_len(stored_total).ok_or_else(invalid_stored_length)?;
    let body = DecryptBody::full(body, &data_key, 0, plaintext_total).map_err(stored_error)?;
    Ok(ReadOutcome::Opened(Opened {
        headers: parts.headers,
        plaintext_total,
        served: None,
        parts_count: None,
        len: plaintext_total,
        body: body.boxed_unsync(),
    }))
}

/// Opens the whole object for a ranged read whose `If-Range` does not
/// match. `req` is pinned to the first response, so an object replaced
/// since then fails with the retryable error of [`later_read_error`].
async fn open_whole_pinned(
    ctx: &Context<'_>,
    req: ReadRequest<'_>,
) -> Result<ReadOutcome, S3Error> {
    let whole = ReadRequest {
        range: None,
        part_number: None,
        ..req
    };
    match open_whole(ctx, whole).await? {
        ReadOutcome::Upstream(response) => Err(later_read_error(
            response.status(),
            "an error for the whole object after a ranged read",
        )),
        outcome => Ok(outcome),
    }
}

/// Finds the part layout: every part but the last as long as the first
/// when the stored length agrees, otherwise by reading every part header.
/// The flag is set when the layout is such a guess.
async fn layout(
    ctx: &Context<'_>,
    req: &ReadRequest<'_>,
    headers: &HeaderMap,
    first_len: u64,
    stored_total: u64,
) -> Result<(PartLayout, bool), S3Error> {
    if let Some(parts) = etag_parts(headers) {
        if let Some(layout) = PartLayout::uniform(parts, first_len, stored_total) {
            return Ok((layout, true));
        }
    }
    Ok((probe_layout(ctx, req, stored_total).await?, false))
}

/// Finds the part layout as [`layout`] does, and checks a guess of three
/// parts or more against the last part header, with one 32-byte request.
/// When the last header differs, reads every part header.
///
/// Every common client uploads parts of one length but the last, which
/// this check confirms. With three parts it proves the guess, because
/// the middle part then stores as many bytes as the first.
// NOTE: with four parts or more, parts of three or more lengths can fit
// the guess at both ends. The decoder of a whole read detects that.
async fn checked_layout(
    ctx: &Context<'_>,
    req: &ReadRequest<'_>,
    headers: &HeaderMap,
    first_len: u64,
    stored_total: u64,
) -> Result<PartLayout, S3Error> {
    let (layout, guessed) = layout(ctx, req, headers, first_len, stored_total).await?;
    if !guessed || !last_header_fits(ctx, req, &layout).await? {
        return probe_layout(ctx, req, stored_total).await;
    }
    Ok(layout)
}

/// Tells whether the last part header matches a guessed layout. Layouts
/// of one or two parts fit by construction, because the stored length
/// fixes the last part's length.
async fn last_header_fits(
    ctx: &Context<'_>,
    req: &ReadRequest<'_>,
    layout: &PartLayout,
) -> Result<bool, S3Error> {
    let Some(last) = layout.parts.last().filter(|_| layout.parts.len() >= 3) else {
        return Ok(true);
    };
    let header = read_part_header(ctx, req, last.stored_offset).await?;
    Ok(header.is_ok_and(|header| header_matches(&header, last)))
}

/// Returns the plaintext length of the multipart object that a HEAD
/// described with `headers`, from its part headers. Reads no key.
pub(crate) async fn multipart_plaintext_total(
    ctx: &Context<'_>,
    req: &ReadRequest<'_>,
    headers: &HeaderMap,
    stored_total: u64,
) -> Result<u64, S3Error> {
    let first = read_part_header(ctx, req, 0).await?.map_err(stored_error)?;
    let layout = checked_layout(ctx, req, headers, first.plaintext_len, stored_total).await?;
    Ok(layout.plaintext_len())
}

/// Reads every part header, one small request per part, and builds the
/// layout from them.
async fn probe_layout(
    ctx: &Context<'_>,
    req: &ReadRequest<'_>,
    stored_total: u64,
) -> Result<PartLayout, S3Error> {
    let mut lens = Vec::new();
    let mut offset = 0u64;
    while offset < stored_total {
        if lens.len() >= 10_000 {
            return Err(stored_error(crypto::CryptoError::TrailingData {
                segment: 0,
            }));
        }
        let header = read_part_header(ctx, req, offset)
            .await?
            .map_err(stored_error)?;
        if header.part_number as usize != lens.len() + 1 {
            return Err(stored_error(crypto::CryptoError::MalformedEnvelopeField {
                field: "part-header",
                reason: "parts are out of order".into(),
            }));
        }
        offset += header.stored_len();
        lens.push(header.plaintext_len);
    }
    let layout = PartLayout::from_lens(&lens);
    if layout.stored_len() != stored_total {
        return Err(stored_error(crypto::CryptoError::TrailingData {
            segment: 0,
        }));
    }
    Ok(layout)
}

/// Reads the 32 bytes at `offset` and parses them as a part header.
async fn read_part_header(
    ctx: &Context<'_>,
    req: &ReadRequest<'_>,
    offset: u64,
) -> Result<Result<PartHeader, crypto::CryptoError>, S3Error> {
    let response = get(
        ctx,
        req,
        Method::GET,
        Some((offset, Some(offset + PART_HEADER_LEN - 1))),
    )
    .await?;
    if !response.status().is_success() {
        return Err(later_read_error(
            response.status(),
            "an error while reading a part header",
        ));
    }
    let body = checked_body(response, offset)?;
    let (bytes, _) = read_prefix(body, PART_HEADER_LEN as usize)
        .await
        .map_err(failed_body)?;
    Ok(PartHeader::parse(
        bytes.get(..PART_HEADER_LEN as usize).unwrap_or(&bytes),
    ))
}

/// Returns whether a ranged or `partNumber` read of an empty object gets
/// the whole, empty object, as S3 returns it for `partNumber=1` and a suffix
/// range there. Other ranges of an empty object are not satisfiable.
fn reads_whole_when_empty(req: &ReadRequest<'_>) -> bool {
    match (req.part_number, req.range) {
        (Some(1), _) => true,
        (None, Some(ByteRange::Suffix { len })) => len > 0,
        _ => false,
    }
}

/// Returns the plaintext window, first and last byte, of a ranged or
/// `partNumber` read.
fn requested_window(req: &ReadRequest<'_>, layout: &PartLayout) -> Result<(u64, u64), S3Error> {
    match (req.part_number, req.range) {
        (Some(number), _) => {
            let span = layout
                .parts
                .get((number as usize).wrapping_sub(1))
                .ok_or_else(|| {
                    S3Error::new(
                        ErrorCode::InvalidPartNumber,
                        "The requested partnumber is not satisfiable",
                    )
                })?;
            if span.plaintext_len == 0 {
                return Err(invalid_range());
            }
            Ok((
                span.plaintext_offset,
                span.plaintext_offset + span.plaintext_len - 1,
            ))
        }
        (None, Some(range)) => match range.resolve(layout.plaintext_len()) {
            Resolved::Satisfiable { first, last } => Ok((first, last)),
            Resolved::Unsatisfiable => Err(invalid_range()),
        },
        (None, None) => Err(invalid_range()),
    }
}

async fn serve_multipart(
    ctx: &Context<'_>,
    req: &ReadRequest<'_>,
    headers: HeaderMap,
    data_key: DataKey,
    mut layout: PartLayout,
    mut guessed: bool,
    stored_total: u64,
) -> Result<Opened, S3Error> {
    loop {
        if let Some(window) = serve_window(ctx, req, &data_key, &layout, guessed).await? {
            return Ok(Opened {
                headers,
                plaintext_total: layout.plaintext_len(),
                served: Some(window.served),
                parts_count: Some(layout.parts.len() as u32),
                len: window.len,
                body: window.body,
            });
        }
        layout = probe_layout(ctx, req, stored_total).await?;
        guessed = false;
    }
}

/// The decrypted window of a ranged or `partNumber` read.
struct Window {
    served: (u64, u64),
    len: u64,
    body: ProxyBody,
}

/// Tells whether a part header is the part that the layout puts there.
fn header_matches(header: &PartHeader, span: &crypto::multipart::PartSpan) -> bool {
    header.part_number == span.part_number && header.plaintext_len == span.plaintext_len
}

/// Opens the requested window with `layout`, and returns `None` when the
/// layout is a guess that proves wrong.
///
/// A guess is checked against the header of the part where the window
/// starts, which the read fetches anyway. When the window ends in another
/// part, that part's header is checked too, with one more 32-byte request.
///
/// Parts of different sizes can store as many bytes as parts that all
/// have the first part's size, so the stored length alone does not prove
/// a guess.
async fn serve_window(
    ctx: &Context<'_>,
    req: &ReadRequest<'_>,
    data_key: &DataKey,
    layout: &PartLayout,
    guessed: bool,
) -> Result<Option<Window>, S3Error> {
    // A range that reaches the end resolves against the guessed length, so
    // the guess is checked at the last part first.
    let reaches_end = match req.range {
        Some(ByteRange::Suffix { .. } | ByteRange::From { .. }) => true,
        Some(ByteRange::Bounded { last, .. }) => last.saturating_add(1) >= layout.plaintext_len(),
        None => false,
    };
    if guessed && reaches_end && !last_header_fits(ctx, req, layout).await? {
        return Ok(None);
    }
    let (first, last) = requested_window(req, layout)?;
    let first_index = layout.part_index_at(first).ok_or_else(invalid_range)?;
    let last_index = layout.part_index_at(last).ok_or_else(invalid_range)?;
    let first_span = layout.parts[first_index];
    let last_span = layout.parts[last_index];
    if guessed && last_index != first_index {
        let header = read_part_header(ctx, req, last_span.stored_offset).await?;
        if !header.is_ok_and(|header| header_matches(&header, &last_span)) {
            return Ok(None);
        }
    }

    let offset_in_first = first - first_span.plaintext_offset;
    let first_segment = offset_in_first / crypto::SEGMENT_LEN;
    let offset_in_last = last - last_span.plaintext_offset;
    let last_segment_end =
        ((offset_in_last / crypto::SEGMENT_LEN) + 1) * crypto::SEALED_SEGMENT_LEN;
    let stored_end = last_span.stored_offset
        + PART_HEADER_LEN
        + last_segment_end.min(crypto::ciphertext_len(last_span.plaintext_len))
        - 1;
    let len = last - first + 1;

    let body: ProxyBody = if first_segment == 0 {
        let response = get(
            ctx,
            req,
            Method::GET,
            Some((first_span.stored_offset, Some(stored_end))),
        )
        .await?;
        let source = checked_body(response, first_span.stored_offset)?;
        // The decoder reads the part header too, so only a guess needs it
        // before the response starts.
        let (head, rest) = if guessed {
            let (head, rest) = read_prefix(source, PART_HEADER_LEN as usize)
                .await
                .map_err(failed_body)?;
            let header = PartHeader::parse(head.get(..PART_HEADER_LEN as usize).unwrap_or(&head));
            if !header.is_ok_and(|header| header_matches(&header, &first_span)) {
                return Ok(None);
            }
            (head, rest)
        } else {
            (bytes::Bytes::new(), source)
        };
        MultipartDecryptBody::from_part_start(
            Prepend::new(head, rest),
            data_key.clone(),
            layout.clone(),
            first_index,
            offset_in_first,
            len,
        )
        .boxed_unsync()
    } else {
        let header = read_part_header(ctx, req, first_span.stored_offset).await?;
        let header = match header {
            Ok(header) if header_matches(&header, &first_span) => header,
            _ if guessed => return Ok(None),
            Ok(header) => header,
            Err(error) => return Err(stored_error(error)),
        };
        let segment_start =
            first_span.stored_offset + PART_HEADER_LEN + first_segment * crypto::SEALED_SEGMENT_LEN;
        let response = get(
            ctx,
            req,
            Method::GET,
            Some((segment_start, Some(stored_end))),
        )
        .await?;
        let source = checked_body(response, segment_start)?;
        let skip = offset_in_first - first_segment * crypto::SEGMENT_LEN;
        let start = SegmentStart {
            part_index: first_index,
            header: &header,
            first_segment,
        };
        MultipartDecryptBody::from_segment(
            source,
            data_key.clone(),
            layout.clone(),
            start,
            skip,
            len,
        )
        .map_err(stored_error)?
        .boxed_unsync()
    };
    Ok(Some(Window {
        served: (first, last),
        len,
        body,
    }))
}

/// Checks that a ranged response starts where requested and returns its body.
fn checked_body(
    response: Response<ResponseBody>,
    expected_offset: u64,
) -> Result<SkipPrefix<ResponseBody>, S3Error> {
    if !response.status().is_success() {
        return Err(later_read_error(
            response.status(),
            "an error for a range inside the object",
        ));
    }
    let offset = body_offset(response.status(), response.headers())?;
    let skip = expected_offset
        .checked_sub(offset)
        .ok_or_else(|| protocol_error("a range that starts after the requested bytes"))?;
    Ok(SkipPrefix::new(response.into_body(), skip))
}

fn body_offset(status: StatusCode, headers: &HeaderMap) -> Result<u64, S3Error> {
    if status != StatusCode::PARTIAL_CONTENT {
        return Ok(0);
    }
    match headers
        .get(http::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(range::parse_content_range)
    {
        Some((Some((first, _)), _)) => Ok(first),
        _ => Err(protocol_error(
            "a 206 response without a valid Content-Range",
        )),
    }
}

fn stored_total(status: StatusCode, headers: &HeaderMap) -> Result<u64, S3Error> {
    if status == StatusCode::PARTIAL_CONTENT {
        match headers
            .get(http::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(range::parse_content_range)
        {
            Some((_, total)) => Ok(total),
            None => Err(protocol_error(
                "a 206 response without a valid Content-Range",
            )),
        }
    } else {
        sealed::header_u64(headers, "content-length")
            .ok_or_else(|| protocol_error("a response without Content-Length"))
    }
}

/// Maps a format error found in stored data.
pub(crate) fn stored_error(error: crypto::CryptoError) -> S3Error {
    S3Error::new(
        ErrorCode::InternalError,
        "the stored object failed authentication: it was altered, truncated or replaced upstream",
    )
    .with_source(error)
}

/// Decrypts the first frame before the status line goes out, so that a
/// tampered first segment (and so any tampered object of one segment) is
/// reported as an error response instead of an aborted body.
pub(crate) async fn prefetch_first_frame(body: ProxyBody) -> Result<ProxyBody, S3Error> {
    if body.is_end_stream() {
        return Ok(body);
    }
    let (first, rest) = read_prefix(body, 1).await.map_err(|error: BoxError| {
        match error.downcast::<crypto::CryptoError>() {
            Ok(error) => stored_error(*error),
            Err(error) => failed_body(error),
        }
    })?;
    Ok(Prepend::new(first, rest).boxed_unsync())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use http_body_util::StreamBody;

    fn failing_body(error: BoxError) -> ProxyBody {
        let items: Vec<Result<http_body::Frame<bytes::Bytes>, BoxError>> = vec![Err(error)];
        StreamBody::new(stream::iter(items)).boxed_unsync()
    }

    #[tokio::test]
    async fn first_frame_upstream_failure_is_bad_gateway() {
        let io = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed");
        let error = prefetch_first_frame(failing_body(Box::new(io)))
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::BadGateway);
    }

    #[tokio::test]
    async fn first_frame_authentication_failure_is_internal_error() {
        let crypto = crypto::CryptoError::SegmentAuthentication { segment: 0 };
        let error = prefetch_first_frame(failing_body(Box::new(crypto)))
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::InternalError);
        assert!(error.message().contains("failed authentication"));
    }

    #[test]
    fn later_reads_pinned_to_first_etag() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::IF_NONE_MATCH,
            HeaderValue::from_static("\"old\""),
        );
        headers.insert(
            http::header::IF_MATCH,
            HeaderValue::from_static("\"client\""),
        );
        headers.insert(
            "x-amz-server-side-encryption-customer-algorithm",
            HeaderValue::from_static("AES256"),
        );
        let req = ReadRequest {
            bucket: "b",
            key: "k",
            query: String::new(),
            headers,
            client_headers: None,
            range: None,
            part_number: None,
        };
        let mut first = HeaderMap::new();
        first.insert(http::header::ETAG, HeaderValue::from_static("\"first\""));

        let pinned = pinned(&req, &first);
        assert_eq!(
            pinned.headers.get(http::header::IF_MATCH).unwrap(),
            "\"first\""
        );
        assert!(pinned.headers.get(http::header::IF_NONE_MATCH).is_none());
        assert!(pinned
            .headers
            .contains_key("x-amz-server-side-encryption-customer-algorithm"));
    }

    #[test]
    fn replaced_object_is_retryable() {
        for status in [
            StatusCode::PRECONDITION_FAILED,
            StatusCode::NOT_FOUND,
            StatusCode::RANGE_NOT_SATISFIABLE,
        ] {
            let error = later_read_error(status, "x");
            assert_eq!(error.code(), ErrorCode::ServiceUnavailable, "{status}");
        }
        assert_eq!(
            later_read_error(StatusCode::FORBIDDEN, "x").code(),
            ErrorCode::BadGateway
        );
    }
}
