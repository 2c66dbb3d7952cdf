//! Body digests that a request can declare: `Content-MD5`, the SigV4
//! payload hash and the `x-amz-checksum-*` algorithms.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use crc_fast::{CrcAlgorithm, Digest as CrcDigest};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::s3::{ErrorCode, S3Error};

/// A checksum algorithm of the `x-amz-checksum-*` headers and trailers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub(crate) const ALL: [ChecksumAlgorithm; 5] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Crc64Nvme,
        Self::Sha1,
        Self::Sha256,
    ];

    /// Returns the header or trailer name that carries this checksum.
    pub(crate) fn header_name(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// Looks up an algorithm by its lowercase header name.
    pub(crate) fn from_header_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|algorithm| algorithm.header_name() == name)
    }

    /// Looks up an algorithm by the name that `x-amz-sdk-checksum-algorithm`
    /// carries, such as `CRC32`, in any case.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|algorithm| algorithm.display_name().eq_ignore_ascii_case(name.trim()))
    }

    /// Returns the algorithm name as S3 spells it in error messages.
    fn display_name(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    /// Returns the length of the base64 value of this checksum.
    pub(crate) fn value_len(self) -> usize {
        self.digest_len().div_ceil(3) * 4
    }

    fn digest_len(self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64Nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    /// Decodes a base64 checksum value, rejecting one of the wrong length
    /// with InvalidRequest.
    pub(crate) fn decode_value(self, value: &[u8]) -> Result<Vec<u8>, S3Error> {
        STANDARD
            .decode(value)
            .ok()
            .filter(|digest| digest.len() == self.digest_len())
            .ok_or_else(|| {
                S3Error::new(
                    ErrorCode::InvalidRequest,
                    format!("Value for {} header is invalid.", self.header_name()),
                )
            })
    }
}

/// What a digest check verifies, which decides the error on mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DigestKind {
    /// The `Content-MD5` header.
    ContentMd5,
    /// The hex SHA-256 of `x-amz-content-sha256`.
    PayloadSha256,
    /// An `x-amz-checksum-*` header or trailer.
    Checksum(ChecksumAlgorithm),
}

enum Hasher {
    Md5(Md5),
    Sha1(Sha1),
    Sha256(Sha256),
    /// A CRC and the width of its big-endian encoding in bytes.
    Crc(CrcDigest, usize),
}

impl Hasher {
    fn new(kind: DigestKind) -> Self {
        match kind {
            DigestKind::ContentMd5 => Self::Md5(Md5::new()),
            DigestKind::PayloadSha256 | DigestKind::Checksum(ChecksumAlgorithm::Sha256) => {
                Self::Sha256(Sha256::new())
            }
            DigestKind::Checksum(ChecksumAlgorithm::Sha1) => Self::Sha1(Sha1::new()),
            DigestKind::Checksum(ChecksumAlgorithm::Crc32) => {
                Self::Crc(CrcDigest::new(CrcAlgorithm::Crc32IsoHdlc), 4)
            }
            DigestKind::Checksum(ChecksumAlgorithm::Crc32c) => {
                Self::Crc(CrcDigest::new(CrcAlgorithm::Crc32Iscsi), 4)
            }
            DigestKind::Checksum(ChecksumAlgorithm::Crc64Nvme) => {
                Self::Crc(CrcDigest::new(CrcAlgorithm::Crc64Nvme), 8)
            }
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Md5(hasher) => hasher.update(data),
            Self::Sha1(hasher) => hasher.update(data),
            Self::Sha256(hasher) => hasher.update(data),
            Self::Crc(digest, _) => digest.update(data),
        }
    }

    fn finalize(&self) -> Vec<u8> {
        match self {
            Self::Md5(hasher) => hasher.clone().finalize().to_vec(),
            Self::Sha1(hasher) => hasher.clone().finalize().to_vec(),
            Self::Sha256(hasher) => hasher.clone().finalize().to_vec(),
            Self::Crc(digest, width) => {
                let value = digest.finalize().to_be_bytes();
                value
                    .get(value.len().saturating_sub(*width)..)
                    .unwrap_or_default()
                    .to_vec()
            }
        }
    }
}

/// One digest of the decoded body and the value the request declared for it.
pub(crate) struct DigestCheck {
    kind: DigestKind,
    hasher: Hasher,
    /// `None` for a trailer checksum until its trailer arrives.
    expected: Option<Vec<u8>>,
}

impl DigestCheck {
    pub(crate) fn new(kind: DigestKind, expected: Option<Vec<u8>>) -> Self {
        Self {
            kind,
            hasher: Hasher::new(kind),
            expected,
        }
    }

    pub(crate) fn kind(&self) -> DigestKind {
        self.kind
    }

    /// Returns the algorithm and declared value of an `x-amz-checksum-*`
    /// check, once the value is known.
    pub(crate) fn checksum_value(&self) -> Option<(ChecksumAlgorithm, &[u8])> {
        match (self.kind, &self.expected) {
            (DigestKind::Checksum(algorithm), Some(value)) => Some((algorithm, value)),
            _ => None,
        }
    }

    /// Returns the algorithm of a checksum whose value arrives in a
    /// trailer, before the trailer has arrived.
    pub(crate) fn awaited_checksum(&self) -> Option<ChecksumAlgorithm> {
        match (self.kind, &self.expected) {
            (DigestKind::Checksum(algorithm), None) => Some(algorithm),
            _ => None,
        }
    }

    pub(crate) fn set_expected(&mut self, expected: Vec<u8>) {
        self.expected = Some(expected);
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
    }

    /// Compares the digest of everything passed to `update` with the
    /// declared value, returning S3's error for the kind on mismatch.
    pub(crate) fn verify(&self) -> Result<(), S3Error> {
        let Some(expected) = &self.expected else {
            let name = match self.kind {
                DigestKind::Checksum(algorithm) => algorithm.header_name(),
                DigestKind::ContentMd5 => "Content-MD5",
                DigestKind::PayloadSha256 => "x-amz-content-sha256",
            };
            return Err(S3Error::new(
                ErrorCode::IncompleteBody,
                format!(
                    "The request announced the trailer {name} but the body did not contain it."
                ),
            ));
        };
        if self.hasher.finalize() == *expected {
            return Ok(());
        }
        Err(match self.kind {
            DigestKind::ContentMd5 => S3Error::new(
                ErrorCode::BadDigest,
                "The Content-MD5 you specified did not match what we received.",
            ),
            DigestKind::PayloadSha256 => S3Error::new(
                ErrorCode::XAmzContentSHA256Mismatch,
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ),
            DigestKind::Checksum(algorithm) => S3Error::new(
                ErrorCode::BadDigest,
                format!(
                    "The {} you specified did not match the calculated checksum.",
                    algorithm.display_name()
                ),
            ),
        })
    }
}

/// Decodes a `Content-MD5` header value: base64 of 16 bytes, else InvalidDigest.
pub(crate) fn decode_content_md5(value: &[u8]) -> Result<Vec<u8>, S3Error> {
    STANDARD
        .decode(value.trim_ascii())
        .ok()
        .filter(|digest| digest.len() == 16)
        .ok_or_else(|| {
            S3Error::new(
                ErrorCode::InvalidDigest,
                "The Content-MD5 you specified is not valid.",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(kind: DigestKind, data: &[u8]) -> Vec<u8> {
        let mut check = DigestCheck::new(kind, None);
        check.update(data);
        check.hasher.finalize()
    }

    #[test]
    fn checksums_match_known_values() {
        let data = b"123456789";
        let cases = [
            (ChecksumAlgorithm::Crc32, "cbf43926"),
            (ChecksumAlgorithm::Crc32c, "e3069283"),
            (ChecksumAlgorithm::Crc64Nvme, "ae8b14860a799888"),
            (
                ChecksumAlgorithm::Sha1,
                "f7c3bc1d808e04732adf679965ccc34ca7ae3441",
            ),
            (
                ChecksumAlgorithm::Sha256,
                "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225",
            ),
        ];
        for (algorithm, expected) in cases {
            let digest = digest_of(DigestKind::Checksum(algorithm), data);
            assert_eq!(hex::encode(digest), expected, "{algorithm:?}");
        }
        let md5 = digest_of(DigestKind::ContentMd5, data);
        assert_eq!(hex::encode(md5), "25f9e794323b453885f5181f1b624d0b");
    }

    #[test]
    fn checksum_split_updates_match_whole() {
        for algorithm in ChecksumAlgorithm::ALL {
            let kind = DigestKind::Checksum(algorithm);
            let mut check = DigestCheck::new(kind, None);
            check.update(b"1234");
            check.update(b"");
            check.update(b"56789");
            assert_eq!(
                check.hasher.finalize(),
                digest_of(kind, b"123456789"),
                "{algorithm:?}"
            );
        }
    }

    #[test]
    fn checksum_value_decoding_checks_length() {
        assert!(ChecksumAlgorithm::Crc32.decode_value(b"y/Q5Jg==").is_ok());
        let error = ChecksumAlgorithm::Crc32
            .decode_value(b"AAAAAAAA")
            .expect_err("8 bytes");
        assert_eq!(error.code(), ErrorCode::InvalidRequest);
        let error = ChecksumAlgorithm::Sha1
            .decode_value(b"!!")
            .expect_err("not base64");
        assert_eq!(error.code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn content_md5_decoding() {
        assert!(decode_content_md5(b"JfnnlDI7RTiF9RgfG2JNCw==").is_ok());
        let error = decode_content_md5(b"JfnnlDI7RTiF9RgfG2JN").expect_err("short");
        assert_eq!(error.code(), ErrorCode::InvalidDigest);
    }

    #[test]
    fn verify_reports_kind_specific_errors() {
        let cases = [
            (DigestKind::ContentMd5, ErrorCode::BadDigest),
            (
                DigestKind::PayloadSha256,
                ErrorCode::XAmzContentSHA256Mismatch,
            ),
            (
                DigestKind::Checksum(ChecksumAlgorithm::Crc32),
                ErrorCode::BadDigest,
            ),
        ];
        for (kind, code) in cases {
            let mut check = DigestCheck::new(kind, Some(vec![0; 3]));
            check.update(b"data");
            assert_eq!(check.verify().expect_err("mismatch").code(), code);
        }
        let mut check = DigestCheck::new(DigestKind::Checksum(ChecksumAlgorithm::Crc32), None);
        check.update(b"data");
        let error = check.verify().expect_err("missing trailer");
        assert_eq!(error.code(), ErrorCode::IncompleteBody);
    }

    #[test]
    fn crc32_mismatch_message_names_algorithm() {
        let mut check = DigestCheck::new(
            DigestKind::Checksum(ChecksumAlgorithm::Crc32),
            Some(vec![0; 4]),
        );
        check.update(b"data");
        let error = check.verify().expect_err("mismatch");
        assert_eq!(
            error.message(),
            "The CRC32 you specified did not match the calculated checksum."
        );
    }
}
