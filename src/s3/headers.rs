//! Named header sets, each with the reason it exists.

/// Prefix of the object metadata where s3seal keeps the wrapped data key and
/// format fields. Clients never see these headers and may not set them.
pub const SEAL_META_PREFIX: &str = "x-amz-meta-s3seal-";

/// Request headers that describe the plaintext body. s3seal verifies them
/// and does not forward them for an encrypted body, because upstream they
/// would be checked against the ciphertext.
pub const PLAINTEXT_DIGEST_HEADERS: &[&str] = &[
    "content-md5",
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-checksum-type",
    "x-amz-checksum-algorithm",
    "x-amz-sdk-checksum-algorithm",
];

/// Response headers that describe the stored ciphertext and would mislead a
/// client if passed off as describing the plaintext.
pub const CIPHERTEXT_RESPONSE_HEADERS: &[&str] = &[
    "content-md5",
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-checksum-type",
];

/// Hop-by-hop response headers that belong to the upstream connection.
pub const HOP_BY_HOP_RESPONSE_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Object headers that a metadata-directive `COPY` carries from the source
/// object to the copy.
pub const COPIED_OBJECT_HEADERS: &[&str] = &[
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
    "x-amz-website-redirect-location",
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
