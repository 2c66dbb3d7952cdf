//! CopyObject. Between two encrypting buckets the ciphertext is copied
//! server-side and only the wrapped data key is rewritten for the new name.
//! When exactly one side encrypts, the body streams through s3seal:
//! decrypted from an encrypting source, encrypted into an encrypting target.

use super::forward::{self, gateway_error_code, upstream_failure};
use super::sealed;
use crate::auth::Authenticated;
use crate::crypto::{self, EncryptBody};
use crate::policy::BucketPolicy;
use crate::proxy::body::RequestBody;
use crate::proxy::body::{CaptureErrors, ErrorSlot, ProxyBody};
use crate::proxy::response;
use crate::proxy::Context;
use crate::s3::headers::{COPIED_OBJECT_HEADERS, SEAL_META_PREFIX};
use crate::s3::range::ByteRange;
use crate::s3::{etag, listing, ErrorCode, S3Error};
use crate::upstream::{self, ResponseBody, UpstreamRequest};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Limited};

/// Largest object that CopyObject copies, as in S3: 5 GiB.
const MAX_COPY_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// Largest GetObjectTagging document read for a copy. S3 allows 10 tags of
/// at most 128 and 256 characters, which take well under this.
const MAX_TAGGING_BYTES: usize = 64 * 1024;

/// The source named by `x-amz-copy-source`.
struct CopySource {
    bucket: String,
    key: String,
    version_id: Option<String>,
}

fn parse_copy_source(headers: &HeaderMap) -> Result<CopySource, S3Error> {
    let invalid = || {
        S3Error::new(
            ErrorCode::InvalidArgument,
            "x-amz-copy-source must be bucket/key, URL-encoded, with an optional ?versionId=",
        )
    };
    let raw = headers
        .get("x-amz-copy-source")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(invalid)?;
    let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
    let path = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| invalid())?;
    let path = path.strip_prefix('/').unwrap_or(&path);
    let (bucket, key) = path.split_once('/').ok_or_else(invalid)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(invalid());
    }
    // Bucket rules match bucket names, so a source in another form, such as
    // an access point ARN, would escape the rule of the bucket behind it.
    if !crate::proxy::request::is_valid_bucket_name(bucket) {
        return Err(S3Error::new(
            ErrorCode::InvalidBucketName,
            format!(
                "the copy source bucket {bucket:?} is not a valid bucket name; s3seal's bucket rules \
                 name buckets, so access point ARNs and aliases are not accepted as copy sources"
            ),
        ));
    }
    crate::proxy::request::check_key_segments(key)?;
    let version_id = crate::proxy::request::parse_query(query)?
        .into_iter()
        .find(|(name, _)| name == "versionId")
        .map(|(_, value)| value);
    Ok(CopySource {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id,
    })
}

impl CopySource {
    fn header_value(&self) -> String {
        let mut value = format!(
            "/{}/{}",
            upstream::encode_segment(&self.bucket),
            upstream::encode_key(&self.key)
        );
        if let Some(version) = &self.version_id {
            value.push_str("?versionId=");
            value.push_str(&upstream::encode_query_component(version));
        }
        value
    }

    fn query(&self) -> String {
        match &self.version_id {
            Some(version) => format!("versionId={}", upstream::encode_query_component(version)),
            None => String::new(),
        }
    }
}

/// Serves UploadPartCopy into an upload of a passthrough bucket. A part
/// from a passthrough bucket is copied by the upstream. A part from an
/// encrypting bucket streams through s3seal, which decrypts the source and
/// uploads the plaintext as the part.
pub(crate) async fn upload_part_copy_to_plain(
    ctx: &Context<'_>,
    auth: Authenticated,
    body: RequestBody,
) -> Result<Response<ProxyBody>, S3Error> {
    let source = parse_copy_source(&ctx.parts.headers)?;
    let source_policy = ctx.proxy.policy.for_bucket(&source.bucket);
    match source_policy {
        BucketPolicy::Passthrough { .. } => {
            return forward_plain_copy(ctx, auth, body, &source).await;
        }
        BucketPolicy::Deny { .. } => return Err(denied_source(&source)),
        BucketPolicy::Encrypt { .. } => {}
    }
    let part_number = super::multipart::part_number(ctx)?;
    let upload_id = ctx
        .s3
        .query_value("uploadId")
        .unwrap_or_default()
        .to_string();
    let range = copy_source_range(ctx)?;
    let (plaintext_len, plaintext) = open_part_source(ctx, &source, &source_policy, range).await?;
    let put_response =
        upload_copied_part(ctx, &upload_id, part_number, plaintext, plaintext_len).await?;
    if !put_response.status().is_success() {
        return Ok(response::relay(put_response));
    }
    let etag_value = super::forward::upload_etag(&put_response)?.to_string();
    let (out, xml) = copy_result("CopyPartResult", &etag_value);
    Ok(response::with_parts(
        StatusCode::OK,
        out,
        response::full(xml),
    ))
}

fn denied_source(source: &CopySource) -> S3Error {
    S3Error::new(
        ErrorCode::AccessDenied,
        format!(
            "Access Denied: copy source bucket {:?} is denied",
            source.bucket
        ),
    )
}

/// The largest object S3 stores: 5 TiB.
const MAX_OBJECT_BYTES: u64 = 5 << 40;

/// Reads `x-amz-copy-source-range`, which UploadPartCopy accepts only in
/// the form `bytes=first-last`.
fn copy_source_range(ctx: &Context<'_>) -> Result<Option<ByteRange>, S3Error> {
    let Some(value) = ctx.parts.headers.get("x-amz-copy-source-range") else {
        return Ok(None);
    };
    match value.to_str().ok().and_then(crate::s3::range::parse) {
        // No S3 object is larger than 5 TiB, so such a range ends past every
        // source. Stores reject positions near `u64::MAX` in their own ways.
        Some(ByteRange::Bounded { last, .. }) if last >= MAX_OBJECT_BYTES => Err(S3Error::new(
            ErrorCode::InvalidRange,
            "The requested range is not satisfiable",
        )),
        Some(ByteRange::Bounded { first, last }) => Ok(Some(ByteRange::Bounded { first, last })),
        _ => Err(S3Error::new(
            ErrorCode::InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last",
        )),
    }
}

/// Opens the plaintext of a part's source: the range, or the whole object,
/// which S3 limits to 5 GiB as a part. An object without an envelope, in
/// an encrypting bucket whose rule allows unencrypted reads, is read as
/// stored, with the copy-source conditions checked by s3seal.
async fn open_part_source(
    ctx: &Context<'_>,
    source: &CopySource,
    source_policy: &BucketPolicy,
    range: Option<ByteRange>,
) -> Result<(u64, ProxyBody), S3Error> {
    let opened = match open_source(ctx, source, source_policy, range).await {
        Err(error)
            if crate::proxy::unencrypted::is_not_encrypted(&error)
                && ctx.proxy.policy.allows_unencrypted_reads(&source.bucket) =>
        {
            let as_stored = BucketPolicy::Passthrough { rule_index: 0 };
            open_source(ctx, source, &as_stored, range).await
        }
        other => other,
    };
    let (_, plaintext_len, plaintext) = opened?;
    if let Some(ByteRange::Bounded { first, last }) = range {
        // A range that ends past the source gets its whole tail back, which
        // is shorter than the range. `last` can be `u64::MAX`.
        if (last - first).checked_add(1) != Some(plaintext_len) {
            return Err(S3Error::new(
                ErrorCode::InvalidRange,
                "The requested range is not satisfiable",
            ));
        }
    }
    if plaintext_len > MAX_COPY_BYTES {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120",
        ));
    }
    Ok((plaintext_len, plaintext))
}

/// Sends the body of a part copy upstream as UploadPart of `upload_id`,
/// the upstream's id of the upload.
async fn upload_copied_part(
    ctx: &Context<'_>,
    upload_id: &str,
    part_number: u32,
    body: ProxyBody,
    content_length: u64,
) -> Result<Response<ResponseBody>, S3Error> {
    let query = format!(
        "partNumber={part_number}&uploadId={}",
        upstream::encode_query_component(upload_id)
    );
    let request = UpstreamRequest {
        method: Method::PUT,
        bucket: ctx.s3.bucket.clone(),
        key: ctx.s3.key.clone(),
        query,
        headers: part_copy_headers(&ctx.parts.headers),
        content_length: Some(content_length),
    };
    send_copy(ctx, request, body).await
}

/// Sends a copy's upstream write, whose body streams from the source. A
/// source that fails to decrypt fails the copy with its own error rather
/// than as an unreachable upstream.
async fn send_copy(
    ctx: &Context<'_>,
    request: UpstreamRequest,
    body: ProxyBody,
) -> Result<Response<ResponseBody>, S3Error> {
    let slot = ErrorSlot::default();
    let body = CaptureErrors::new(body, slot.clone()).boxed_unsync();
    let response = ctx
        .proxy
        .upstream
        .send(request, body)
        .await
        .map_err(|e| slot.take().unwrap_or_else(|| upstream_failure(e)))?;
    match slot.take() {
        Some(error) => Err(error),
        None => Ok(response),
    }
}

/// Picks the client's headers that apply to the upstream UploadPart of a
/// part copy.
fn part_copy_headers(client: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in client {
        let name_str = name.as_str();
        if name_str.starts_with("x-amz-server-side-encryption")
            || name_str == "x-amz-expected-bucket-owner"
            || name_str == "x-amz-request-payer"
        {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

pub(crate) async fn copy_object(
    ctx: &Context<'_>,
    target_policy: &BucketPolicy,
    auth: Authenticated,
    body: RequestBody,
) -> Result<Response<ProxyBody>, S3Error> {
    let source = parse_copy_source(&ctx.parts.headers)?;
    check_directives(&ctx.parts.headers)?;
    let source_policy = ctx.proxy.policy.for_bucket(&source.bucket);
    if let BucketPolicy::Deny { .. } = source_policy {
        return Err(denied_source(&source));
    }
    sealed::reject_seal_metadata(&ctx.parts.headers)?;
    check_changes_object(ctx, &source)?;
    let result = match (&source_policy, target_policy) {
        (BucketPolicy::Passthrough { .. }, BucketPolicy::Passthrough { .. }) => {
            return forward_plain_copy(ctx, auth, body, &source).await;
        }
        (BucketPolicy::Encrypt { .. }, BucketPolicy::Encrypt { key_name, .. }) => {
            rewrap_copy(ctx, &source, key_name).await
        }
        _ => streamed_copy(ctx, &source, &source_policy, target_policy).await,
    };
    match result {
        // An object without an envelope in an encrypting bucket whose rule
        // allows unencrypted reads is copied as stored, like a passthrough
        // source.
        Err(error)
            if crate::proxy::unencrypted::is_not_encrypted(&error)
                && ctx.proxy.policy.allows_unencrypted_reads(&source.bucket) =>
        {
            let as_stored = BucketPolicy::Passthrough { rule_index: 0 };
            streamed_copy(ctx, &source, &as_stored, target_policy).await
        }
        other => other,
    }
}

/// Forwards a server-side copy out of a passthrough bucket, after a HEAD of
/// the source shows that s3seal did not encrypt it. Such a copy of an
/// encrypted object would carry the envelope under another name, where it
/// no longer opens, or drop it with `x-amz-metadata-directive: REPLACE` and
/// leave ciphertext that reads as plaintext, so it gets InvalidObjectState
/// as a GET does.
///
/// The check fails closed: a source that the HEAD does not return fails
/// the copy as S3 would fail it. The copy-source conditions are checked
/// here against the HEAD, because some stores (moto) ignore them on a
/// copy. The forwarded copy names the source as s3seal read it and
/// carries `x-amz-copy-source-if-match` with the ETag the HEAD saw, so the
/// upstream cannot copy another object or another version of it.
///
/// NOTE: a store that ignores `x-amz-copy-source-if-match` on copies (moto
/// 5.2 does) can still copy an object that another writer replaced between
/// the HEAD and the copy.
async fn forward_plain_copy(
    ctx: &Context<'_>,
    auth: Authenticated,
    body: RequestBody,
    source: &CopySource,
) -> Result<Response<ProxyBody>, S3Error> {
    // The HEAD carries no conditions: stores evaluate combined conditions
    // differently (moto), so s3seal evaluates them below as S3 does.
    let head = send_source_read(ctx, source, Method::HEAD, HeaderMap::new()).await?;
    if !head.status().is_success() {
        return Err(source_failure(ctx, source, head.status()).await);
    }
    let source_headers = head.into_parts().0.headers;
    if sealed::has_seal_metadata(&source_headers) {
        return Err(forward::encrypted_in_passthrough(
            ctx,
            &source.bucket,
            &source.key,
        ));
    }
    check_copy_source_conditions(&ctx.parts.headers, &source_headers, false)?;

    let mut headers = ctx.parts.headers.clone();
    for (name, _) in COPY_SOURCE_CONDITIONS {
        headers.remove(name);
    }
    upper_case_directives(&mut headers);
    headers.insert(
        "x-amz-copy-source",
        HeaderValue::from_str(&source.header_value()).map_err(|e| {
            S3Error::new(ErrorCode::InvalidArgument, "invalid x-amz-copy-source").with_source(e)
        })?,
    );
    if let Some(etag) = source_headers.get(http::header::ETAG) {
        headers.insert("x-amz-copy-source-if-match", etag.clone());
    }
    forward::forward_with_headers(ctx, auth, body, headers).await
}

/// The conditions of a copy on its source, each with the header that
/// states it on a read of the source.
const COPY_SOURCE_CONDITIONS: [(&str, &str); 4] = [
    ("x-amz-copy-source-if-match", "if-match"),
    ("x-amz-copy-source-if-none-match", "if-none-match"),
    ("x-amz-copy-source-if-modified-since", "if-modified-since"),
    (
        "x-amz-copy-source-if-unmodified-since",
        "if-unmodified-since",
    ),
];

/// Rejects a copy of an object onto itself that changes nothing, as S3
/// does. Re-wrapping an object under a new key version is such a copy with
/// `x-amz-metadata-directive: REPLACE`.
fn check_changes_object(ctx: &Context<'_>, source: &CopySource) -> Result<(), S3Error> {
    let headers = &ctx.parts.headers;
    let same_object =
        source.bucket == ctx.bucket() && source.key == ctx.key() && source.version_id.is_none();
    let changes = replaces_metadata(headers)
        || headers.contains_key("x-amz-storage-class")
        || headers.contains_key("x-amz-website-redirect-location")
        || headers
            .keys()
            .any(|name| name.as_str().starts_with("x-amz-server-side-encryption"));
    if same_object && !changes {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself \
             without changing the object's metadata, storage class, website redirect location \
             or encryption attributes.",
        ));
    }
    Ok(())
}

/// The CopyObject headers whose value is `COPY` or `REPLACE`, with the
/// word their error messages use.
const DIRECTIVES: [(&str, &str); 2] = [
    ("x-amz-metadata-directive", "metadata"),
    ("x-amz-tagging-directive", "tagging"),
];

/// Rejects a CopyObject whose metadata or tagging directive is neither
/// `COPY` nor `REPLACE`, the two values that S3 documents, or that sends a
/// directive twice, with `InvalidArgument`. Any letter case is accepted.
fn check_directives(headers: &HeaderMap) -> Result<(), S3Error> {
    for (name, kind) in DIRECTIVES {
        let mut values = headers.get_all(name).iter();
        let Some(value) = values.next() else {
            continue;
        };
        if values.next().is_some() {
            return Err(S3Error::new(
                ErrorCode::InvalidArgument,
                format!("The request has more than one {name} header"),
            ));
        }
        let valid = [b"COPY".as_slice(), b"REPLACE"]
            .iter()
            .any(|directive| value.as_bytes().eq_ignore_ascii_case(directive));
        if !valid {
            return Err(S3Error::new(
                ErrorCode::InvalidArgument,
                format!("Unknown {kind} directive {value:?} in {name}: expected COPY or REPLACE"),
            ));
        }
    }
    Ok(())
}

/// Writes the directives in upper case, so that a store that compares them
/// exactly reads `replace` as s3seal does.
fn upper_case_directives(headers: &mut HeaderMap) {
    for (name, _) in DIRECTIVES {
        if let Some(value) = headers.get_mut(name) {
            let upper = value.as_bytes().to_ascii_uppercase();
            if let Ok(upper) = HeaderValue::from_bytes(&upper) {
                *value = upper;
            }
        }
    }
}

fn replaces_metadata(headers: &HeaderMap) -> bool {
    headers
        .get("x-amz-metadata-directive")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("REPLACE"))
}

/// Builds the target's headers: the client's request headers, with the
/// object headers and user metadata taken from the source unless the
/// client asked for `REPLACE`.
fn target_headers(client: &HeaderMap, source: &HeaderMap) -> HeaderMap {
    let mut headers = client.clone();
    for name in [
        "x-amz-copy-source",
        "x-amz-metadata-directive",
        "content-length",
        "content-md5",
    ] {
        headers.remove(name);
    }
    let copy_source_conditions: Vec<_> = headers
        .keys()
        .filter(|n| n.as_str().starts_with("x-amz-copy-source-"))
        .cloned()
        .collect();
    for name in copy_source_conditions {
        headers.remove(name);
    }
    if replaces_metadata(client) {
        return headers;
    }
    let client_metadata: Vec<_> = headers
        .keys()
        .filter(|n| n.as_str().starts_with("x-amz-meta-"))
        .cloned()
        .collect();
    for name in client_metadata {
        headers.remove(name);
    }
    for name in &COPIED_OBJECT_HEADERS {
        headers.remove(name);
        if let Some(value) = source.get(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    for (name, value) in source {
        if name.as_str().starts_with("x-amz-meta-") && !name.as_str().starts_with(SEAL_META_PREFIX)
        {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

/// Sends a HEAD or GET for the source object, with the client's
/// `x-amz-copy-source-if-*` conditions as plain conditional headers.
async fn read_source(
    ctx: &Context<'_>,
    source: &CopySource,
    method: Method,
    map_etags: bool,
    range: Option<ByteRange>,
) -> Result<Response<ResponseBody>, S3Error> {
    let mut headers = copy_source_conditions(&ctx.parts.headers, map_etags);
    if let Some(ByteRange::Bounded { first, last }) = range {
        let value = HeaderValue::from_str(&format!("bytes={first}-{last}"))
            .map_err(|e| S3Error::new(ErrorCode::InternalError, "invalid range").with_source(e))?;
        headers.insert(http::header::RANGE, value);
    }
    send_source_read(ctx, source, method, headers).await
}

/// Sends a GET or HEAD of the copy source with `headers`.
async fn send_source_read(
    ctx: &Context<'_>,
    source: &CopySource,
    method: Method,
    headers: HeaderMap,
) -> Result<Response<ResponseBody>, S3Error> {
    let request = UpstreamRequest {
        method,
        bucket: Some(source.bucket.clone()),
        key: Some(source.key.clone()),
        query: source.query(),
        headers,
        content_length: None,
    };
    ctx.proxy
        .upstream
        .send(request, upstream::empty_body())
        .await
        .map_err(upstream_failure)
}

/// Opens the copy source as plaintext: decrypted from an encrypting
/// bucket, as stored from a passthrough bucket. Returns the source's
/// headers, the plaintext length and the body.
async fn open_source(
    ctx: &Context<'_>,
    source: &CopySource,
    source_policy: &BucketPolicy,
    range: Option<ByteRange>,
) -> Result<(HeaderMap, u64, ProxyBody), S3Error> {
    if !matches!(source_policy, BucketPolicy::Encrypt { .. }) {
        // An object read as stored from an encrypting bucket shows clients
        // its ETag in the bucket's form, which the conditions then use.
        let bucket_encrypts = matches!(
            ctx.proxy.policy.for_bucket(&source.bucket),
            BucketPolicy::Encrypt { .. }
        );
        let response = read_source(ctx, source, Method::GET, bucket_encrypts, range).await?;
        if !response.status().is_success() {
            return Err(source_failure(ctx, source, response.status()).await);
        }
        let (parts, body) = response.into_parts();
        // Copying it would store its ciphertext as data, as a GET through
        // the passthrough rule would serve it.
        if !bucket_encrypts && sealed::has_seal_metadata(&parts.headers) {
            return Err(super::forward::encrypted_in_passthrough(
                ctx,
                &source.bucket,
                &source.key,
            ));
        }
        check_copy_source_conditions(&ctx.parts.headers, &parts.headers, bucket_encrypts)?;
        let len = sealed::header_u64(&parts.headers, "content-length").ok_or_else(|| {
            S3Error::new(
                ErrorCode::BadGateway,
                "the copy source response has no Content-Length",
            )
        })?;
        return Ok((parts.headers, len, body.boxed_unsync()));
    }
    let request = super::read::ReadRequest {
        bucket: &source.bucket,
        key: &source.key,
        query: source.query(),
        headers: copy_source_conditions(&ctx.parts.headers, true),
        client_headers: None,
        range,
        part_number: None,
    };
    match super::read::open(ctx, request).await? {
        super::read::ReadOutcome::Opened(opened) => {
            check_copy_source_conditions(&ctx.parts.headers, &opened.headers, true)?;
            Ok((opened.headers, opened.len, opened.body))
        }
        super::read::ReadOutcome::Upstream(response) => {
            Err(source_failure(ctx, source, response.status()).await)
        }
        // Only a read with the client's headers evaluates their conditions.
        super::read::ReadOutcome::NotModified(_) => Err(S3Error::new(
            ErrorCode::InternalError,
            "a copy source read evaluated the client's conditions",
        )),
    }
}

/// Evaluates the client's copy-source conditions against the source's
/// headers, because not every store does (s3s-fs 0.14 ignores them).
fn check_copy_source_conditions(
    client: &HeaderMap,
    source_headers: &HeaderMap,
    sealed_source: bool,
) -> Result<(), S3Error> {
    let conditions = copy_source_conditions(client, false);
    if conditions.is_empty() {
        return Ok(());
    }
    let stored_etag = source_headers
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let etag = if sealed_source {
        etag::to_client(stored_etag)
    } else {
        stored_etag.to_string()
    };
    let last_modified = source_headers
        .get(http::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    match crate::s3::conditional::evaluate(&conditions, &etag, last_modified) {
        None => Ok(()),
        Some(_) => Err(S3Error::new(
            ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        )),
    }
}

/// Turns the client's `x-amz-copy-source-if-*` headers into plain
/// conditional headers for reading the source.
fn copy_source_conditions(client: &HeaderMap, map_etags: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (from, to) in COPY_SOURCE_CONDITIONS {
        if let Some(value) = client.get(from) {
            headers.insert(to, value.clone());
        }
    }
    if map_etags {
        sealed::map_conditional_etags(&mut headers);
    }
    headers
}

/// UploadPartCopy into an encrypting bucket: the source range is read as
/// plaintext and encrypted as the part.
pub(crate) async fn upload_part_copy(
    ctx: &Context<'_>,
    _auth: Authenticated,
) -> Result<Response<ProxyBody>, S3Error> {
    let source = parse_copy_source(&ctx.parts.headers)?;
    let source_policy = ctx.proxy.policy.for_bucket(&source.bucket);
    if let BucketPolicy::Deny { .. } = source_policy {
        return Err(denied_source(&source));
    }
    let part_number = super::multipart::part_number(ctx)?;
    let client_id = ctx.s3.query_value("uploadId").unwrap_or_default();
    let (upstream_id, upload_key) =
        sealed::open_upload_id(ctx, client_id, ctx.bucket(), ctx.key()).await?;
    let range = copy_source_range(ctx)?;
    let (plaintext_len, plaintext) = open_part_source(ctx, &source, &source_policy, range).await?;
    let upstream_body =
        super::multipart::seal_part(plaintext, plaintext_len, &upload_key, part_number)?;

    let stored_len = crate::crypto::multipart::part_stored_len(plaintext_len);
    let put_response =
        upload_copied_part(ctx, &upstream_id, part_number, upstream_body, stored_len).await?;
    if !put_response.status().is_success() {
        return Ok(response::relay_sealed(put_response));
    }
    let etag_value = etag::to_client(super::forward::upload_etag(&put_response)?);
    let (out, xml) = copy_result("CopyPartResult", &etag_value);
    Ok(response::with_parts(
        StatusCode::OK,
        out,
        response::full(xml),
    ))
}

/// Builds a copy result document (`CopyObjectResult` or `CopyPartResult`)
/// for a copy that s3seal streamed itself, with its response headers. The
/// document has S3's namespace and a time in milliseconds, as S3 writes it.
fn copy_result(element: &str, etag_value: &str) -> (HeaderMap, String) {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let last_modified = time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{element} xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LastModified>{}</LastModified><ETag>{}</ETag></{element}>",
        crate::s3::error::escape_xml(&last_modified),
        crate::s3::error::escape_xml(etag_value)
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(xml.len()));
    (headers, xml)
}

/// Maps a failed source read to the error S3 returns for a copy. A 404 costs
/// one HEAD of the source bucket to distinguish a missing bucket from a
/// missing key, because the HEAD of an object has no error document.
async fn source_failure(ctx: &Context<'_>, source: &CopySource, status: StatusCode) -> S3Error {
    match status {
        StatusCode::NOT_FOUND if bucket_missing(ctx, &source.bucket).await => S3Error::new(
            ErrorCode::NoSuchBucket,
            "The specified bucket does not exist",
        ),
        StatusCode::NOT_FOUND => S3Error::new(
            ErrorCode::NoSuchKey,
            "The specified copy source key does not exist.",
        ),
        StatusCode::PRECONDITION_FAILED | StatusCode::NOT_MODIFIED => S3Error::new(
            ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        ),
        StatusCode::FORBIDDEN => {
            S3Error::new(ErrorCode::AccessDenied, "Access Denied to the copy source")
        }
        StatusCode::RANGE_NOT_SATISFIABLE => S3Error::new(
            ErrorCode::InvalidRange,
            "The requested range is not satisfiable",
        ),
        // The upstream rejected the source request itself, as moto 5.2
        // rejects versionId=null on an unversioned bucket.
        StatusCode::BAD_REQUEST => S3Error::new(
            ErrorCode::InvalidArgument,
            "The upstream rejected the copy source with 400 Bad Request; check its key, versionId and x-amz-copy-source-range",
        ),
        other => S3Error::new(
            ErrorCode::BadGateway,
            format!("the upstream returned {other} when reading the copy source"),
        ),
    }
}

/// Sets the target's `x-amz-tagging` as CopyObject does: the client's tags
/// with `x-amz-tagging-directive: REPLACE`, and otherwise the source's,
/// which a streamed copy reads with GetObjectTagging when the source's
/// `x-amz-tagging-count` is above 0.
async fn copy_tags(
    ctx: &Context<'_>,
    source: &CopySource,
    source_headers: &HeaderMap,
    headers: &mut HeaderMap,
) -> Result<(), S3Error> {
    let replace = headers
        .remove("x-amz-tagging-directive")
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"REPLACE"));
    if replace {
        return Ok(());
    }
    headers.remove("x-amz-tagging");
    let count = sealed::header_u64(source_headers, "x-amz-tagging-count").unwrap_or(0);
    if count == 0 {
        return Ok(());
    }

    let query = match source.query() {
        versioned if !versioned.is_empty() => format!("tagging&{versioned}"),
        _ => "tagging".to_string(),
    };
    let request = UpstreamRequest {
        method: Method::GET,
        bucket: Some(source.bucket.clone()),
        key: Some(source.key.clone()),
        query,
        headers: HeaderMap::new(),
        content_length: None,
    };
    let response = ctx
        .proxy
        .upstream
        .send(request, upstream::empty_body())
        .await
        .map_err(upstream_failure)?;
    let status = response.status();
    if !status.is_success() {
        return Err(S3Error::new(
            ErrorCode::BadGateway,
            format!("the upstream returned {status} when reading the copy source's tags"),
        ));
    }
    let body = Limited::new(response.into_body(), MAX_TAGGING_BYTES)
        .collect()
        .await
        .map_err(|e| {
            S3Error::new(
                gateway_error_code(e.as_ref()),
                "failed to read the copy source's tags",
            )
            .with_source(e.to_string())
        })?
        .to_bytes();
    let tagging = listing::tagging_header(&body).map_err(|e| {
        S3Error::new(
            ErrorCode::BadGateway,
            "the copy source's tags are not valid XML",
        )
        .with_source(e.to_string())
    })?;
    if !tagging.is_empty() {
        let value = HeaderValue::from_str(&tagging).map_err(|e| {
            S3Error::new(ErrorCode::InternalError, "invalid tagging header").with_source(e)
        })?;
        headers.insert("x-amz-tagging", value);
    }
    Ok(())
}

/// Returns whether the upstream returns 404 for a HEAD of `bucket`. Any
/// other outcome, a failed request included, counts as present.
async fn bucket_missing(ctx: &Context<'_>, bucket: &str) -> bool {
    let request = UpstreamRequest {
        method: Method::HEAD,
        bucket: Some(bucket.to_string()),
        key: None,
        query: String::new(),
        headers: HeaderMap::new(),
        content_length: None,
    };
    ctx.proxy
        .upstream
        .send(request, upstream::empty_body())
        .await
        .is_ok_and(|response| response.status() == StatusCode::NOT_FOUND)
}

async fn rewrap_copy(
    ctx: &Context<'_>,
    source: &CopySource,
    key_name: &str,
) -> Result<Response<ProxyBody>, S3Error> {
    let head = read_source(ctx, source, Method::HEAD, true, None).await?;
    if !head.status().is_success() {
        return Err(source_failure(ctx, source, head.status()).await);
    }
    let source_headers = head.into_parts().0.headers;
    check_copy_source_conditions(&ctx.parts.headers, &source_headers, true)?;
    if super::read::is_multipart_layout(&source_headers) {
        // A server-side copy of a multipart object gets a single-part ETag,
        // from which listings could no longer compute its size.
        let policy = ctx.proxy.policy.for_bucket(&source.bucket);
        let target = BucketPolicy::Encrypt {
            key_name: key_name.to_string(),
            rule_index: 0,
        };
        return streamed_copy(ctx, source, &policy, &target).await;
    }
    let envelope = match sealed::envelope_from_headers(&source_headers) {
        Some(envelope) => envelope?,
        None => return Err(sealed::not_encrypted(&source.bucket, &source.key)),
    };
    let data_key = sealed::open_data_key(ctx, &envelope, &source.bucket, &source.key).await?;
    let new_envelope =
        sealed::wrap_data_key(ctx, key_name, &data_key, ctx.bucket(), ctx.key()).await?;

    let mut headers = target_headers(&ctx.parts.headers, &source_headers);
    // `If-Match` and `If-None-Match` name the target's ETag as clients see
    // it, so they go upstream in the upstream's form.
    sealed::map_conditional_etags(&mut headers);
    sealed::envelope_to_headers(&new_envelope, &mut headers)?;
    headers.insert(
        "x-amz-copy-source",
        HeaderValue::from_str(&source.header_value()).map_err(|e| {
            S3Error::new(ErrorCode::InvalidArgument, "invalid x-amz-copy-source").with_source(e)
        })?,
    );
    headers.insert(
        "x-amz-metadata-directive",
        HeaderValue::from_static("REPLACE"),
    );
    // The copy must take the exact ciphertext whose envelope was just read.
    if let Some(source_etag) = source_headers.get(http::header::ETAG) {
        headers.insert("x-amz-copy-source-if-match", source_etag.clone());
    }
    let request = UpstreamRequest {
        method: Method::PUT,
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
    rewrite_result_etag(ctx, upstream_response).await
}

/// Relays a copy result with its ETag in the client form.
async fn rewrite_result_etag(
    ctx: &Context<'_>,
    upstream_response: Response<ResponseBody>,
) -> Result<Response<ProxyBody>, S3Error> {
    if !upstream_response.status().is_success() {
        return Ok(response::relay_sealed(upstream_response));
    }
    let (mut parts, body) = upstream_response.into_parts();
    let limit = ctx.proxy.config.server.max_xml_body_bytes;
    let bytes = super::forward::read_upstream_xml(body, limit, "copy result").await?;
    if listing::find_text(&bytes, "Code").is_some() {
        // S3 can report a failed copy as 200 with an <Error> document.
        return Err(S3Error::new(
            ErrorCode::BadGateway,
            "the upstream reported the copy as failed",
        ));
    }
    let rewritten = listing::rewrite_etags(&bytes, etag::to_client).map_err(|e| {
        S3Error::new(
            ErrorCode::BadGateway,
            "the upstream copy result is not valid XML",
        )
        .with_source(e)
    })?;
    response::strip_hop_by_hop(&mut parts.headers);
    response::strip_sealed_headers(&mut parts.headers);
    // Some stores (moto) repeat the copy's ETag in a header.
    sealed::map_response_etag(&mut parts.headers);
    parts.headers.insert(
        http::header::CONTENT_LENGTH,
        HeaderValue::from(rewritten.len()),
    );
    Ok(Response::from_parts(parts, response::full(rewritten)))
}

async fn streamed_copy(
    ctx: &Context<'_>,
    source: &CopySource,
    source_policy: &BucketPolicy,
    target_policy: &BucketPolicy,
) -> Result<Response<ProxyBody>, S3Error> {
    let (source_headers, plaintext_len, plaintext) =
        open_source(ctx, source, source_policy, None).await?;
    if plaintext_len > MAX_COPY_BYTES {
        return Err(S3Error::new(ErrorCode::InvalidRequest, "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120"));
    }

    let mut headers = target_headers(&ctx.parts.headers, &source_headers);
    headers.remove(http::header::CONTENT_ENCODING);
    copy_tags(ctx, source, &source_headers, &mut headers).await?;
    let (upstream_body, content_length) = match target_policy {
        BucketPolicy::Encrypt { key_name, .. } => {
            let (data_key, envelope) =
                sealed::new_data_key(ctx, key_name, ctx.bucket(), ctx.key()).await?;
            sealed::map_conditional_etags(&mut headers);
            sealed::envelope_to_headers(&envelope, &mut headers)?;
            let body = EncryptBody::new(plaintext, plaintext_len, &data_key, 0)
                .map_err(super::objects::crypto_error)?;
            (body.boxed_unsync(), crypto::ciphertext_len(plaintext_len))
        }
        _ => (plaintext, plaintext_len),
    };
    if let Some(value) = source_headers.get(http::header::CONTENT_ENCODING) {
        if !replaces_metadata(&ctx.parts.headers) {
            headers.insert(http::header::CONTENT_ENCODING, value.clone());
        }
    }
    let request = UpstreamRequest {
        method: Method::PUT,
        bucket: ctx.s3.bucket.clone(),
        key: ctx.s3.key.clone(),
        query: String::new(),
        headers,
        content_length: Some(content_length),
    };
    let put_response = send_copy(ctx, request, upstream_body).await?;
    if !put_response.status().is_success() {
        return Ok(response::relay_sealed(put_response));
    }
    let mut etag_value = super::forward::upload_etag(&put_response)?.to_string();
    if matches!(target_policy, BucketPolicy::Encrypt { .. }) {
        etag_value = etag::to_client(&etag_value);
    }
    let (mut headers, xml) = copy_result("CopyObjectResult", &etag_value);
    if let Some(version) = put_response.headers().get("x-amz-version-id") {
        headers.insert("x-amz-version-id", version.clone());
    }
    Ok(response::with_parts(
        StatusCode::OK,
        headers,
        response::full(xml),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_result_has_namespace_and_milliseconds() {
        let (headers, xml) = copy_result("CopyObjectResult", "\"abc-0\"");
        assert!(
            xml.contains("<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"),
            "{xml}"
        );
        let start = xml.find("<LastModified>").unwrap() + "<LastModified>".len();
        let end = xml.find("</LastModified>").unwrap();
        let time = &xml[start..end];
        assert_eq!(time.len(), "2026-01-01T00:00:00.000Z".len(), "{time}");
        assert!(time.ends_with('Z'), "{time}");
        assert!(xml.contains("<ETag>&quot;abc-0&quot;</ETag>"), "{xml}");
        assert_eq!(headers[http::header::CONTENT_LENGTH], xml.len().to_string());
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn copy_source_parsed_and_reencoded() {
        let source = parse_copy_source(&headers(&[(
            "x-amz-copy-source",
            "/bkt/a%20b%2Bc?versionId=v1",
        )]))
        .unwrap();
        assert_eq!(source.bucket, "bkt");
        assert_eq!(source.key, "a b+c");
        assert_eq!(source.version_id.as_deref(), Some("v1"));
        assert_eq!(source.header_value(), "/bkt/a%20b%2Bc?versionId=v1");
        assert!(parse_copy_source(&headers(&[("x-amz-copy-source", "bkt")])).is_err());
    }

    #[test]
    fn copy_directive_takes_source_metadata() {
        let client = headers(&[
            ("x-amz-copy-source", "/b/k"),
            ("x-amz-meta-client", "1"),
            ("content-type", "text/x"),
        ]);
        let source = headers(&[
            ("x-amz-meta-src", "2"),
            ("content-type", "image/png"),
            ("x-amz-meta-s3seal-format", "1"),
        ]);
        let out = target_headers(&client, &source);
        assert_eq!(out.get("x-amz-meta-src").unwrap(), "2");
        assert!(out.get("x-amz-meta-client").is_none());
        assert!(out.get("x-amz-meta-s3seal-format").is_none());
        assert_eq!(out.get("content-type").unwrap(), "image/png");
        assert!(out.get("x-amz-copy-source").is_none());
    }

    #[test]
    fn directives_checked() {
        let cases = [
            ("x-amz-metadata-directive", "COPY", true),
            ("x-amz-metadata-directive", "replace", true),
            ("x-amz-metadata-directive", "BOGUS", false),
            ("x-amz-metadata-directive", "", false),
            ("x-amz-tagging-directive", "Copy", true),
            ("x-amz-tagging-directive", "REPLACE ", false),
        ];
        for (name, value, valid) in cases {
            let result = check_directives(&headers(&[(name, value)]));
            assert_eq!(result.is_ok(), valid, "{name}: {value:?}");
            if let Err(error) = result {
                assert_eq!(
                    error.code(),
                    ErrorCode::InvalidArgument,
                    "{name}: {value:?}"
                );
            }
        }
        assert!(check_directives(&HeaderMap::new()).is_ok());

        let mut twice = headers(&[("x-amz-metadata-directive", "COPY")]);
        twice.append(
            "x-amz-metadata-directive",
            HeaderValue::from_static("BOGUS"),
        );
        let error = check_directives(&twice).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidArgument);

        let mut lower = headers(&[("x-amz-tagging-directive", "replace")]);
        upper_case_directives(&mut lower);
        assert_eq!(lower["x-amz-tagging-directive"], "REPLACE");
    }

    #[test]
    fn replace_directive_keeps_request_metadata() {
        let client = headers(&[
            ("x-amz-metadata-directive", "REPLACE"),
            ("x-amz-meta-client", "1"),
            ("content-type", "text/x"),
        ]);
        let source = headers(&[("x-amz-meta-src", "2"), ("content-type", "image/png")]);
        let out = target_headers(&client, &source);
        assert_eq!(out.get("x-amz-meta-client").unwrap(), "1");
        assert!(out.get("x-amz-meta-src").is_none());
        assert_eq!(out.get("content-type").unwrap(), "text/x");
    }
}
