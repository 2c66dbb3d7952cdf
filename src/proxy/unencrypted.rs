//! GetObject and HeadObject of objects that carry no s3seal envelope in an
//! encrypting bucket whose rule sets `allow_unencrypted_reads`, such as
//! objects written before s3seal was deployed.
//!
//! The operations in `ops` reject such an object with an AccessDenied
//! error whose source is [`NotEncrypted`]. When the bucket's rule allows
//! it, the request is then sent upstream again with the client's own
//! `Range` and conditional headers, except `If-Range`, which s3seal
//! evaluates itself, and the object is relayed as stored.
//! That second response is checked for an envelope as well, so an object
//! that was replaced by an encrypted one in between is never relayed as
//! ciphertext.

use super::body::ProxyBody;
use super::request::Operation;
use super::{response, Context};
use crate::s3::headers::{PLAINTEXT_DIGEST_HEADERS, SEAL_META_PREFIX};
use crate::s3::{conditional, etag, ErrorCode, S3Error};
use crate::upstream::{self, UpstreamRequest};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

/// The source of the AccessDenied error for an object without an envelope
/// in an encrypting bucket.
#[derive(Debug, thiserror::Error)]
#[error("the object carries no s3seal envelope")]
pub(crate) struct NotEncrypted;

/// Returns whether `error` rejects an object for carrying no envelope.
pub(crate) fn is_not_encrypted(error: &S3Error) -> bool {
    std::error::Error::source(error).is_some_and(|source| source.is::<NotEncrypted>())
}

/// Returns whether a failed request may be served by [`read_as_stored`]:
/// a GetObject or HeadObject rejected for carrying no envelope, in a bucket
/// whose rule allows unencrypted reads.
pub(crate) fn may_read_as_stored(ctx: &Context<'_>, error: &S3Error) -> bool {
    matches!(
        ctx.s3.operation,
        Operation::GetObject | Operation::HeadObject
    ) && is_not_encrypted(error)
        && ctx.proxy.policy.allows_unencrypted_reads(ctx.bucket())
}

/// Sends the client's GET or HEAD upstream again and relays the object as
/// stored, with ETags in the form that the bucket's listings show.
pub(crate) async fn read_as_stored(ctx: &Context<'_>) -> Result<Response<ProxyBody>, S3Error> {
    let mut headers = ctx.parts.headers.clone();
    for name in &PLAINTEXT_DIGEST_HEADERS {
        headers.remove(name);
    }
    crate::s3::conditional::drop_ignored_dates(&mut headers);
    super::ops::strip_if_range(&mut headers);
    for name in ["if-match", "if-none-match"] {
        let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        if let Ok(mapped) = HeaderValue::from_str(&etag::list_to_upstream(value)) {
            headers.insert(name, mapped);
        }
    }
    let method = if ctx.s3.operation == Operation::HeadObject {
        Method::HEAD
    } else {
        Method::GET
    };
    let request = UpstreamRequest {
        method,
        bucket: ctx.s3.bucket.clone(),
        key: ctx.s3.key.clone(),
        query: ctx.s3.upstream_query(),
        headers,
        content_length: None,
    };
    let upstream_response = ctx
        .proxy
        .upstream
        .send(request.clone(), upstream::empty_body())
        .await
        .map_err(super::ops::upstream_failure)?;
    let upstream_response =
        super::ops::settle_relayed_read(ctx, request, upstream_response, true).await?;

    let format_header = format!("{SEAL_META_PREFIX}format");
    if upstream_response
        .headers()
        .contains_key(format_header.as_str())
    {
        return Err(S3Error::new(
            ErrorCode::ServiceUnavailable,
            "the object was replaced while it was read; retry the request",
        ));
    }
    let client_etag = upstream_response
        .headers()
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(etag::to_client);
    if upstream_response.status().is_success() {
        // Some stores ignore conditional headers on GET (s3s-fs 0.14 ignores
        // If-None-Match), so s3seal evaluates them as for sealed objects.
        let last_modified = upstream_response
            .headers()
            .get(http::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        let etag_for_conditions = client_etag.as_deref().unwrap_or("");
        match conditional::evaluate(&ctx.parts.headers, etag_for_conditions, last_modified) {
            None => {}
            Some(StatusCode::NOT_MODIFIED) => {
                let mut headers = HeaderMap::new();
                if let Some(value) = client_etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
                    headers.insert(http::header::ETAG, value);
                }
                if let Some(value) = upstream_response.headers().get(http::header::LAST_MODIFIED) {
                    headers.insert(http::header::LAST_MODIFIED, value.clone());
                }
                return Ok(response::with_parts(
                    StatusCode::NOT_MODIFIED,
                    headers,
                    response::empty(),
                ));
            }
            Some(_) => {
                return Err(S3Error::new(
                    ErrorCode::PreconditionFailed,
                    "At least one of the pre-conditions you specified did not hold",
                ))
            }
        }
    }

    let mut response = response::relay_sealed(upstream_response);
    if let Some(value) = client_etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        response.headers_mut().insert(http::header::ETAG, value);
    }
    Ok(response)
}
