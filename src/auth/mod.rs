//! Client authentication: AWS Signature Version 4 verified as Amazon S3
//! verifies it, for the `Authorization` header and for presigned URLs, and
//! verification of the request body against what the request declared.
//!
//! `auth` decides who the client is. It never touches keys of the object
//! encryption or ciphertext. The clock is always a parameter.

mod body;
mod checksum;
mod chunked;
mod payload;
mod request;
mod sigv4;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::{Duration, SystemTime};

use http::request::Parts;

use crate::keys::SecretString;
use crate::s3::{ErrorCode, S3Error};

pub use body::{VerifiedBody, VerifiedChecksum};
pub(crate) use checksum::ChecksumAlgorithm;
pub use chunked::{MAX_CHUNK_HEADER_LEN, MAX_TRAILER_SECTION_LEN};
pub use payload::PayloadMode;
pub use request::MAX_PRESIGNED_EXPIRES_SECS;

use crate::s3::canonical::{
    self, canonical_headers, canonical_query, normalized_uri, raw_uri, CanonicalParts,
};
use checksum::{decode_content_md5, DigestCheck, DigestKind};
use chunked::{ChunkSigner, ChunkedDecoder};
use request::{parse_claim, Mechanism, PARAM_SIGNATURE};
use sigv4::{credential_scope, string_to_sign, SigningKey, SERVICE};

/// The source of client secrets, keyed by access key id.
pub trait CredentialStore: Send + Sync {
    /// Returns the secret access key of `access_key_id`, or `None` when the
    /// key is unknown.
    fn secret_access_key(&self, access_key_id: &str) -> Option<SecretString>;

    /// Returns the cache of signing keys derived from this store's secrets,
    /// or `None` to derive the key of every request anew.
    fn signing_keys(&self) -> Option<&SigningKeyCache> {
        None
    }
}

/// Signing keys derived from client secrets, one per access key id, for the
/// scope date and region it last signed with. Only access key ids whose
/// secret was found are added, so there is one entry per client at most.
#[derive(Default)]
pub struct SigningKeyCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, CachedSigningKey>>,
}

struct CachedSigningKey {
    date: String,
    region: String,
    key: SigningKey,
}

impl SigningKeyCache {
    fn get(&self, access_key_id: &str, date: &str, region: &str) -> Option<SigningKey> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(access_key_id)
            .filter(|cached| cached.date == date && cached.region == region)
            .map(|cached| cached.key.clone())
    }

    fn insert(&self, access_key_id: &str, date: &str, region: &str, key: &SigningKey) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.insert(
            access_key_id.to_owned(),
            CachedSigningKey {
                date: date.to_owned(),
                region: region.to_owned(),
                key: key.clone(),
            },
        );
    }
}

impl fmt::Debug for SigningKeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyCache").finish_non_exhaustive()
    }
}

/// Returns the signing key of `access_key_id` for a scope date and region,
/// from the store's cache when it has one, or `None` when the key is
/// unknown.
fn signing_key(
    store: &dyn CredentialStore,
    access_key_id: &str,
    date: &str,
    region: &str,
) -> Option<SigningKey> {
    let cache = store.signing_keys();
    if let Some(key) = cache.and_then(|cache| cache.get(access_key_id, date, region)) {
        return Some(key);
    }
    let secret = store.secret_access_key(access_key_id)?;
    let key = SigningKey::derive(secret.expose(), date, region, SERVICE);
    if let Some(cache) = cache {
        cache.insert(access_key_id, date, region, &key);
    }
    Some(key)
}

/// Settings of signature verification.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The signing regions accepted in the credential scope. The first one
    /// is named in the error for any other region. An empty list accepts
    /// every region.
    pub regions: Vec<String>,
    /// The maximum difference between the request time and the clock. For
    /// header authentication a larger difference fails with
    /// RequestTimeTooSkewed. For presigned URLs it bounds how far in the
    /// future `X-Amz-Date` may be.
    pub max_clock_skew: Duration,
}

impl Default for AuthConfig {
    /// Accepts `us-east-1` with S3's 15 minutes of clock skew.
    fn default() -> Self {
        Self {
            regions: vec!["us-east-1".to_string()],
            max_clock_skew: request::DEFAULT_MAX_CLOCK_SKEW,
        }
    }
}

/// A request whose SigV4 signature has been verified.
pub struct Authenticated {
    access_key_id: String,
    payload_mode: PayloadMode,
    /// The chunk signature chain, seeded with the request signature.
    chunk_signer: ChunkSigner,
}

impl fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticated")
            .field("access_key_id", &self.access_key_id)
            .field("payload_mode", &self.payload_mode)
            .finish_non_exhaustive()
    }
}

/// Verifies the SigV4 signature of a request head at time `now`.
///
/// The errors are S3's:
///
/// - AccessDenied for an anonymous, expired or not yet valid request.
/// - InvalidAccessKeyId, SignatureDoesNotMatch and RequestTimeTooSkewed.
/// - AuthorizationHeaderMalformed or AuthorizationQueryParametersError for
///   a malformed `Authorization` header or presigned query, and for a
///   region that is not accepted.
/// - InvalidRequest for SigV2 or a missing `x-amz-content-sha256`.
/// - InvalidArgument for an unknown `x-amz-content-sha256` value.
/// - NotImplemented for SigV4a.
///
/// The body is not covered until it is read through
/// [`Authenticated::verify_body`].
/// - AccessDenied for an `x-amz-*` header outside `SignedHeaders`, as S3
///   rejects it, because s3seal signs every header it forwards. Only
///   `x-amz-content-sha256` may go unsigned: its value is part of the
///   canonical request anyway. Other headers outside `SignedHeaders` are
///   not covered by the signature.
pub fn authenticate(
    parts: &Parts,
    store: &dyn CredentialStore,
    config: &AuthConfig,
    now: SystemTime,
) -> Result<Authenticated, S3Error> {
    let claim = parse_claim(parts, config, now)?;
    let payload_mode = PayloadMode::parse(&claim.payload_hash)?;

    let Some(key) = signing_key(
        store,
        &claim.access_key_id,
        &claim.scope_date,
        &claim.region,
    ) else {
        return Err(S3Error::new(
            ErrorCode::InvalidAccessKeyId,
            "The AWS Access Key Id you provided does not exist in our records.",
        ));
    };
    let scope = credential_scope(&claim.scope_date, &claim.region);

    let excluded = match claim.mechanism {
        Mechanism::Header => None,
        Mechanism::Presigned => Some(PARAM_SIGNATURE),
    };
    let host = parts
        .uri
        .authority()
        .map(|authority| authority.as_str())
        .unwrap_or_default();
    let canonical = CanonicalParts {
        method: parts.method.as_str(),
        query: canonical_query(parts.uri.query(), excluded),
        headers: canonical_headers(&parts.headers, &claim.signed_headers, host.as_bytes()),
        signed_headers: &claim.signed_headers_text,
        payload_hash: &claim.payload_hash,
    };

    // Clients disagree on which reserved characters of a path to escape, so
    // the canonical URI is first rebuilt with every reserved byte escaped,
    // then taken exactly as sent.
    let normalized = normalized_uri(parts.uri.path());
    let raw = raw_uri(parts.uri.path());
    let candidates = if raw == normalized {
        vec![normalized]
    } else {
        vec![normalized, raw]
    };
    let verified = candidates.iter().any(|uri| {
        let request = canonical.with_uri(uri);
        let expected = key.sign(&string_to_sign(&claim.amz_date, &scope, &request));
        expected.matches(&claim.signature)
    });
    if !verified {
        return Err(S3Error::new(
            ErrorCode::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided. \
             Check your key and signing method.",
        ));
    }

    let unsigned: Vec<&str> = parts
        .headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|name| is_amz_header(name) && *name != "x-amz-content-sha256")
        .filter(|name| !claim.signed_headers.iter().any(|signed| signed == name))
        .collect();
    if !unsigned.is_empty() {
        let names = unsigned.join(", ");
        let logged = format!(
            "unsigned headers {names} in a request signed by access key {}",
            claim.access_key_id
        );
        return Err(S3Error::new(
            ErrorCode::AccessDenied,
            "There were headers present in the request which were not signed",
        )
        .with_detail("HeadersNotSigned", names)
        .with_source(logged));
    }

    Ok(Authenticated {
        access_key_id: claim.access_key_id,
        payload_mode,
        chunk_signer: ChunkSigner::new(key, claim.amz_date, scope, claim.signature),
    })
}

impl Authenticated {
    /// Returns the access key id the request was signed with.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// Returns how the body is bound to the signature.
    pub fn payload_mode(&self) -> PayloadMode {
        self.payload_mode
    }

    /// Returns the plaintext length the request declares:
    /// `x-amz-decoded-content-length` for `aws-chunked` bodies, where its
    /// absence is MissingContentLength, and `Content-Length` otherwise.
    pub fn plaintext_len(&self, parts: &Parts) -> Result<Option<u64>, S3Error> {
        payload::declared_length(self.payload_mode, &parts.headers)
    }

    /// Wraps the request body in a [`VerifiedBody`] that yields the decoded
    /// plaintext and fails, before its end of stream, on any mismatch with
    /// what the request declared.
    ///
    /// Checks the declarations first: a malformed `Content-MD5` fails with
    /// InvalidDigest, a malformed `x-amz-checksum-*` header, more than one
    /// checksum, or an `x-amz-trailer` that the payload mode does not allow
    /// fail with InvalidRequest.
    pub fn verify_body<B>(self, parts: &Parts, body: B) -> Result<VerifiedBody<B>, S3Error>
    where
        B: http_body::Body<Data = bytes::Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let declared_len = self.plaintext_len(parts)?;
        let headers = &parts.headers;
        let mut checks = Vec::new();

        if let Some(value) = headers.get("content-md5") {
            checks.push(DigestCheck::new(
                DigestKind::ContentMd5,
                Some(decode_content_md5(value.as_bytes())?),
            ));
        }
        if let PayloadMode::Sha256(hash) = self.payload_mode {
            checks.push(DigestCheck::new(
                DigestKind::PayloadSha256,
                Some(hash.to_vec()),
            ));
        }

        let mut checksum_count = 0;
        if !is_complete_multipart_upload(parts) {
            for algorithm in ChecksumAlgorithm::ALL {
                if let Some(value) = headers.get(algorithm.header_name()) {
                    let expected = algorithm.decode_value(value.as_bytes())?;
                    checks.push(DigestCheck::new(
                        DigestKind::Checksum(algorithm),
                        Some(expected),
                    ));
                    checksum_count += 1;
                }
            }
        }

        let announced = announced_trailers(parts, self.payload_mode)?;
        for (_, algorithm) in &announced {
            checks.push(DigestCheck::new(DigestKind::Checksum(*algorithm), None));
            checksum_count += 1;
        }
        if checksum_count > 1 {
            return Err(S3Error::new(
                ErrorCode::InvalidRequest,
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
            ));
        }
        if !is_complete_multipart_upload(parts) {
            check_sdk_algorithm(headers, &checks)?;
        }

        let decoder = match (self.payload_mode.is_chunked(), declared_len) {
            (false, _) => None,
            (true, Some(decoded_len)) => {
                let signer = self.payload_mode.has_chunk_signatures().then_some(self.chunk_signer);
                let trailer_signed = self.payload_mode == PayloadMode::StreamingSignedTrailer;
                let names = announced.into_iter().map(|(name, _)| name).collect();
                Some(ChunkedDecoder::new(signer, trailer_signed, names, decoded_len))
            }
            // Not reached: `plaintext_len` already fails for a chunked body without a length.
            (true, None) => {
                return Err(S3Error::new(
                    ErrorCode::MissingContentLength,
                    "You must provide the x-amz-decoded-content-length HTTP header with an aws-chunked body.",
                ))
            }
        };
        Ok(VerifiedBody::new(body, decoder, checks, declared_len))
    }
}

/// Returns whether the request is CompleteMultipartUpload, whose
/// `x-amz-checksum-*` headers carry the checksum of the whole object rather
/// than of the request body.
fn is_complete_multipart_upload(parts: &Parts) -> bool {
    parts.method == http::Method::POST
        && canonical::parse_query(parts.uri.query().unwrap_or_default())
            .iter()
            .any(|(name, _)| name == b"uploadId")
}

/// Returns whether a lowercase header name starts with `x-amz-`, with `_`
/// counted as `-`: servers that map header names to CGI variables read
/// `x-amz_acl` as `x-amz-acl`. Runs on every header of every request, so
/// it compares bytes without allocating.
fn is_amz_header(name: &str) -> bool {
    let dash = |b: u8| b == b'-' || b == b'_';
    match name.as_bytes() {
        [b'x', first, b'a', b'm', b'z', second, ..] => dash(*first) && dash(*second),
        _ => false,
    }
}

/// Checks `x-amz-sdk-checksum-algorithm` against the checksum that the
/// request carries, with S3's errors. The header must name a known
/// algorithm and the same one as the `x-amz-checksum-*` header or trailer.
fn check_sdk_algorithm(headers: &http::HeaderMap, checks: &[DigestCheck]) -> Result<(), S3Error> {
    let Some(value) = headers.get("x-amz-sdk-checksum-algorithm") else {
        return Ok(());
    };
    let invalid = || {
        S3Error::new(
            ErrorCode::InvalidRequest,
            "Value for x-amz-sdk-checksum-algorithm header is invalid.",
        )
    };
    let named = value
        .to_str()
        .ok()
        .and_then(ChecksumAlgorithm::from_name)
        .ok_or_else(invalid)?;
    let declared = checks.iter().find_map(|check| match check.kind() {
        DigestKind::Checksum(algorithm) => Some(algorithm),
        _ => None,
    });
    match declared {
        Some(algorithm) if algorithm == named => Ok(()),
        Some(_) => Err(invalid()),
        None => Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* \
             or x-amz-trailer headers were found.",
        )),
    }
}

/// Parses the `x-amz-trailer` header: a comma-separated list of checksum
/// names, allowed only with the trailer payload modes.
fn announced_trailers(
    parts: &Parts,
    mode: PayloadMode,
) -> Result<Vec<(String, ChecksumAlgorithm)>, S3Error> {
    let unsupported = || {
        S3Error::new(
            ErrorCode::InvalidRequest,
            "The value specified in the x-amz-trailer header is not supported",
        )
    };
    let mut announced = Vec::new();
    for value in parts.headers.get_all("x-amz-trailer") {
        let text = value.to_str().map_err(|_| unsupported())?;
        let names: Vec<String> = text
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
            .filter(|name| !name.is_empty())
            .collect();
        if names.is_empty() {
            return Err(unsupported());
        }
        for name in names {
            let algorithm = ChecksumAlgorithm::from_header_name(&name).ok_or_else(unsupported)?;
            announced.push((name, algorithm));
        }
    }
    if !announced.is_empty() && !mode.allows_trailers() {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "The x-amz-trailer header requires x-amz-content-sha256 STREAMING-UNSIGNED-PAYLOAD-TRAILER \
             or STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER.",
        ));
    }
    Ok(announced)
}
