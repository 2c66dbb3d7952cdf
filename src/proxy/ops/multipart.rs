//! Multipart uploads to encrypting buckets.
//!
//! CreateMultipartUpload generates the upload's data key, stores its
//! envelope as the object's metadata, and hands the client an upload id
//! that carries the data key wrapped under the bucket's key-encryption key
//! (see `crypto::multipart`). Every later call finds the key in the upload
//! id it is given, so parts may arrive in any order, in parallel, through
//! any s3seal process, and across restarts.
//!
//! Each part is stored as a part header plus its segments, sealed under a
//! key derived from the upload key and the header's fresh salt.

use super::forward::{self, upstream_failure};
use super::read::{LAYOUT_FIELD, LAYOUT_MULTIPART};
use super::sealed;
use crate::auth::{Authenticated, ChecksumAlgorithm};
use crate::crypto::multipart::{self as layout, PartHeader};
use crate::crypto::{self, DataKey, EncryptBody};
use crate::proxy::body::RequestBody;
use crate::proxy::body::{CaptureErrors, ErrorSlot, Prepend, ProxyBody};
use crate::proxy::response;
use crate::proxy::Context;
use crate::s3::{etag, listing, ErrorCode, S3Error};
use crate::upstream::{self, ResponseBody, UpstreamRequest};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;

/// Checks that the request's upload id was issued for its bucket and key,
/// and returns the upstream upload id and the upload's data key. An id of
/// another object's upload gets `NoSuchUpload`, the error S3 returns, so
/// that no request acts on an upload through another key's name.
async fn open_upload(ctx: &Context<'_>) -> Result<(String, DataKey), S3Error> {
    let client_id = ctx.s3.query_value("uploadId").unwrap_or_default();
    sealed::open_upload_id(ctx, client_id, ctx.bucket(), ctx.key()).await
}

/// Returns the upstream upload id for AbortMultipartUpload and ListParts.
/// These also take the bare upstream ids that ListMultipartUploads
/// returns. The upstream checks those against the key: S3 and the embedded
/// store do, moto 5 checks only the bucket. An id that s3seal issued must
/// have been issued for the request's bucket and key.
async fn cleanup_upload_id(ctx: &Context<'_>) -> Result<String, S3Error> {
    let client_id = ctx.s3.query_value("uploadId").unwrap_or_default();
    let parsed = layout::parse_upload_id(client_id).map_err(|_| sealed::no_such_upload())?;
    if parsed.token.is_none() {
        return Ok(parsed.upstream.to_owned());
    }
    let (upstream_id, _) = open_upload(ctx).await?;
    Ok(upstream_id)
}

/// Returns the request's query with `upstream_id` in place of the
/// client's upload id.
fn upstream_query(ctx: &Context<'_>, upstream_id: &str) -> String {
    let query: Vec<(String, String)> = ctx
        .s3
        .query
        .iter()
        .map(|(name, value)| {
            if name == "uploadId" {
                (name.clone(), upstream_id.to_owned())
            } else {
                (name.clone(), value.clone())
            }
        })
        .collect();
    crate::proxy::request::encode_query(&query)
}

/// Reads a small upstream XML body within the configured limit.
async fn read_xml(ctx: &Context<'_>, body: ResponseBody) -> Result<Bytes, S3Error> {
    let limit = ctx.proxy.config.server.max_xml_body_bytes;
    super::forward::read_upstream_xml(body, limit, "XML response").await
}

fn xml_response(mut parts: http::response::Parts, xml: Vec<u8>) -> Response<ProxyBody> {
    response::strip_hop_by_hop(&mut parts.headers);
    response::strip_sealed_headers(&mut parts.headers);
    sealed::map_response_etag(&mut parts.headers);
    parts
        .headers
        .insert(http::header::CONTENT_LENGTH, HeaderValue::from(xml.len()));
    Response::from_parts(parts, response::full(xml))
}

fn bad_xml(error: listing::XmlError) -> S3Error {
    S3Error::new(
        ErrorCode::BadGateway,
        "the upstream sent XML that could not be read",
    )
    .with_source(error)
}

pub(crate) async fn create(
    ctx: &Context<'_>,
    key_name: &str,
    auth: Authenticated,
    _body: RequestBody,
) -> Result<Response<ProxyBody>, S3Error> {
    let mut headers = ctx.parts.headers.clone();
    sealed::reject_seal_metadata(&headers)?;
    let checksum_headers = requested_checksum(&headers)?;
    sealed::strip_transfer_encoding_headers(&mut headers, auth.payload_mode());
    sealed::strip_plaintext_digests(&mut headers);
    let (data_key, envelope) = sealed::new_data_key(ctx, key_name, ctx.bucket(), ctx.key()).await?;
    sealed::envelope_to_headers(&envelope, &mut headers)?;
    headers.insert(LAYOUT_FIELD, HeaderValue::from_static(LAYOUT_MULTIPART));

    let request = UpstreamRequest {
        method: Method::POST,
        bucket: ctx.s3.bucket.clone(),
        key: ctx.s3.key.clone(),
        query: ctx.s3.upstream_query(),
        headers,
        content_length: Some(0),
    };
    let upstream_response = ctx
        .proxy
        .upstream
        .send(request, upstream::empty_body())
        .await
        .map_err(upstream_failure)?;
    if !upstream_response.status().is_success() {
        return Ok(response::relay_sealed(upstream_response));
    }
    let (parts, body) = upstream_response.into_parts();
    let xml = read_xml(ctx, body).await?;
    let upstream_id = listing::find_text(&xml, "UploadId")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            S3Error::new(
                ErrorCode::BadGateway,
                "the upstream's CreateMultipartUpload response has no UploadId",
            )
        })?;
    let client_id = sealed::seal_upload_id(
        ctx,
        &envelope,
        &data_key,
        ctx.bucket(),
        ctx.key(),
        &upstream_id,
    )
    .await?;
    let rewritten =
        listing::rewrite_text(&xml, "UploadId", |_| client_id.clone()).map_err(bad_xml)?;
    let mut response = xml_response(parts, rewritten);
    response.headers_mut().extend(checksum_headers);
    Ok(response)
}

/// Returns the checksum algorithm and type that a CreateMultipartUpload
/// request names, which S3 repeats in its response. They stay out of the
/// upstream request, whose parts carry no checksums of the plaintext.
/// An unknown algorithm or type, a type without an algorithm, or a type
/// that S3 does not offer for the algorithm fails with InvalidRequest, as
/// on S3.
fn requested_checksum(headers: &HeaderMap) -> Result<HeaderMap, S3Error> {
    let invalid = |message: &str| S3Error::new(ErrorCode::InvalidRequest, message);
    let mut echoed = HeaderMap::new();
    let algorithm = match headers.get("x-amz-checksum-algorithm") {
        None => None,
        Some(value) => {
            let algorithm = value
                .to_str()
                .ok()
                .and_then(ChecksumAlgorithm::from_name)
                .ok_or_else(|| {
                    invalid(
                        "Checksum algorithm provided is unsupported. Please try again with any \
                         of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]",
                    )
                })?;
            echoed.insert("x-amz-checksum-algorithm", value.clone());
            Some(algorithm)
        }
    };
    if let Some(value) = headers.get("x-amz-checksum-type") {
        let Some(algorithm) = algorithm else {
            return Err(invalid(
                "The x-amz-checksum-type header can only be used with the \
                 x-amz-checksum-algorithm header.",
            ));
        };
        let offered = match value.as_bytes() {
            b"COMPOSITE" => algorithm != ChecksumAlgorithm::Crc64Nvme,
            b"FULL_OBJECT" => matches!(
                algorithm,
                ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c | ChecksumAlgorithm::Crc64Nvme
            ),
            _ => return Err(invalid("Value for x-amz-checksum-type header is invalid.")),
        };
        if !offered {
            return Err(invalid(
                "The checksum type is not supported for the checksum algorithm: COMPOSITE \
                 takes CRC32, CRC32C, SHA1 or SHA256, and FULL_OBJECT takes CRC32, CRC32C or \
                 CRC64NVME.",
            ));
        }
        echoed.insert("x-amz-checksum-type", value.clone());
    }
    Ok(echoed)
}

pub(crate) async fn upload_part(
    ctx: &Context<'_>,
    auth: Authenticated,
    body: RequestBody,
) -> Result<Response<ProxyBody>, S3Error> {
    let part_number = part_number(ctx)?;
    let (upstream_id, upload_key) = open_upload(ctx).await?;
    let query = upstream_query(ctx, &upstream_id);
    let plaintext_len = super::upload_len(&auth, ctx.parts)?;
    tracing::debug!(part_number, upload_id = %upstream_id, plaintext_len, "encrypting part");

    let mut headers = ctx.parts.headers.clone();
    sealed::strip_transfer_encoding_headers(&mut headers, auth.payload_mode());
    sealed::strip_plaintext_digests(&mut headers);
    let slot = ErrorSlot::default();
    let verified = auth.verify_body(ctx.parts, body)?;
    let checksum = verified.checksum();
    let plaintext = CaptureErrors::new(verified, slot.clone());
    let upstream_body = seal_part(plaintext, plaintext_len, &upload_key, part_number)?;

    let request = UpstreamRequest {
        method: Method::PUT,
        bucket: ctx.s3.bucket.clone(),
        key: ctx.s3.key.clone(),
        query,
        headers,
        content_length: Some(layout::part_stored_len(plaintext_len)),
    };
    let result = ctx.proxy.upstream.send(request, upstream_body).await;
    if let Some(error) = slot.take() {
        return Err(error);
    }
    let upstream_response = result.map_err(upstream_failure)?;
    if upstream_response.status().is_success() {
        super::forward::upload_etag(&upstream_response)?;
    }
    let mut response = response::relay_sealed(upstream_response);
    sealed::map_response_etag(response.headers_mut());
    sealed::add_verified_checksum(&mut response, &checksum, false);
    Ok(response)
}

/// Builds the stored form of one part: its header, then its segments.
pub(crate) fn seal_part<B>(
    plaintext: B,
    plaintext_len: u64,
    upload_key: &DataKey,
    part_number: u32,
) -> Result<ProxyBody, S3Error>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::upstream::BoxError>,
{
    let header = PartHeader::new(part_number, plaintext_len, &mut rand::rngs::OsRng);
    let part_key = header.part_key(upload_key);
    let segments = EncryptBody::new(plaintext, plaintext_len, &part_key, part_number)
        .map_err(super::objects::crypto_error)?;
    Ok(Prepend::new(Bytes::copy_from_slice(&header.to_bytes()), segments).boxed_unsync())
}

pub(crate) fn part_number(ctx: &Context<'_>) -> Result<u32, S3Error> {
    ctx.s3
        .query_value("partNumber")
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| {
            S3Error::new(
                ErrorCode::InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive",
            )
        })
}

/// Elements of a CompleteMultipartUpload part that describe the plaintext
/// and mean nothing for the stored ciphertext.
const PLAINTEXT_PART_ELEMENTS: &[&str] = &[
    "ChecksumCRC32",
    "ChecksumCRC32C",
    "ChecksumCRC64NVME",
    "ChecksumSHA1",
    "ChecksumSHA256",
];

pub(crate) async fn complete(
    ctx: &Context<'_>,
    auth: Authenticated,
    body: RequestBody,
) -> Result<Response<ProxyBody>, S3Error> {
    let (upstream_id, _) = open_upload(ctx).await?;
    let query = upstream_query(ctx, &upstream_id);
    let limit = ctx.proxy.config.server.max_xml_body_bytes;
    let payload_mode = auth.payload_mode();
    let verified = auth.verify_body(ctx.parts, body)?;
    let request_xml = http_body_util::Limited::new(verified, limit)
        .collect()
        .await
        .map_err(|e| forward::xml_body_error(e, limit))?
        .to_bytes();
    let part_count = check_part_numbers(&request_xml)?;
    if part_count >= 3 {
        check_equal_parts(ctx, &upstream_id, part_count).await?;
    }
    let upstream_xml = listing::rewrite_complete_request(&request_xml, PLAINTEXT_PART_ELEMENTS, etag::to_upstream)
        .map_err(|e| S3Error::new(ErrorCode::MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema").with_source(e))?;

    let mut headers = ctx.parts.headers.clone();
    sealed::strip_transfer_encoding_headers(&mut headers, payload_mode);
    sealed::strip_plaintext_digests(&mut headers);
    sealed::map_conditional_etags(&mut headers);
    let request = UpstreamRequest {
        method: Method::POST,
        bucket: ctx.s3.bucket.clone(),
        key: ctx.s3.key.clone(),
        query,
        headers,
        content_length: Some(upstream_xml.len() as u64),
    };
    let upstream_response = ctx
        .proxy
        .upstream
        .send(request, upstream::full_body(upstream_xml))
        .await
        .map_err(upstream_failure)?;
    if !upstream_response.status().is_success() {
        return Ok(response::relay_sealed(upstream_response));
    }
    let (mut parts, body) = upstream_response.into_parts();
    let xml = read_xml(ctx, body).await?;
    if listing::root_name(&xml).as_deref() == Some("Error") {
        // S3 reports a failed completion as 200 with an <Error> document, so
        // the status must come from the code.
        let code = listing::find_text(&xml, "Code").unwrap_or_default();
        parts.status = match code.as_str() {
            "NoSuchUpload" => StatusCode::NOT_FOUND,
            "InvalidPart" | "InvalidPartOrder" | "EntityTooSmall" | "MalformedXML"
            | "InvalidRequest" => StatusCode::BAD_REQUEST,
            "SlowDown" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        tracing::warn!(
            req.id = %ctx.access.request_id.as_deref().unwrap_or_default(),
            %code,
            "the upstream reported CompleteMultipartUpload as failed in a 200 response"
        );
        return Ok(xml_response(parts, xml.to_vec()));
    }
    let rewritten = listing::rewrite_etags(&xml, etag::to_client).map_err(bad_xml)?;
    let located =
        listing::set_root_child(&rewritten, "Location", &ctx.object_url()).map_err(bad_xml)?;
    Ok(xml_response(parts, located))
}

/// Completes an upload of a passthrough bucket, with the `Location` of the
/// result naming the object at s3seal instead of at the upstream.
pub(crate) async fn complete_plain(
    ctx: &Context<'_>,
    auth: Authenticated,
    body: RequestBody,
) -> Result<Response<ProxyBody>, S3Error> {
    let location = ctx.object_url();
    let limit = ctx.proxy.config.server.max_xml_body_bytes;
    let response = forward::forward(ctx, auth, body, false).await?;
    if !response.status().is_success() {
        return Ok(response);
    }
    let (mut parts, body) = response.into_parts();
    // The rewritten document has another length.
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let located = super::located::LocatedResult::new(body, location, limit);
    Ok(Response::from_parts(
        parts,
        http_body_util::BodyExt::boxed_unsync(located),
    ))
}

/// Checks that a CompleteMultipartUpload request lists parts 1 to N in
/// order, because a read rejects a part whose header number differs from
/// its position, which detects parts removed from an object.
///
/// NOTE: S3 itself accepts gaps in part numbers, so a client that skips
/// numbers gets InvalidPartOrder here and nowhere else.
fn check_part_numbers(xml: &[u8]) -> Result<usize, S3Error> {
    let numbers = listing::complete_part_numbers(xml).map_err(|e| {
        S3Error::new(ErrorCode::MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema").with_source(e)
    })?;
    for (index, text) in numbers.iter().enumerate() {
        let expected = index + 1;
        let Some(number) = text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|number| (1..=10_000).contains(number))
        else {
            return Err(S3Error::new(
                ErrorCode::InvalidArgument,
                format!("Part number must be an integer between 1 and 10000, inclusive; the list has {text:?}"),
            ));
        };
        if number != expected {
            return Err(S3Error::new(
                ErrorCode::InvalidPartOrder,
                format!(
                    "an encrypting bucket needs the parts numbered 1 to N without gaps, \
                     but part {expected} of the list has number {number}; \
                     upload the parts again with consecutive numbers"
                ),
            ));
        }
    }
    Ok(numbers.len())
}

/// Checks that parts 1 to `count - 1` of an upload are stored with the same
/// length, as every common client uploads them.
///
/// A read finds a part of a multipart object by assuming that layout,
/// because the upstream keeps only the total size and the part count. For
/// three parts a read can prove the layout from the first and last part
/// headers, and from four parts on only by reading every part header. So
/// an object with parts of other lengths is refused here rather than
/// stored with a layout that reads cannot find. A listed part that
/// ListParts does not return fails with S3's InvalidPart message for a
/// missing part, which takes precedence over a size difference.
async fn check_equal_parts(
    ctx: &Context<'_>,
    upstream_id: &str,
    count: usize,
) -> Result<(), S3Error> {
    let mut marker: Option<String> = None;
    let mut first: Option<u64> = None;
    // Parts numbered 1 to `count` that ListParts returned.
    let mut present = 0usize;
    let mut size_error: Option<S3Error> = None;
    loop {
        let mut query = vec![("uploadId".to_string(), upstream_id.to_string())];
        if let Some(marker) = &marker {
            query.push(("part-number-marker".to_string(), marker.clone()));
        }
        let request = UpstreamRequest {
            method: Method::GET,
            bucket: ctx.s3.bucket.clone(),
            key: ctx.s3.key.clone(),
            query: crate::proxy::request::encode_query(&query),
            headers: http::HeaderMap::new(),
            content_length: None,
        };
        let upstream_response = ctx
            .proxy
            .upstream
            .send(request, upstream::empty_body())
            .await
            .map_err(upstream_failure)?;
        let status = upstream_response.status();
        if status == StatusCode::NOT_FOUND {
            // The upload is gone, so the completion would fail too.
            return Err(sealed::no_such_upload());
        }
        if !status.is_success() {
            return Err(list_parts_failure(status));
        }
        let xml = read_xml(ctx, upstream_response.into_body()).await?;
        check_list_parts_root(&xml)?;
        let page = listing::list_parts_page(&xml).map_err(bad_xml)?;
        for (number, size) in &page.parts {
            let number = *number as usize;
            if number > count {
                return parts_check_result(present, count, size_error);
            }
            present += 1;
            if number == count {
                continue;
            }
            match first {
                None if number == 1 => first = Some(*size),
                None => {}
                Some(first) if *size != first && size_error.is_none() => {
                    size_error = Some(S3Error::new(
                        ErrorCode::InvalidPart,
                        format!(
                            "an encrypting bucket needs every part except the last to have \
                             the same size, but part {number} has {} bytes and part 1 has {}; \
                             upload the parts again with one part size",
                            part_plaintext_len(*size),
                            part_plaintext_len(first),
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if !page.is_truncated {
            return parts_check_result(present, count, size_error);
        }
        // A truncated page without NextPartNumberMarker continues after its
        // last part, and a marker that does not move on is an upstream fault
        // that would leave the rest of the parts unchecked.
        let next = page
            .next_marker
            .or_else(|| page.parts.last().map(|(number, _)| number.to_string()));
        match next {
            Some(next) if marker.as_deref() != Some(next.as_str()) => marker = Some(next),
            _ => {
                return Err(S3Error::new(
                    ErrorCode::BadGateway,
                    "could not check the part sizes of the upload: the upstream's ListParts \
                     pages do not advance",
                ))
            }
        }
    }
}

/// Returns the outcome of the part check: a missing part first, because
/// the size of the part before it is then no fault, then a size error.
fn parts_check_result(
    present: usize,
    count: usize,
    size_error: Option<S3Error>,
) -> Result<(), S3Error> {
    if present < count {
        return Err(S3Error::new(
            ErrorCode::InvalidPart,
            "One or more of the specified parts could not be found. The part may not have been \
             uploaded, or the specified entity tag may not match the part's entity tag.",
        ));
    }
    size_error.map_or(Ok(()), Err)
}

/// Returns the error for a completion whose part sizes could not be
/// checked, because the upstream returned `status` for ListParts. A server
/// error gets 503, which clients retry. Any other status (403 when the
/// upstream credentials lack `s3:ListMultipartUploadParts`) is s3seal's
/// problem, not the client's, and gets 502.
fn list_parts_failure(status: StatusCode) -> S3Error {
    let (code, advice) = if status.is_server_error() {
        (ErrorCode::ServiceUnavailable, "retry the completion")
    } else {
        (
            ErrorCode::BadGateway,
            "s3seal's upstream credentials need s3:ListMultipartUploadParts",
        )
    };
    S3Error::new(
        code,
        format!(
            "could not check the part sizes of the upload: the upstream returned \
             {status} for ListParts; {advice}"
        ),
    )
}

/// Checks that an upstream ListParts response is a ListParts document, not
/// an error page. moto 5.2.1 names its root element `ListPartsResponse`,
/// where S3 uses `ListPartsResult`.
fn check_list_parts_root(xml: &[u8]) -> Result<(), S3Error> {
    match listing::root_name(xml).as_deref() {
        Some("ListPartsResult" | "ListPartsResponse") => Ok(()),
        _ => Err(S3Error::new(
            ErrorCode::BadGateway,
            "the upstream answered ListParts with a document that is not a ListPartsResult",
        )),
    }
}

pub(crate) async fn abort(
    ctx: &Context<'_>,
    auth: Authenticated,
    body: RequestBody,
) -> Result<Response<ProxyBody>, S3Error> {
    let upstream_id = cleanup_upload_id(ctx).await?;
    let query = upstream_query(ctx, &upstream_id);
    forward::forward_with_query(ctx, auth, body, true, query).await
}

pub(crate) async fn list_parts(
    ctx: &Context<'_>,
    _auth: Authenticated,
) -> Result<Response<ProxyBody>, S3Error> {
    let upstream_id = cleanup_upload_id(ctx).await?;
    let query = upstream_query(ctx, &upstream_id);
    let client_id = ctx
        .s3
        .query_value("uploadId")
        .unwrap_or_default()
        .to_string();
    let request = UpstreamRequest {
        method: Method::GET,
        bucket: ctx.s3.bucket.clone(),
        key: ctx.s3.key.clone(),
        query,
        headers: super::objects::upstream_read_headers(ctx.parts.headers.clone()),
        content_length: None,
    };
    let upstream_response = ctx
        .proxy
        .upstream
        .send(request, upstream::empty_body())
        .await
        .map_err(upstream_failure)?;
    if !upstream_response.status().is_success() {
        return Ok(response::relay_sealed(upstream_response));
    }
    let (parts, body) = upstream_response.into_parts();
    let xml = read_xml(ctx, body).await?;
    check_list_parts_root(&xml)?;
    let sizes = listing::rewrite_entries(
        &xml,
        &["Part"],
        |stored, _| part_plaintext_len(stored),
        etag::to_client,
    )
    .map_err(bad_xml)?;
    let rewritten =
        listing::rewrite_text(&sizes, "UploadId", |_| client_id.clone()).map_err(bad_xml)?;
    Ok(xml_response(parts, rewritten))
}

/// Returns the plaintext length of a stored part, or the stored length for
/// a part that was not written by s3seal.
fn part_plaintext_len(stored: u64) -> u64 {
    stored
        .checked_sub(layout::PART_HEADER_LEN)
        .and_then(crypto::plaintext_len)
        .unwrap_or(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(numbers: &[&str]) -> Vec<u8> {
        let parts: String = numbers
            .iter()
            .map(|n| format!("<Part><PartNumber>{n}</PartNumber><ETag>\"e\"</ETag></Part>"))
            .collect();
        format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>").into_bytes()
    }

    #[test]
    fn part_numbers_one_to_n_accepted() {
        assert!(check_part_numbers(&complete(&["1", "2", " 3 "])).is_ok());
    }

    #[test]
    fn part_numbers_out_of_range_rejected() {
        for bad in ["-1", "0", "x", "99999999999", "10001"] {
            let error = check_part_numbers(&complete(&[bad])).unwrap_err();
            assert_eq!(error.code(), ErrorCode::InvalidArgument, "{bad}");
            assert!(error.message().contains("between 1 and 10000"), "{bad}");
        }
    }

    #[test]
    fn part_number_gap_rejected() {
        let error = check_part_numbers(&complete(&["1", "3"])).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidPartOrder);
    }
}
