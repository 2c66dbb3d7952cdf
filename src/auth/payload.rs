//! The payload modes that `x-amz-content-sha256` selects, and the declared
//! plaintext length that goes with each.

use http::HeaderMap;

use crate::s3::{ErrorCode, S3Error};

pub(crate) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
const STREAMING_SIGV4A: &str = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD";
const STREAMING_SIGV4A_TRAILER: &str = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER";

pub(crate) const DECODED_CONTENT_LENGTH: &str = "x-amz-decoded-content-length";

/// The binding of the request body to the signature, selected by `x-amz-content-sha256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadMode {
    /// `UNSIGNED-PAYLOAD`: the body is not covered by the signature.
    Unsigned,
    /// A hex SHA-256 of the whole body, checked against the body.
    Sha256([u8; 32]),
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: `aws-chunked` with a signature per chunk.
    StreamingSigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: signed chunks and a signed trailer section.
    StreamingSignedTrailer,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: `aws-chunked` without signatures, with trailers.
    StreamingUnsignedTrailer,
}

impl PayloadMode {
    /// Parses an `x-amz-content-sha256` value. SigV4a streaming values are
    /// rejected with NotImplemented and anything unknown with InvalidArgument.
    pub(crate) fn parse(value: &str) -> Result<Self, S3Error> {
        match value {
            UNSIGNED_PAYLOAD => Ok(Self::Unsigned),
            STREAMING_SIGNED => Ok(Self::StreamingSigned),
            STREAMING_SIGNED_TRAILER => Ok(Self::StreamingSignedTrailer),
            STREAMING_UNSIGNED_TRAILER => Ok(Self::StreamingUnsignedTrailer),
            STREAMING_SIGV4A | STREAMING_SIGV4A_TRAILER => Err(S3Error::new(
                ErrorCode::NotImplemented,
                format!("x-amz-content-sha256 {value} (SigV4a) is not supported; sign with AWS4-HMAC-SHA256."),
            )),
            _ => {
                let mut hash = [0u8; 32];
                if value.len() == 64 && hex::decode_to_slice(value, &mut hash).is_ok() {
                    Ok(Self::Sha256(hash))
                } else {
                    Err(invalid_content_sha256())
                }
            }
        }
    }

    /// Returns whether the body uses the `aws-chunked` encoding.
    pub fn is_chunked(self) -> bool {
        matches!(
            self,
            Self::StreamingSigned | Self::StreamingSignedTrailer | Self::StreamingUnsignedTrailer
        )
    }

    /// Returns whether chunks carry signatures.
    pub(crate) fn has_chunk_signatures(self) -> bool {
        matches!(self, Self::StreamingSigned | Self::StreamingSignedTrailer)
    }

    /// Returns whether the body may end with trailers.
    pub(crate) fn allows_trailers(self) -> bool {
        matches!(
            self,
            Self::StreamingSignedTrailer | Self::StreamingUnsignedTrailer
        )
    }
}

/// The InvalidArgument error S3 returns for an unknown `x-amz-content-sha256` value.
pub(crate) fn invalid_content_sha256() -> S3Error {
    S3Error::new(
        ErrorCode::InvalidArgument,
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, \
         STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, \
         STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER \
         or a valid sha256 value.",
    )
}

/// Returns the decoded body length the request declares:
/// `x-amz-decoded-content-length` for `aws-chunked` modes, where it is
/// required, and `Content-Length` otherwise.
pub(crate) fn declared_length(
    mode: PayloadMode,
    headers: &HeaderMap,
) -> Result<Option<u64>, S3Error> {
    if mode.is_chunked() {
        let Some(value) = headers.get(DECODED_CONTENT_LENGTH) else {
            return Err(S3Error::new(
                ErrorCode::MissingContentLength,
                "You must provide the x-amz-decoded-content-length HTTP header with an aws-chunked body.",
            ));
        };
        parse_length(value.as_bytes(), DECODED_CONTENT_LENGTH).map(Some)
    } else {
        headers
            .get(http::header::CONTENT_LENGTH)
            .map(|value| parse_length(value.as_bytes(), "Content-Length"))
            .transpose()
    }
}

fn parse_length(value: &[u8], name: &str) -> Result<u64, S3Error> {
    let invalid = || {
        S3Error::new(
            ErrorCode::InvalidArgument,
            format!("The {name} header is not a valid length in bytes."),
        )
    };
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn payload_modes_parse() {
        assert_eq!(
            PayloadMode::parse("UNSIGNED-PAYLOAD").ok(),
            Some(PayloadMode::Unsigned)
        );
        assert_eq!(
            PayloadMode::parse("STREAMING-AWS4-HMAC-SHA256-PAYLOAD").ok(),
            Some(PayloadMode::StreamingSigned)
        );
        assert_eq!(
            PayloadMode::parse("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER").ok(),
            Some(PayloadMode::StreamingSignedTrailer)
        );
        assert_eq!(
            PayloadMode::parse("STREAMING-UNSIGNED-PAYLOAD-TRAILER").ok(),
            Some(PayloadMode::StreamingUnsignedTrailer)
        );
        let empty = PayloadMode::parse(super::super::sigv4::EMPTY_SHA256_HEX).expect("hash");
        let PayloadMode::Sha256(hash) = empty else {
            panic!("a hex hash parses as Sha256, got {empty:?}");
        };
        assert_eq!(hex::encode(hash), super::super::sigv4::EMPTY_SHA256_HEX);
    }

    #[test]
    fn payload_mode_rejects_sigv4a_and_unknown() {
        let error =
            PayloadMode::parse("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD").expect_err("sigv4a");
        assert_eq!(error.code(), ErrorCode::NotImplemented);
        for value in [
            "",
            "unsigned-payload",
            "abc",
            &"g".repeat(64),
            &"a".repeat(63),
        ] {
            let error = PayloadMode::parse(value).expect_err("unknown");
            assert_eq!(error.code(), ErrorCode::InvalidArgument, "{value:?}");
        }
    }

    #[test]
    fn declared_length_by_mode() {
        let mut headers = HeaderMap::new();
        headers.insert("content-length", HeaderValue::from_static("100"));
        assert_eq!(
            declared_length(PayloadMode::Unsigned, &headers).ok(),
            Some(Some(100))
        );

        let error = declared_length(PayloadMode::StreamingSigned, &headers).expect_err("missing");
        assert_eq!(error.code(), ErrorCode::MissingContentLength);

        headers.insert(DECODED_CONTENT_LENGTH, HeaderValue::from_static("66560"));
        assert_eq!(
            declared_length(PayloadMode::StreamingSigned, &headers).ok(),
            Some(Some(66560))
        );

        headers.insert(DECODED_CONTENT_LENGTH, HeaderValue::from_static("-1"));
        let error =
            declared_length(PayloadMode::StreamingUnsignedTrailer, &headers).expect_err("negative");
        assert_eq!(error.code(), ErrorCode::InvalidArgument);

        assert_eq!(
            declared_length(PayloadMode::Unsigned, &HeaderMap::new()).ok(),
            Some(None)
        );
    }
}
