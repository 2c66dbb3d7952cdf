//! Parsing of the two SigV4 mechanisms, the `Authorization` header and
//! presigned query parameters, into one form, with S3's checks of dates,
//! scope and expiry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::request::Parts;
use time::OffsetDateTime;

use super::payload::UNSIGNED_PAYLOAD;
use super::sigv4::{
    format_amz_date, parse_amz_date, parse_http_date, Signature, ALGORITHM, ALGORITHM_SIGV4A,
    SCOPE_TERMINATOR, SERVICE,
};
use super::AuthConfig;
use crate::s3::canonical::parse_query;
use crate::s3::{ErrorCode, S3Error};

/// The maximum `X-Amz-Expires` S3 accepts: seven days in seconds.
pub const MAX_PRESIGNED_EXPIRES_SECS: u64 = 604_800;

pub(crate) const CONTENT_SHA256: &str = "x-amz-content-sha256";

const PARAM_ALGORITHM: &str = "X-Amz-Algorithm";
const PARAM_CREDENTIAL: &str = "X-Amz-Credential";
const PARAM_DATE: &str = "X-Amz-Date";
const PARAM_EXPIRES: &str = "X-Amz-Expires";
const PARAM_SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
pub(crate) const PARAM_SIGNATURE: &str = "X-Amz-Signature";
const PARAM_CONTENT_SHA256: &str = "X-Amz-Content-Sha256";

const SIGV2_MESSAGE: &str =
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.";

/// The location of the signature in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    Header,
    Presigned,
}

/// The signature claim of a request, from either mechanism.
#[derive(Debug)]
pub(crate) struct SignatureClaim {
    pub(crate) mechanism: Mechanism,
    pub(crate) access_key_id: String,
    /// The `YYYYMMDD` date of the credential scope.
    pub(crate) scope_date: String,
    pub(crate) region: String,
    /// The `SignedHeaders` list as sent, which goes into the canonical request.
    pub(crate) signed_headers_text: String,
    /// The signed header names, lowercase.
    pub(crate) signed_headers: Vec<String>,
    pub(crate) signature: Signature,
    /// The request timestamp in ISO 8601 basic format, as it goes into the string to sign.
    pub(crate) amz_date: String,
    /// The payload hash line of the canonical request.
    pub(crate) payload_hash: String,
}

/// Parses and checks the SigV4 claim of a request, without any secret:
/// the mechanism, the scope against the accepted regions, and the request
/// time against `now`.
pub(crate) fn parse_claim(
    parts: &Parts,
    config: &AuthConfig,
    now: SystemTime,
) -> Result<SignatureClaim, S3Error> {
    let query = parse_query(parts.uri.query().unwrap_or_default());
    let has_param = |name: &str| query.iter().any(|(key, _)| key == name.as_bytes());
    let authorization = parts.headers.get(http::header::AUTHORIZATION);

    let presigned =
        has_param(PARAM_ALGORITHM) || has_param(PARAM_CREDENTIAL) || has_param(PARAM_SIGNATURE);
    let presigned_v2 = has_param("AWSAccessKeyId") && has_param("Signature");

    match (authorization, presigned || presigned_v2) {
        (Some(_), true) => Err(S3Error::new(
            ErrorCode::InvalidArgument,
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
             Signature query string parameter or the Authorization header should be specified",
        )),
        (Some(_), false)
            if parts
                .headers
                .get_all(http::header::AUTHORIZATION)
                .iter()
                .count()
                > 1 =>
        {
            Err(header_malformed(
                "the request has more than one Authorization header",
            ))
        }
        (Some(value), false) => {
            let value = value
                .to_str()
                .map_err(|_| header_malformed("the header is not ASCII"))?;
            parse_header_claim(parts, value, config, now)
        }
        (None, true) if presigned => parse_query_claim(&query, config, now),
        (None, true) => Err(S3Error::new(ErrorCode::InvalidRequest, SIGV2_MESSAGE)),
        (None, false) => Err(S3Error::new(ErrorCode::AccessDenied, "Access Denied")),
    }
}

fn header_malformed(detail: &str) -> S3Error {
    S3Error::new(
        ErrorCode::AuthorizationHeaderMalformed,
        format!("The authorization header is malformed; {detail}"),
    )
}

fn query_error(message: impl Into<String>) -> S3Error {
    S3Error::new(ErrorCode::AuthorizationQueryParametersError, message)
}

/// Builds the error for a bad credential component, in the wording of
/// the mechanism.
fn credential_error(mechanism: Mechanism, detail: &str) -> S3Error {
    match mechanism {
        Mechanism::Header => header_malformed(detail),
        Mechanism::Presigned => query_error(format!(
            "Error parsing the X-Amz-Credential parameter; {detail}"
        )),
    }
}

fn parse_header_claim(
    parts: &Parts,
    authorization: &str,
    config: &AuthConfig,
    now: SystemTime,
) -> Result<SignatureClaim, S3Error> {
    let (scheme, rest) = authorization
        .trim()
        .split_once(' ')
        .unwrap_or((authorization.trim(), ""));
    if scheme == ALGORITHM_SIGV4A {
        return Err(S3Error::new(
            ErrorCode::NotImplemented,
            "SigV4a (AWS4-ECDSA-P256-SHA256) is not supported; sign with AWS4-HMAC-SHA256.",
        ));
    }
    if scheme == "AWS" {
        return Err(S3Error::new(ErrorCode::InvalidRequest, SIGV2_MESSAGE));
    }
    if scheme != ALGORITHM {
        return Err(S3Error::new(
            ErrorCode::InvalidArgument,
            "Unsupported Authorization Type",
        ));
    }

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for component in rest
        .split(',')
        .map(str::trim)
        .filter(|component| !component.is_empty())
    {
        let (name, value) = component.split_once('=').unwrap_or((component, ""));
        let slot = match name.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => return Err(header_malformed(&format!("unexpected component '{other}'"))),
        };
        if slot.replace(value.trim()).is_some() {
            return Err(header_malformed(&format!(
                "the component '{name}' appears more than once"
            )));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(header_malformed(
            "the authorization header requires three components: Credential, SignedHeaders, and Signature.",
        ));
    };

    let (amz_date, request_time) = header_request_time(parts)?;
    let scope = parse_credential(credential, Mechanism::Header, &amz_date, config)?;
    let (signed_headers_text, signed_headers) =
        parse_signed_headers(signed_headers, Mechanism::Header)?;
    let signature = Signature::from_hex(signature)
        .ok_or_else(|| header_malformed("the Signature is not 64 hex digits."))?;

    let skew = seconds_between(now, request_time).unsigned_abs();
    if skew > u128::from(config.max_clock_skew.as_secs()) {
        return Err(S3Error::new(
            ErrorCode::RequestTimeTooSkewed,
            "The difference between the request time and the current time is too large.",
        ));
    }

    let payload_hash = match parts.headers.get(CONTENT_SHA256) {
        Some(value) => value
            .to_str()
            .map_err(|_| super::payload::invalid_content_sha256())?
            .to_string(),
        None => {
            return Err(S3Error::new(
                ErrorCode::InvalidRequest,
                "Missing required header for this request: x-amz-content-sha256",
            ))
        }
    };

    Ok(SignatureClaim {
        mechanism: Mechanism::Header,
        access_key_id: scope.access_key_id,
        scope_date: scope.date,
        region: scope.region,
        signed_headers_text,
        signed_headers,
        signature,
        amz_date,
        payload_hash,
    })
}

/// Reads the request time from `x-amz-date`, or from `Date` when
/// `x-amz-date` is absent, returning it in the string-to-sign format.
fn header_request_time(parts: &Parts) -> Result<(String, OffsetDateTime), S3Error> {
    let invalid = || {
        S3Error::new(
            ErrorCode::AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header",
        )
    };
    if let Some(value) = parts.headers.get("x-amz-date") {
        let text = value.to_str().map_err(|_| invalid())?.trim();
        let time = parse_amz_date(text).ok_or_else(invalid)?;
        return Ok((text.to_string(), time));
    }
    let value = parts.headers.get(http::header::DATE).ok_or_else(invalid)?;
    let time = value
        .to_str()
        .ok()
        .and_then(parse_http_date)
        .ok_or_else(invalid)?;
    let text = format_amz_date(time).ok_or_else(invalid)?;
    Ok((text, time))
}

fn parse_query_claim(
    query: &[(Vec<u8>, Vec<u8>)],
    config: &AuthConfig,
    now: SystemTime,
) -> Result<SignatureClaim, S3Error> {
    let param = |name: &str| -> Result<Option<&str>, S3Error> {
        let mut values = query.iter().filter(|(key, _)| key == name.as_bytes());
        let Some((_, value)) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(query_error(format!(
                "The {name} parameter appears more than once."
            )));
        }
        std::str::from_utf8(value)
            .map(Some)
            .map_err(|_| query_error(format!("The {name} parameter is not valid UTF-8.")))
    };
    let required = |name: &str| -> Result<&str, S3Error> {
        param(name)?.ok_or_else(|| {
            query_error(
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, \
                 X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
            )
        })
    };

    let algorithm = required(PARAM_ALGORITHM)?;
    if algorithm == ALGORITHM_SIGV4A {
        return Err(S3Error::new(
            ErrorCode::NotImplemented,
            "SigV4a (AWS4-ECDSA-P256-SHA256) is not supported; sign with AWS4-HMAC-SHA256.",
        ));
    }
    if algorithm != ALGORITHM {
        return Err(query_error(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
        ));
    }
    let credential = required(PARAM_CREDENTIAL)?;
    let amz_date = required(PARAM_DATE)?;
    let expires = required(PARAM_EXPIRES)?;
    let signed_headers = required(PARAM_SIGNED_HEADERS)?;
    let signature = required(PARAM_SIGNATURE)?;

    let request_time = parse_amz_date(amz_date).ok_or_else(|| {
        query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    })?;
    let expires = parse_expires(expires)?;
    let scope = parse_credential(credential, Mechanism::Presigned, amz_date, config)?;
    let (signed_headers_text, signed_headers) =
        parse_signed_headers(signed_headers, Mechanism::Presigned)?;
    let signature = Signature::from_hex(signature)
        .ok_or_else(|| query_error("X-Amz-Signature is not 64 hex digits."))?;

    let age = seconds_between(now, request_time);
    if -age > i128::from(config.max_clock_skew.as_secs()) {
        return Err(S3Error::new(
            ErrorCode::AccessDenied,
            "Request is not valid yet",
        ));
    }
    if age > i128::from(expires) {
        return Err(S3Error::new(ErrorCode::AccessDenied, "Request has expired"));
    }

    let payload_hash = param(PARAM_CONTENT_SHA256)?
        .unwrap_or(UNSIGNED_PAYLOAD)
        .to_string();

    Ok(SignatureClaim {
        mechanism: Mechanism::Presigned,
        access_key_id: scope.access_key_id,
        scope_date: scope.date,
        region: scope.region,
        signed_headers_text,
        signed_headers,
        signature,
        amz_date: amz_date.to_string(),
        payload_hash,
    })
}

fn parse_expires(text: &str) -> Result<u64, S3Error> {
    if let Some(digits) = text.strip_prefix('-') {
        if !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(query_error("X-Amz-Expires must be non-negative"));
        }
    }
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(query_error("X-Amz-Expires should be a number"));
    }
    let expires = text.parse::<u64>().unwrap_or(u64::MAX);
    if expires == 0 {
        return Err(query_error("X-Amz-Expires must be at least 1 second"));
    }
    if expires > MAX_PRESIGNED_EXPIRES_SECS {
        return Err(query_error(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ));
    }
    Ok(expires)
}

struct Scope {
    access_key_id: String,
    date: String,
    region: String,
}

/// Parses `AKID/YYYYMMDD/REGION/s3/aws4_request` and checks it against the
/// request date and the accepted regions.
fn parse_credential(
    credential: &str,
    mechanism: Mechanism,
    amz_date: &str,
    config: &AuthConfig,
) -> Result<Scope, S3Error> {
    let mut components = credential.rsplitn(5, '/');
    let terminator = components.next().unwrap_or_default();
    let service = components.next();
    let region = components.next();
    let date = components.next();
    let access_key_id = components.next();

    let (Some(service), Some(region), Some(date), Some(access_key_id)) =
        (service, region, date, access_key_id)
    else {
        return Err(credential_error(
            mechanism,
            "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".",
        ));
    };
    if access_key_id.is_empty() || region.is_empty() {
        return Err(credential_error(
            mechanism,
            "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".",
        ));
    }

    if amz_date.get(..8) != Some(date) {
        return Err(credential_error(
            mechanism,
            "Invalid credential date. Date is not the same as X-Amz-Date.",
        ));
    }

    if !config.regions.is_empty() && !config.regions.iter().any(|accepted| accepted == region) {
        let expected = config
            .regions
            .first()
            .map(String::as_str)
            .unwrap_or_default();
        return Err(credential_error(
            mechanism,
            &format!("the region '{region}' is wrong; expecting '{expected}'"),
        )
        .with_region(expected));
    }

    if service != SERVICE {
        return Err(credential_error(
            mechanism,
            &format!("incorrect service '{service}'. This endpoint belongs to '{SERVICE}'."),
        ));
    }

    if terminator != SCOPE_TERMINATOR {
        return Err(credential_error(
            mechanism,
            &format!("incorrect terminal '{terminator}'. This endpoint uses '{SCOPE_TERMINATOR}'."),
        ));
    }

    Ok(Scope {
        access_key_id: access_key_id.to_string(),
        date: date.to_string(),
        region: region.to_string(),
    })
}

/// Splits `SignedHeaders` into lowercase names and requires `host` among them.
fn parse_signed_headers(
    text: &str,
    mechanism: Mechanism,
) -> Result<(String, Vec<String>), S3Error> {
    let names: Vec<String> = text.split(';').map(str::to_ascii_lowercase).collect();
    let error = |detail: &str| match mechanism {
        Mechanism::Header => header_malformed(detail),
        Mechanism::Presigned => query_error(format!("X-Amz-SignedHeaders is invalid: {detail}")),
    };
    if names
        .iter()
        .any(|name| name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err())
    {
        return Err(error(
            "SignedHeaders must be header names separated by ';'.",
        ));
    }
    if !names.iter().any(|name| name == "host") {
        return Err(error("SignedHeaders must include host."));
    }
    Ok((text.to_string(), names))
}

/// Returns `now - time` in whole seconds, which is positive when `time` is in the past.
fn seconds_between(now: SystemTime, time: OffsetDateTime) -> i128 {
    let now = match now.duration_since(UNIX_EPOCH) {
        Ok(elapsed) => i128::from(elapsed.as_secs()),
        Err(error) => -i128::from(error.duration().as_secs()),
    };
    now - i128::from(time.unix_timestamp())
}

/// The default maximum difference between the request time and the clock.
pub(crate) const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);
