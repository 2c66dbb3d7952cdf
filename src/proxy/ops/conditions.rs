//! The conditional headers of the client's GetObject and HeadObject,
//! evaluated by s3seal against the object headers of an upstream response,
//! because not every S3-compatible store evaluates them (s3s-fs 0.14
//! ignores `If-None-Match` on GET and `If-Range` everywhere).
//!
//! The preconditions (`If-Match`, `If-None-Match`, `If-Unmodified-Since`,
//! `If-Modified-Since`) come before the range, as RFC 9110 section 13.2.2
//! orders them, so a failed precondition gets `304` or `412` even where the
//! range is not satisfiable. Then `If-Range` decides whether `Range`
//! applies.
//!
//! `If-Range` never goes upstream, and s3seal evaluates it on every path.
//! The upstream of an encrypting bucket stores other ETags than clients
//! are sent and gets other ranges than the client's. Passthrough buckets
//! follow the same rule, so that an upstream that ignores `If-Range`
//! cannot apply a range to a replaced object.

use super::forward::upstream_failure;
use crate::proxy::body::ProxyBody;
use crate::proxy::response;
use crate::proxy::Context;
use crate::s3::{conditional, etag, ErrorCode, S3Error};
use crate::upstream::{self, ResponseBody, UpstreamRequest};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use std::time::SystemTime;

/// The request headers of the preconditions.
const PRECONDITIONS: [http::HeaderName; 4] = [
    http::header::IF_MATCH,
    http::header::IF_NONE_MATCH,
    http::header::IF_UNMODIFIED_SINCE,
    http::header::IF_MODIFIED_SINCE,
];

/// Applies the client's preconditions to the object headers of an
/// upstream response. Returns the `304` response when the object is not
/// to be sent, fails with PreconditionFailed (`412`), or returns `None`.
/// `sealed_bucket` maps the upstream ETag to the one clients see, as
/// responses of encrypting buckets do.
pub(crate) fn check_preconditions(
    client: &HeaderMap,
    upstream_headers: &HeaderMap,
    sealed_bucket: bool,
) -> Result<Option<Response<ProxyBody>>, S3Error> {
    let (client_etag, last_modified) = validators(upstream_headers, sealed_bucket);
    match conditional::evaluate(client, &client_etag, last_modified) {
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

/// Returns whether the client's `Range` applies to the object that an
/// upstream response describes, as the client's `If-Range` decides. The
/// caller ignores the result for a request without `Range`.
pub(crate) fn range_applies(
    client: &HeaderMap,
    upstream_headers: &HeaderMap,
    sealed_bucket: bool,
) -> bool {
    let (client_etag, last_modified) = validators(upstream_headers, sealed_bucket);
    conditional::range_applies(client, &client_etag, last_modified)
}

/// Returns the ETag that clients see and the `Last-Modified` time of the
/// object that an upstream response describes.
fn validators(upstream_headers: &HeaderMap, sealed_bucket: bool) -> (String, Option<SystemTime>) {
    let upstream_etag = upstream_headers
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let client_etag = if sealed_bucket {
        etag::to_client(upstream_etag)
    } else {
        upstream_etag.to_string()
    };
    let last_modified = upstream_headers
        .get(http::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    (client_etag, last_modified)
}

/// Removes `If-Range` from the headers of an upstream read, because
/// s3seal evaluates it itself.
pub(crate) fn strip_if_range(headers: &mut HeaderMap) {
    headers.remove(http::header::IF_RANGE);
}

/// Returns the upstream response to relay for a GetObject or HeadObject
/// that s3seal forwards with the client's `Range`, given `first`, the
/// response to `request` (which carries no `If-Range`):
///
/// - For a `206` whose object does not match the client's `If-Range`,
///   the response to `request` without `Range`, which is the whole object.
/// - For a `416` to a request with preconditions, the response to a HEAD
///   without `Range` when the HEAD fails a precondition. A `412` to that
///   HEAD fails with PreconditionFailed, because the HEAD's error
///   response has no body to relay to a GET.
/// - Otherwise `first`.
///
/// The caller evaluates the preconditions on a success response, as on
/// any read, which turns a returned HEAD response into `304` or `412`.
pub(crate) async fn settle_relayed_read(
    ctx: &Context<'_>,
    mut request: UpstreamRequest,
    first: Response<ResponseBody>,
    sealed_bucket: bool,
) -> Result<Response<ResponseBody>, S3Error> {
    let client = &ctx.parts.headers;
    if !client.contains_key(http::header::RANGE) {
        return Ok(first);
    }
    request.headers.remove(http::header::RANGE);
    request.headers.remove(http::header::IF_RANGE);
    request.content_length = None;

    match first.status() {
        StatusCode::PARTIAL_CONTENT => {
            let (client_etag, last_modified) = validators(first.headers(), sealed_bucket);
            let preconditions_hold =
                conditional::evaluate(client, &client_etag, last_modified).is_none();
            if !preconditions_hold
                || conditional::range_applies(client, &client_etag, last_modified)
            {
                return Ok(first);
            }
            drop(first);
            send(ctx, request).await
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            let if_range = client.contains_key(http::header::IF_RANGE);
            if !if_range && !PRECONDITIONS.iter().any(|name| client.contains_key(name)) {
                return Ok(first);
            }
            let method = std::mem::replace(&mut request.method, Method::HEAD);
            let head = send(ctx, request.clone()).await?;
            match head.status() {
                StatusCode::OK => {
                    let (client_etag, last_modified) = validators(head.headers(), sealed_bucket);
                    if conditional::evaluate(client, &client_etag, last_modified).is_some() {
                        return Ok(head);
                    }
                    // A range that If-Range does not apply is ignored, however
                    // far it reaches, so the whole object goes out.
                    if if_range && !conditional::range_applies(client, &client_etag, last_modified)
                    {
                        drop(head);
                        request.method = method;
                        return send(ctx, request).await;
                    }
                    Ok(first)
                }
                StatusCode::NOT_MODIFIED => Ok(head),
                StatusCode::PRECONDITION_FAILED => Err(S3Error::new(
                    ErrorCode::PreconditionFailed,
                    "At least one of the pre-conditions you specified did not hold",
                )),
                _ => Ok(first),
            }
        }
        _ => Ok(first),
    }
}

async fn send(
    ctx: &Context<'_>,
    request: UpstreamRequest,
) -> Result<Response<ResponseBody>, S3Error> {
    ctx.proxy
        .upstream
        .send(request, upstream::empty_body())
        .await
        .map_err(upstream_failure)
}

fn header_value(value: &str) -> Result<HeaderValue, S3Error> {
    HeaderValue::from_str(value)
        .map_err(|e| S3Error::new(ErrorCode::InternalError, "invalid header value").with_source(e))
}
