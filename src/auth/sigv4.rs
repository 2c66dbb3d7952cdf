//! SigV4 primitives: signatures, signing keys, credential scopes and the
//! two timestamp formats S3 accepts.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};
use zeroize::Zeroizing;

pub(crate) use crate::s3::canonical::{credential_scope, string_to_sign};
use crate::s3::canonical::{hex_lower, SIGV4_ALGORITHM, SIGV4_SCOPE_TERMINATOR, SIGV4_SERVICE};

/// The only signing algorithm accepted, in the `Authorization` header and in `X-Amz-Algorithm`.
pub(crate) const ALGORITHM: &str = SIGV4_ALGORITHM;

/// The SigV4a algorithm, which is recognized only to be rejected as not implemented.
pub(crate) const ALGORITHM_SIGV4A: &str = "AWS4-ECDSA-P256-SHA256";

/// The only service name accepted in a credential scope.
pub(crate) const SERVICE: &str = SIGV4_SERVICE;

/// The last component of every SigV4 credential scope.
pub(crate) const SCOPE_TERMINATOR: &str = SIGV4_SCOPE_TERMINATOR;

/// The lowercase hex SHA-256 of an empty input.
pub(crate) const EMPTY_SHA256_HEX: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

type HmacSha256 = Hmac<Sha256>;

/// A SigV4 signature: 32 bytes of HMAC-SHA256 output.
///
/// The type has no `PartialEq`, so every comparison goes through
/// `ConstantTimeEq`.
#[derive(Clone, Copy)]
pub(crate) struct Signature([u8; 32]);

impl Signature {
    /// Parses exactly 64 hex digits, returning `None` for anything else.
    pub(crate) fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Self(bytes))
    }

    /// Formats the signature as 64 lowercase hex digits, the form that
    /// chains into the next chunk's string to sign.
    pub(crate) fn to_hex(self) -> String {
        hex_lower(&self.0)
    }

    /// Compares in constant time and returns a plain `bool`.
    pub(crate) fn matches(&self, other: &Signature) -> bool {
        self.ct_eq(other).into()
    }
}

impl ConstantTimeEq for Signature {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex_lower(&self.0))
    }
}

/// A derived SigV4 signing key (`kSigning`), zeroized on drop.
#[derive(Clone)]
pub(crate) struct SigningKey(Zeroizing<[u8; 32]>);

impl SigningKey {
    /// Derives `kSigning` from the secret access key and the credential scope
    /// components: `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
    pub(crate) fn derive(secret_access_key: &str, date: &str, region: &str, service: &str) -> Self {
        let mut seed = Zeroizing::new(Vec::with_capacity(4 + secret_access_key.len()));
        seed.extend_from_slice(b"AWS4");
        seed.extend_from_slice(secret_access_key.as_bytes());

        let date_key = hmac_sha256(&seed, date.as_bytes());
        let region_key = hmac_sha256(date_key.as_slice(), region.as_bytes());
        let service_key = hmac_sha256(region_key.as_slice(), service.as_bytes());
        Self(hmac_sha256(
            service_key.as_slice(),
            SCOPE_TERMINATOR.as_bytes(),
        ))
    }

    /// Signs a string to sign.
    pub(crate) fn sign(&self, string_to_sign: &[u8]) -> Signature {
        Signature(*hmac_sha256(self.0.as_slice(), string_to_sign))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 32]> {
    // HMAC hashes or zero-pads a key of any length (RFC 2104), so
    // `new_from_slice` of `hmac` 0.12 never fails.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 accepts keys of any length"),
    };
    mac.update(data);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// Returns the lowercase hex SHA-256 of `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex_lower(&Sha256::digest(data))
}

const AMZ_DATE_FORMAT: &[FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

const HTTP_DATE_FORMAT: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// Parses the ISO 8601 basic format `YYYYMMDDTHHMMSSZ` of `x-amz-date` and `X-Amz-Date`.
pub(crate) fn parse_amz_date(text: &str) -> Option<OffsetDateTime> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 || bytes.get(8) != Some(&b'T') || bytes.get(15) != Some(&b'Z') {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = bytes.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let year = i32::try_from(digits(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(digits(4..6)?).ok()?).ok()?;
    let day = u8::try_from(digits(6..8)?).ok()?;
    let hour = u8::try_from(digits(9..11)?).ok()?;
    let minute = u8::try_from(digits(11..13)?).ok()?;
    let second = u8::try_from(digits(13..15)?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Parses the IMF-fixdate form of the HTTP `Date` header, such as
/// `Fri, 24 May 2013 00:00:00 GMT`.
pub(crate) fn parse_http_date(text: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(text.trim(), HTTP_DATE_FORMAT)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// Formats a time in the ISO 8601 basic format used in strings to sign.
pub(crate) fn format_amz_date(time: OffsetDateTime) -> Option<String> {
    time.format(AMZ_DATE_FORMAT).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_hex_round_trip() {
        let text = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
        let signature = Signature::from_hex(text).expect("valid hex");
        assert_eq!(signature.to_hex(), text);
    }

    #[test]
    fn signature_rejects_bad_hex() {
        assert!(Signature::from_hex("").is_none());
        assert!(Signature::from_hex(&"a".repeat(63)).is_none());
        assert!(Signature::from_hex(&"a".repeat(65)).is_none());
        assert!(Signature::from_hex(&"g".repeat(64)).is_none());
        assert!(Signature::from_hex(&"é".repeat(32)).is_none());
    }

    #[test]
    fn signature_matches_in_constant_time() {
        let a = Signature([1; 32]);
        let mut other = [1; 32];
        other[31] = 2;
        assert!(a.matches(&Signature([1; 32])));
        assert!(!a.matches(&Signature(other)));
    }

    #[test]
    fn amz_date_parses_basic_format() {
        let time = parse_amz_date("20130524T000000Z").expect("valid date");
        assert_eq!(time.unix_timestamp(), 1_369_353_600);
        assert_eq!(format_amz_date(time).as_deref(), Some("20130524T000000Z"));
    }

    #[test]
    fn amz_date_rejects_malformed_values() {
        for text in [
            "",
            "20130524",
            "20130524T000000",
            "20130524T000000z",
            "2013-05-24T00:00:00Z",
            "20131324T000000Z",
            "20130532T000000Z",
            "20130524T250000Z",
            "20130524T006000Z",
            "2013052+T000000Z",
            "２013052T000000Z",
        ] {
            assert!(parse_amz_date(text).is_none(), "accepted {text:?}");
        }
    }

    #[test]
    fn http_date_parses_imf_fixdate() {
        let time = parse_http_date("Fri, 24 May 2013 00:00:00 GMT").expect("valid date");
        assert_eq!(time.unix_timestamp(), 1_369_353_600);
        assert!(parse_http_date("Friday, 24-May-13 00:00:00 GMT").is_none());
        assert!(parse_http_date("not a date").is_none());
    }
}
