//! SigV4 signatures for upstream requests.
//!
//! aws-sigv4 derives the signing key, and each signature is one HMAC under
//! it. The canonical request is built here from the request that s3seal
//! assembled, with the rules of [`crate::s3::canonical`] for the query, the
//! headers, the scope and the string to sign, which the client's signature
//! check uses too. The signing key changes once a day, so it is derived
//! once per day and kept, and a request then costs one SHA-256 of its
//! canonical request and one HMAC. Unit tests compare every signature with
//! aws-sigv4's own request signer.

use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::{HeaderMap, Method};
use sha2::Sha256;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::keys::SecretString;
use crate::s3::canonical::{
    canonical_query, credential_scope, push_hex_lower, push_trimmed_value, string_to_sign,
    SIGV4_ALGORITHM as ALGORITHM, SIGV4_SERVICE as SERVICE,
};

/// The payload hash of upstream requests: s3seal streams bodies that it
/// cannot hash before sending them.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The payload hash of an `aws-chunked` body with an unsigned trailer,
/// which carries a checksum that is known only once the body has been
/// read.
pub const UNSIGNED_PAYLOAD_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/// Headers left out of the signature, the same set that aws-sigv4 leaves
/// out: the signature itself, and headers that a proxy on the way may
/// change or drop.
const UNSIGNED_HEADERS: &[&str] = &[
    "authorization",
    "user-agent",
    "x-amzn-trace-id",
    "transfer-encoding",
];

/// The failure to sign a request.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("header {0} has a value that is not visible ASCII")]
    HeaderValue(String),
    #[error("the clock reads a time outside the years 0 to 9999")]
    Time,
}

/// Signs upstream requests with one set of credentials for one region.
pub struct Signer {
    access_key_id: String,
    secret: SecretString,
    region: String,
    day_key: Mutex<Option<DayKey>>,
}

/// The signing key of one UTC day.
struct DayKey {
    date: String,
    key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn new(access_key_id: String, secret: &SecretString, region: String) -> Self {
        Self {
            access_key_id,
            secret: SecretString::new(secret.expose().to_string()),
            region,
            day_key: Mutex::new(None),
        }
    }

    /// Signs a request whose headers are final except for the signature.
    /// `payload_hash` is [`UNSIGNED_PAYLOAD`] or [`UNSIGNED_PAYLOAD_TRAILER`].
    /// Sets `x-amz-content-sha256` to it, sets `x-amz-date`
    /// to `now`, and sets `authorization`. `path` is the percent-encoded
    /// path and `query` the query string as they go on the wire, and
    /// `headers` must hold `host`.
    pub fn sign(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        headers: &mut HeaderMap,
        payload_hash: &'static str,
        now: SystemTime,
    ) -> Result<(), SignError> {
        let amz_date = format_amz_date(now)?;
        let date = &amz_date[..8];
        headers.insert(
            HeaderName::from_static("x-amz-content-sha256"),
            HeaderValue::from_static(payload_hash),
        );
        headers.insert(
            HeaderName::from_static("x-amz-date"),
            // The date is digits and two letters.
            HeaderValue::from_str(&amz_date).map_err(|_| SignError::Time)?,
        );
        headers.remove(AUTHORIZATION);

        let mut names: Vec<&HeaderName> = Vec::with_capacity(headers.keys_len());
        for name in headers.keys() {
            if !UNSIGNED_HEADERS.contains(&name.as_str()) {
                names.push(name);
            }
        }
        names.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        let mut signed_headers = String::with_capacity(names.len() * 24);
        let mut header_block = Vec::with_capacity(512);
        for (index, name) in names.iter().enumerate() {
            if index > 0 {
                signed_headers.push(';');
            }
            signed_headers.push_str(name.as_str());
            header_block.extend_from_slice(name.as_str().as_bytes());
            header_block.push(b':');
            for (position, value) in headers.get_all(*name).iter().enumerate() {
                if value.to_str().is_err() {
                    return Err(SignError::HeaderValue(name.to_string()));
                }
                if position > 0 {
                    header_block.push(b',');
                }
                push_trimmed_value(&mut header_block, value.as_bytes());
            }
            header_block.push(b'\n');
        }
        let query = if query.is_empty() {
            Vec::new()
        } else {
            canonical_query(Some(query), None)
        };

        let mut canonical = Vec::with_capacity(
            method.as_str().len() + path.len() + query.len() + header_block.len() + 200,
        );
        for part in [
            method.as_str().as_bytes(),
            path.as_bytes(),
            &query,
            &header_block,
        ] {
            canonical.extend_from_slice(part);
            canonical.push(b'\n');
        }
        canonical.extend_from_slice(signed_headers.as_bytes());
        canonical.push(b'\n');
        canonical.extend_from_slice(payload_hash.as_bytes());

        let scope = credential_scope(date, &self.region);
        let string_to_sign = string_to_sign(&amz_date, &scope, &canonical);

        let signature = {
            let mut day_key = self.day_key.lock().unwrap_or_else(PoisonError::into_inner);
            let key = match day_key.as_ref() {
                Some(cached) if cached.date == date => &cached.key,
                _ => {
                    let key = aws_sigv4::sign::v4::generate_signing_key(
                        self.secret.expose(),
                        now,
                        &self.region,
                        SERVICE,
                    );
                    &day_key
                        .insert(DayKey {
                            date: date.to_string(),
                            key: Zeroizing::new(key.as_ref().to_vec()),
                        })
                        .key
                }
            };
            // HMAC takes keys of any length (RFC 2104).
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
                unreachable!("HMAC-SHA256 accepts keys of any length")
            };
            mac.update(&string_to_sign);
            mac.finalize().into_bytes()
        };

        let mut authorization = Vec::with_capacity(
            ALGORITHM.len() + self.access_key_id.len() + scope.len() + signed_headers.len() + 120,
        );
        for part in [
            ALGORITHM,
            " Credential=",
            &self.access_key_id,
            "/",
            &scope,
            ", SignedHeaders=",
            &signed_headers,
            ", Signature=",
        ] {
            authorization.extend_from_slice(part.as_bytes());
        }
        push_hex_lower(&mut authorization, &signature);
        let mut value = HeaderValue::from_bytes(&authorization)
            .map_err(|_| SignError::HeaderValue("authorization".into()))?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
        Ok(())
    }
}

/// Formats `now` as `YYYYMMDDTHHMMSSZ` in UTC.
fn format_amz_date(now: SystemTime) -> Result<String, SignError> {
    let time = OffsetDateTime::from(now);
    let year = u32::try_from(time.year()).map_err(|_| SignError::Time)?;
    if year > 9999 {
        return Err(SignError::Time);
    }
    let mut out = String::with_capacity(16);
    push_digits(&mut out, year, 4);
    push_digits(&mut out, u32::from(u8::from(time.month())), 2);
    push_digits(&mut out, u32::from(time.day()), 2);
    out.push('T');
    push_digits(&mut out, u32::from(time.hour()), 2);
    push_digits(&mut out, u32::from(time.minute()), 2);
    push_digits(&mut out, u32::from(time.second()), 2);
    out.push('Z');
    Ok(out)
}

/// Appends `value` as `digits` decimal digits with leading zeros.
fn push_digits(out: &mut String, value: u32, digits: u32) {
    for position in (0..digits).rev() {
        let digit = value / 10u32.pow(position) % 10;
        out.push(char::from_digit(digit, 10).unwrap_or('0'));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{
        sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
        SigningSettings, UriPathNormalizationMode,
    };
    use aws_sigv4::sign::v4;
    use std::time::Duration;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn signer() -> Signer {
        Signer::new(
            "AKIDEXAMPLE".into(),
            &SecretString::new(SECRET.into()),
            "eu-west-3".into(),
        )
    }

    /// Signs the same request with aws-sigv4's request signer and returns
    /// its `authorization` header.
    fn reference_authorization(
        method: &Method,
        path: &str,
        query: &str,
        headers: &HeaderMap,
        payload_hash: &str,
        now: SystemTime,
    ) -> String {
        let mut uri = format!("http://{}{path}", headers["host"].to_str().unwrap());
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(query);
        }

        let mut input = headers.clone();
        input.remove("x-amz-date");
        input.remove("authorization");
        let pairs: Vec<(&str, &str)> = input
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
            .collect();
        let signable = SignableRequest::new(
            method.as_str(),
            &uri,
            pairs.into_iter(),
            if payload_hash == UNSIGNED_PAYLOAD {
                SignableBody::UnsignedPayload
            } else {
                SignableBody::Precomputed(payload_hash.to_string())
            },
        )
        .unwrap();

        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
        let identity = Credentials::new("AKIDEXAMPLE", SECRET, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-3")
            .name("s3")
            .time(now)
            .settings(settings)
            .build()
            .unwrap()
            .into();

        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let (headers, _) = instructions.into_parts();
        headers
            .into_iter()
            .find(|header| header.name() == "authorization")
            .map(|header| header.value().to_string())
            .unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn assert_matches_aws_sigv4(method: Method, path: &str, query: &str, pairs: &[(&str, &str)]) {
        assert_matches_with_payload(method, path, query, pairs, UNSIGNED_PAYLOAD);
    }

    fn assert_matches_with_payload(
        method: Method,
        path: &str,
        query: &str,
        pairs: &[(&str, &str)],
        payload_hash: &'static str,
    ) {
        let now = at(1_700_000_000);
        let mut map = headers(pairs);
        signer()
            .sign(&method, path, query, &mut map, payload_hash, now)
            .unwrap();
        let expected = reference_authorization(&method, path, query, &map, payload_hash, now);
        assert_eq!(
            map["authorization"],
            expected.as_str(),
            "{method} {path}?{query}"
        );
    }

    #[test]
    fn signatures_match_aws_sigv4() {
        assert_matches_aws_sigv4(
            Method::PUT,
            "/bucket/a%20b/c%2Bd",
            "",
            &[
                ("host", "127.0.0.1:9000"),
                ("content-length", "1024"),
                ("content-type", "application/octet-stream"),
                ("x-amz-meta-s3seal-envelope", "AAEC"),
            ],
        );
        assert_matches_aws_sigv4(Method::GET, "/", "", &[("host", "s3.example.com")]);
        assert_matches_aws_sigv4(
            Method::GET,
            "/bucket",
            "list-type=2&prefix=a%2Fb&delimiter=%2F&max-keys=10&encoding-type=url",
            &[("host", "bucket.s3.example.com")],
        );
        assert_matches_aws_sigv4(
            Method::POST,
            "/bucket/key",
            "uploads",
            &[
                ("host", "h"),
                ("user-agent", "aws-cli/1"),
                ("x-amzn-trace-id", "t"),
            ],
        );
        assert_matches_aws_sigv4(
            Method::GET,
            "/bucket/%C3%A9",
            "partNumber=2&versionId=v%2B1&prefix=a+b&marker=x%2ay&tagging&b=2&b=1",
            &[
                ("host", "h"),
                ("range", "bytes=0-99"),
                ("x-amz-meta-b", "one"),
                ("x-amz-meta-b", "two"),
            ],
        );
        assert_matches_aws_sigv4(
            Method::PUT,
            "/bucket/key",
            "",
            &[
                ("host", "h"),
                ("x-amz-meta-spaces", "a   b  c"),
                ("x-amz-copy-source", "/src/k%20ey"),
            ],
        );
    }

    #[test]
    fn trailer_payload_signature_matches_aws_sigv4() {
        assert_matches_with_payload(
            Method::PUT,
            "/bucket/key",
            "partNumber=2&uploadId=u",
            &[
                ("host", "h"),
                ("content-encoding", "aws-chunked"),
                ("content-length", "87"),
                ("x-amz-decoded-content-length", "11"),
                ("x-amz-trailer", "x-amz-checksum-crc32"),
            ],
            UNSIGNED_PAYLOAD_TRAILER,
        );
    }

    #[test]
    fn signing_sets_date_payload_and_authorization() {
        let mut map = headers(&[("host", "h"), ("authorization", "the client's")]);
        signer()
            .sign(
                &Method::GET,
                "/b/k",
                "",
                &mut map,
                UNSIGNED_PAYLOAD,
                at(1_700_000_000),
            )
            .unwrap();
        assert_eq!(map["x-amz-date"], "20231114T221320Z");
        assert_eq!(map["x-amz-content-sha256"], UNSIGNED_PAYLOAD);
        let authorization = map["authorization"].to_str().unwrap();
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-3/s3/aws4_request, \
                 SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="
            ),
            "{authorization}"
        );
        assert!(map["authorization"].is_sensitive());
    }

    #[test]
    fn signing_key_follows_the_day() {
        let signer = signer();
        let before_midnight = at(1_700_006_399);
        let after_midnight = at(1_700_006_401);
        for now in [before_midnight, after_midnight, before_midnight] {
            let mut map = headers(&[("host", "h")]);
            signer
                .sign(&Method::GET, "/b", "", &mut map, UNSIGNED_PAYLOAD, now)
                .unwrap();
            let expected =
                reference_authorization(&Method::GET, "/b", "", &map, UNSIGNED_PAYLOAD, now);
            assert_eq!(map["authorization"], expected.as_str());
        }
    }

    #[test]
    fn non_ascii_header_value_rejected() {
        let mut map = headers(&[("host", "h")]);
        map.insert(
            "x-amz-meta-name",
            HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap(),
        );
        let error = signer()
            .sign(
                &Method::PUT,
                "/b/k",
                "",
                &mut map,
                UNSIGNED_PAYLOAD,
                at(1_700_000_000),
            )
            .unwrap_err();
        assert!(matches!(error, SignError::HeaderValue(name) if name == "x-amz-meta-name"));
    }
}
