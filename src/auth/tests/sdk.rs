//! Cross-checks against requests signed by the `aws-sigv4` crate with S3
//! signing settings: single percent-encoding, no path normalization, and
//! `x-amz-content-sha256` for header signing.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use sha2::Digest as _;

use super::super::sigv4::EMPTY_SHA256_HEX;
use super::super::PayloadMode;
use super::*;
use crate::s3::ErrorCode;

pub(super) const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
/// A secret with `/`, `+`, `=`, `~`, `%` and a space, which key derivation
/// must take byte for byte.
pub(super) const SECRET: &str = "a/b+c=d~e%f secret";
pub(super) const REGION: &str = "us-east-1";
pub(super) const SIGNING_DATE: &str = "20260102T030405Z";

pub(super) fn sdk_store() -> StaticStore {
    StaticStore(vec![(ACCESS_KEY_ID.to_string(), SECRET.to_string())])
}

/// A request to sign with `aws-sigv4`.
pub(super) struct SdkRequest<'a> {
    pub(super) method: &'a str,
    /// The Host header, port included.
    pub(super) host: &'a str,
    /// The origin-form target as the client sends it, already escaped.
    pub(super) target: &'a str,
    pub(super) headers: Vec<(&'a str, &'a str)>,
    pub(super) body: SignableBody<'a>,
    /// `Some` signs a presigned URL valid for that long.
    pub(super) presign: Option<Duration>,
    pub(super) session_token: Option<&'a str>,
}

impl<'a> SdkRequest<'a> {
    pub(super) fn new(method: &'a str, target: &'a str) -> Self {
        Self {
            method,
            host: "127.0.0.1:9000",
            target,
            headers: Vec::new(),
            body: SignableBody::Precomputed(EMPTY_SHA256_HEX.to_string()),
            presign: None,
            session_token: None,
        }
    }
}

fn identity(session_token: Option<&str>) -> Identity {
    Credentials::new(
        ACCESS_KEY_ID,
        SECRET,
        session_token.map(String::from),
        None,
        "test",
    )
    .into()
}

fn settings(presign: Option<Duration>) -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    match presign {
        Some(expires) => {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires);
        }
        None => settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256,
    }
    settings
}

/// Signs `request` and returns the parts a server receives for it, with an
/// origin-form URI, and the request signature.
pub(super) fn sdk_sign(request: SdkRequest<'_>) -> (Parts, String) {
    let identity = identity(request.session_token);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("s3")
        .time(clock(SIGNING_DATE))
        .settings(settings(request.presign))
        .build()
        .expect("complete signing parameters")
        .into();

    let uri = format!("http://{}{}", request.host, request.target);
    let mut headers = vec![("host", request.host)];
    headers.extend(request.headers.iter().copied());
    let signable = SignableRequest::new(
        request.method,
        uri.as_str(),
        headers.iter().copied(),
        request.body,
    )
    .expect("signable request");
    let (instructions, signature) = sign(signable, &params)
        .expect("signing succeeds")
        .into_parts();

    let mut builder = http::Request::builder()
        .method(request.method)
        .uri(uri.as_str());
    for (name, value) in &headers {
        builder = builder.header(*name, *value);
    }
    let mut http_request = builder.body(()).expect("valid request");
    instructions.apply_to_request_http1x(&mut http_request);

    let (mut parts, ()) = http_request.into_parts();
    let target = parts
        .uri
        .path_and_query()
        .expect("path")
        .as_str()
        .to_string();
    parts.uri = target.parse().expect("origin-form target");
    (parts, signature)
}

/// Signs one chunk of a streaming upload with `aws-sigv4`.
pub(super) fn sdk_sign_chunk(data: &[u8], previous: &str) -> String {
    let identity = identity(None);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("s3")
        .time(clock(SIGNING_DATE))
        .settings(())
        .build()
        .expect("complete signing parameters");
    v4::sign_chunk(&Bytes::copy_from_slice(data), previous, &params)
        .expect("chunk signing succeeds")
        .signature()
        .to_string()
}

/// Signs a trailer section of a streaming upload with `aws-sigv4`.
pub(super) fn sdk_sign_trailer(trailers: &[(&str, &str)], previous: &str) -> String {
    let identity = identity(None);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("s3")
        .time(clock(SIGNING_DATE))
        .settings(())
        .build()
        .expect("complete signing parameters");
    let mut headers = aws_smithy_runtime_api::http::Headers::new();
    for (name, value) in trailers {
        headers.insert(name.to_string(), value.to_string());
    }
    v4::sign_trailer(&headers, previous, &params)
        .expect("trailer signing succeeds")
        .signature()
        .to_string()
}

pub(super) fn authenticate_sdk(parts: &Parts) -> Result<Authenticated, S3Error> {
    authenticate(
        parts,
        &sdk_store(),
        &AuthConfig::default(),
        clock(SIGNING_DATE),
    )
}

/// Targets as clients send them: escaped like the AWS SDKs do, or with
/// reserved characters raw as other clients send them.
const TARGETS: &[&str] = &[
    "/",
    "/bucket",
    "/bucket/plain.txt",
    "/bucket/a%20b",
    "/bucket/a%2Bb",
    "/bucket/a+b",
    "/bucket/a=b",
    "/bucket/a%3Db",
    "/bucket/a~b",
    "/bucket/a%7Eb",
    "/bucket/100%25",
    "/bucket/%C3%A9t%C3%A9/%F0%9F%98%80",
    "/bucket//double//slash/",
    "/bucket/./dot/../segments",
    "/bucket/!$'()*@:,;",
    "/bucket/%21%24%27%28%29%2A%40%3A%2C%3B",
    "/bucket/a%2Fb",
    "/bucket/key?acl",
    "/bucket?uploads",
    "/bucket?list-type=2&prefix=a%20b&delimiter=%2F",
    "/bucket?prefix=a+b&max-keys=5",
    "/bucket/key?tagging&versionId=v%2B1",
    "/bucket?prefix=%E2%82%AC&encoding-type=url",
    "/bucket/key?partNumber=1&uploadId=x~y_z.-",
];

#[test]
fn header_auth_matches_sdk() {
    for target in TARGETS {
        for host in ["127.0.0.1:9000", "localhost", "bucket.s3.example.com:8443"] {
            let mut request = SdkRequest::new("GET", target);
            request.host = host;
            let (parts, _) = sdk_sign(request);
            let authenticated = authenticate_sdk(&parts)
                .unwrap_or_else(|error| panic!("{target} on {host}: {error}"));
            assert_eq!(authenticated.access_key_id(), ACCESS_KEY_ID);
        }
    }
}

#[test]
fn presigned_url_matches_sdk() {
    for target in TARGETS {
        for session_token in [None, Some("session/token+=")] {
            let mut request = SdkRequest::new("PUT", target);
            request.body = SignableBody::UnsignedPayload;
            request.presign = Some(Duration::from_secs(3600));
            request.session_token = session_token;
            let (parts, _) = sdk_sign(request);
            assert!(parts
                .uri
                .query()
                .is_some_and(|query| query.contains("X-Amz-Signature=")));
            let authenticated =
                authenticate_sdk(&parts).unwrap_or_else(|error| panic!("{target}: {error}"));
            assert_eq!(authenticated.payload_mode(), PayloadMode::Unsigned);
        }
    }
}

#[test]
fn sdk_signature_rejects_changed_target() {
    for target in TARGETS {
        for presign in [None, Some(Duration::from_secs(60))] {
            let mut request = SdkRequest::new("GET", target);
            request.presign = presign;
            if presign.is_some() {
                request.body = SignableBody::UnsignedPayload;
            }
            let (mut parts, _) = sdk_sign(request);
            let path = parts.uri.path();
            let changed = match parts.uri.query() {
                Some(query) => format!("{path}x?{query}"),
                None => format!("{path}x"),
            };
            parts.uri = changed.parse().expect("valid target");
            let error = authenticate_sdk(&parts).expect_err("target changed");
            assert_eq!(error.code(), ErrorCode::SignatureDoesNotMatch, "{target}");
        }
    }
}

#[test]
fn raw_target_signed_escaped_verifies() {
    // Some clients escape every reserved character when signing but send
    // some of them raw.
    let cases = [
        ("/bucket/a%3Db%21%24", "/bucket/a=b!$"),
        ("/bucket/%27%28%29%2A%40%3A%2C", "/bucket/'()*@:,"),
        ("/bucket/a~b", "/bucket/a%7eb"),
    ];
    for (signed, sent) in cases {
        let (mut parts, _) = sdk_sign(SdkRequest::new("GET", signed));
        parts.uri = sent.parse().expect("valid target");
        authenticate_sdk(&parts).unwrap_or_else(|error| panic!("{sent}: {error}"));
    }
}

#[test]
fn escaped_slash_is_not_a_separator() {
    let (mut parts, _) = sdk_sign(SdkRequest::new("GET", "/bucket/a/b"));
    parts.uri = "/bucket/a%2Fb".parse().expect("valid target");
    let error = authenticate_sdk(&parts).expect_err("a different key");
    assert_eq!(error.code(), ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn header_values_are_normalized_like_sdk() {
    let mut request = SdkRequest::new("PUT", "/bucket/key");
    request.headers = vec![
        ("x-amz-meta-note", "  spaced   out  value "),
        ("x-amz-meta-list", "one"),
        ("x-amz-meta-list", "two  three"),
        ("content-type", "text/plain; charset=utf-8"),
    ];
    let (parts, _) = sdk_sign(request);
    authenticate_sdk(&parts).expect("normalized header values");

    let mut request = SdkRequest::new("PUT", "/bucket/key");
    request.headers = vec![("x-amz-meta-list", "one"), ("x-amz-meta-list", "two")];
    let (mut parts, _) = sdk_sign(request);
    parts.headers.remove("x-amz-meta-list");
    parts
        .headers
        .append("x-amz-meta-list", http::HeaderValue::from_static("two"));
    parts
        .headers
        .append("x-amz-meta-list", http::HeaderValue::from_static("one"));
    let error = authenticate_sdk(&parts).expect_err("reordered values");
    assert_eq!(error.code(), ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn session_token_header_is_signed() {
    let mut request = SdkRequest::new("GET", "/bucket/key");
    request.session_token = Some("token");
    let (mut parts, _) = sdk_sign(request);
    assert!(parts.headers.contains_key("x-amz-security-token"));
    authenticate_sdk(&parts).expect("token is only signed, never looked up");

    parts.headers.insert(
        "x-amz-security-token",
        http::HeaderValue::from_static("other"),
    );
    let error = authenticate_sdk(&parts).expect_err("token changed");
    assert_eq!(error.code(), ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn payload_modes_from_sdk() {
    let body = b"hello";
    let cases = [
        (
            SignableBody::Bytes(body),
            PayloadMode::Sha256(sha2::Sha256::digest(body).into()),
        ),
        (SignableBody::UnsignedPayload, PayloadMode::Unsigned),
        (
            SignableBody::StreamingUnsignedPayloadTrailer,
            PayloadMode::StreamingUnsignedTrailer,
        ),
        (
            SignableBody::StreamingSignedPayloadTrailer,
            PayloadMode::StreamingSignedTrailer,
        ),
        (
            SignableBody::Precomputed("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_string()),
            PayloadMode::StreamingSigned,
        ),
    ];
    for (signable_body, mode) in cases {
        let mut request = SdkRequest::new("PUT", "/bucket/key");
        request.body = signable_body;
        let (parts, _) = sdk_sign(request);
        let authenticated = authenticate_sdk(&parts).expect("signed by the SDK");
        assert_eq!(authenticated.payload_mode(), mode);
    }
}

#[test]
fn streaming_signed_trailer_matches_sdk() {
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let checksum = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&data))
    };
    let decoded_len = data.len().to_string();
    let mut request = SdkRequest::new("PUT", "/bucket/streamed%20key");
    request.body = SignableBody::StreamingSignedPayloadTrailer;
    request.headers = vec![
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", &decoded_len),
        ("x-amz-trailer", "x-amz-checksum-sha256"),
    ];
    let (parts, seed) = sdk_sign(request);

    let mut body = Vec::new();
    let mut previous = seed;
    for chunk in data.chunks(8192).chain([&[][..]]) {
        let signature = sdk_sign_chunk(chunk, &previous);
        body.extend_from_slice(
            format!("{:x};chunk-signature={signature}\r\n", chunk.len()).as_bytes(),
        );
        body.extend_from_slice(chunk);
        if !chunk.is_empty() {
            body.extend_from_slice(b"\r\n");
        }
        previous = signature;
    }
    let trailer_signature = sdk_sign_trailer(&[("x-amz-checksum-sha256", &checksum)], &previous);
    body.extend_from_slice(format!("x-amz-checksum-sha256:{checksum}\r\n").as_bytes());
    body.extend_from_slice(
        format!("x-amz-trailer-signature:{trailer_signature}\r\n\r\n").as_bytes(),
    );

    let authenticated = authenticate_sdk(&parts).expect("signed by the SDK");
    let verified = authenticated
        .verify_body(&parts, Pieces::new(body.chunks(333).map(<[u8]>::to_vec)))
        .expect("valid");
    assert_eq!(read_body(verified).expect_ok(), data);
}
