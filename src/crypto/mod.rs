//! The ciphertext format of stored objects: segment encryption, data-key
//! wrapping, streaming encryption and decryption of bodies, and translation of
//! plaintext ranges to ciphertext ranges.
//!
//! This module does not depend on HTTP requests, S3 or the upstream. It works
//! on byte streams (`http_body::Body`), lengths, keys and metadata fields.
//!
//! # Format version 1
//!
//! **Segments.** The plaintext is cut into segments of [`SEGMENT_LEN`]
//! (65,536) bytes. The last segment may be shorter, and an empty plaintext is
//! one empty segment. Each segment is sealed with AES-256-GCM and written as
//! its ciphertext followed by its 16-byte tag. The stored body is exactly the
//! concatenation of the sealed segments, with no header, so
//! `ciphertext_len(p) = p + 16 * max(1, ceil(p / 65536))` (see
//! [`ciphertext_len`] and its inverse [`plaintext_len`]).
//!
//! **Segment key.** Each object has its own random 32-byte [`DataKey`]. The
//! segments are sealed under
//! `HKDF-SHA256(ikm = data key, salt = none, info = "s3seal/v1/segment-key")`,
//! 32 bytes long.
//!
//! **Nonces.** Segment `i` of part `p` (`p = 0` for a single-part object,
//! `1..=10000` for the parts of a multipart upload) has the 12-byte nonce
//! `p as u32 BE || i as u32 BE || 00 00 00 || f`, where `f` is 1 for the
//! final segment of the part and 0 otherwise. Segments carry no associated
//! data. The nonce binds each segment to its position, so reordered,
//! dropped, appended or cross-part segments fail authentication. The final
//! flag detects truncation at a segment boundary.
//!
//! **Key commitment.** `HKDF-SHA256(ikm = data key, salt = none,
//! info = "s3seal/v1/commitment")`, 32 bytes, is stored next to the wrapped
//! key. AES-GCM is not key-committing, so without it one envelope could be
//! crafted to unwrap to different keys under different KEKs.
//!
//! **Key wrapping.** The data key is encrypted with AES-256-GCM under one
//! version of a key-encryption key (KEK), with a random 12-byte nonce. The
//! associated data is the ASCII tag `s3seal/v1/wrap` followed by the format
//! version, KEK name, KEK version, bucket and object key, each as a u32
//! big-endian length and then its bytes (the two versions as 4-byte u32
//! big-endian values). The stored wrapped key is `nonce || ciphertext || tag`
//! (60 bytes). A wrapped key therefore unwraps only for the object it was
//! made for, and copy or rename needs [`rewrap_data_key`].
//!
//! **Envelope fields.** [`Envelope::to_fields`] writes `format` (decimal,
//! `1`), `kek` (KEK name), `kek-version` (decimal), `wrapped-key` and
//! `commitment` (both standard base64 with padding). The proxy stores them as
//! `x-amz-meta-s3seal-{field}` metadata.
//!
//! # Limits
//!
//! A part contains at most 2^32 segments ([`MAX_PLAINTEXT_LEN`], 256 TiB),
//! because the segment index in the nonce is a u32.
//!
//! NOTE: nonces are deterministic per (data key, part, segment). Encrypting
//! two different plaintexts under the same data key and part number, such as
//! a re-uploaded multipart part, reuses nonces and breaks AES-GCM's
//! confidentiality and integrity. Each encryption of a part needs a data key
//! that has not encrypted that part number before.

mod decrypt_body;
mod encrypt_body;
mod envelope;
mod error;
mod layout;
pub mod multipart;
mod segment;

#[cfg(test)]
mod tests;

pub use decrypt_body::DecryptBody;
pub use encrypt_body::EncryptBody;
pub use envelope::{
    field, rewrap_data_key, unwrap_data_key, wrap_data_key, Envelope, KekRef, ObjectId,
    WRAPPED_KEY_LEN,
};
pub use error::CryptoError;
pub use layout::{
    ciphertext_len, final_segment_index, plaintext_len, segment_count, segment_window,
    suffix_cover_len, SegmentWindow, MAX_PLAINTEXT_LEN, MAX_SEGMENTS, SEALED_SEGMENT_LEN,
    SEGMENT_LEN, TAG_LEN,
};
pub use segment::DataKey;

/// The format version that this module writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;

/// The error type of [`EncryptBody`] and [`DecryptBody`]: a boxed
/// [`CryptoError`] or the source body's own error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
