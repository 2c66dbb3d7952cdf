//! Known-answer tests with the examples of the Amazon S3 API reference:
//! "Signature Calculations for the Authorization Header" (single chunk and
//! multiple chunks), "Signature calculations for trailing headers" and
//! "Authenticating Requests: Using Query Parameters". Every example uses the
//! documented example credentials at 20130524T000000Z in us-east-1.

use super::super::canonical::{canonical_headers, canonical_query, normalized_uri, CanonicalParts};
use super::super::chunked::{ChunkSigner, ChunkedDecoder};
use super::super::sigv4::{credential_scope, sha256_hex, Signature, SigningKey, EMPTY_SHA256_HEX};
use super::super::PayloadMode;
use super::*;
use crate::s3::ErrorCode;

/// Returns the hex SHA-256 of the canonical request of `parts`, built with
/// the normalized URI.
fn canonical_request_hash(
    parts: &Parts,
    signed_headers: &str,
    payload_hash: &str,
    presigned: bool,
) -> String {
    let names: Vec<String> = signed_headers.split(';').map(String::from).collect();
    let excluded = presigned.then_some("X-Amz-Signature");
    let canonical = CanonicalParts {
        method: parts.method.as_str(),
        query: canonical_query(parts.uri.query(), excluded),
        headers: canonical_headers(&parts.headers, &names, b""),
        signed_headers,
        payload_hash,
    };
    sha256_hex(&canonical.with_uri(&normalized_uri(parts.uri.path())))
}

fn authorization(signed_headers: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={EXAMPLE_ACCESS_KEY_ID}/20130524/us-east-1/s3/aws4_request,\
         SignedHeaders={signed_headers},Signature={signature}"
    )
}

#[test]
fn get_object_example() {
    let signed_headers = "host;range;x-amz-content-sha256;x-amz-date";
    let auth = authorization(
        signed_headers,
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
    let parts = parts(
        "GET",
        "/test.txt",
        &[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256_HEX),
            ("x-amz-date", EXAMPLE_DATE),
            ("authorization", &auth),
        ],
    );
    assert_eq!(
        canonical_request_hash(&parts, signed_headers, EMPTY_SHA256_HEX, false),
        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
    );

    let authenticated = authenticate_at(&parts, EXAMPLE_DATE).expect("documented signature");
    assert_eq!(authenticated.access_key_id(), EXAMPLE_ACCESS_KEY_ID);
    let empty_hash: [u8; 32] = hex::decode(EMPTY_SHA256_HEX)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    assert_eq!(
        authenticated.payload_mode(),
        PayloadMode::Sha256(empty_hash)
    );
    let body = authenticated
        .verify_body(&parts, empty_body())
        .expect("no body declarations");
    assert!(read_body(body).expect_ok().is_empty());
}

#[test]
fn get_object_example_rejects_changed_range() {
    let auth = authorization(
        "host;range;x-amz-content-sha256;x-amz-date",
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
    let parts = parts(
        "GET",
        "/test.txt",
        &[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-10"),
            ("x-amz-content-sha256", EMPTY_SHA256_HEX),
            ("x-amz-date", EXAMPLE_DATE),
            ("authorization", &auth),
        ],
    );
    let error = authenticate_at(&parts, EXAMPLE_DATE).expect_err("range was changed");
    assert_eq!(error.code(), ErrorCode::SignatureDoesNotMatch);
    assert_eq!(error.status(), http::StatusCode::FORBIDDEN);
}

fn put_object_parts(target: &str, signature: &str) -> Parts {
    let auth = authorization(
        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
        signature,
    );
    parts(
        "PUT",
        target,
        &[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("x-amz-date", EXAMPLE_DATE),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            (
                "x-amz-content-sha256",
                "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
            ),
            ("content-length", "21"),
            ("authorization", &auth),
        ],
    )
}

const PUT_OBJECT_SIGNATURE: &str =
    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd";

#[test]
fn put_object_example() {
    // The key is `test$file.text`: the documented canonical URI escapes
    // `$`, and clients send it either escaped or raw.
    for target in ["/test%24file.text", "/test$file.text"] {
        let parts = put_object_parts(target, PUT_OBJECT_SIGNATURE);
        assert_eq!(
            canonical_request_hash(
                &parts,
                "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
                false,
            ),
            "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d"
        );
        let authenticated = authenticate_at(&parts, EXAMPLE_DATE).expect("documented signature");
        assert_eq!(authenticated.plaintext_len(&parts).ok(), Some(Some(21)));
        let body = authenticated
            .verify_body(&parts, full_body(b"Welcome to Amazon S3."))
            .expect("valid");
        assert_eq!(read_body(body).expect_ok(), b"Welcome to Amazon S3.");
    }
}

#[test]
fn put_object_example_rejects_other_payload() {
    let parts = put_object_parts("/test$file.text", PUT_OBJECT_SIGNATURE);
    let authenticated = authenticate_at(&parts, EXAMPLE_DATE).expect("documented signature");
    let body = authenticated
        .verify_body(&parts, full_body(b"Welcome to Amazon S4."))
        .expect("valid");
    let outcome = read_body(body);
    // The only frame completes the length, so it is not passed on.
    assert!(outcome.data.is_empty());
    assert_eq!(
        outcome.expect_error().code(),
        ErrorCode::XAmzContentSHA256Mismatch
    );
}

#[test]
fn get_bucket_lifecycle_example() {
    let signed_headers = "host;x-amz-content-sha256;x-amz-date";
    let auth = authorization(
        signed_headers,
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
    );
    let parts = parts(
        "GET",
        "/?lifecycle",
        &[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", EMPTY_SHA256_HEX),
            ("x-amz-date", EXAMPLE_DATE),
            ("authorization", &auth),
        ],
    );
    assert_eq!(
        canonical_request_hash(&parts, signed_headers, EMPTY_SHA256_HEX, false),
        "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca"
    );
    authenticate_at(&parts, EXAMPLE_DATE).expect("documented signature");
}

#[test]
fn list_objects_example() {
    let signed_headers = "host;x-amz-content-sha256;x-amz-date";
    let auth = authorization(
        signed_headers,
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    );
    let parts = parts(
        "GET",
        "/?max-keys=2&prefix=J",
        &[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", EMPTY_SHA256_HEX),
            ("x-amz-date", EXAMPLE_DATE),
            ("authorization", &auth),
        ],
    );
    assert_eq!(
        canonical_request_hash(&parts, signed_headers, EMPTY_SHA256_HEX, false),
        "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7"
    );
    authenticate_at(&parts, EXAMPLE_DATE).expect("documented signature");
}

const PRESIGNED_TARGET: &str = "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
    &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
    &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
    &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

#[test]
fn presigned_get_object_example() {
    let parts = parts(
        "GET",
        PRESIGNED_TARGET,
        &[("host", "examplebucket.s3.amazonaws.com")],
    );
    assert_eq!(
        canonical_request_hash(&parts, "host", "UNSIGNED-PAYLOAD", true),
        "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04"
    );
    for now in [EXAMPLE_DATE, "20130524T235959Z", "20130525T000000Z"] {
        let authenticated =
            authenticate_at(&parts, now).expect("documented signature within expiry");
        assert_eq!(authenticated.access_key_id(), EXAMPLE_ACCESS_KEY_ID);
        assert_eq!(authenticated.payload_mode(), PayloadMode::Unsigned);
    }
}

#[test]
fn presigned_example_expires() {
    let parts = parts(
        "GET",
        PRESIGNED_TARGET,
        &[("host", "examplebucket.s3.amazonaws.com")],
    );
    let error = authenticate_at(&parts, "20130525T000001Z").expect_err("one second after expiry");
    assert_eq!(error.code(), ErrorCode::AccessDenied);
    assert_eq!(error.message(), "Request has expired");
}

#[test]
fn presigned_example_rejects_other_key() {
    let target = PRESIGNED_TARGET.replace("/test.txt", "/test2.txt");
    let parts = parts(
        "GET",
        &target,
        &[("host", "examplebucket.s3.amazonaws.com")],
    );
    let error = authenticate_at(&parts, EXAMPLE_DATE).expect_err("other key");
    assert_eq!(error.code(), ErrorCode::SignatureDoesNotMatch);
}

/// Builds an `aws-chunked` body of 65536 and 1024 bytes of `a` with the
/// given chunk signatures and trailer section.
fn example_chunked_body(signatures: [&str; 3], trailer_section: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(format!("10000;chunk-signature={}\r\n", signatures[0]).as_bytes());
    body.extend(std::iter::repeat_n(b'a', 65536));
    body.extend_from_slice(format!("\r\n400;chunk-signature={}\r\n", signatures[1]).as_bytes());
    body.extend(std::iter::repeat_n(b'a', 1024));
    body.extend_from_slice(format!("\r\n0;chunk-signature={}\r\n", signatures[2]).as_bytes());
    body.extend_from_slice(trailer_section.as_bytes());
    body
}

const CHUNK_SIGNATURES: [&str; 3] = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
];

fn chunked_example_parts() -> Parts {
    let signed_headers = "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;\
                          x-amz-decoded-content-length;x-amz-storage-class";
    let auth = authorization(
        signed_headers,
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    );
    parts(
        "PUT",
        "/examplebucket/chunkObject.txt",
        &[
            ("host", "s3.amazonaws.com"),
            ("x-amz-date", EXAMPLE_DATE),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("content-length", "66824"),
            ("authorization", &auth),
        ],
    )
}

#[test]
fn chunked_upload_example() {
    let parts = chunked_example_parts();
    assert_eq!(
        canonical_request_hash(
            &parts,
            "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;\
             x-amz-decoded-content-length;x-amz-storage-class",
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            false,
        ),
        "cee3fed04b70f867d036f722359b0b1f2f0e5dc0efadbc082b76c4c60e316455"
    );
    let body = example_chunked_body(CHUNK_SIGNATURES, "\r\n");
    assert_eq!(body.len(), 66824);

    for piece_len in [body.len(), 1, 7, 4096, 65536 + 90] {
        let authenticated =
            authenticate_at(&parts, EXAMPLE_DATE).expect("documented seed signature");
        assert_eq!(authenticated.payload_mode(), PayloadMode::StreamingSigned);
        assert_eq!(authenticated.plaintext_len(&parts).ok(), Some(Some(66560)));
        let pieces = Pieces::new(body.chunks(piece_len).map(<[u8]>::to_vec));
        let verified = authenticated
            .verify_body(&parts, pieces)
            .expect("valid declarations");
        let outcome = read_body(verified);
        assert_eq!(outcome.initial_hint.exact(), Some(66560));
        let data = outcome.expect_ok();
        assert_eq!(data.len(), 66560);
        assert!(data.iter().all(|&byte| byte == b'a'));
    }
}

#[test]
fn chunked_example_rejects_tampered_data() {
    let parts = chunked_example_parts();
    let mut body = example_chunked_body(CHUNK_SIGNATURES, "\r\n");
    // The first data byte of the second chunk.
    let offset = 88 + 65536 + 2 + 86;
    assert_eq!(body[offset - 2..offset], *b"\r\n");
    body[offset] = b'b';
    let authenticated = authenticate_at(&parts, EXAMPLE_DATE).expect("documented seed signature");
    let verified = authenticated
        .verify_body(&parts, Pieces::new([body]))
        .expect("valid declarations");
    let outcome = read_body(verified);
    assert_eq!(
        outcome.data.len(),
        65536,
        "the first chunk streams before the second fails"
    );
    assert_eq!(
        outcome.expect_error().code(),
        ErrorCode::SignatureDoesNotMatch
    );
}

#[test]
fn chunked_example_rejects_tampered_signature() {
    let parts = chunked_example_parts();
    for index in 0..3 {
        let mut signatures = CHUNK_SIGNATURES;
        let tampered = signatures[index].replacen('a', "b", 1);
        signatures[index] = &tampered;
        let body = example_chunked_body(signatures, "\r\n");
        let authenticated =
            authenticate_at(&parts, EXAMPLE_DATE).expect("documented seed signature");
        let verified = authenticated
            .verify_body(&parts, Pieces::new([body]))
            .expect("valid declarations");
        assert_eq!(
            read_body(verified).expect_error().code(),
            ErrorCode::SignatureDoesNotMatch,
            "chunk {index}"
        );
    }
}

const TRAILER_SEED: &str = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
const TRAILER_CHUNK_SIGNATURES: [&str; 3] = [
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
];
const TRAILER_SECTION: &str = "x-amz-checksum-crc32c:sOO8/Q==\r\n\
     x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n";

fn trailer_example_decoder() -> ChunkedDecoder {
    let seed = Signature::from_hex(TRAILER_SEED).expect("hex");
    let key = SigningKey::derive(EXAMPLE_SECRET, "20130524", "us-east-1", "s3");
    let signer = ChunkSigner::new(
        key,
        EXAMPLE_DATE.to_string(),
        credential_scope("20130524", "us-east-1"),
        seed,
    );
    ChunkedDecoder::new(
        Some(signer),
        true,
        vec!["x-amz-checksum-crc32c".to_string()],
        66560,
    )
}

fn decode_all(decoder: &mut ChunkedDecoder, body: &[u8]) -> Result<Vec<u8>, S3Error> {
    let mut input = Bytes::copy_from_slice(body);
    let mut out = Vec::new();
    while let Some(data) = decoder.decode(&mut input)? {
        out.extend_from_slice(&data);
    }
    Ok(out)
}

#[test]
fn signed_trailer_example() {
    let body = example_chunked_body(TRAILER_CHUNK_SIGNATURES, TRAILER_SECTION);
    let mut decoder = trailer_example_decoder();
    let data = decode_all(&mut decoder, &body).expect("documented chunk and trailer signatures");
    assert_eq!(data.len(), 66560);
    let trailers = decoder.finish().expect("complete");
    assert_eq!(trailers.len(), 1);
    assert_eq!(trailers[0].name, "x-amz-checksum-crc32c");
    assert_eq!(trailers[0].value, b"sOO8/Q==");

    // The documented trailer value is the CRC32C of the decoded data.
    let expected = super::super::checksum::ChecksumAlgorithm::Crc32c
        .decode_value(b"sOO8/Q==")
        .expect("valid");
    assert_eq!(
        crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &data).to_be_bytes()[4..],
        expected[..]
    );
}

#[test]
fn signed_trailer_example_rejects_changed_trailer() {
    let section = TRAILER_SECTION.replace("sOO8/Q==", "sOO8/A==");
    let body = example_chunked_body(TRAILER_CHUNK_SIGNATURES, &section);
    let error = decode_all(&mut trailer_example_decoder(), &body).expect_err("trailer changed");
    assert_eq!(error.code(), ErrorCode::SignatureDoesNotMatch);

    let section = TRAILER_SECTION.replace("d81f82fc", "d81f82fd");
    let body = example_chunked_body(TRAILER_CHUNK_SIGNATURES, &section);
    let error = decode_all(&mut trailer_example_decoder(), &body).expect_err("signature changed");
    assert_eq!(error.code(), ErrorCode::SignatureDoesNotMatch);

    let section = "x-amz-checksum-crc32c:sOO8/Q==\r\n\r\n";
    let body = example_chunked_body(TRAILER_CHUNK_SIGNATURES, section);
    let error = decode_all(&mut trailer_example_decoder(), &body).expect_err("signature missing");
    assert_eq!(error.code(), ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn signing_key_example_chain() {
    // The chunk signature of an empty final chunk depends only on the key,
    // the scope and the previous signature, so the documented chain pins
    // the signing key derivation as well.
    let key = SigningKey::derive(EXAMPLE_SECRET, "20130524", "us-east-1", "s3");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256-PAYLOAD\n{EXAMPLE_DATE}\n20130524/us-east-1/s3/aws4_request\n{}\n{EMPTY_SHA256_HEX}\n{EMPTY_SHA256_HEX}",
        CHUNK_SIGNATURES[1]
    );
    assert_eq!(
        key.sign(string_to_sign.as_bytes()).to_hex(),
        CHUNK_SIGNATURES[2]
    );
}

fn trailer_example_parts() -> Parts {
    let signed_headers = "content-encoding;host;x-amz-content-sha256;x-amz-date;\
                          x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer";
    let auth = authorization(signed_headers, TRAILER_SEED);
    parts(
        "PUT",
        "/examplebucket/chunkObject.txt",
        &[
            ("host", "s3.amazonaws.com"),
            ("x-amz-date", EXAMPLE_DATE),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            (
                "x-amz-content-sha256",
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
            ),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("x-amz-trailer", "x-amz-checksum-crc32c"),
            ("authorization", &auth),
        ],
    )
}

#[test]
fn signed_trailer_example_end_to_end() {
    let parts = trailer_example_parts();
    let authenticated = authenticate_at(&parts, EXAMPLE_DATE).expect("documented seed signature");
    assert_eq!(
        authenticated.payload_mode(),
        PayloadMode::StreamingSignedTrailer
    );
    let body = example_chunked_body(TRAILER_CHUNK_SIGNATURES, TRAILER_SECTION);
    let pieces = Pieces::new(body.chunks(1000).map(<[u8]>::to_vec));
    let verified = authenticated
        .verify_body(&parts, pieces)
        .expect("valid declarations");
    assert_eq!(read_body(verified).expect_ok().len(), 66560);
}
