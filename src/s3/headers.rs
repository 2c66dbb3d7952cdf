//! Named header sets, each with the reason it exists.

use http::{HeaderMap, HeaderName};

/// Removes every header whose name matches `remove`, in one pass over
/// the names. Removing each candidate name in turn costs a hash lookup for
/// every name in the set, present or not.
pub fn remove_matching(headers: &mut HeaderMap, remove: impl Fn(&HeaderName) -> bool) {
    let matching: Vec<HeaderName> = headers
        .keys()
        .filter(|name| remove(name))
        .cloned()
        .collect();
    for name in matching {
        headers.remove(name);
    }
}

/// The maximum number of header fields in a request or response that
/// s3seal and the embedded store parse. S3 limits user metadata to 2 KB,
/// about this many `x-amz-meta-*` fields of a few bytes each. hyper's
/// default of 100 rejected PutObject requests with 90 metadata entries.
pub const MAX_HEADER_FIELDS: usize = 512;

/// Prefix of the object metadata where s3seal keeps the wrapped data key and
/// format fields. Clients never see these headers and may not set them.
pub const SEAL_META_PREFIX: &str = "x-amz-meta-s3seal-";

/// Request headers that describe the plaintext body. s3seal verifies them
/// and does not forward them for an encrypted body, because upstream they
/// would be checked against the ciphertext.
pub static PLAINTEXT_DIGEST_HEADERS: [HeaderName; 9] = [
    HeaderName::from_static("content-md5"),
    HeaderName::from_static("x-amz-checksum-crc32"),
    HeaderName::from_static("x-amz-checksum-crc32c"),
    HeaderName::from_static("x-amz-checksum-crc64nvme"),
    HeaderName::from_static("x-amz-checksum-sha1"),
    HeaderName::from_static("x-amz-checksum-sha256"),
    HeaderName::from_static("x-amz-checksum-type"),
    HeaderName::from_static("x-amz-checksum-algorithm"),
    HeaderName::from_static("x-amz-sdk-checksum-algorithm"),
];

/// Response headers that describe the stored ciphertext and would mislead a
/// client if passed off as describing the plaintext.
pub static CIPHERTEXT_RESPONSE_HEADERS: [HeaderName; 7] = [
    HeaderName::from_static("content-md5"),
    HeaderName::from_static("x-amz-checksum-crc32"),
    HeaderName::from_static("x-amz-checksum-crc32c"),
    HeaderName::from_static("x-amz-checksum-crc64nvme"),
    HeaderName::from_static("x-amz-checksum-sha1"),
    HeaderName::from_static("x-amz-checksum-sha256"),
    HeaderName::from_static("x-amz-checksum-type"),
];

/// Hop-by-hop response headers that belong to the upstream connection.
pub static HOP_BY_HOP_RESPONSE_HEADERS: [HeaderName; 7] = [
    HeaderName::from_static("connection"),
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("te"),
    HeaderName::from_static("trailer"),
    HeaderName::from_static("transfer-encoding"),
    HeaderName::from_static("upgrade"),
];

/// Object headers that a metadata-directive `COPY` carries from the source
/// object to the copy.
pub static COPIED_OBJECT_HEADERS: [HeaderName; 7] = [
    HeaderName::from_static("content-type"),
    HeaderName::from_static("content-encoding"),
    HeaderName::from_static("content-disposition"),
    HeaderName::from_static("content-language"),
    HeaderName::from_static("cache-control"),
    HeaderName::from_static("expires"),
    HeaderName::from_static("x-amz-website-redirect-location"),
];

/// Presigned-URL query parameters that authenticate the client request and
/// are not forwarded upstream.
pub const PRESIGN_QUERY_PARAMS: &[&str] = &[
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "X-Amz-Content-Sha256",
];

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn remove_matching_keeps_other_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("content-md5", HeaderValue::from_static("a"));
        headers.append("x-amz-meta-s3seal-v", HeaderValue::from_static("1"));
        headers.append("x-amz-meta-s3seal-v", HeaderValue::from_static("2"));
        headers.insert("x-amz-meta-user", HeaderValue::from_static("b"));
        remove_matching(&mut headers, |name| {
            CIPHERTEXT_RESPONSE_HEADERS.contains(name)
                || name.as_str().starts_with(SEAL_META_PREFIX)
        });
        assert_eq!(headers.len(), 1);
        assert_eq!(headers["x-amz-meta-user"], "b");
    }
}
