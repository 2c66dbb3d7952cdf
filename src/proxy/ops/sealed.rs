//! Helpers shared by the operations on encrypting buckets: the envelope in
//! object metadata, data-key generation and unwrapping, ETag mapping and
//! header hygiene.

use crate::auth::{PayloadMode, VerifiedChecksum};
use crate::crypto::{self, DataKey, Envelope};
use crate::keys::{KeyAccessError, KeyringError, ObjectRef};
use crate::policy::BucketPolicy;
use crate::proxy::unencrypted::NotEncrypted;
use crate::proxy::Context;
use crate::proxy::ProxyBody;
use crate::s3::headers::{PLAINTEXT_DIGEST_HEADERS, SEAL_META_PREFIX};
use crate::s3::{etag, ErrorCode, S3Error};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Headers whose values are ETags or ETag lists that clients copied from
/// what s3seal showed them.
static CONDITIONAL_ETAG_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("if-match"),
    HeaderName::from_static("if-none-match"),
    HeaderName::from_static("x-amz-copy-source-if-match"),
    HeaderName::from_static("x-amz-copy-source-if-none-match"),
];

/// The metadata header of each envelope field: `x-amz-meta-s3seal-` and
/// the field's name.
static ENVELOPE_HEADERS: [(&str, HeaderName); 5] = [
    (
        crypto::field::FORMAT,
        HeaderName::from_static("x-amz-meta-s3seal-format"),
    ),
    (
        crypto::field::KEK,
        HeaderName::from_static("x-amz-meta-s3seal-kek"),
    ),
    (
        crypto::field::KEK_VERSION,
        HeaderName::from_static("x-amz-meta-s3seal-kek-version"),
    ),
    (
        crypto::field::WRAPPED_KEY,
        HeaderName::from_static("x-amz-meta-s3seal-wrapped-key"),
    ),
    (
        crypto::field::COMMITMENT,
        HeaderName::from_static("x-amz-meta-s3seal-commitment"),
    ),
];

/// Returns the metadata header of an envelope field.
fn envelope_header(field: &str) -> Option<&'static HeaderName> {
    ENVELOPE_HEADERS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, header)| header)
}

/// Rejects client attempts to set s3seal's own metadata.
pub(crate) fn reject_seal_metadata(headers: &HeaderMap) -> Result<(), S3Error> {
    match headers
        .keys()
        .find(|name| name.as_str().starts_with(SEAL_META_PREFIX))
    {
        Some(name) => Err(S3Error::new(
            ErrorCode::InvalidArgument,
            format!("metadata header {name} is reserved for s3seal's encryption envelope"),
        )),
        None => Ok(()),
    }
}

/// Removes the framing headers of an aws-chunked body that s3seal decoded,
/// so that the upstream receives a plain body.
pub(crate) fn strip_transfer_encoding_headers(headers: &mut HeaderMap, mode: PayloadMode) {
    // Several header lines make one list, as HTTP reads them.
    let values: Vec<&str> = headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !values.is_empty() {
        let rest: Vec<&str> = values
            .iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|token| !token.eq_ignore_ascii_case("aws-chunked") && !token.is_empty())
            .collect();
        let rest = rest.join(", ");
        if rest.is_empty() {
            headers.remove(http::header::CONTENT_ENCODING);
        } else if let Ok(value) = HeaderValue::from_str(&rest) {
            headers.insert(http::header::CONTENT_ENCODING, value);
        }
    }
    if matches!(
        mode,
        PayloadMode::StreamingSignedTrailer | PayloadMode::StreamingUnsignedTrailer
    ) {
        // The checksum named here arrived in a trailer that is not forwarded.
        headers.remove("x-amz-sdk-checksum-algorithm");
    }
}

/// Removes the digests that describe a plaintext body that goes upstream
/// as ciphertext.
pub(crate) fn strip_plaintext_digests(headers: &mut HeaderMap) {
    crate::s3::headers::remove_matching(headers, |name| PLAINTEXT_DIGEST_HEADERS.contains(name));
}

/// Adds the `x-amz-checksum-*` value that the client's body was verified
/// against to a successful upload response, as S3 returns it. The
/// upstream's own checksums describe the ciphertext and were removed.
/// `whole_object` adds `x-amz-checksum-type: FULL_OBJECT`, which S3 returns
/// for PutObject but not for UploadPart.
pub(crate) fn add_verified_checksum(
    response: &mut http::Response<ProxyBody>,
    checksum: &VerifiedChecksum,
    whole_object: bool,
) {
    if !response.status().is_success() {
        return;
    }
    let Some((name, value)) = checksum.header() else {
        return;
    };
    let headers = response.headers_mut();
    headers.insert(name, value);
    if whole_object {
        headers.insert(
            "x-amz-checksum-type",
            HeaderValue::from_static("FULL_OBJECT"),
        );
    }
}

/// Maps client-visible ETags in conditional headers back to upstream ETags.
pub(crate) fn map_conditional_etags(headers: &mut HeaderMap) {
    rewrite_conditional_etags(headers, etag::list_to_upstream);
}

/// Joins the repeated lines of each ETag condition into one line, for a
/// passthrough bucket, whose ETags need no mapping. Some stores, the
/// embedded one among them, reject a repeated condition header.
pub(crate) fn join_conditional_etags(headers: &mut HeaderMap) {
    // Without a repeated header, the usual case, nothing is joined.
    if headers.len() > headers.keys_len() {
        rewrite_conditional_etags(headers, str::to_owned);
    }
}

/// Replaces each ETag condition with `rewrite` of its list. Repeated
/// lines form one list (RFC 9110 section 5.3), which goes upstream as one
/// line.
fn rewrite_conditional_etags(headers: &mut HeaderMap, rewrite: impl Fn(&str) -> String) {
    for name in &CONDITIONAL_ETAG_HEADERS {
        let lines: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if lines.is_empty() {
            continue;
        }
        if let Ok(rewritten) = HeaderValue::from_str(&rewrite(&lines.join(", "))) {
            headers.insert(name.clone(), rewritten);
        }
    }
}

/// Maps the `ETag` header of an upstream response to the client form.
pub(crate) fn map_response_etag(headers: &mut HeaderMap) {
    let Some(value) = headers
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    if let Ok(mapped) = HeaderValue::from_str(&etag::to_client(value)) {
        headers.insert(http::header::ETAG, mapped);
    }
}

/// Returns whether object headers carry any of s3seal's metadata, so that
/// the object is s3seal's ciphertext even when part of its envelope was
/// removed.
pub(crate) fn has_seal_metadata(headers: &HeaderMap) -> bool {
    headers
        .keys()
        .any(|name| name.as_str().starts_with(SEAL_META_PREFIX))
}

/// Reads the envelope from object metadata headers. Returns `None` when
/// the object carries no envelope at all.
pub(crate) fn envelope_from_headers(headers: &HeaderMap) -> Option<Result<Envelope, S3Error>> {
    headers.get(&ENVELOPE_HEADERS[0].1)?;
    let get = |field: &str| -> Option<&str> {
        headers
            .get(envelope_header(field)?)
            .and_then(|v| v.to_str().ok())
    };
    Some(Envelope::from_fields(get).map_err(|e| {
        S3Error::new(
            ErrorCode::InternalError,
            "the stored object's encryption metadata is invalid",
        )
        .with_source(e)
    }))
}

/// Writes the envelope into object metadata headers.
pub(crate) fn envelope_to_headers(
    envelope: &Envelope,
    headers: &mut HeaderMap,
) -> Result<(), S3Error> {
    for (field, value) in envelope.to_fields() {
        let name = envelope_header(field).ok_or_else(|| {
            S3Error::new(
                ErrorCode::InternalError,
                format!("envelope field {field:?} has no metadata header"),
            )
        })?;
        let value = HeaderValue::try_from(value).map_err(|e| {
            S3Error::new(ErrorCode::InternalError, "invalid envelope field value").with_source(e)
        })?;
        headers.insert(name.clone(), value);
    }
    Ok(())
}

/// Generates a fresh data key for `bucket`/`key` and wraps it under the
/// current version of the bucket's key-encryption key.
pub(crate) async fn new_data_key(
    ctx: &Context<'_>,
    key_name: &str,
    bucket: &str,
    key: &str,
) -> Result<(DataKey, Envelope), S3Error> {
    let object = ObjectRef { bucket, key };
    ctx.proxy
        .keys
        .generate(&ctx.access, key_name, object, |kek| {
            let data_key = DataKey::generate(&mut rand::rngs::OsRng);
            let envelope = crypto::wrap_data_key(
                kek.secret,
                kek.name,
                kek.version,
                &data_key,
                bucket,
                key,
                &mut rand::rngs::OsRng,
            );
            Ok::<_, std::convert::Infallible>((data_key, envelope))
        })
        .await
        .map_err(key_access_error)
}

/// Wraps an existing data key for `bucket`/`key` under the current version
/// of `key_name`, as the target of a copy.
pub(crate) async fn wrap_data_key(
    ctx: &Context<'_>,
    key_name: &str,
    data_key: &DataKey,
    bucket: &str,
    key: &str,
) -> Result<Envelope, S3Error> {
    let object = ObjectRef { bucket, key };
    ctx.proxy
        .keys
        .wrap(&ctx.access, key_name, object, |kek| {
            Ok::<_, std::convert::Infallible>(crypto::wrap_data_key(
                kek.secret,
                kek.name,
                kek.version,
                data_key,
                bucket,
                key,
                &mut rand::rngs::OsRng,
            ))
        })
        .await
        .map_err(key_access_error)
}

/// Unwraps the data key of `bucket`/`key` from its envelope.
pub(crate) async fn open_data_key(
    ctx: &Context<'_>,
    envelope: &Envelope,
    bucket: &str,
    key: &str,
) -> Result<DataKey, S3Error> {
    let object = ObjectRef { bucket, key };
    let kek_name = &envelope.kek_name;
    let opened = ctx
        .proxy
        .keys
        .unwrap(&ctx.access, kek_name, envelope.kek_version, object, |kek| {
            crypto::unwrap_data_key(kek.secret, envelope, bucket, key)
        })
        .await;
    opened.map_err(|error| match error {
        KeyAccessError::Operation(e) => S3Error::new(
            ErrorCode::AccessDenied,
            "the object's data key failed authentication: it was not written under this bucket and key, its metadata was altered, or the keyring has other material under the key version it names",
        )
        .with_source(e),
        // A version the keyring lacks does not appear on a retry, so the
        // status is one that clients do not retry.
        KeyAccessError::Key(
            error @ (KeyringError::KeyNotFound(_) | KeyringError::VersionNotFound { .. }),
        ) => S3Error::new(
            ErrorCode::AccessDenied,
            "the key-encryption key version this object was written under is not in s3seal's keyring",
        )
        .with_source(error)
        .operator_fault(),
        other => key_access_error(other),
    })
}

/// Maps a failed key access: a missing key is an internal error, and an
/// audit record that could not be written is 503, which clients retry.
fn key_access_error<E>(error: KeyAccessError<E>) -> S3Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    match error {
        KeyAccessError::Audit(_) => S3Error::new(
            ErrorCode::ServiceUnavailable,
            "the key-access audit log cannot be written, so s3seal rejects requests that need a key until the log can be written again; the server log names the cause",
        )
        .with_source(error),
        _ => S3Error::new(
            ErrorCode::InternalError,
            "a key-encryption key needed for this object is not available",
        )
        .with_source(error),
    }
}

/// Returns the error for an object in an encrypting bucket that carries no
/// envelope.
/// The error carries [`NotEncrypted`] as its source, which the proxy
/// checks to serve the object as stored when the bucket's rule sets
/// `allow_unencrypted_reads`.
pub(crate) fn not_encrypted(bucket: &str, key: &str) -> S3Error {
    S3Error::new(
        ErrorCode::AccessDenied,
        format!(
            "object {key:?} in encrypting bucket {bucket:?} has no s3seal encryption metadata \
             (it was written without s3seal, or the upstream lost its metadata), so it is treated \
             as not encrypted; reading it is refused"
        ),
    )
    .with_source(NotEncrypted)
}

/// Reads a numeric header.
pub(crate) fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Makes the client-facing upload id: the upstream id with the upload's
/// data key wrapped under the KEK version that wrapped the object envelope.
pub(crate) async fn seal_upload_id(
    ctx: &Context<'_>,
    envelope: &Envelope,
    upload_key: &DataKey,
    bucket: &str,
    key: &str,
    upstream_upload_id: &str,
) -> Result<String, S3Error> {
    let object = ObjectRef { bucket, key };
    ctx.proxy
        .keys
        .wrap_version(
            &ctx.access,
            &envelope.kek_name,
            envelope.kek_version,
            object,
            |kek| {
                let binding = crypto::multipart::UploadBinding {
                    kek_name: kek.name,
                    kek_version: kek.version,
                    bucket,
                    key,
                    upstream_upload_id,
                };
                Ok::<_, std::convert::Infallible>(crypto::multipart::seal_upload_id(
                    kek.secret,
                    binding,
                    upload_key,
                    &mut rand::rngs::OsRng,
                ))
            },
        )
        .await
        .map_err(key_access_error)
}

/// Returns the error for an upload id that s3seal did not issue for the
/// request's bucket and key, or whose upload is gone.
pub(crate) fn no_such_upload() -> S3Error {
    S3Error::new(
        ErrorCode::NoSuchUpload,
        "The specified upload does not exist, or its upload id was not issued by s3seal's CreateMultipartUpload",
    )
}

/// Returns the upstream upload id and the upload's data key from a
/// client-facing upload id.
pub(crate) async fn open_upload_id(
    ctx: &Context<'_>,
    client_id: &str,
    bucket: &str,
    key: &str,
) -> Result<(String, DataKey), S3Error> {
    let parsed = crypto::multipart::parse_upload_id(client_id).map_err(|_| no_such_upload())?;
    let Some((kek_name, kek_version, wrapped)) = parsed.token else {
        return Err(no_such_upload());
    };
    // An id that names a key or key version the keyring lacks was not
    // issued with this keyring, or the keyring lost that version, so it
    // gets no key access and no audit record. The log line names the
    // version, while the level stays that of a client error, because any
    // client can send such an id.
    if let Err(missing) = ctx.proxy.keys.keyring().version(kek_name, kek_version) {
        return Err(no_such_upload().with_source(format!("the upload id names {missing}")));
    }
    // An upload of this bucket was created under the bucket rule's key. An
    // id that names another key comes from another bucket's upload, whose
    // unwrap would fail on the bucket binding, so that key is not touched.
    // NOTE: a rule whose key changed after CreateMultipartUpload fails the
    // uploads still open under the old key with NoSuchUpload.
    if let BucketPolicy::Encrypt { key_name, .. } = ctx.proxy.policy.for_bucket(bucket) {
        if key_name != kek_name {
            return Err(no_such_upload());
        }
    }
    let object = ObjectRef { bucket, key };
    let opened = ctx
        .proxy
        .keys
        .unwrap(&ctx.access, kek_name, kek_version, object, |kek| {
            let binding = crypto::multipart::UploadBinding {
                kek_name,
                kek_version,
                bucket,
                key,
                upstream_upload_id: parsed.upstream,
            };
            crypto::multipart::open_upload_token(kek.secret, binding, wrapped)
        })
        .await;
    let upload_key = opened.map_err(|error| match error {
        KeyAccessError::Operation(e) => no_such_upload().with_source(e),
        other => key_access_error(other),
    })?;
    Ok((parsed.upstream.to_string(), upload_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_header_per_field() {
        let fields = [
            crypto::field::FORMAT,
            crypto::field::KEK,
            crypto::field::KEK_VERSION,
            crypto::field::WRAPPED_KEY,
            crypto::field::COMMITMENT,
        ];
        for field in fields {
            let header = envelope_header(field).unwrap_or_else(|| panic!("{field} has no header"));
            assert_eq!(header.as_str(), format!("{SEAL_META_PREFIX}{field}"));
        }
        assert_eq!(ENVELOPE_HEADERS.len(), fields.len());
    }

    #[test]
    fn aws_chunked_stripped_across_header_lines() {
        let mut headers = HeaderMap::new();
        headers.append(
            http::header::CONTENT_ENCODING,
            HeaderValue::from_static("aws-chunked"),
        );
        headers.append(
            http::header::CONTENT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
        strip_transfer_encoding_headers(&mut headers, PayloadMode::StreamingSigned);
        let values: Vec<_> = headers
            .get_all(http::header::CONTENT_ENCODING)
            .iter()
            .collect();
        assert_eq!(values, ["gzip"]);

        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_ENCODING,
            HeaderValue::from_static("aws-chunked"),
        );
        strip_transfer_encoding_headers(&mut headers, PayloadMode::StreamingSigned);
        assert!(headers.get(http::header::CONTENT_ENCODING).is_none());
    }
}
