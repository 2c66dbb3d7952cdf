//! The verified body: digests, declared lengths, `aws-chunked` decoding
//! across arbitrary frame splits, and errors reported before the end.

use aws_sigv4::http_request::SignableBody;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use proptest::prelude::*;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::super::checksum::ChecksumAlgorithm;
use super::super::{PayloadMode, MAX_CHUNK_HEADER_LEN};
use super::sdk::{authenticate_sdk, sdk_sign, sdk_sign_chunk, sdk_sign_trailer, SdkRequest};
use super::*;
use crate::s3::ErrorCode;

/// Signs a PUT with the given payload hash and extra headers and
/// authenticates it, returning the parts, the result and the seed signature.
fn signed_put(
    body: SignableBody<'_>,
    headers: Vec<(&str, &str)>,
) -> (Parts, Authenticated, String) {
    signed_request("PUT", "/bucket/key", body, headers)
}

fn signed_request(
    method: &str,
    target: &str,
    body: SignableBody<'_>,
    headers: Vec<(&str, &str)>,
) -> (Parts, Authenticated, String) {
    let mut request = SdkRequest::new(method, target);
    request.body = body;
    request.headers = headers;
    let (parts, seed) = sdk_sign(request);
    let authenticated = authenticate_sdk(&parts).expect("signed by the SDK");
    (parts, authenticated, seed)
}

/// Returns the base64 checksum value of `data` for `algorithm`, as clients send it.
fn checksum_value(algorithm: ChecksumAlgorithm, data: &[u8]) -> String {
    let digest = match algorithm {
        ChecksumAlgorithm::Crc32 => crc_fast::crc32_iso_hdlc(data).to_be_bytes().to_vec(),
        ChecksumAlgorithm::Crc32c => crc_fast::crc32_iscsi(data).to_be_bytes().to_vec(),
        ChecksumAlgorithm::Crc64Nvme => crc_fast::crc64_nvme(data).to_be_bytes().to_vec(),
        ChecksumAlgorithm::Sha1 => Sha1::digest(data).to_vec(),
        ChecksumAlgorithm::Sha256 => Sha256::digest(data).to_vec(),
    };
    STANDARD.encode(digest)
}

fn algorithm_name(algorithm: ChecksumAlgorithm) -> &'static str {
    match algorithm {
        ChecksumAlgorithm::Crc32 => "CRC32",
        ChecksumAlgorithm::Crc32c => "CRC32C",
        ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
        ChecksumAlgorithm::Sha1 => "SHA1",
        ChecksumAlgorithm::Sha256 => "SHA256",
    }
}

#[test]
fn payload_hash_verified() {
    let (parts, authenticated, _) =
        signed_put(SignableBody::Bytes(b"hello"), vec![("content-length", "5")]);
    let verified = authenticated
        .verify_body(&parts, full_body(b"hello"))
        .expect("valid");
    let outcome = read_body(verified);
    assert_eq!(outcome.initial_hint.exact(), Some(5));
    assert_eq!(outcome.expect_ok(), b"hello");
}

#[test]
fn payload_hash_mismatch_replaces_end() {
    let (parts, authenticated, _) =
        signed_put(SignableBody::Bytes(b"hello"), vec![("content-length", "5")]);
    let pieces = Pieces::new([b"hel".to_vec(), b"lp".to_vec()]);
    let outcome = read_body(authenticated.verify_body(&parts, pieces).expect("valid"));
    // The frame that completes the length is held back and never passed on.
    assert_eq!(outcome.data, b"hel", "data frames pass before the end");
    let error = outcome.expect_error();
    assert_eq!(error.code(), ErrorCode::XAmzContentSHA256Mismatch);
    assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
}

#[test]
fn unsigned_payload_passes_any_body() {
    let (parts, authenticated, _) = signed_put(SignableBody::UnsignedPayload, vec![]);
    let verified = authenticated
        .verify_body(&parts, Pieces::new([b"any".to_vec(), b" data".to_vec()]))
        .expect("valid");
    let outcome = read_body(verified);
    assert_eq!(outcome.initial_hint.exact(), None);
    assert_eq!(outcome.expect_ok(), b"any data");
}

#[test]
fn content_md5_checked() {
    let md5 = STANDARD.encode(md5::Md5::digest(b"hello"));
    let (parts, authenticated, _) =
        signed_put(SignableBody::UnsignedPayload, vec![("content-md5", &md5)]);
    let verified = authenticated
        .verify_body(&parts, full_body(b"hello"))
        .expect("valid");
    assert_eq!(read_body(verified).expect_ok(), b"hello");

    let (parts, authenticated, _) =
        signed_put(SignableBody::UnsignedPayload, vec![("content-md5", &md5)]);
    let verified = authenticated
        .verify_body(&parts, full_body(b"hellO"))
        .expect("valid");
    let error = read_body(verified).expect_error();
    assert_eq!(error.code(), ErrorCode::BadDigest);
    assert_eq!(
        error.message(),
        "The Content-MD5 you specified did not match what we received."
    );
}

#[test]
fn malformed_content_md5_is_invalid_digest() {
    for value in ["not base64!", "aGVsbG8=", ""] {
        let (parts, authenticated, _) =
            signed_put(SignableBody::UnsignedPayload, vec![("content-md5", value)]);
        let error = authenticated
            .verify_body(&parts, full_body(b"hello"))
            .err()
            .expect("malformed");
        assert_eq!(error.code(), ErrorCode::InvalidDigest, "{value:?}");
    }
}

#[test]
fn checksum_headers_checked() {
    let data = b"checksummed body";
    for algorithm in ChecksumAlgorithm::ALL {
        let value = checksum_value(algorithm, data);
        let header = vec![(algorithm.header_name(), value.as_str())];
        let (parts, authenticated, _) = signed_put(SignableBody::UnsignedPayload, header.clone());
        let verified = authenticated
            .verify_body(&parts, full_body(data))
            .expect("valid");
        assert_eq!(read_body(verified).expect_ok(), data, "{algorithm:?}");

        let (parts, authenticated, _) = signed_put(SignableBody::UnsignedPayload, header);
        let verified = authenticated
            .verify_body(&parts, full_body(b"checksummed bodY"))
            .expect("valid");
        let error = read_body(verified).expect_error();
        assert_eq!(error.code(), ErrorCode::BadDigest, "{algorithm:?}");
        assert_eq!(
            error.message(),
            format!(
                "The {} you specified did not match the calculated checksum.",
                algorithm_name(algorithm)
            )
        );
    }
}

#[test]
fn malformed_checksum_header_is_invalid_request() {
    for algorithm in ChecksumAlgorithm::ALL {
        for value in [
            "???",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            let (parts, authenticated, _) = signed_put(
                SignableBody::UnsignedPayload,
                vec![(algorithm.header_name(), value)],
            );
            let error = authenticated
                .verify_body(&parts, full_body(b"x"))
                .err()
                .expect("malformed");
            assert_eq!(
                error.code(),
                ErrorCode::InvalidRequest,
                "{algorithm:?} {value}"
            );
        }
    }
}

#[test]
fn several_checksums_are_rejected() {
    let crc = checksum_value(ChecksumAlgorithm::Crc32, b"x");
    let sha = checksum_value(ChecksumAlgorithm::Sha256, b"x");
    let (parts, authenticated, _) = signed_put(
        SignableBody::UnsignedPayload,
        vec![
            ("x-amz-checksum-crc32", &crc),
            ("x-amz-checksum-sha256", &sha),
        ],
    );
    let error = authenticated
        .verify_body(&parts, full_body(b"x"))
        .err()
        .expect("two checksums");
    assert_eq!(error.code(), ErrorCode::InvalidRequest);
}

/// Request headers and the text of the expected error, or `None` for success.
type DeclarationCase<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);

#[test]
fn sdk_checksum_algorithm_must_match() {
    let crc = checksum_value(ChecksumAlgorithm::Crc32, b"x");
    let cases: [DeclarationCase; 5] = [
        (
            &[
                ("x-amz-sdk-checksum-algorithm", "crc32"),
                ("x-amz-checksum-crc32", &crc),
            ],
            None,
        ),
        (
            &[
                ("x-amz-sdk-checksum-algorithm", "SHA1"),
                ("x-amz-checksum-crc32", &crc),
            ],
            Some("is invalid"),
        ),
        (
            &[
                ("x-amz-sdk-checksum-algorithm", "MD7"),
                ("x-amz-checksum-crc32", &crc),
            ],
            Some("is invalid"),
        ),
        (
            &[("x-amz-sdk-checksum-algorithm", "CRC32")],
            Some("no corresponding"),
        ),
        (
            &[
                ("content-md5", "LYOj0wmL4xRqnBTJsLJHUg=="),
                ("x-amz-sdk-checksum-algorithm", "CRC32"),
            ],
            Some("no corresponding"),
        ),
    ];
    for (headers, expected) in cases {
        let (parts, authenticated, _) = signed_put(SignableBody::UnsignedPayload, headers.to_vec());
        let result = authenticated.verify_body(&parts, full_body(b"x"));
        match expected {
            None => assert!(result.is_ok(), "{headers:?}"),
            Some(text) => {
                let error = result.err().expect("an invalid declaration");
                assert_eq!(error.code(), ErrorCode::InvalidRequest, "{headers:?}");
                assert!(error.message().contains(text), "{headers:?}: {error}");
            }
        }
    }
}

#[test]
fn complete_multipart_upload_checksum_is_not_the_body() {
    let whole_object = checksum_value(ChecksumAlgorithm::Crc32, b"the whole object");
    let (parts, authenticated, _) = signed_request(
        "POST",
        "/bucket/key?uploadId=abc",
        SignableBody::UnsignedPayload,
        vec![("x-amz-checksum-crc32", &whole_object)],
    );
    let xml = b"<CompleteMultipartUpload></CompleteMultipartUpload>";
    let verified = authenticated
        .verify_body(&parts, full_body(xml))
        .expect("valid");
    assert_eq!(read_body(verified).expect_ok(), xml);
}

#[test]
fn short_body_is_incomplete() {
    let (parts, authenticated, _) = signed_put(
        SignableBody::UnsignedPayload,
        vec![("content-length", "10")],
    );
    let outcome = read_body(
        authenticated
            .verify_body(&parts, full_body(b"12345"))
            .expect("valid"),
    );
    assert_eq!(outcome.data, b"12345");
    let error = outcome.expect_error();
    assert_eq!(error.code(), ErrorCode::IncompleteBody);
    assert_eq!(
        error.message(),
        "You did not provide the number of bytes specified by the Content-Length HTTP header"
    );
}

#[test]
fn long_body_is_incomplete() {
    let (parts, authenticated, _) =
        signed_put(SignableBody::UnsignedPayload, vec![("content-length", "4")]);
    let pieces = Pieces::new([b"123".to_vec(), b"45".to_vec()]);
    let outcome = read_body(authenticated.verify_body(&parts, pieces).expect("valid"));
    assert_eq!(
        outcome.data, b"123",
        "the frame that crosses the length is withheld"
    );
    assert_eq!(outcome.expect_error().code(), ErrorCode::IncompleteBody);
}

#[test]
fn size_hint_counts_down() {
    let (parts, authenticated, _) =
        signed_put(SignableBody::UnsignedPayload, vec![("content-length", "5")]);
    let mut verified = authenticated
        .verify_body(&parts, Pieces::new([b"12".to_vec(), b"345".to_vec()]))
        .expect("valid");
    assert_eq!(verified.size_hint().exact(), Some(5));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(
        Pin::new(&mut verified).poll_frame(&mut cx),
        Poll::Ready(Some(Ok(_)))
    ));
    assert_eq!(verified.size_hint().exact(), Some(3));
    assert!(!verified.is_end_stream());
}

#[test]
fn inner_error_is_incomplete_body() {
    let (parts, authenticated, _) = signed_put(SignableBody::UnsignedPayload, vec![]);
    let pieces = Pieces::new([b"partial".to_vec()]).with_error();
    let outcome = read_body(authenticated.verify_body(&parts, pieces).expect("valid"));
    assert_eq!(outcome.data, b"partial");
    let error = outcome.expect_error();
    assert_eq!(error.code(), ErrorCode::IncompleteBody);
    let source = std::error::Error::source(&error).expect("source attached");
    assert_eq!(source.to_string(), "client went away");
}

/// Builds an unsigned `aws-chunked` body with the given trailer section.
fn unsigned_chunked(data: &[u8], chunk_len: usize, trailer_section: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for chunk in data.chunks(chunk_len) {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n");
    body.extend_from_slice(trailer_section.as_bytes());
    body
}

fn unsigned_trailer_request(decoded_len: &str, trailer: &str) -> (Parts, Authenticated) {
    let (parts, authenticated, _) = signed_put(
        SignableBody::StreamingUnsignedPayloadTrailer,
        vec![
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", decoded_len),
            ("x-amz-trailer", trailer),
        ],
    );
    (parts, authenticated)
}

#[test]
fn short_chunked_body_names_decoded_length() {
    let data = [7u8; 100];
    let name = ChecksumAlgorithm::ALL[0].header_name();
    let value = checksum_value(ChecksumAlgorithm::ALL[0], &data);
    let (parts, authenticated) = unsigned_trailer_request("110", name);
    let body = unsigned_chunked(&data, 64, &format!("{name}:{value}\r\n\r\n"));
    let verified = authenticated
        .verify_body(&parts, Pieces::new([body]))
        .expect("valid");
    let error = read_body(verified).expect_error();
    assert_eq!(error.code(), ErrorCode::IncompleteBody);
    assert!(
        error.message().contains("x-amz-decoded-content-length"),
        "{}",
        error.message()
    );
}

#[test]
fn unsigned_trailer_checksums() {
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 256) as u8).collect();
    for algorithm in ChecksumAlgorithm::ALL {
        let name = algorithm.header_name();
        let value = checksum_value(algorithm, &data);

        let (parts, authenticated) = unsigned_trailer_request("1000", name);
        assert_eq!(
            authenticated.payload_mode(),
            PayloadMode::StreamingUnsignedTrailer
        );
        let body = unsigned_chunked(&data, 300, &format!("{name}:{value}\r\n\r\n"));
        let verified = authenticated
            .verify_body(&parts, Pieces::new([body]))
            .expect("valid");
        let outcome = read_body(verified);
        assert_eq!(outcome.initial_hint.exact(), Some(1000));
        assert_eq!(outcome.expect_ok(), data, "{algorithm:?}");

        let wrong = checksum_value(algorithm, b"other data");
        let (parts, authenticated) = unsigned_trailer_request("1000", name);
        let body = unsigned_chunked(&data, 300, &format!("{name}:{wrong}\r\n\r\n"));
        let verified = authenticated
            .verify_body(&parts, Pieces::new([body]))
            .expect("valid");
        let error = read_body(verified).expect_error();
        assert_eq!(error.code(), ErrorCode::BadDigest, "{algorithm:?}");

        let (parts, authenticated) = unsigned_trailer_request("1000", name);
        let body = unsigned_chunked(&data, 300, "\r\n");
        let verified = authenticated
            .verify_body(&parts, Pieces::new([body]))
            .expect("valid");
        let error = read_body(verified).expect_error();
        assert_eq!(
            error.code(),
            ErrorCode::IncompleteBody,
            "{algorithm:?} trailer missing"
        );

        let (parts, authenticated) = unsigned_trailer_request("1000", name);
        let body = unsigned_chunked(&data, 300, &format!("{name}:not-base64\r\n\r\n"));
        let verified = authenticated
            .verify_body(&parts, Pieces::new([body]))
            .expect("valid");
        let error = read_body(verified).expect_error();
        assert_eq!(
            error.code(),
            ErrorCode::InvalidRequest,
            "{algorithm:?} malformed trailer"
        );
    }
}

#[test]
fn chunked_length_must_match_declared() {
    let data = vec![b'x'; 100];
    let trailer = format!(
        "x-amz-checksum-crc32:{}\r\n\r\n",
        checksum_value(ChecksumAlgorithm::Crc32, &data)
    );

    let (parts, authenticated) = unsigned_trailer_request("101", "x-amz-checksum-crc32");
    let body = unsigned_chunked(&data, 30, &trailer);
    let error = read_body(
        authenticated
            .verify_body(&parts, Pieces::new([body]))
            .expect("valid"),
    )
    .expect_error();
    assert_eq!(error.code(), ErrorCode::IncompleteBody);

    let (parts, authenticated) = unsigned_trailer_request("99", "x-amz-checksum-crc32");
    let body = unsigned_chunked(&data, 30, &trailer);
    let outcome = read_body(
        authenticated
            .verify_body(&parts, Pieces::new([body]))
            .expect("valid"),
    );
    assert_eq!(
        outcome.data.len(),
        90,
        "the chunk that exceeds the length fails at its header"
    );
    assert_eq!(outcome.expect_error().code(), ErrorCode::IncompleteBody);
}

#[test]
fn chunked_body_requires_decoded_length() {
    let (parts, authenticated, _) = signed_put(
        SignableBody::StreamingUnsignedPayloadTrailer,
        vec![
            ("content-encoding", "aws-chunked"),
            ("content-length", "100"),
        ],
    );
    let error = authenticated
        .plaintext_len(&parts)
        .expect_err("no decoded length");
    assert_eq!(error.code(), ErrorCode::MissingContentLength);
    assert_eq!(error.status(), http::StatusCode::LENGTH_REQUIRED);
    let error = authenticated
        .verify_body(&parts, empty_body())
        .err()
        .expect("no decoded length");
    assert_eq!(error.code(), ErrorCode::MissingContentLength);
}

#[test]
fn trailer_header_needs_trailer_mode() {
    let (parts, authenticated, _) = signed_put(
        SignableBody::UnsignedPayload,
        vec![("x-amz-trailer", "x-amz-checksum-crc32")],
    );
    let error = authenticated
        .verify_body(&parts, empty_body())
        .err()
        .expect("no trailer mode");
    assert_eq!(error.code(), ErrorCode::InvalidRequest);

    let (parts, authenticated) = unsigned_trailer_request("0", "x-amz-meta-other");
    let error = authenticated
        .verify_body(&parts, empty_body())
        .err()
        .expect("unsupported trailer");
    assert_eq!(error.code(), ErrorCode::InvalidRequest);
}

#[test]
fn oversize_chunk_header_is_rejected() {
    let (parts, authenticated) = unsigned_trailer_request("3", "x-amz-checksum-crc32");
    let mut body = b"3;".to_vec();
    body.resize(MAX_CHUNK_HEADER_LEN + 1, b'x');
    let pieces = Pieces::new(body.chunks(1000).map(<[u8]>::to_vec));
    let error = read_body(authenticated.verify_body(&parts, pieces).expect("valid")).expect_error();
    assert_eq!(error.code(), ErrorCode::InvalidRequest);
}

/// A small signed streaming upload with a signed trailer, made with the
/// `aws-sigv4` signer.
struct SignedUpload {
    parts: Parts,
    body: Vec<u8>,
    data: Vec<u8>,
}

fn signed_upload(algorithm: ChecksumAlgorithm, checksum_of: &[u8]) -> SignedUpload {
    let data: Vec<u8> = b"The quick brown fox jumps over the lazy dog.".to_vec();
    let name = algorithm.header_name();
    let decoded_len = data.len().to_string();
    let mut request = SdkRequest::new("PUT", "/bucket/key");
    request.body = SignableBody::StreamingSignedPayloadTrailer;
    request.headers = vec![
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", &decoded_len),
        ("x-amz-trailer", name),
    ];
    let (parts, seed) = sdk_sign(request);

    let mut body = Vec::new();
    let mut previous = seed;
    for chunk in data.chunks(16).chain([&[][..]]) {
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
    let value = checksum_value(algorithm, checksum_of);
    let trailer_signature = sdk_sign_trailer(&[(name, &value)], &previous);
    body.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
    body.extend_from_slice(
        format!("x-amz-trailer-signature:{trailer_signature}\r\n\r\n").as_bytes(),
    );
    SignedUpload { parts, body, data }
}

fn verify_upload(upload: &SignedUpload, pieces: Pieces) -> Outcome {
    let authenticated = authenticate_sdk(&upload.parts).expect("signed by the SDK");
    assert_eq!(
        authenticated.payload_mode(),
        PayloadMode::StreamingSignedTrailer
    );
    read_body(
        authenticated
            .verify_body(&upload.parts, pieces)
            .expect("valid declarations"),
    )
}

#[test]
fn signed_trailer_checksums() {
    for algorithm in ChecksumAlgorithm::ALL {
        let upload = signed_upload(algorithm, b"The quick brown fox jumps over the lazy dog.");
        let outcome = verify_upload(&upload, Pieces::new([upload.body.clone()]));
        assert_eq!(outcome.expect_ok(), upload.data, "{algorithm:?}");

        // A correctly signed trailer whose checksum does not match the data.
        let upload = signed_upload(algorithm, b"another body");
        let outcome = verify_upload(&upload, Pieces::new([upload.body.clone()]));
        assert!(upload.data.starts_with(&outcome.data), "{algorithm:?}");
        assert!(
            outcome.data.len() < upload.data.len(),
            "the whole body of a failed upload was passed on: {algorithm:?}"
        );
        assert_eq!(
            outcome.expect_error().code(),
            ErrorCode::BadDigest,
            "{algorithm:?}"
        );
    }
}

#[test]
fn every_single_split_decodes() {
    let upload = signed_upload(
        ChecksumAlgorithm::Crc32c,
        b"The quick brown fox jumps over the lazy dog.",
    );
    for split in 0..=upload.body.len() {
        let outcome = verify_upload(&upload, Pieces::split(&upload.body, &[split]));
        assert_eq!(outcome.expect_ok(), upload.data, "split at {split}");
    }
}

#[test]
fn every_truncation_fails() {
    let upload = signed_upload(
        ChecksumAlgorithm::Sha1,
        b"The quick brown fox jumps over the lazy dog.",
    );
    for end in 0..upload.body.len() {
        let outcome = verify_upload(&upload, Pieces::new([upload.body[..end].to_vec()]));
        let error = outcome.expect_error();
        assert_eq!(
            error.code(),
            ErrorCode::IncompleteBody,
            "truncated at {end}: {error}"
        );
    }
}

#[test]
fn bytes_after_final_line_fail() {
    let upload = signed_upload(
        ChecksumAlgorithm::Crc32,
        b"The quick brown fox jumps over the lazy dog.",
    );
    let mut body = upload.body.clone();
    body.extend_from_slice(b"\r\n");
    let error = verify_upload(&upload, Pieces::new([body])).expect_error();
    assert_eq!(error.code(), ErrorCode::InvalidRequest);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_splits_decode(mut offsets in proptest::collection::vec(0usize..=400, 0..12)) {
        let upload = signed_upload(ChecksumAlgorithm::Crc64Nvme, b"The quick brown fox jumps over the lazy dog.");
        for offset in &mut offsets {
            *offset = (*offset).min(upload.body.len());
        }
        offsets.sort_unstable();
        let outcome = verify_upload(&upload, Pieces::split(&upload.body, &offsets));
        prop_assert!(outcome.error.is_none(), "{:?}", outcome.error);
        prop_assert_eq!(outcome.data, upload.data);
    }

    #[test]
    fn any_flipped_bit_fails(index in 0usize..400, split in 0usize..400) {
        let upload = signed_upload(ChecksumAlgorithm::Sha256, b"The quick brown fox jumps over the lazy dog.");
        let index = index % upload.body.len();
        let mut body = upload.body.clone();
        body[index] ^= 1;
        let split = split.min(body.len());
        let outcome = verify_upload(&upload, Pieces::split(&body, &[split]));
        prop_assert!(outcome.error.is_some(), "flipped byte {} was accepted", index);
    }
}
