//! Authentication failures and their S3 error codes, expiry and clock skew
//! with an injected clock, and robustness against arbitrary input.

use aws_sigv4::http_request::SignableBody;
use proptest::prelude::*;

use super::super::canonical::{canonical_headers, canonical_query, normalized_uri, CanonicalParts};
use super::super::sigv4::{credential_scope, string_to_sign, SigningKey, EMPTY_SHA256_HEX};
use super::sdk::{
    authenticate_sdk, sdk_sign, sdk_store, SdkRequest, ACCESS_KEY_ID, REGION, SECRET, SIGNING_DATE,
};
use super::*;
use crate::s3::ErrorCode;

fn expect_error(parts: &Parts, code: ErrorCode) -> S3Error {
    let error = authenticate_sdk(parts).expect_err("authentication should fail");
    assert_eq!(error.code(), code, "{error}");
    assert_eq!(error.status(), code.status());
    error
}

fn signed_get() -> Parts {
    sdk_sign(SdkRequest::new("GET", "/bucket/key")).0
}

fn presigned_get(expires: Duration) -> Parts {
    let mut request = SdkRequest::new("GET", "/bucket/key");
    request.body = SignableBody::UnsignedPayload;
    request.presign = Some(expires);
    sdk_sign(request).0
}

fn set_header(parts: &mut Parts, name: &'static str, value: &str) {
    parts.headers.insert(
        name,
        http::HeaderValue::from_str(value).expect("valid header value"),
    );
}

fn authorization_of(parts: &Parts) -> String {
    parts
        .headers
        .get("authorization")
        .expect("signed")
        .to_str()
        .expect("ASCII")
        .to_string()
}

/// Replaces one `name=value` query parameter, or removes it when `value` is `None`.
fn replace_param(parts: &mut Parts, name: &str, value: Option<&str>) {
    let query = parts.uri.query().unwrap_or_default();
    let mut params: Vec<String> = query
        .split('&')
        .filter(|param| param.split('=').next() != Some(name))
        .map(String::from)
        .collect();
    if let Some(value) = value {
        params.push(format!("{name}={value}"));
    }
    parts.uri = format!("{}?{}", parts.uri.path(), params.join("&"))
        .parse()
        .expect("valid target");
}

fn with_config(
    parts: &Parts,
    config: &AuthConfig,
    now: SystemTime,
) -> Result<Authenticated, S3Error> {
    authenticate(parts, &sdk_store(), config, now)
}

#[test]
fn anonymous_request_is_denied() {
    let parts = parts("GET", "/bucket/key", &[("host", "127.0.0.1:9000")]);
    let error = expect_error(&parts, ErrorCode::AccessDenied);
    assert_eq!(error.status(), http::StatusCode::FORBIDDEN);
}

#[test]
fn unknown_access_key_is_rejected() {
    let parts = signed_get();
    let error = authenticate(
        &parts,
        &StaticStore(Vec::new()),
        &AuthConfig::default(),
        clock(SIGNING_DATE),
    )
    .expect_err("unknown key");
    assert_eq!(error.code(), ErrorCode::InvalidAccessKeyId);
    assert_eq!(error.status(), http::StatusCode::FORBIDDEN);
}

#[test]
fn wrong_secret_does_not_match() {
    let parts = signed_get();
    let store = StaticStore(vec![(ACCESS_KEY_ID.to_string(), format!("{SECRET}x"))]);
    let error = authenticate(&parts, &store, &AuthConfig::default(), clock(SIGNING_DATE))
        .expect_err("wrong secret");
    assert_eq!(error.code(), ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn altered_signature_does_not_match() {
    let mut parts = signed_get();
    let authorization = authorization_of(&parts);
    let last = authorization.chars().last().expect("non-empty");
    let replacement = if last == '0' { '1' } else { '0' };
    let altered = format!("{}{replacement}", &authorization[..authorization.len() - 1]);
    set_header(&mut parts, "authorization", &altered);
    expect_error(&parts, ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn second_authorization_header_rejected() {
    let mut parts = signed_get();
    let authorization = authorization_of(&parts);
    parts.headers.append(
        "authorization",
        http::HeaderValue::from_static("AWS4-HMAC-SHA256 garbage"),
    );
    let error = expect_error(&parts, ErrorCode::AuthorizationHeaderMalformed);
    assert!(
        error.to_string().contains("more than one Authorization"),
        "{error}"
    );

    // The same valid header twice is no better.
    parts.headers.remove("authorization");
    for _ in 0..2 {
        parts.headers.append(
            "authorization",
            http::HeaderValue::from_str(&authorization).expect("valid header value"),
        );
    }
    expect_error(&parts, ErrorCode::AuthorizationHeaderMalformed);
}

#[test]
fn unsigned_amz_header_is_denied() {
    let mut parts = signed_get();
    set_header(&mut parts, "x-amz-copy-source", "/other/secret");
    set_header(&mut parts, "x-amz-meta-note", "added");
    set_header(&mut parts, "x-amz_acl", "public-read");
    let error = expect_error(&parts, ErrorCode::AccessDenied);
    let xml = error.to_xml("ID", None);
    assert!(
        xml.contains(
            "<HeadersNotSigned>x-amz-copy-source, x-amz-meta-note, x-amz_acl</HeadersNotSigned>"
        ),
        "{xml}"
    );
    // The log line names the headers and the access key, the client
    // document only the headers.
    let logged = error.to_string();
    assert!(logged.contains("x-amz-copy-source"), "{logged}");
    assert!(logged.contains(ACCESS_KEY_ID), "{logged}");
    assert!(!xml.contains(ACCESS_KEY_ID), "{xml}");
}

#[test]
fn unsigned_amz_header_denied_on_presigned_url() {
    let mut parts = presigned_get(Duration::from_secs(300));
    authenticate_sdk(&parts).expect("presigned URL as signed");
    set_header(&mut parts, "x-amz-copy-source", "/other/secret");
    expect_error(&parts, ErrorCode::AccessDenied);
}

#[test]
fn unsigned_headers_allowed_outside_amz() {
    let mut parts = presigned_get(Duration::from_secs(300));
    // Presigned URLs sign only `host`. Their payload hash, other headers
    // and `x-amzn-*` (not `x-amz-*`) headers may be sent unsigned.
    set_header(&mut parts, "x-amz-content-sha256", "UNSIGNED-PAYLOAD");
    set_header(&mut parts, "content-type", "text/plain");
    set_header(&mut parts, "x-amzn-trace-id", "Root=1-0");
    authenticate_sdk(&parts).expect("headers outside x-amz-* need no signature");
}

#[test]
fn signed_amz_headers_are_accepted() {
    let mut request = SdkRequest::new("PUT", "/bucket/key");
    request.headers = vec![("x-amz-meta-note", "kept"), ("x-amz-tagging", "a=b")];
    let (parts, _) = sdk_sign(request);
    authenticate_sdk(&parts).expect("signed x-amz-* headers");
}

#[test]
fn clock_skew_limits_header_auth() {
    let parts = signed_get();
    let config = AuthConfig::default();
    let signed_at = clock(SIGNING_DATE);
    let limit = Duration::from_secs(15 * 60);
    for now in [signed_at - limit, signed_at + limit] {
        with_config(&parts, &config, now).expect("within 15 minutes");
    }
    for now in [
        signed_at - limit - Duration::from_secs(1),
        signed_at + limit + Duration::from_secs(1),
    ] {
        let error = with_config(&parts, &config, now).expect_err("skewed");
        assert_eq!(error.code(), ErrorCode::RequestTimeTooSkewed);
        assert_eq!(error.status(), http::StatusCode::FORBIDDEN);
    }

    let strict = AuthConfig {
        max_clock_skew: Duration::from_secs(60),
        ..AuthConfig::default()
    };
    let error =
        with_config(&parts, &strict, signed_at + Duration::from_secs(61)).expect_err("skewed");
    assert_eq!(error.code(), ErrorCode::RequestTimeTooSkewed);
}

#[test]
fn clock_before_epoch_is_skew() {
    let parts = signed_get();
    let now = UNIX_EPOCH - Duration::from_secs(10);
    let error = with_config(&parts, &AuthConfig::default(), now).expect_err("skewed");
    assert_eq!(error.code(), ErrorCode::RequestTimeTooSkewed);
}

#[test]
fn region_must_be_accepted() {
    let parts = signed_get();
    let now = clock(SIGNING_DATE);
    let config = AuthConfig {
        regions: vec!["eu-west-1".to_string()],
        ..AuthConfig::default()
    };
    let error = with_config(&parts, &config, now).expect_err("wrong region");
    assert_eq!(error.code(), ErrorCode::AuthorizationHeaderMalformed);
    assert_eq!(
        error.message(),
        format!("The authorization header is malformed; the region '{REGION}' is wrong; expecting 'eu-west-1'")
    );
    assert!(
        error
            .to_xml("id", None)
            .contains("<Region>eu-west-1</Region>"),
        "{}",
        error.to_xml("id", None)
    );

    let presigned = presigned_get(Duration::from_secs(60));
    let error = with_config(&presigned, &config, now).expect_err("wrong region");
    assert_eq!(error.code(), ErrorCode::AuthorizationQueryParametersError);
    assert!(
        error.message().contains("expecting 'eu-west-1'"),
        "{}",
        error.message()
    );

    let several = AuthConfig {
        regions: vec!["eu-west-1".to_string(), REGION.to_string()],
        ..AuthConfig::default()
    };
    with_config(&parts, &several, now).expect("second accepted region");
    let any = AuthConfig {
        regions: Vec::new(),
        ..AuthConfig::default()
    };
    with_config(&parts, &any, now).expect("empty list accepts any region");
}

#[test]
fn missing_content_sha256_is_invalid_request() {
    let mut parts = signed_get();
    parts.headers.remove("x-amz-content-sha256");
    let error = expect_error(&parts, ErrorCode::InvalidRequest);
    assert_eq!(
        error.message(),
        "Missing required header for this request: x-amz-content-sha256"
    );
}

#[test]
fn unknown_content_sha256_is_invalid_argument() {
    let mut request = SdkRequest::new("PUT", "/bucket/key");
    request.body = SignableBody::Precomputed("STREAMING-SOMETHING".to_string());
    let (parts, _) = sdk_sign(request);
    expect_error(&parts, ErrorCode::InvalidArgument);
}

#[test]
fn sigv4a_is_not_implemented() {
    let mut request = SdkRequest::new("PUT", "/bucket/key");
    request.body =
        SignableBody::Precomputed("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD".to_string());
    let (parts, _) = sdk_sign(request);
    expect_error(&parts, ErrorCode::NotImplemented);

    let mut parts = signed_get();
    let authorization =
        authorization_of(&parts).replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256");
    set_header(&mut parts, "authorization", &authorization);
    let error = expect_error(&parts, ErrorCode::NotImplemented);
    assert_eq!(error.status(), http::StatusCode::NOT_IMPLEMENTED);

    let mut presigned = presigned_get(Duration::from_secs(60));
    replace_param(
        &mut presigned,
        "X-Amz-Algorithm",
        Some("AWS4-ECDSA-P256-SHA256"),
    );
    expect_error(&presigned, ErrorCode::NotImplemented);
}

#[test]
fn sigv2_requires_sigv4() {
    let mut parts = signed_get();
    set_header(
        &mut parts,
        "authorization",
        "AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
    );
    let error = expect_error(&parts, ErrorCode::InvalidRequest);
    assert!(
        error.message().contains("AWS4-HMAC-SHA256"),
        "{}",
        error.message()
    );

    let query_v2 = super::parts(
        "GET",
        "/bucket/key?AWSAccessKeyId=AKIDEXAMPLE&Expires=1700000000&Signature=abc%3D",
        &[("host", "127.0.0.1:9000")],
    );
    let error = expect_error(&query_v2, ErrorCode::InvalidRequest);
    assert!(
        error.message().contains("AWS4-HMAC-SHA256"),
        "{}",
        error.message()
    );
}

#[test]
fn unknown_scheme_is_invalid_argument() {
    let mut parts = signed_get();
    set_header(&mut parts, "authorization", "Bearer token");
    let error = expect_error(&parts, ErrorCode::InvalidArgument);
    assert_eq!(error.message(), "Unsupported Authorization Type");
}

#[test]
fn malformed_authorization_header() {
    let parts_signed = signed_get();
    let authorization = authorization_of(&parts_signed);
    let credential = format!("{ACCESS_KEY_ID}/20260102/{REGION}/s3/aws4_request");
    let cases = [
        authorization.replace(", SignedHeaders=", ", Other="),
        authorization.replace("SignedHeaders=", "SignedHeaders=x,SignedHeaders="),
        format!(
            "AWS4-HMAC-SHA256 Credential={credential}, Signature={}",
            "0".repeat(64)
        ),
        authorization.replace(
            &credential,
            &format!("{ACCESS_KEY_ID}/20260102/{REGION}/s3"),
        ),
        authorization.replace(&credential, &format!("/20260102/{REGION}/s3/aws4_request")),
        authorization.replace(
            &credential,
            &format!("{ACCESS_KEY_ID}/20260102/{REGION}/ec2/aws4_request"),
        ),
        authorization.replace(
            &credential,
            &format!("{ACCESS_KEY_ID}/20260102/{REGION}/s3/aws5_request"),
        ),
        authorization.replace(
            &credential,
            &format!("{ACCESS_KEY_ID}/20260103/{REGION}/s3/aws4_request"),
        ),
        authorization.replace("SignedHeaders=", "SignedHeaders=;"),
        authorization.replace("host;", ""),
        format!("{}zz", &authorization[..authorization.len() - 2]),
        "AWS4-HMAC-SHA256".to_string(),
        "AWS4-HMAC-SHA256 ,,,".to_string(),
    ];
    for case in cases {
        let mut parts = parts_signed.clone();
        set_header(&mut parts, "authorization", &case);
        let error = authenticate_sdk(&parts).expect_err("malformed");
        assert_eq!(
            error.code(),
            ErrorCode::AuthorizationHeaderMalformed,
            "{case}: {error}"
        );
        assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
    }
}

#[test]
fn credential_date_must_match_request_date() {
    let mut parts = signed_get();
    let authorization = authorization_of(&parts).replace("/20260102/", "/20260101/");
    set_header(&mut parts, "authorization", &authorization);
    let error = expect_error(&parts, ErrorCode::AuthorizationHeaderMalformed);
    assert!(
        error.message().contains("Invalid credential date"),
        "{}",
        error.message()
    );
}

#[test]
fn request_date_is_required() {
    let mut parts = signed_get();
    set_header(&mut parts, "x-amz-date", "2026-01-02T03:04:05Z");
    let error = expect_error(&parts, ErrorCode::AccessDenied);
    assert_eq!(
        error.message(),
        "AWS authentication requires a valid Date or x-amz-date header"
    );

    parts.headers.remove("x-amz-date");
    expect_error(&parts, ErrorCode::AccessDenied);

    set_header(&mut parts, "date", "yesterday");
    expect_error(&parts, ErrorCode::AccessDenied);
}

/// Signs `parts` with the module's own primitives, for request shapes the
/// SDK cannot produce. `amz_date` is the timestamp of the string to sign.
fn sign_by_hand(parts: &mut Parts, signed_headers: &str, amz_date: &str) {
    let names: Vec<String> = signed_headers.split(';').map(String::from).collect();
    let payload_hash = parts
        .headers
        .get("x-amz-content-sha256")
        .expect("payload hash")
        .to_str()
        .expect("ASCII");
    let canonical = CanonicalParts {
        method: parts.method.as_str(),
        query: canonical_query(parts.uri.query(), None),
        headers: canonical_headers(&parts.headers, &names, b""),
        signed_headers,
        payload_hash,
    };
    let request = canonical.with_uri(&normalized_uri(parts.uri.path()));
    let date = &amz_date[..8];
    let scope = credential_scope(date, REGION);
    let key = SigningKey::derive(SECRET, date, REGION, "s3");
    let signature = key
        .sign(&string_to_sign(amz_date, &scope, &request))
        .to_hex();
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    );
    set_header(parts, "authorization", &authorization);
}

#[test]
fn date_header_replaces_missing_amz_date() {
    let mut parts = parts(
        "GET",
        "/bucket/key",
        &[
            ("host", "127.0.0.1:9000"),
            ("date", "Fri, 02 Jan 2026 03:04:05 GMT"),
            ("x-amz-content-sha256", EMPTY_SHA256_HEX),
        ],
    );
    sign_by_hand(&mut parts, "date;host;x-amz-content-sha256", SIGNING_DATE);
    authenticate_sdk(&parts).expect("Date header as request time");

    let error = authenticate(
        &parts,
        &sdk_store(),
        &AuthConfig::default(),
        clock("20260102T040405Z"),
    )
    .expect_err("an hour later");
    assert_eq!(error.code(), ErrorCode::RequestTimeTooSkewed);
}

#[test]
fn host_from_authority_without_host_header() {
    let (mut parts, _) = sdk_sign(SdkRequest::new("GET", "/bucket/key"));
    parts.headers.remove("host");
    parts.uri = "http://127.0.0.1:9000/bucket/key"
        .parse()
        .expect("absolute URI");
    authenticate_sdk(&parts).expect("authority stands in for Host");
}

#[test]
fn host_port_is_signed() {
    let mut parts = signed_get();
    set_header(&mut parts, "host", "127.0.0.1:9001");
    expect_error(&parts, ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn both_mechanisms_are_rejected() {
    let mut parts = presigned_get(Duration::from_secs(60));
    let header = authorization_of(&signed_get());
    set_header(&mut parts, "authorization", &header);
    let error = expect_error(&parts, ErrorCode::InvalidArgument);
    assert!(
        error
            .message()
            .starts_with("Only one auth mechanism allowed"),
        "{}",
        error.message()
    );
}

#[test]
fn presigned_missing_parameters() {
    for name in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ] {
        let mut parts = presigned_get(Duration::from_secs(60));
        replace_param(&mut parts, name, None);
        let error = expect_error(&parts, ErrorCode::AuthorizationQueryParametersError);
        assert_eq!(error.status(), http::StatusCode::BAD_REQUEST, "{name}");
    }
}

#[test]
fn presigned_malformed_parameters() {
    let cases = [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA1"),
        ("X-Amz-Date", "2026-01-02"),
        ("X-Amz-Expires", "0"),
        ("X-Amz-Expires", "604801"),
        ("X-Amz-Expires", "-5"),
        ("X-Amz-Expires", "soon"),
        ("X-Amz-Expires", "99999999999999999999999"),
        (
            "X-Amz-Credential",
            "AKIDEXAMPLE%2F20260102%2Fus-east-1%2Fs3",
        ),
        (
            "X-Amz-Credential",
            "AKIDEXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request",
        ),
        ("X-Amz-SignedHeaders", "x-amz-date"),
        ("X-Amz-Signature", "abc"),
    ];
    for (name, value) in cases {
        let mut parts = presigned_get(Duration::from_secs(60));
        replace_param(&mut parts, name, Some(value));
        let error = authenticate_sdk(&parts).expect_err("malformed");
        assert_eq!(
            error.code(),
            ErrorCode::AuthorizationQueryParametersError,
            "{name}={value}: {error}"
        );
    }

    let mut parts = presigned_get(Duration::from_secs(60));
    let query = format!("{}&X-Amz-Expires=60", parts.uri.query().unwrap_or_default());
    parts.uri = format!("/bucket/key?{query}")
        .parse()
        .expect("valid target");
    expect_error(&parts, ErrorCode::AuthorizationQueryParametersError);
}

#[test]
fn presigned_expiry_with_injected_clock() {
    let config = AuthConfig::default();
    let signed_at = clock(SIGNING_DATE);
    let week = Duration::from_secs(604_800);
    let parts = presigned_get(week);
    with_config(&parts, &config, signed_at).expect("at signing time");
    with_config(&parts, &config, signed_at + week).expect("at the last second");
    let error = with_config(&parts, &config, signed_at + week + Duration::from_secs(1))
        .expect_err("expired");
    assert_eq!(error.code(), ErrorCode::AccessDenied);
    assert_eq!(error.message(), "Request has expired");

    let parts = presigned_get(Duration::from_secs(1));
    with_config(&parts, &config, signed_at + Duration::from_secs(1)).expect("within one second");
    let error =
        with_config(&parts, &config, signed_at + Duration::from_secs(2)).expect_err("expired");
    assert_eq!(error.code(), ErrorCode::AccessDenied);
}

#[test]
fn presigned_future_date_within_skew() {
    let config = AuthConfig::default();
    let signed_at = clock(SIGNING_DATE);
    let parts = presigned_get(Duration::from_secs(60));
    with_config(&parts, &config, signed_at - Duration::from_secs(15 * 60))
        .expect("clock 15 minutes behind");
    let error = with_config(
        &parts,
        &config,
        signed_at - Duration::from_secs(15 * 60 + 1),
    )
    .expect_err("future");
    assert_eq!(error.code(), ErrorCode::AccessDenied);
    assert_eq!(error.status(), http::StatusCode::FORBIDDEN);
}

#[test]
fn presigned_signature_covers_expiry() {
    let mut parts = presigned_get(Duration::from_secs(60));
    replace_param(&mut parts, "X-Amz-Expires", Some("3600"));
    expect_error(&parts, ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn presigned_security_token_is_not_a_lookup_key() {
    let mut request = SdkRequest::new("GET", "/bucket/key");
    request.body = SignableBody::UnsignedPayload;
    request.presign = Some(Duration::from_secs(60));
    request.session_token = Some("FQoGZXIvYXdzE%2B/token");
    let (mut parts, _) = sdk_sign(request);
    authenticate_sdk(&parts).expect("token ignored for lookup");
    replace_param(&mut parts, "X-Amz-Security-Token", Some("other"));
    expect_error(&parts, ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn non_ascii_header_value_does_not_panic() {
    let mut parts = signed_get();
    parts.headers.insert(
        "x-amz-meta-bytes",
        http::HeaderValue::from_bytes(b"caf\xe9").expect("obs-text"),
    );
    let authorization =
        authorization_of(&parts).replace("SignedHeaders=", "SignedHeaders=x-amz-meta-bytes;");
    set_header(&mut parts, "authorization", &authorization);
    expect_error(&parts, ErrorCode::SignatureDoesNotMatch);

    parts.headers.insert(
        "authorization",
        http::HeaderValue::from_bytes(b"AWS4-HMAC-SHA256 \xff").expect("obs-text"),
    );
    expect_error(&parts, ErrorCode::AuthorizationHeaderMalformed);
}

proptest! {
    #[test]
    fn arbitrary_authorization_never_panics(value in "[ -~]{0,300}") {
        let mut parts = signed_get();
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            parts.headers.insert("authorization", value);
            prop_assert!(authenticate_sdk(&parts).is_err());
        }
    }

    #[test]
    fn arbitrary_query_never_panics(query in "[A-Za-z0-9%=&+._~-]{0,200}") {
        let base = "/bucket/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20260102%2Fus-east-1%2Fs3%2Faws4_request&";
        let target = format!("{base}{query}");
        if let Ok(uri) = target.parse::<http::Uri>() {
            let mut parts = super::parts("GET", "/", &[("host", "127.0.0.1:9000")]);
            parts.uri = uri;
            prop_assert!(authenticate_sdk(&parts).is_err());
        }
    }

    #[test]
    fn arbitrary_sdk_path_verifies(path in "/[A-Za-z0-9%=+~!$'()*@:,;/._-]{0,60}") {
        if path.parse::<http::Uri>().is_ok() {
            let (parts, _) = sdk_sign(SdkRequest::new("GET", &path));
            prop_assert!(authenticate_sdk(&parts).is_ok(), "{}", path);
        }
    }
}

/// A store that counts its secret lookups and caches signing keys.
struct CachingStore {
    inner: StaticStore,
    lookups: std::sync::atomic::AtomicUsize,
    cache: super::super::SigningKeyCache,
}

impl CredentialStore for CachingStore {
    fn secret_access_key(&self, access_key_id: &str) -> Option<SecretString> {
        self.lookups
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.secret_access_key(access_key_id)
    }

    fn signing_keys(&self) -> Option<&super::super::SigningKeyCache> {
        Some(&self.cache)
    }
}

#[test]
fn signing_key_cache_per_scope() {
    let store = CachingStore {
        inner: sdk_store(),
        lookups: Default::default(),
        cache: Default::default(),
    };
    let lookups = || store.lookups.load(std::sync::atomic::Ordering::SeqCst);
    let signed_at = |amz_date: &str| {
        let mut parts = parts(
            "GET",
            "/bucket/key",
            &[
                ("host", "127.0.0.1:9000"),
                ("x-amz-date", amz_date),
                ("x-amz-content-sha256", EMPTY_SHA256_HEX),
            ],
        );
        sign_by_hand(&mut parts, "host;x-amz-content-sha256;x-amz-date", amz_date);
        parts
    };
    let check = |parts: &Parts, amz_date: &str| {
        authenticate(parts, &store, &AuthConfig::default(), clock(amz_date))
    };

    let first = signed_at(SIGNING_DATE);
    check(&first, SIGNING_DATE).expect("first request");
    check(&first, SIGNING_DATE).expect("same scope again");
    assert_eq!(lookups(), 1, "the second request derived its key again");

    // A cached key still checks the signature.
    let mut altered = first.clone();
    let authorization = authorization_of(&altered);
    let (head, signature) = authorization.split_at(authorization.len() - 4);
    assert_ne!(signature, "0000");
    set_header(&mut altered, "authorization", &format!("{head}0000"));
    let error = check(&altered, SIGNING_DATE).expect_err("altered signature");
    assert_eq!(error.code(), ErrorCode::SignatureDoesNotMatch);

    let next_day = "20260103T030405Z";
    check(&signed_at(next_day), next_day).expect("next day's scope");
    assert_eq!(lookups(), 2, "a new scope date needs a new key");

    check(&signed_at(SIGNING_DATE), SIGNING_DATE).expect("first scope again");
    assert_eq!(
        lookups(),
        3,
        "the cache keeps the last scope of each client"
    );
}
