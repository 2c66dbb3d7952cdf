//! An incremental decoder for the `aws-chunked` content encoding of S3
//! streaming uploads, with chunk and trailer signature verification.
//!
//! The wire format is a series of chunks, `hex-size[;chunk-signature=SIG]\r\n`
//! followed by the data and `\r\n`, ended by a zero-size chunk. Trailer lines
//! `name:value\r\n` may follow the zero-size chunk, then an optional
//! `x-amz-trailer-signature:SIG\r\n` and a final empty line. The decoder
//! takes input in pieces of any size and returns data as slices of its input.

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::sigv4::{sha256_hex, Signature, SigningKey, EMPTY_SHA256_HEX};
use crate::s3::{ErrorCode, S3Error};

/// The maximum length of one chunk header line, CRLF included. Real headers
/// are at most 16 hex digits plus an 81-byte signature extension.
pub const MAX_CHUNK_HEADER_LEN: usize = 4 * 1024;

/// The maximum length of the trailer section after the zero-size chunk,
/// every line and CRLF included.
pub const MAX_TRAILER_SECTION_LEN: usize = 16 * 1024;

const TRAILER_SIGNATURE_NAME: &str = "x-amz-trailer-signature";

/// The state that links each chunk signature to the one before it.
pub(crate) struct ChunkSigner {
    key: SigningKey,
    amz_date: String,
    scope: String,
    previous: Signature,
}

impl ChunkSigner {
    /// Starts a chain whose seed is the signature of the request itself.
    pub(crate) fn new(key: SigningKey, amz_date: String, scope: String, seed: Signature) -> Self {
        Self {
            key,
            amz_date,
            scope,
            previous: seed,
        }
    }

    /// Computes the signature of a chunk from the hex SHA-256 of its data.
    fn chunk_signature(&self, data_hash_hex: &str) -> Signature {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256_HEX}\n{data_hash_hex}",
            self.amz_date,
            self.scope,
            self.previous.to_hex(),
        );
        self.key.sign(string_to_sign.as_bytes())
    }

    /// Computes the signature of the trailer section from its canonical form.
    fn trailer_signature(&self, canonical_trailers: &[u8]) -> Signature {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            self.previous.to_hex(),
            sha256_hex(canonical_trailers),
        );
        self.key.sign(string_to_sign.as_bytes())
    }

    /// Checks a claimed signature and, when it matches, makes it the
    /// previous signature of the chain.
    fn advance(&mut self, expected: Signature, claimed: Option<Signature>) -> Result<(), S3Error> {
        let Some(claimed) = claimed else {
            return Err(signature_error(
                "A chunk of the streaming upload has no chunk-signature.",
            ));
        };
        if !expected.matches(&claimed) {
            return Err(signature_error(
                "The chunk signature we calculated does not match the signature you provided.",
            ));
        }
        self.previous = claimed;
        Ok(())
    }
}

fn signature_error(message: &str) -> S3Error {
    S3Error::new(ErrorCode::SignatureDoesNotMatch, message)
}

fn framing_error(message: impl Into<String>) -> S3Error {
    S3Error::new(ErrorCode::InvalidRequest, message)
}

/// A trailer received after the zero-size chunk, with a lowercase name and
/// a value trimmed of spaces and tabs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trailer {
    pub(crate) name: String,
    pub(crate) value: Vec<u8>,
}

enum State {
    /// Reading a chunk header line into `line`.
    Header { line: Vec<u8> },
    /// Passing through chunk data.
    Data { remaining: u64 },
    /// Reading the CRLF after chunk data. `seen_cr` records whether the CR arrived.
    DataEnd { seen_cr: bool },
    /// Reading trailer lines after the zero-size chunk. `completed_len`
    /// counts the bytes of the lines already read, CRLFs included.
    Trailers { line: Vec<u8>, completed_len: usize },
    /// The final empty line has been read.
    Done,
}

/// The incremental `aws-chunked` decoder.
pub(crate) struct ChunkedDecoder {
    state: State,
    /// `Some` for the signed modes, which require a chunk signature per chunk.
    signer: Option<ChunkSigner>,
    /// Whether the trailer section must carry `x-amz-trailer-signature`.
    trailer_signed: bool,
    /// The trailer names the request announced in `x-amz-trailer`.
    announced: Vec<String>,
    /// The signature the current chunk header claimed.
    claimed: Option<Signature>,
    /// The SHA-256 of the current chunk's data, for signed modes.
    chunk_hasher: Sha256,
    /// The number of decoded bytes that may still arrive. A chunk header
    /// that announces more fails at once.
    remaining_budget: u64,
    trailers: Vec<Trailer>,
    trailer_signature: Option<Signature>,
}

impl ChunkedDecoder {
    /// Creates a decoder for a body of `decoded_len` bytes.
    ///
    /// `signer` enables chunk signatures and `trailer_signed` the trailer
    /// signature. `announced` lists the trailer names from `x-amz-trailer`,
    /// and any other trailer is rejected.
    pub(crate) fn new(
        signer: Option<ChunkSigner>,
        trailer_signed: bool,
        announced: Vec<String>,
        decoded_len: u64,
    ) -> Self {
        Self {
            state: State::Header { line: Vec::new() },
            signer,
            trailer_signed,
            announced,
            claimed: None,
            chunk_hasher: Sha256::new(),
            remaining_budget: decoded_len,
            trailers: Vec::new(),
            trailer_signature: None,
        }
    }

    /// Consumes bytes from the front of `input` and returns the next slice
    /// of decoded data, or `None` once `input` is empty with no data to
    /// return. Framing consumed without data is kept in internal state.
    pub(crate) fn decode(&mut self, input: &mut Bytes) -> Result<Option<Bytes>, S3Error> {
        while !input.is_empty() {
            match &mut self.state {
                State::Header { line } => {
                    if let Some(line) =
                        take_line(line, input, MAX_CHUNK_HEADER_LEN, "chunk header")?
                    {
                        self.start_chunk(&line)?;
                    }
                }
                State::Data { remaining } => {
                    let available = u64::try_from(input.len()).unwrap_or(u64::MAX);
                    let take = available.min(*remaining);
                    *remaining -= take;
                    let done = *remaining == 0;
                    // `take` is at most `input.len()`, so it fits in usize.
                    let data = input.split_to(usize::try_from(take).unwrap_or(input.len()));
                    if self.signer.is_some() {
                        self.chunk_hasher.update(&data);
                    }
                    if done {
                        self.finish_chunk_data()?;
                    }
                    return Ok(Some(data));
                }
                State::DataEnd { seen_cr } => {
                    let Some((&byte, _)) = input.split_first() else {
                        break;
                    };
                    let expected = if *seen_cr { b'\n' } else { b'\r' };
                    if byte != expected {
                        return Err(framing_error("Chunk data is not followed by CRLF."));
                    }
                    let _ = input.split_to(1);
                    if *seen_cr {
                        self.state = State::Header { line: Vec::new() };
                    } else {
                        *seen_cr = true;
                    }
                }
                State::Trailers {
                    line,
                    completed_len,
                } => {
                    let limit = MAX_TRAILER_SECTION_LEN.saturating_sub(*completed_len);
                    if let Some(complete) = take_line(line, input, limit, "trailer section")? {
                        *completed_len += complete.len() + 2;
                        self.trailer_line(complete)?;
                    }
                }
                State::Done => {
                    return Err(framing_error(
                        "The request body continues after the final chunk.",
                    ));
                }
            }
        }
        Ok(None)
    }

    /// Checks that the body ended at the end of the encoding and returns
    /// the trailers received.
    pub(crate) fn finish(self) -> Result<Vec<Trailer>, S3Error> {
        match self.state {
            State::Done => Ok(self.trailers),
            _ => Err(S3Error::new(
                ErrorCode::IncompleteBody,
                "The request body ended before the final aws-chunked chunk.",
            )),
        }
    }

    fn start_chunk(&mut self, line: &[u8]) -> Result<(), S3Error> {
        let header = parse_chunk_header(line)?;
        if header.size > self.remaining_budget {
            return Err(S3Error::new(
                ErrorCode::IncompleteBody,
                "You did not provide the number of bytes specified by the x-amz-decoded-content-length HTTP header",
            ));
        }
        self.remaining_budget -= header.size;
        self.claimed = header.signature;
        if header.size == 0 {
            self.finish_chunk_data()?;
            self.state = State::Trailers {
                line: Vec::new(),
                completed_len: 0,
            };
        } else {
            self.state = State::Data {
                remaining: header.size,
            };
        }
        Ok(())
    }

    /// Verifies the signature of the chunk whose data just ended.
    fn finish_chunk_data(&mut self) -> Result<(), S3Error> {
        if let Some(signer) = &mut self.signer {
            let hash = std::mem::take(&mut self.chunk_hasher).finalize();
            let expected = signer.chunk_signature(&hex::encode(hash));
            signer.advance(expected, self.claimed.take())?;
        }
        if let State::Data { .. } = self.state {
            self.state = State::DataEnd { seen_cr: false };
        }
        Ok(())
    }

    fn trailer_line(&mut self, line: Vec<u8>) -> Result<(), S3Error> {
        if line.is_empty() {
            self.finish_trailers()?;
            self.state = State::Done;
            return Ok(());
        }
        if self.trailer_signature.is_some() {
            return Err(framing_error("A trailer follows x-amz-trailer-signature."));
        }
        let Some(colon) = line.iter().position(|&byte| byte == b':') else {
            return Err(framing_error("A trailer line has no ':' separator."));
        };
        let name = line.get(..colon).unwrap_or_default().trim_ascii();
        let value = line.get(colon + 1..).unwrap_or_default().trim_ascii();
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();

        if name == TRAILER_SIGNATURE_NAME {
            if !self.trailer_signed {
                return Err(framing_error(
                    "x-amz-trailer-signature is only allowed in signed trailer uploads.",
                ));
            }
            let signature = std::str::from_utf8(value)
                .ok()
                .and_then(Signature::from_hex);
            let Some(signature) = signature else {
                return Err(signature_error(
                    "The x-amz-trailer-signature value is not 64 hex digits.",
                ));
            };
            self.trailer_signature = Some(signature);
            return Ok(());
        }
        if !self.announced.contains(&name) {
            return Err(framing_error(format!(
                "The trailer {name} was not announced in the x-amz-trailer header."
            )));
        }
        if self.trailers.iter().any(|trailer| trailer.name == name) {
            return Err(framing_error(format!(
                "The trailer {name} appears more than once."
            )));
        }
        self.trailers.push(Trailer {
            name,
            value: value.to_vec(),
        });
        Ok(())
    }

    /// Verifies the trailer signature once the trailer section has ended.
    fn finish_trailers(&mut self) -> Result<(), S3Error> {
        if !self.trailer_signed {
            return Ok(());
        }
        let Some(signer) = &mut self.signer else {
            return Ok(());
        };
        let claimed = self.trailer_signature.take();
        if claimed.is_none() && self.trailers.is_empty() && self.announced.is_empty() {
            return Ok(());
        }
        let Some(claimed) = claimed else {
            return Err(signature_error(
                "The signed trailer section has no x-amz-trailer-signature.",
            ));
        };
        let expected = signer.trailer_signature(&canonical_trailers(&self.trailers));
        if !expected.matches(&claimed) {
            return Err(signature_error(
                "The trailer signature we calculated does not match the signature you provided.",
            ));
        }
        signer.previous = claimed;
        Ok(())
    }
}

/// Builds the canonical trailer block that the trailer signature covers:
/// `name:value\n` per trailer, sorted by name, as the AWS SDKs sign it.
fn canonical_trailers(trailers: &[Trailer]) -> Vec<u8> {
    let mut sorted: Vec<&Trailer> = trailers.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = Vec::new();
    for trailer in sorted {
        out.extend_from_slice(trailer.name.as_bytes());
        out.push(b':');
        out.extend_from_slice(&trailer.value);
        out.push(b'\n');
    }
    out
}

/// Moves bytes from `input` into `line` up to and including the next LF.
/// Returns the line without its CRLF once it is complete, and `None` while
/// more input is needed. `limit` caps the line length with its CRLF.
fn take_line(
    line: &mut Vec<u8>,
    input: &mut Bytes,
    limit: usize,
    what: &str,
) -> Result<Option<Vec<u8>>, S3Error> {
    let newline = input.iter().position(|&byte| byte == b'\n');
    let take = newline.map_or(input.len(), |index| index + 1);
    // An unfinished line fails as soon as its LF could no longer fit.
    let len_with_newline = line.len().saturating_add(take) + usize::from(newline.is_none());
    if len_with_newline > limit {
        return Err(framing_error(format!(
            "The aws-chunked {what} exceeds {limit} bytes."
        )));
    }
    line.extend_from_slice(&input.split_to(take));
    if newline.is_none() {
        return Ok(None);
    }
    let mut complete = std::mem::take(line);
    complete.pop();
    if complete.pop() != Some(b'\r') {
        return Err(framing_error(format!(
            "The aws-chunked {what} does not end with CRLF."
        )));
    }
    Ok(Some(complete))
}

struct ChunkHeader {
    size: u64,
    signature: Option<Signature>,
}

/// Parses `hex-size[;name=value]...`. The only extension read is
/// `chunk-signature`, and others are ignored.
fn parse_chunk_header(line: &[u8]) -> Result<ChunkHeader, S3Error> {
    let mut parts = line.split(|&byte| byte == b';');
    let size_text = parts.next().unwrap_or_default();
    if size_text.is_empty() || size_text.len() > 16 || !size_text.iter().all(u8::is_ascii_hexdigit)
    {
        return Err(framing_error(
            "The aws-chunked chunk size is not a hex number.",
        ));
    }
    let size = std::str::from_utf8(size_text)
        .ok()
        .and_then(|text| u64::from_str_radix(text, 16).ok())
        .ok_or_else(|| framing_error("The aws-chunked chunk size is not a hex number."))?;

    let mut signature = None;
    for extension in parts {
        let Some(value) = extension.strip_prefix(b"chunk-signature=") else {
            continue;
        };
        if signature.is_some() {
            return Err(framing_error(
                "A chunk header has more than one chunk-signature.",
            ));
        }
        let parsed = std::str::from_utf8(value)
            .ok()
            .and_then(Signature::from_hex);
        signature =
            Some(parsed.ok_or_else(|| signature_error("A chunk-signature is not 64 hex digits."))?);
    }
    Ok(ChunkHeader { size, signature })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(decoder: &mut ChunkedDecoder, pieces: &[&[u8]]) -> Result<Vec<u8>, S3Error> {
        let mut out = Vec::new();
        for piece in pieces {
            let mut input = Bytes::copy_from_slice(piece);
            while let Some(data) = decoder.decode(&mut input)? {
                out.extend_from_slice(&data);
            }
        }
        Ok(out)
    }

    fn unsigned(announced: &[&str], decoded_len: u64) -> ChunkedDecoder {
        let announced = announced.iter().map(|name| name.to_string()).collect();
        ChunkedDecoder::new(None, false, announced, decoded_len)
    }

    #[test]
    fn unsigned_chunks_decode() {
        let mut decoder = unsigned(&[], 8);
        let data =
            decode_all(&mut decoder, &[b"3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n"]).expect("valid");
        assert_eq!(data, b"abcdefgh");
        assert!(decoder.finish().expect("complete").is_empty());
    }

    #[test]
    fn trailers_are_collected() {
        let mut decoder = unsigned(&["x-amz-checksum-crc32"], 3);
        let body = b"3\r\nabc\r\n0\r\nX-Amz-Checksum-CRC32: NSRBwg==\r\n\r\n";
        let data = decode_all(&mut decoder, &[body]).expect("valid");
        assert_eq!(data, b"abc");
        let trailers = decoder.finish().expect("complete");
        assert_eq!(
            trailers,
            vec![Trailer {
                name: "x-amz-checksum-crc32".into(),
                value: b"NSRBwg==".to_vec()
            }]
        );
    }

    #[test]
    fn unannounced_trailer_is_rejected() {
        let mut decoder = unsigned(&[], 0);
        let error = decode_all(
            &mut decoder,
            &[b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"],
        )
        .expect_err("unannounced");
        assert_eq!(error.code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn duplicate_trailer_is_rejected() {
        let mut decoder = unsigned(&["x-amz-checksum-crc32"], 0);
        let body = b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
        let error = decode_all(&mut decoder, &[body]).expect_err("duplicate");
        assert_eq!(error.code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn truncated_body_is_incomplete() {
        let body: &[u8] = b"3\r\nabc\r\n0\r\n\r\n";
        for end in 0..body.len() {
            let mut decoder = unsigned(&[], 3);
            let prefix = body.get(..end).expect("in range");
            decode_all(&mut decoder, &[prefix]).expect("a prefix is valid so far");
            let error = decoder.finish().expect_err("truncated");
            assert_eq!(error.code(), ErrorCode::IncompleteBody, "end {end}");
        }
    }

    #[test]
    fn data_after_final_chunk_is_rejected() {
        let mut decoder = unsigned(&[], 0);
        let error = decode_all(&mut decoder, &[b"0\r\n\r\nx"]).expect_err("extra data");
        assert_eq!(error.code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn malformed_framing_is_rejected() {
        let cases: [&[u8]; 8] = [
            b"\r\n",
            b"g\r\n",
            b"-1\r\n",
            b"3\nabc\r\n",
            b"3\r\nabcX\n",
            b"3\r\nabc\rX",
            b"11111111111111111\r\n",
            b"0\r\nnocolon\r\n\r\n",
        ];
        for body in cases {
            let mut decoder = unsigned(&[], 3);
            let error = decode_all(&mut decoder, &[body]).expect_err("malformed");
            assert_eq!(
                error.code(),
                ErrorCode::InvalidRequest,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn chunk_larger_than_declared_length_fails_early() {
        let mut decoder = unsigned(&[], 2);
        let error = decode_all(&mut decoder, &[b"3\r\n"]).expect_err("too large");
        assert_eq!(error.code(), ErrorCode::IncompleteBody);
        let mut decoder = unsigned(&[], 2);
        let error = decode_all(&mut decoder, &[b"ffffffffffffffff\r\n"]).expect_err("too large");
        assert_eq!(error.code(), ErrorCode::IncompleteBody);
    }

    #[test]
    fn oversize_chunk_header_is_rejected() {
        let mut header = b"3".to_vec();
        header.resize(MAX_CHUNK_HEADER_LEN, b';');
        let mut decoder = unsigned(&[], 3);
        let error = decode_all(&mut decoder, &[&header]).expect_err("no newline within limit");
        assert_eq!(error.code(), ErrorCode::InvalidRequest);

        // A header of exactly the limit, CRLF included, is accepted.
        let mut header = b"3".to_vec();
        header.resize(MAX_CHUNK_HEADER_LEN - 2, b';');
        header.extend_from_slice(b"\r\nabc\r\n0\r\n\r\n");
        let mut decoder = unsigned(&[], 3);
        let pieces: Vec<&[u8]> = header.chunks(100).collect();
        assert_eq!(
            decode_all(&mut decoder, &pieces).expect("at the limit"),
            b"abc"
        );
    }

    #[test]
    fn oversize_trailer_section_is_rejected() {
        let mut decoder = unsigned(&["x-amz-checksum-crc32"], 0);
        let mut body = b"0\r\n".to_vec();
        for _ in 0..(MAX_TRAILER_SECTION_LEN / 10 + 1) {
            body.extend_from_slice(b"a:bcdefg\r\n");
        }
        let error = decode_all(&mut decoder, &[&body]).expect_err("too long");
        assert_eq!(error.code(), ErrorCode::InvalidRequest);

        let mut decoder = unsigned(&["x-amz-checksum-crc32"], 0);
        let mut body = b"0\r\n".to_vec();
        body.resize(MAX_TRAILER_SECTION_LEN + 10, b'a');
        let pieces: Vec<&[u8]> = body.chunks(7).collect();
        let error = decode_all(&mut decoder, &pieces).expect_err("one long line");
        assert_eq!(error.code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn chunk_signature_extension_parsing() {
        let signature = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648";
        let header = parse_chunk_header(format!("10000;chunk-signature={signature}").as_bytes())
            .expect("valid");
        assert_eq!(header.size, 0x10000);
        assert_eq!(
            header.signature.map(Signature::to_hex).as_deref(),
            Some(signature)
        );

        let header = parse_chunk_header(b"a;other=1").expect("unknown extension ignored");
        assert_eq!(header.size, 10);
        assert!(header.signature.is_none());

        let error = parse_chunk_header(b"a;chunk-signature=abc")
            .err()
            .expect("short signature");
        assert_eq!(error.code(), ErrorCode::SignatureDoesNotMatch);
    }
}
