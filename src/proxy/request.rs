//! Classification of a client request: addressing style, bucket, key and
//! the S3 operation, decided from the method, the path and the query.

use crate::s3::{ErrorCode, S3Error};
use http::Method;

/// The S3 operations that s3seal handles itself; everything else is
/// `Forward` (no object body involved) or `Unsupported`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ListBuckets,
    CreateBucket,
    DeleteBucket,
    HeadBucket,
    ListObjects,
    ListObjectsV2,
    ListObjectVersions,
    DeleteObjects,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    ListMultipartUploads,
    /// `POST` object upload from an HTML form.
    PostObject,
    SelectObjectContent,
    GetObjectAttributes,
    GetObjectTorrent,
    /// A browser's CORS preflight (`OPTIONS`), which carries no signature.
    OptionsObject,
    /// Object or bucket sub-resources that carry no object body (tagging,
    /// ACLs, bucket configuration); forwarded re-signed.
    Forward,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Self::ListBuckets => "ListBuckets",
            Self::CreateBucket => "CreateBucket",
            Self::DeleteBucket => "DeleteBucket",
            Self::HeadBucket => "HeadBucket",
            Self::ListObjects => "ListObjects",
            Self::ListObjectsV2 => "ListObjectsV2",
            Self::ListObjectVersions => "ListObjectVersions",
            Self::DeleteObjects => "DeleteObjects",
            Self::PutObject => "PutObject",
            Self::CopyObject => "CopyObject",
            Self::GetObject => "GetObject",
            Self::HeadObject => "HeadObject",
            Self::DeleteObject => "DeleteObject",
            Self::CreateMultipartUpload => "CreateMultipartUpload",
            Self::UploadPart => "UploadPart",
            Self::UploadPartCopy => "UploadPartCopy",
            Self::CompleteMultipartUpload => "CompleteMultipartUpload",
            Self::AbortMultipartUpload => "AbortMultipartUpload",
            Self::ListParts => "ListParts",
            Self::ListMultipartUploads => "ListMultipartUploads",
            Self::PostObject => "PostObject",
            Self::SelectObjectContent => "SelectObjectContent",
            Self::GetObjectAttributes => "GetObjectAttributes",
            Self::GetObjectTorrent => "GetObjectTorrent",
            Self::OptionsObject => "OptionsObject",
            Self::Forward => "Forward",
        }
    }
}

/// A classified client request.
#[derive(Debug, Clone)]
pub struct S3Request {
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub operation: Operation,
    /// Decoded query parameters in the order sent, presign parameters removed.
    pub query: Vec<(String, String)>,
}

impl S3Request {
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has_query(&self, name: &str) -> bool {
        self.query.iter().any(|(n, _)| n == name)
    }

    /// Returns the query re-encoded with the SigV4 rule, for the upstream.
    pub fn upstream_query(&self) -> String {
        encode_query(&self.query)
    }

    /// Returns `/bucket/key` for error documents.
    pub fn resource(&self) -> String {
        match (&self.bucket, &self.key) {
            (Some(b), Some(k)) => format!("/{b}/{k}"),
            (Some(b), None) => format!("/{b}"),
            _ => "/".into(),
        }
    }
}

/// Encodes query parameters with the SigV4 rule, in the given order.
pub fn encode_query(query: &[(String, String)]) -> String {
    let mut out = String::new();
    for (name, value) in query {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&crate::upstream::encode_query_component(name));
        out.push('=');
        out.push_str(&crate::upstream::encode_query_component(value));
    }
    out
}

/// Headers that a request may send at most once. A second `Authorization`
/// header is left to the signature check, which rejects it with
/// `AuthorizationHeaderMalformed`.
const SINGLE_VALUE_HEADERS: [http::HeaderName; 9] = [
    http::header::HOST,
    http::HeaderName::from_static("content-md5"),
    http::HeaderName::from_static("x-amz-content-sha256"),
    http::HeaderName::from_static("x-amz-date"),
    http::HeaderName::from_static("x-amz-decoded-content-length"),
    http::HeaderName::from_static("x-amz-copy-source"),
    http::HeaderName::from_static("x-amz-copy-source-range"),
    http::header::RANGE,
    http::HeaderName::from_static("x-amz-checksum-algorithm"),
];

/// Rejects a request that sends one of [`SINGLE_VALUE_HEADERS`] twice.
/// HTTP/1.1 gives a request one Host (RFC 9112, section 3.2), and the
/// bucket, the rule and the signature must all read the same one. The
/// other headers carry one value each, and s3seal and the upstream could
/// read different copies of a repeated one.
fn check_single_value_headers(headers: &http::HeaderMap) -> Result<(), S3Error> {
    for name in &SINGLE_VALUE_HEADERS {
        if headers.get_all(name).iter().count() > 1 {
            return Err(S3Error::new(
                ErrorCode::InvalidRequest,
                format!("the request has more than one {name} header"),
            ));
        }
    }
    Ok(())
}

/// Maximum object key length that S3 accepts, in bytes of UTF-8.
const MAX_KEY_BYTES: usize = 1024;

/// Classifies a request. `base_domain` enables virtual-hosted-style
/// addressing for hosts of the form `bucket.base_domain`.
pub fn classify(
    parts: &http::request::Parts,
    base_domain: Option<&str>,
) -> Result<S3Request, S3Error> {
    // A request without a repeated header, the usual case, has as many
    // header values as names and needs no lookups.
    if parts.headers.len() > parts.headers.keys_len() {
        check_single_value_headers(&parts.headers)?;
    }
    let path = parts.uri.path();
    let query = parse_query(parts.uri.query().unwrap_or(""))?;
    check_single_query_names(&query)?;

    let host_bucket = base_domain.and_then(|domain| bucket_from_host(parts, domain));
    let (bucket, key) = match host_bucket {
        Some(bucket) => {
            let key = path.strip_prefix('/').unwrap_or(path);
            (
                Some(bucket),
                (!key.is_empty()).then(|| decode(key)).transpose()?,
            )
        }
        None => {
            let rest = path.strip_prefix('/').unwrap_or(path);
            match rest.split_once('/') {
                None if rest.is_empty() => (None, None),
                None => (Some(decode(rest)?), None),
                Some((bucket, key)) => (
                    Some(decode(bucket)?),
                    (!key.is_empty()).then(|| decode(key)).transpose()?,
                ),
            }
        }
    };
    if let Some(bucket) = &bucket {
        if !is_valid_bucket_name(bucket) {
            return Err(S3Error::new(
                ErrorCode::InvalidBucketName,
                format!("The specified bucket is not valid: {bucket:?}"),
            ));
        }
    }
    if key.as_ref().is_some_and(|k| k.len() > MAX_KEY_BYTES) {
        return Err(S3Error::new(
            ErrorCode::KeyTooLongError,
            "Your key is too long",
        ));
    }
    if let Some(key) = &key {
        check_key_segments(key)?;
    }

    let has = |name: &str| query.iter().any(|(n, _)| n == name);
    let method = &parts.method;
    let operation = match (&bucket, &key) {
        (None, _) => match *method {
            Method::GET => Operation::ListBuckets,
            _ => {
                return Err(S3Error::new(
                    ErrorCode::MethodNotAllowed,
                    "The specified method is not allowed against this resource.",
                ))
            }
        },
        (Some(_), _) if method == Method::OPTIONS => Operation::OptionsObject,
        (Some(_), None) => classify_bucket(method, &query, has)?,
        (Some(_), Some(_)) => classify_object(parts, has)?,
    };
    // A store that honors `x-amz-copy-source` on another request would copy
    // past the source bucket's rule, which s3seal checks for copies only.
    if parts.headers.contains_key("x-amz-copy-source")
        && !matches!(operation, Operation::CopyObject | Operation::UploadPartCopy)
    {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "The x-amz-copy-source header is valid only for CopyObject and UploadPartCopy",
        ));
    }
    let query = query
        .into_iter()
        .filter(|(name, _)| !crate::s3::headers::PRESIGN_QUERY_PARAMS.contains(&name.as_str()))
        .collect();
    Ok(S3Request {
        bucket,
        key,
        operation,
        query,
    })
}

fn classify_bucket(
    method: &Method,
    query: &[(String, String)],
    has: impl Fn(&str) -> bool,
) -> Result<Operation, S3Error> {
    // Listing parameters do not make a request a sub-resource request.
    const LIST_PARAMS: &[&str] = &[
        "prefix",
        "delimiter",
        "marker",
        "max-keys",
        "encoding-type",
        "list-type",
        "continuation-token",
        "start-after",
        "fetch-owner",
        "key-marker",
        "version-id-marker",
        "x-id",
        "allow-unordered",
        "optional-object-attributes",
    ];
    let is_plain = query
        .iter()
        .all(|(name, _)| LIST_PARAMS.contains(&name.as_str()) || name.starts_with("X-Amz-"));
    Ok(match *method {
        Method::PUT if is_plain => Operation::CreateBucket,
        Method::DELETE if is_plain => Operation::DeleteBucket,
        Method::HEAD => Operation::HeadBucket,
        Method::GET if has("versions") => Operation::ListObjectVersions,
        Method::GET if has("uploads") => Operation::ListMultipartUploads,
        Method::GET if is_plain && query.iter().any(|(n, v)| n == "list-type" && v == "2") => {
            Operation::ListObjectsV2
        }
        Method::GET if is_plain => Operation::ListObjects,
        Method::POST if has("delete") => Operation::DeleteObjects,
        // Stores take any other bucket POST for a browser form upload and
        // keep its body as an object, so none goes upstream unchanged.
        Method::POST => Operation::PostObject,
        Method::GET | Method::PUT | Method::DELETE => Operation::Forward,
        _ => {
            return Err(S3Error::new(
                ErrorCode::MethodNotAllowed,
                "The specified method is not allowed against this resource.",
            ))
        }
    })
}

fn classify_object(
    parts: &http::request::Parts,
    has: impl Fn(&str) -> bool,
) -> Result<Operation, S3Error> {
    const OBJECT_SUBRESOURCES: &[&str] = &[
        "tagging",
        "acl",
        "retention",
        "legal-hold",
        "torrent",
        "restore",
        "attributes",
        "select",
        "uploads",
        "uploadId",
    ];
    // Sub-resources whose PUT body is an XML document, never object data.
    const CONFIG_SUBRESOURCES: &[&str] = &["tagging", "acl", "retention", "legal-hold"];
    let copy_source = parts.headers.contains_key("x-amz-copy-source");
    let is_plain = !OBJECT_SUBRESOURCES.iter().any(|name| has(name));
    let is_config = CONFIG_SUBRESOURCES.iter().any(|name| has(name));
    let not_allowed = || {
        S3Error::new(
            ErrorCode::MethodNotAllowed,
            "The specified method is not allowed against this resource.",
        )
    };
    Ok(match parts.method {
        Method::PUT if has("uploadId") && has("partNumber") && copy_source => {
            Operation::UploadPartCopy
        }
        Method::PUT if has("uploadId") && has("partNumber") => Operation::UploadPart,
        Method::PUT if is_plain && copy_source => Operation::CopyObject,
        Method::PUT if is_plain => Operation::PutObject,
        Method::GET if has("uploadId") => Operation::ListParts,
        Method::GET if has("attributes") => Operation::GetObjectAttributes,
        Method::GET if has("torrent") => Operation::GetObjectTorrent,
        Method::GET if is_plain => Operation::GetObject,
        Method::HEAD if is_plain => Operation::HeadObject,
        Method::DELETE if has("uploadId") => Operation::AbortMultipartUpload,
        Method::DELETE if is_plain => Operation::DeleteObject,
        Method::POST if has("uploads") => Operation::CreateMultipartUpload,
        Method::POST if has("uploadId") => Operation::CompleteMultipartUpload,
        Method::POST if has("select") => Operation::SelectObjectContent,
        // Only these sub-resource requests go upstream unchanged. Any other
        // PUT with a sub-resource (`?uploads`, `?restore`, ...) names no S3
        // operation, and a store that ignores the sub-resource would keep
        // its body as the object, unencrypted.
        Method::PUT | Method::GET if is_config && !copy_source => Operation::Forward,
        Method::DELETE if has("tagging") => Operation::Forward,
        Method::POST if has("restore") => Operation::Forward,
        Method::POST if is_plain => Operation::PostObject,
        _ => return Err(not_allowed()),
    })
}

/// Rejects object keys with a `.` or `..` path segment. S3 stores such
/// keys literally, but file-backed stores (s3s-fs among them) and HTTP
/// intermediaries resolve them, which would let a request name an object of
/// another bucket and escape that bucket's policy.
pub fn check_key_segments(key: &str) -> Result<(), S3Error> {
    if key
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(S3Error::new(
            ErrorCode::InvalidArgument,
            format!(
                "object key {key:?} has a '.' or '..' path segment, which s3seal does not accept"
            ),
        ));
    }
    Ok(())
}

/// Returns the bucket of a virtual-hosted-style Host header.
fn bucket_from_host(parts: &http::request::Parts, domain: &str) -> Option<String> {
    let host = parts.headers.get(http::header::HOST)?.to_str().ok()?;
    let host = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    // Host names compare without regard to case, and a trailing dot marks
    // a fully qualified name.
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let domain = domain
        .strip_suffix('.')
        .unwrap_or(domain)
        .to_ascii_lowercase();
    let bucket = host.strip_suffix(domain.as_str())?.strip_suffix('.')?;
    (!bucket.is_empty()).then(|| bucket.to_string())
}

/// Percent-decodes a path component into UTF-8.
fn decode(component: &str) -> Result<String, S3Error> {
    percent_encoding::percent_decode_str(component)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            S3Error::new(
                ErrorCode::InvalidArgument,
                "The request path is not valid UTF-8 after percent-decoding",
            )
        })
}

/// Parses a raw query string into decoded pairs. `+` is a space, as S3 and
/// the signature check read it; a parameter without `=` has an empty value.
pub fn parse_query(raw: &str) -> Result<Vec<(String, String)>, S3Error> {
    let mut pairs = Vec::new();
    for item in raw.split('&').filter(|s| !s.is_empty()) {
        let (name, value) = item.split_once('=').unwrap_or((item, ""));
        let decode = |s: &str| {
            let s = s.replace('+', " ");
            percent_encoding::percent_decode_str(&s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| {
                    S3Error::new(
                        ErrorCode::InvalidArgument,
                        "A query parameter is not valid UTF-8 after percent-decoding",
                    )
                })
        };
        pairs.push((decode(name)?, decode(value)?));
    }
    Ok(pairs)
}

/// Rejects a query that names a parameter twice. No S3 request repeats a
/// parameter, and stores disagree on which value counts, so a repeated
/// `partNumber` could select one part at s3seal and another upstream.
fn check_single_query_names(query: &[(String, String)]) -> Result<(), S3Error> {
    for (index, (name, _)) in query.iter().enumerate() {
        if query[..index].iter().any(|(earlier, _)| earlier == name) {
            return Err(S3Error::new(
                ErrorCode::InvalidRequest,
                format!("The query parameter {name:?} appears more than once"),
            ));
        }
    }
    Ok(())
}

/// Checks the S3 bucket naming rules that matter for addressing: 3 to 63
/// characters of lowercase letters, digits, `.`, `-` (and `_`, which older
/// buckets and some stores allow), not in the form of an IP address, and
/// without the suffixes that S3 reserves for access point and Multi-Region
/// Access Point aliases. Bucket rules match bucket names, so an alias would
/// escape the rule of the bucket behind it.
pub(crate) fn is_valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        })
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
        && !looks_like_ipv4(name)
        && !ALIAS_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
}

/// Returns whether `name` is four groups of digits joined by dots, the
/// form of an IPv4 address that S3 forbids for bucket names, whatever the
/// groups' values.
fn looks_like_ipv4(name: &str) -> bool {
    let groups: Vec<&str> = name.split('.').collect();
    groups.len() == 4
        && groups
            .iter()
            .all(|group| !group.is_empty() && group.bytes().all(|b| b.is_ascii_digit()))
}

/// Name endings that S3 reserves for aliases of access points, Object
/// Lambda access points and Multi-Region Access Points.
const ALIAS_SUFFIXES: [&str; 3] = ["-s3alias", "--ol-s3", ".mrap"];

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn repeated_single_value_headers_rejected() {
        for name in &SINGLE_VALUE_HEADERS {
            let name = name.as_str();
            let request = parts(Method::PUT, "/bkt/key", &[(name, "a"), (name, "b")]);
            let error = classify(&request, None).unwrap_err();
            assert_eq!(error.code(), ErrorCode::InvalidRequest, "{name}");
            let once = parts(Method::PUT, "/bkt/key", &[(name, "a")]);
            assert!(classify(&once, None).is_ok(), "{name}");
        }
        let metadata = parts(
            Method::PUT,
            "/bkt/key",
            &[("x-amz-meta-a", "1"), ("x-amz-meta-a", "2")],
        );
        assert!(classify(&metadata, None).is_ok());
    }

    #[test]
    fn repeated_query_parameters_rejected() {
        for uri in [
            "/bkt/key?partNumber=1&partNumber=2",
            "/bkt/key?uploadId=a&partNumber=1&uploadId=b",
            "/bkt?prefix=a&prefix=b",
            "/bkt/key?versionId&versionId",
            // A parameter spelled with percent escapes is the same name.
            "/bkt/key?partNumber=1&part%4Eumber=2",
        ] {
            let error = classify(&parts(Method::GET, uri, &[]), None).unwrap_err();
            assert_eq!(error.code(), ErrorCode::InvalidRequest, "{uri}");
        }
        let distinct = parts(Method::GET, "/bkt/key?partNumber=1&x-id=GetObject", &[]);
        assert!(classify(&distinct, None).is_ok());
    }

    #[test]
    fn path_style_object_keys_decoded() {
        let req = classify(&parts(Method::GET, "/bkt/a%20b/c%2Bd+e", &[]), None).unwrap();
        assert_eq!(req.bucket.as_deref(), Some("bkt"));
        assert_eq!(req.key.as_deref(), Some("a b/c+d+e"));
        assert_eq!(req.operation, Operation::GetObject);
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for valid in [
            "abc",
            "a.b-c_d",
            "0bucket9",
            "my.bucket.name",
            "1.2.3.4.5",
            "abc--x-s3",
        ] {
            assert!(is_valid_bucket_name(valid), "{valid}");
        }
        let aliases = [
            "plain-ap-abc-s3alias",
            "ap-abc--ol-s3",
            "mfzwi23gnjvgw.mrap",
        ];
        for invalid in [
            "ab",
            "bucket.",
            "bucket-",
            "a..b",
            ".abc",
            "Abc",
            "a b",
            "192.168.1.1",
            "192.168.01.1",
            "999.999.999.999",
        ]
        .into_iter()
        .chain(aliases)
        {
            assert!(!is_valid_bucket_name(invalid), "{invalid}");
        }
    }

    #[test]
    fn two_host_headers_rejected() {
        let request = parts(
            Method::GET,
            "/k",
            &[("host", "demo.s3.local"), ("host", "secret.s3.local")],
        );
        let error = classify(&request, Some("s3.local")).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn virtual_host_bucket_from_host() {
        let req = classify(
            &parts(Method::PUT, "/k", &[("host", "bkt.s3.local:8014")]),
            Some("s3.local"),
        )
        .unwrap();
        assert_eq!(req.bucket.as_deref(), Some("bkt"));
        assert_eq!(req.key.as_deref(), Some("k"));
        assert_eq!(req.operation, Operation::PutObject);
        let req = classify(
            &parts(Method::GET, "/bkt/k", &[("host", "s3.local:8014")]),
            Some("s3.local"),
        )
        .unwrap();
        assert_eq!(req.bucket.as_deref(), Some("bkt"));
    }

    #[test]
    fn virtual_host_ignores_case_and_final_dot() {
        for host in [
            "BKT.S3.LOCAL:8014",
            "bkt.s3.local.:8014",
            "Bkt.S3.local",
            "bkt.s3.local.",
        ] {
            let req = classify(
                &parts(Method::GET, "/k", &[("host", host)]),
                Some("S3.Local"),
            )
            .unwrap();
            assert_eq!(req.bucket.as_deref(), Some("bkt"), "{host}");
            assert_eq!(req.key.as_deref(), Some("k"), "{host}");
        }
    }

    type Case<'a> = (Method, &'a str, &'a [(&'a str, &'a str)], Operation);

    #[test]
    fn operations_classified() {
        let cases: &[Case] = &[
            (Method::GET, "/", &[], Operation::ListBuckets),
            (Method::PUT, "/bkt", &[], Operation::CreateBucket),
            (
                Method::GET,
                "/bkt?list-type=2&prefix=a",
                &[],
                Operation::ListObjectsV2,
            ),
            (Method::GET, "/bkt?prefix=a", &[], Operation::ListObjects),
            (Method::GET, "/bkt?location", &[], Operation::Forward),
            (
                Method::GET,
                "/bkt?versions",
                &[],
                Operation::ListObjectVersions,
            ),
            (Method::POST, "/bkt?delete", &[], Operation::DeleteObjects),
            (Method::POST, "/bkt", &[], Operation::PostObject),
            (Method::POST, "/bkt?key=leak", &[], Operation::PostObject),
            (Method::POST, "/bkt?uploads", &[], Operation::PostObject),
            (
                Method::PUT,
                "/bkt/k",
                &[("x-amz-copy-source", "/a/b")],
                Operation::CopyObject,
            ),
            (
                Method::PUT,
                "/bkt/k?partNumber=1&uploadId=x",
                &[],
                Operation::UploadPart,
            ),
            (Method::PUT, "/bkt/k?tagging", &[], Operation::Forward),
            (Method::GET, "/bkt/k?acl", &[], Operation::Forward),
            (Method::DELETE, "/bkt/k?tagging", &[], Operation::Forward),
            (Method::POST, "/bkt/k?restore", &[], Operation::Forward),
            (
                Method::POST,
                "/bkt/k?uploads",
                &[],
                Operation::CreateMultipartUpload,
            ),
            (
                Method::POST,
                "/bkt/k?select&select-type=2",
                &[],
                Operation::SelectObjectContent,
            ),
            (Method::HEAD, "/bkt/k", &[], Operation::HeadObject),
            (
                Method::DELETE,
                "/bkt/k?uploadId=x",
                &[],
                Operation::AbortMultipartUpload,
            ),
            (
                Method::GET,
                "/bkt/k?attributes",
                &[],
                Operation::GetObjectAttributes,
            ),
            (
                Method::GET,
                "/bkt/k?torrent",
                &[],
                Operation::GetObjectTorrent,
            ),
        ];
        for (method, uri, headers, expected) in cases {
            let req = classify(&parts(method.clone(), uri, headers), None).unwrap();
            assert_eq!(req.operation, *expected, "{method} {uri}");
        }
    }

    type Rejection<'a> = (Method, &'a str, &'a [(&'a str, &'a str)], ErrorCode);

    #[test]
    fn object_puts_without_an_operation_rejected() {
        let cases: &[Rejection] = &[
            (
                Method::PUT,
                "/bkt/k?uploads",
                &[],
                ErrorCode::MethodNotAllowed,
            ),
            (
                Method::PUT,
                "/bkt/k?uploadId=x",
                &[],
                ErrorCode::MethodNotAllowed,
            ),
            (
                Method::PUT,
                "/bkt/k?restore",
                &[],
                ErrorCode::MethodNotAllowed,
            ),
            (
                Method::PUT,
                "/bkt/k?torrent",
                &[],
                ErrorCode::MethodNotAllowed,
            ),
            (
                Method::PUT,
                "/bkt/k?attributes",
                &[],
                ErrorCode::MethodNotAllowed,
            ),
            (
                Method::PUT,
                "/bkt/k?select",
                &[],
                ErrorCode::MethodNotAllowed,
            ),
            (
                Method::GET,
                "/bkt/k?uploads",
                &[],
                ErrorCode::MethodNotAllowed,
            ),
            (
                Method::POST,
                "/bkt/k?tagging",
                &[],
                ErrorCode::MethodNotAllowed,
            ),
            (
                Method::PUT,
                "/bkt/k?tagging",
                &[("x-amz-copy-source", "/a/b")],
                ErrorCode::MethodNotAllowed,
            ),
            (
                Method::POST,
                "/bkt/k?restore",
                &[("x-amz-copy-source", "/a/b")],
                ErrorCode::InvalidRequest,
            ),
            (
                Method::PUT,
                "/bkt?acl",
                &[("x-amz-copy-source", "/a/b")],
                ErrorCode::InvalidRequest,
            ),
        ];
        for (method, uri, headers, expected) in cases {
            let error = classify(&parts(method.clone(), uri, headers), None).unwrap_err();
            assert_eq!(error.code(), *expected, "{method} {uri}");
        }
    }

    #[test]
    fn presign_params_not_forwarded() {
        let req = classify(
            &parts(Method::GET, "/bkt/k?X-Amz-Signature=abc&versionId=1", &[]),
            None,
        )
        .unwrap();
        assert_eq!(req.query, vec![("versionId".to_string(), "1".to_string())]);
    }

    #[test]
    fn invalid_bucket_and_long_key_rejected() {
        let err = classify(&parts(Method::GET, "/B!/k", &[]), None).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidBucketName);
        let long = format!("/bkt/{}", "a".repeat(1025));
        let err = classify(&parts(Method::GET, &long, &[]), None).unwrap_err();
        assert_eq!(err.code(), ErrorCode::KeyTooLongError);
    }

    #[test]
    fn dot_segments_rejected() {
        for uri in [
            "/bkt/%2E%2E/other/k",
            "/bkt/a/../b",
            "/bkt/./a",
            "/bkt/..%2F..%2Fother%2Fk",
            "/bkt/..",
        ] {
            let err = classify(&parts(Method::GET, uri, &[]), None).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidArgument, "{uri}");
        }
        for uri in ["/bkt/a..b", "/bkt/.hidden", "/bkt/a/.../b"] {
            assert!(
                classify(&parts(Method::GET, uri, &[]), None).is_ok(),
                "{uri}"
            );
        }
    }

    #[test]
    fn query_without_value_and_plus() {
        let pairs = parse_query("uploads&a=b+c&d=%2B").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("uploads".into(), "".into()),
                ("a".into(), "b c".into()),
                ("d".into(), "+".into())
            ]
        );
        assert_eq!(encode_query(&pairs), "uploads=&a=b%20c&d=%2B");
    }
}
