//! Operations forwarded re-signed with their bodies unchanged: bucket
//! operations, deletes, sub-resources without object bodies, and every
//! request to a passthrough bucket.

use super::sealed;
use crate::auth::Authenticated;
use crate::proxy::body::RequestBody;
use crate::proxy::body::{CaptureErrors, ErrorSlot, ProxyBody};
use crate::proxy::response;
use crate::proxy::{Context, Operation};
use crate::s3::{ErrorCode, S3Error};
use crate::upstream::{self, BoxError, UpstreamRequest};
use http::Response;
use http_body_util::BodyExt;

/// Forwards the request. `sealed_bucket` maps ETags and hides s3seal's
/// metadata in the response, for encrypting buckets.
pub(crate) async fn forward(
    ctx: &Context<'_>,
    auth: Authenticated,
    body: RequestBody,
    sealed_bucket: bool,
) -> Result<Response<ProxyBody>, S3Error> {
    forward_with_query(ctx, auth, body, sealed_bucket, ctx.s3.upstream_query()).await
}

/// Forwards the request with `query` in place of the client's query.
pub(crate) async fn forward_with_query(
    ctx: &Context<'_>,
    auth: Authenticated,
    body: RequestBody,
    sealed_bucket: bool,
    query: String,
) -> Result<Response<ProxyBody>, S3Error> {
    let headers = ctx.parts.headers.clone();
    forward_request(ctx, auth, body, sealed_bucket, query, headers).await
}

/// Forwards a request of a passthrough bucket with `headers` in place of
/// the client's headers.
pub(crate) async fn forward_with_headers(
    ctx: &Context<'_>,
    auth: Authenticated,
    body: RequestBody,
    headers: http::HeaderMap,
) -> Result<Response<ProxyBody>, S3Error> {
    forward_request(ctx, auth, body, false, ctx.s3.upstream_query(), headers).await
}

async fn forward_request(
    ctx: &Context<'_>,
    auth: Authenticated,
    body: RequestBody,
    sealed_bucket: bool,
    query: String,
    mut headers: http::HeaderMap,
) -> Result<Response<ProxyBody>, S3Error> {
    let content_length = match ctx.s3.operation {
        Operation::PutObject | Operation::UploadPart => Some(super::upload_len(&auth, ctx.parts)?),
        _ => auth.plaintext_len(ctx.parts)?,
    };
    sealed::strip_transfer_encoding_headers(&mut headers, auth.payload_mode());
    // A passthrough bucket may later get an encrypt rule, whose reads would
    // take such metadata for an envelope.
    sealed::reject_seal_metadata(&headers)?;
    if sealed_bucket {
        sealed::map_conditional_etags(&mut headers);
    } else {
        sealed::join_conditional_etags(&mut headers);
    }
    let object_read = matches!(
        ctx.s3.operation,
        Operation::GetObject | Operation::HeadObject
    );
    if object_read {
        crate::s3::conditional::drop_ignored_dates(&mut headers);
        super::conditions::strip_if_range(&mut headers);
    }

    let slot = ErrorSlot::default();
    let sends_body = crate::proxy::declares_body(&ctx.parts.headers);
    // A checksum that the client sends in a trailer goes upstream in a
    // trailer too, so that the upstream stores it and checks a multipart
    // upload created with a checksum algorithm.
    let mut trailing = None;
    let upstream_body = match content_length {
        Some(len) if len > 0 => {
            let verified = auth.verify_body(ctx.parts, body)?;
            if let Some((name, value_len)) = verified.trailing_checksum() {
                let checksum = verified.checksum();
                trailing = Some(upstream::TrailingChecksum {
                    name,
                    value_len,
                    value: Box::new(move || checksum.header().map(|(_, value)| value)),
                });
                restore_sdk_algorithm(&mut headers, ctx.parts);
            }
            CaptureErrors::new(verified, slot.clone()).boxed_unsync()
        }
        // An aws-chunked body that declares no data still carries chunks,
        // a trailer and signatures, which are checked here, because the
        // upstream gets `Content-Length: 0` and never reads a body. A
        // checksum from its trailer goes upstream as a header.
        Some(_) if sends_body => {
            let verified = auth.verify_body(ctx.parts, body)?;
            let checksum = verified.checksum();
            verified.collect().await?;
            if let Some((name, value)) = checksum.header() {
                headers.insert(name, value);
                restore_sdk_algorithm(&mut headers, ctx.parts);
            }
            upstream::empty_body()
        }
        // A body of unknown length (`Transfer-Encoding: chunked` alone)
        // would otherwise be dropped and an empty object stored.
        None if sends_body => return Err(super::unknown_length(&ctx.parts.headers)),
        _ => upstream::empty_body(),
    };
    let request = UpstreamRequest {
        method: ctx.parts.method.clone(),
        bucket: ctx.s3.bucket.clone(),
        key: ctx.s3.key.clone(),
        query,
        headers,
        content_length: content_length.or(
            if ctx.parts.method == http::Method::PUT || ctx.parts.method == http::Method::POST {
                Some(0)
            } else {
                None
            },
        ),
    };
    // A passthrough read may need a second request without the range.
    let read_request = (!sealed_bucket && object_read).then(|| request.clone());
    let sent = match trailing {
        Some(checksum) => {
            ctx.proxy
                .upstream
                .send_with_trailer(request, upstream_body, checksum)
                .await
        }
        None => ctx.proxy.upstream.send(request, upstream_body).await,
    };
    let response = sent.map_err(|e| slot.take().unwrap_or_else(|| upstream_failure(e)))?;
    if let Some(error) = slot.take() {
        return Err(error);
    }
    let response = match read_request {
        Some(request) => {
            super::conditions::settle_relayed_read(ctx, request, response, false).await?
        }
        None => response,
    };
    // Some stores ignore conditional headers (s3s-fs 0.14 does), so a
    // passthrough read checks them as an encrypting bucket's read does.
    if matches!(
        ctx.s3.operation,
        Operation::PutObject | Operation::UploadPart
    ) && response.status().is_success()
    {
        upload_etag(&response)?;
    }
    if !sealed_bucket && object_read && response.status().is_success() {
        if sealed::has_seal_metadata(response.headers()) {
            return Err(encrypted_in_passthrough(ctx, ctx.bucket(), ctx.key()));
        }
        if let Some(early) =
            super::conditions::check_preconditions(&ctx.parts.headers, response.headers(), false)?
        {
            return Ok(early);
        }
    }
    if sealed_bucket {
        let mut response = response::relay_sealed(response);
        sealed::map_response_etag(response.headers_mut());
        Ok(response)
    } else {
        Ok(response::relay(response))
    }
}

/// The request headers of a CORS preflight that go upstream.
static PREFLIGHT_HEADERS: [http::HeaderName; 3] = [
    http::header::ORIGIN,
    http::header::ACCESS_CONTROL_REQUEST_METHOD,
    http::header::ACCESS_CONTROL_REQUEST_HEADERS,
];

/// Forwards a browser's CORS preflight, which carries no signature. The
/// upstream responds from the bucket's CORS configuration. Only the
/// preflight's own headers go upstream. A bucket that the rules deny
/// gets AccessDenied, and a request without `Origin` or
/// `Access-Control-Request-Method`, which is no preflight, InvalidRequest.
pub(crate) async fn preflight(
    proxy: &crate::proxy::Proxy,
    s3: &crate::proxy::request::S3Request,
    parts: &http::request::Parts,
) -> Result<Response<ProxyBody>, S3Error> {
    let bucket = s3.bucket.as_deref().unwrap_or_default();
    if let crate::policy::BucketPolicy::Deny { .. } = proxy.policy.for_bucket(bucket) {
        return Err(S3Error::new(ErrorCode::AccessDenied, "Access Denied"));
    }
    // An OPTIONS request without these is no preflight, and S3 rejects it.
    if !parts.headers.contains_key(http::header::ORIGIN) {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "Insufficient information. Origin request header needed.",
        ));
    }
    if !parts
        .headers
        .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "Insufficient information. Access-Control-Request-Method request header needed.",
        ));
    }
    let mut headers = http::HeaderMap::new();
    for name in &PREFLIGHT_HEADERS {
        for value in parts.headers.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let request = UpstreamRequest {
        method: http::Method::OPTIONS,
        bucket: s3.bucket.clone(),
        key: s3.key.clone(),
        query: String::new(),
        headers,
        content_length: None,
    };
    let response = proxy
        .upstream
        .send(request, upstream::empty_body())
        .await
        .map_err(upstream_failure)?;
    Ok(response::relay(response))
}

/// Puts back the client's `x-amz-sdk-checksum-algorithm`, which goes with
/// a checksum from a trailer that is forwarded after all. Some stores
/// (moto) read the algorithm from it.
fn restore_sdk_algorithm(headers: &mut http::HeaderMap, parts: &http::request::Parts) {
    const NAME: &str = "x-amz-sdk-checksum-algorithm";
    if let Some(value) = parts.headers.get(NAME) {
        headers.insert(NAME, value.clone());
    }
}

/// S3's limit on the objects of one DeleteObjects request.
const MAX_DELETE_OBJECTS: usize = 1000;

/// Forwards DeleteObjects once every key in its body has passed the
/// checks that object requests get in their path, because the upstream
/// resolves the keys itself. The body is read within
/// `server.max_xml_body_bytes` and forwarded unchanged.
/// Returns whether the request carries a digest of its body: S3 requires
/// `Content-MD5` or a checksum of a supported algorithm, in a header or
/// announced as a trailer, on DeleteObjects.
fn has_body_digest(headers: &http::HeaderMap) -> bool {
    let is_checksum = |name: &str| crate::auth::ChecksumAlgorithm::from_header_name(name).is_some();
    headers.contains_key(http::header::HeaderName::from_static("content-md5"))
        || headers.keys().any(|name| is_checksum(name.as_str()))
        || headers
            .get_all("x-amz-trailer")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|name| is_checksum(&name.trim().to_ascii_lowercase()))
}

pub(crate) async fn delete_objects(
    ctx: &Context<'_>,
    auth: Authenticated,
    body: RequestBody,
    sealed_bucket: bool,
) -> Result<Response<ProxyBody>, S3Error> {
    let malformed = || {
        S3Error::new(
            ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    };
    if !has_body_digest(&ctx.parts.headers) {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "Missing required header for this request: Content-MD5",
        ));
    }
    let content_length = match ctx.s3.operation {
        Operation::PutObject | Operation::UploadPart => Some(super::upload_len(&auth, ctx.parts)?),
        _ => auth.plaintext_len(ctx.parts)?,
    };
    let payload_mode = auth.payload_mode();
    let xml = match content_length {
        Some(len) if len > 0 => {
            let limit = ctx.proxy.config.server.max_xml_body_bytes;
            let verified = auth.verify_body(ctx.parts, body)?;
            http_body_util::Limited::new(verified, limit)
                .collect()
                .await
                .map_err(|e| xml_body_error(e, limit))?
                .to_bytes()
        }
        _ => return Err(malformed()),
    };
    let keys =
        crate::s3::listing::delete_request_keys(&xml).map_err(|e| malformed().with_source(e))?;
    if keys.is_empty() || keys.len() > MAX_DELETE_OBJECTS {
        return Err(S3Error::new(
            ErrorCode::MalformedXML,
            format!(
                "The request names {} objects; DeleteObjects takes 1 to {MAX_DELETE_OBJECTS}",
                keys.len()
            ),
        ));
    }
    for key in &keys {
        if key.key.is_empty() {
            return Err(malformed());
        }
        crate::proxy::request::check_key_segments(&key.key)?;
        if let Some(other_reading) = &key.without_cdata {
            crate::proxy::request::check_key_segments(other_reading)?;
        }
    }

    let mut headers = ctx.parts.headers.clone();
    sealed::strip_transfer_encoding_headers(&mut headers, payload_mode);
    let xml = if sealed_bucket {
        upstream_delete_etags(xml, &mut headers).map_err(|e| malformed().with_source(e))?
    } else {
        xml
    };
    let request = UpstreamRequest {
        method: ctx.parts.method.clone(),
        bucket: ctx.s3.bucket.clone(),
        key: None,
        query: ctx.s3.upstream_query(),
        headers,
        content_length: Some(xml.len() as u64),
    };
    let response = ctx
        .proxy
        .upstream
        .send(request, response::full(xml))
        .await
        .map_err(upstream_failure)?;
    if sealed_bucket {
        Ok(response::relay_sealed(response))
    } else {
        Ok(response::relay(response))
    }
}

/// Maps the client-form ETags of a DeleteObjects document (conditions of
/// each delete) to upstream ETags. A rewritten document replaces the
/// client's digests with its own `Content-MD5`, which S3 requires for
/// DeleteObjects.
fn upstream_delete_etags(
    xml: bytes::Bytes,
    headers: &mut http::HeaderMap,
) -> Result<bytes::Bytes, crate::s3::listing::XmlError> {
    let changed = std::cell::Cell::new(false);
    let rewritten = crate::s3::listing::rewrite_text(&xml, "ETag", |client| {
        let upstream = crate::s3::etag::to_upstream(client);
        if upstream == client {
            return upstream;
        }
        changed.set(true);
        if client.trim().starts_with('"') {
            upstream
        } else {
            upstream.trim_matches('"').to_string()
        }
    })?;
    if !changed.get() {
        return Ok(xml);
    }
    sealed::strip_plaintext_digests(headers);
    let md5 = {
        use base64::Engine;
        use md5::Digest;
        base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&rewritten))
    };
    if let Ok(value) = http::HeaderValue::from_str(&md5) {
        headers.insert("content-md5", value);
    }
    Ok(bytes::Bytes::from(rewritten))
}

/// Maps a failure to read a client's XML request body within `limit`
/// bytes: the body's own S3 error, or MalformedXML naming the limit or the
/// cause.
pub(crate) fn xml_body_error(error: BoxError, limit: usize) -> S3Error {
    match error.downcast::<S3Error>() {
        Ok(error) => *error,
        Err(other) if other.is::<http_body_util::LengthLimitError>() => S3Error::new(
            ErrorCode::MalformedXML,
            format!(
                "The XML body is larger than {limit} bytes, the limit that \
                 server.max_xml_body_bytes sets"
            ),
        ),
        Err(other) => S3Error::new(
            ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
        .with_source(other),
    }
}

/// Reads an upstream XML response body, a `document` such as a listing or
/// a copy result, within `limit` bytes. A body over the limit and a body
/// the upstream failed to send give different messages.
pub(crate) async fn read_upstream_xml(
    body: upstream::ResponseBody,
    limit: usize,
    document: &str,
) -> Result<bytes::Bytes, S3Error> {
    let collected = http_body_util::Limited::new(body, limit).collect().await;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(S3Error::new(
            ErrorCode::BadGateway,
            format!(
                "the upstream {document} is larger than {limit} bytes, the limit that \
                 server.max_xml_body_bytes sets"
            ),
        )),
        Err(error) => Err(S3Error::new(
            gateway_error_code(error.as_ref()),
            format!("the upstream failed while sending the {document}"),
        )
        .with_source(error)),
    }
}

/// Returns the error for an object that s3seal encrypted, read through a
/// passthrough rule, which would hand the client ciphertext as its data.
/// Its log line is a warning, because the bucket's rule likely changed
/// from `encrypt` to `passthrough`.
pub(crate) fn encrypted_in_passthrough(ctx: &Context<'_>, bucket: &str, key: &str) -> S3Error {
    tracing::warn!(
        req.id = %ctx.access.request_id.as_deref().unwrap_or_default(),
        object.bucket = %bucket,
        object.key = key,
        "an object encrypted by s3seal was read through a passthrough bucket rule, which would \
         return its ciphertext; give the bucket an encrypt rule with the object's key to read it"
    );
    S3Error::new(
        ErrorCode::InvalidObjectState,
        "The object is encrypted by s3seal, but the bucket's rule is passthrough, so it cannot \
         be read as plaintext",
    )
}

/// Returns the ETag of a successful upstream upload (PutObject, UploadPart
/// or a copy streamed as one). S3 always sends it, so a `2xx` without one,
/// such as a maintenance page of a proxy in front of the store, stored
/// nothing that the client could rely on.
pub(crate) fn upload_etag(response: &Response<upstream::ResponseBody>) -> Result<&str, S3Error> {
    response
        .headers()
        .get(http::header::ETAG)
        .and_then(|value| value.to_str().ok())
        .filter(|etag| !etag.trim().is_empty())
        .ok_or_else(|| {
            S3Error::new(
                ErrorCode::BadGateway,
                format!(
                    "the upstream answered an upload with {} but no ETag, so the data may not be stored",
                    response.status()
                ),
            )
        })
}

/// Maps a failed upstream request to `504 Gateway Timeout` when the
/// upstream timed out, and to `502 Bad Gateway` otherwise.
pub(crate) fn upstream_failure(error: upstream::UpstreamError) -> S3Error {
    let code = gateway_error_code(&error);
    let message = match code {
        ErrorCode::GatewayTimeout => {
            "The upstream S3 endpoint stopped responding for upstream.response_timeout_secs"
        }
        _ => "The upstream S3 endpoint could not be reached or failed mid-request",
    };
    S3Error::new(code, message).with_source(error)
}

/// Returns the code of an upstream failure that `error` caused:
/// GatewayTimeout when it or one of its sources is an upstream timeout,
/// BadGateway otherwise.
pub(crate) fn gateway_error_code(error: &(dyn std::error::Error + 'static)) -> ErrorCode {
    if upstream::is_timeout(error) {
        ErrorCode::GatewayTimeout
    } else {
        ErrorCode::BadGateway
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn body_digest_found_in_header_or_trailer() {
        assert!(has_body_digest(&headers(&[(
            "content-md5",
            "AAAAAAAAAAAAAAAAAAAAAA=="
        )])));
        assert!(has_body_digest(&headers(&[(
            "x-amz-checksum-crc32",
            "AAAAAA=="
        )])));
        assert!(has_body_digest(&headers(&[(
            "x-amz-trailer",
            "X-Amz-Checksum-Crc64nvme"
        )])));
        assert!(has_body_digest(&headers(&[(
            "x-amz-trailer",
            "x-amz-meta-a, x-amz-checksum-sha256"
        )])));
    }

    #[test]
    fn body_digest_missing() {
        assert!(!has_body_digest(&headers(&[])));
        assert!(!has_body_digest(&headers(&[(
            "x-amz-checksum-type",
            "FULL_OBJECT"
        )])));
        assert!(!has_body_digest(&headers(&[(
            "x-amz-checksum-algorithm",
            "CRC32"
        )])));
        assert!(!has_body_digest(&headers(&[(
            "x-amz-trailer",
            "x-amz-meta-a"
        )])));
        assert!(!has_body_digest(&headers(&[(
            "x-amz-sdk-checksum-algorithm",
            "CRC32"
        )])));
        assert!(!has_body_digest(&headers(&[(
            "x-amz-checksum-mode",
            "ENABLED"
        )])));
        assert!(!has_body_digest(&headers(&[("x-amz-checksum-foo", "x")])));
        assert!(!has_body_digest(&headers(&[(
            "x-amz-trailer",
            "x-amz-checksum-foo"
        )])));
    }
}
