//! ListObjects, ListObjectsV2 and ListObjectVersions on encrypting
//! buckets: sizes and ETags of every entry are rewritten to what HEAD and
//! GET show, with no extra upstream request.

use super::forward::upstream_failure;
use super::sealed;
use crate::auth::Authenticated;
use crate::crypto;
use crate::proxy::body::ProxyBody;
use crate::proxy::response;
use crate::proxy::Context;
use crate::s3::{etag, listing, ErrorCode, S3Error};
use crate::upstream::{self, UpstreamRequest};
use http::{HeaderValue, Response};

pub(crate) async fn list_objects(
    ctx: &Context<'_>,
    _auth: Authenticated,
) -> Result<Response<ProxyBody>, S3Error> {
    let mut headers = ctx.parts.headers.clone();
    sealed::strip_plaintext_digests(&mut headers);
    let request = UpstreamRequest {
        method: ctx.parts.method.clone(),
        bucket: ctx.s3.bucket.clone(),
        key: None,
        query: ctx.s3.upstream_query(),
        headers,
        content_length: None,
    };
    let upstream_response = ctx
        .proxy
        .upstream
        .send(request, upstream::empty_body())
        .await
        .map_err(upstream_failure)?;
    if !upstream_response.status().is_success() {
        return Ok(response::relay(upstream_response));
    }
    let (mut parts, body) = upstream_response.into_parts();
    let limit = ctx.proxy.config.server.max_xml_body_bytes;
    let xml = super::forward::read_upstream_xml(body, limit, "listing").await?;
    let root = listing::root_name(&xml);
    if !matches!(
        root.as_deref(),
        Some("ListBucketResult" | "ListVersionsResult")
    ) {
        return Err(S3Error::new(
            ErrorCode::BadGateway,
            format!(
                "the upstream answered a listing with a document whose root element is {}, not a listing",
                root.as_deref().unwrap_or("missing")
            ),
        ));
    }
    let rewritten = listing::rewrite_listing(&xml, listed_plaintext_size, etag::to_client)
        .map_err(|e| {
            S3Error::new(
                ErrorCode::BadGateway,
                "the upstream listing is not valid XML",
            )
            .with_source(e)
        })?;
    response::strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(
        http::header::CONTENT_LENGTH,
        HeaderValue::from(rewritten.len()),
    );
    Ok(Response::from_parts(parts, response::full(rewritten)))
}

/// Returns the plaintext size of a listed object from its stored size and
/// ETag: a multipart ETag (`-N`) gives the part count of the multipart
/// layout. Sizes that no ciphertext has (objects that were stored without
/// s3seal) are shown as stored.
// NOTE: an object stored without s3seal whose size happens to be a valid
// ciphertext length is listed smaller than it is. Telling it apart would
// take a HEAD per entry.
fn listed_plaintext_size(stored: u64, etag: &str) -> u64 {
    let parts = etag
        .trim_matches('"')
        .rsplit_once('-')
        .and_then(|(_, n)| n.parse::<u32>().ok())
        .filter(|&n| n > 0);
    match parts {
        Some(count) => crypto::multipart::multipart_plaintext_len(stored, count),
        None => crypto::plaintext_len(stored),
    }
    .unwrap_or(stored)
}
