//! The multipart layout: how the parts of a multipart upload are stored,
//! and the upload token that lets any s3seal process encrypt a part without
//! shared state.
//!
//! # Part layout
//!
//! Each part is stored as a 32-byte part header followed by the part's
//! plaintext in the segment format of this module (64 KiB segments, nonces
//! bound to the part number and a final-segment flag):
//!
//! ```text
//! "S3P1" || part number (u32 BE) || plaintext length (u64 BE) || salt (16 random bytes)
//! ```
//!
//! The segments of a part are sealed under a part key,
//! `HKDF-SHA256(ikm = upload data key, info = "s3seal/v1/part-key" || header)`.
//! A fresh salt per upload of a part means a part number uploaded twice with
//! different bytes never reuses a nonce under one key, and any change to the
//! header changes the key, so a forged header fails authentication.
//!
//! A part of `p` plaintext bytes takes `32 + ciphertext_len(p)` bytes. When
//! every part but the last is a multiple of 64 KiB (the default part sizes
//! of aws cli, boto3, rclone, s3cmd and the AWS transfer managers), an
//! object of `n` parts and `c` stored bytes contains `plaintext_len(c - 32 n)`
//! plaintext bytes; see [`multipart_plaintext_len`].
//!
//! # Upload token
//!
//! S3 keeps no metadata of an upload in progress that a later `UploadPart`
//! could read, so the upload's data key travels in the upload id that
//! clients echo: `UPSTREAM_ID~s3s1~KEK_NAME~KEK_VERSION~WRAPPED` where
//! `WRAPPED` is base64url of `nonce || AES-256-GCM(KEK, data key) || tag`
//! with associated data binding the KEK name and version, the bucket, the
//! object key and the upstream upload id.

use super::layout::{ciphertext_len, plaintext_len};
use super::segment::{fill_segment, SegmentCipher};
use super::{BoxError, CryptoError, DataKey, SEGMENT_LEN, TAG_LEN};
use crate::keys::SecretKey;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// Length of the header that starts every stored part.
pub const PART_HEADER_LEN: u64 = 32;

const PART_MAGIC: &[u8; 4] = b"S3P1";
const PART_KEY_INFO: &[u8] = b"s3seal/v1/part-key";
const UPLOAD_TAG: &[u8] = b"s3seal/v1/upload";

/// Separator between the upstream upload id and the token in the upload
/// id that clients see.
pub const UPLOAD_TOKEN_MARKER: &str = "~s3s1~";

/// The header of one stored part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartHeader {
    pub part_number: u32,
    pub plaintext_len: u64,
    salt: [u8; 16],
}

impl PartHeader {
    /// Makes the header for a new upload of a part, with a fresh salt.
    pub fn new(
        part_number: u32,
        plaintext_len: u64,
        rng: &mut (impl rand::RngCore + rand::CryptoRng),
    ) -> Self {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        Self {
            part_number,
            plaintext_len,
            salt,
        }
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[..4].copy_from_slice(PART_MAGIC);
        out[4..8].copy_from_slice(&self.part_number.to_be_bytes());
        out[8..16].copy_from_slice(&self.plaintext_len.to_be_bytes());
        out[16..].copy_from_slice(&self.salt);
        out
    }

    /// Parses a stored header. The header is authenticated only through the
    /// part key, so a forged header makes every segment of its part fail.
    pub fn parse(bytes: &[u8]) -> Result<Self, CryptoError> {
        let malformed = |reason: &str| CryptoError::MalformedEnvelopeField {
            field: "part-header",
            reason: reason.into(),
        };
        if bytes.len() != PART_HEADER_LEN as usize {
            return Err(malformed("a part header is 32 bytes"));
        }
        if &bytes[..4] != PART_MAGIC {
            return Err(malformed(
                "the part does not start with the s3seal part header",
            ));
        }
        let part_number =
            u32::from_be_bytes(bytes[4..8].try_into().map_err(|_| malformed("short"))?);
        let plaintext_len =
            u64::from_be_bytes(bytes[8..16].try_into().map_err(|_| malformed("short"))?);
        let salt: [u8; 16] = bytes[16..32].try_into().map_err(|_| malformed("short"))?;
        if !(1..=10_000).contains(&part_number) {
            return Err(malformed("the part number is outside 1..=10000"));
        }
        Ok(Self {
            part_number,
            plaintext_len,
            salt,
        })
    }

    /// Derives the key that seals this part's segments.
    pub fn part_key(&self, upload_key: &DataKey) -> DataKey {
        let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(None, upload_key.secret().expose());
        let mut info = Vec::with_capacity(PART_KEY_INFO.len() + 32);
        info.extend_from_slice(PART_KEY_INFO);
        info.extend_from_slice(&self.to_bytes());
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        hkdf.expand(&info, key.as_mut_slice())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        DataKey::from_bytes(*key)
    }

    /// Returns the stored length of this part.
    pub fn stored_len(&self) -> u64 {
        part_stored_len(self.plaintext_len)
    }
}

/// Returns the stored length of a part of `plaintext_len` bytes.
pub fn part_stored_len(plaintext_len: u64) -> u64 {
    PART_HEADER_LEN + ciphertext_len(plaintext_len)
}

/// Returns the plaintext length of a multipart object of `parts` parts and
/// `stored_len` bytes, exact when every part but the last is a multiple of
/// 64 KiB. Returns `None` for a length that no such object has.
pub fn multipart_plaintext_len(stored_len: u64, parts: u32) -> Option<u64> {
    let overhead = PART_HEADER_LEN.checked_mul(u64::from(parts))?;
    let ciphertext = stored_len.checked_sub(overhead)?;
    // An empty last part stores one empty segment, its tag alone. After
    // whole segments no other part ends with a remainder of one tag.
    if ciphertext > TAG_LEN && ciphertext % super::SEALED_SEGMENT_LEN == TAG_LEN {
        return plaintext_len(ciphertext - TAG_LEN);
    }
    plaintext_len(ciphertext)
}

/// One part's place in a stored multipart object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSpan {
    pub part_number: u32,
    pub stored_offset: u64,
    pub plaintext_offset: u64,
    pub plaintext_len: u64,
}

/// The parts of a stored multipart object, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartLayout {
    pub parts: Vec<PartSpan>,
}

impl PartLayout {
    /// Builds the layout from each part's plaintext length, parts numbered
    /// from 1.
    pub fn from_lens(lens: &[u64]) -> Self {
        let mut parts = Vec::with_capacity(lens.len());
        let (mut stored, mut plain) = (0u64, 0u64);
        for (i, &len) in lens.iter().enumerate() {
            parts.push(PartSpan {
                part_number: i as u32 + 1,
                stored_offset: stored,
                plaintext_offset: plain,
                plaintext_len: len,
            });
            stored += part_stored_len(len);
            plain += len;
        }
        Self { parts }
    }

    /// Guesses the layout of `parts` parts where every part but the last has
    /// the length of the first, and checks it against the stored length.
    /// Returns `None` when no such layout has `stored_len` bytes.
    pub fn uniform(parts: u32, first_len: u64, stored_len: u64) -> Option<Self> {
        if parts == 0 {
            return None;
        }
        let full = part_stored_len(first_len).checked_mul(u64::from(parts - 1))?;
        let last_stored = stored_len.checked_sub(full)?.checked_sub(PART_HEADER_LEN)?;
        let last_len = plaintext_len(last_stored)?;
        if parts > 1 && (last_len == 0 || last_len > first_len) {
            return None;
        }
        let mut lens = vec![first_len; parts as usize - 1];
        lens.push(if parts == 1 { first_len } else { last_len });
        let layout = Self::from_lens(&lens);
        (layout.stored_len() == stored_len).then_some(layout)
    }

    pub fn plaintext_len(&self) -> u64 {
        self.parts
            .last()
            .map_or(0, |p| p.plaintext_offset + p.plaintext_len)
    }

    pub fn stored_len(&self) -> u64 {
        self.parts
            .last()
            .map_or(0, |p| p.stored_offset + part_stored_len(p.plaintext_len))
    }

    /// Returns the index of the part that contains plaintext offset `offset`.
    pub fn part_index_at(&self, offset: u64) -> Option<usize> {
        self.parts.iter().position(|p| {
            offset >= p.plaintext_offset && offset < p.plaintext_offset + p.plaintext_len
        })
    }
}

/// The binding of an upload token: the KEK version that wraps it and the
/// upload it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct UploadBinding<'a> {
    pub kek_name: &'a str,
    pub kek_version: u32,
    pub bucket: &'a str,
    pub key: &'a str,
    pub upstream_upload_id: &'a str,
}

/// Wraps an upload's data key into the token of its client-facing upload id.
pub fn seal_upload_id(
    kek: &SecretKey,
    binding: UploadBinding<'_>,
    upload_key: &DataKey,
    rng: &mut (impl rand::RngCore + rand::CryptoRng),
) -> String {
    let cipher = Aes256Gcm::new_from_slice(kek.expose()).expect("AES-256-GCM takes a 32-byte key");
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    let mut buffer = upload_key.secret().expose().to_vec();
    let aad = upload_aad(binding);
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, &mut buffer)
        .expect("AES-GCM encrypts a 32-byte key");
    let mut token = Vec::with_capacity(12 + 32 + 16);
    token.extend_from_slice(&nonce);
    token.extend_from_slice(&buffer);
    token.extend_from_slice(&tag);
    zeroize::Zeroize::zeroize(&mut buffer);
    format!(
        "{}{UPLOAD_TOKEN_MARKER}{}~{}~{}",
        binding.upstream_upload_id,
        binding.kek_name,
        binding.kek_version,
        URL_SAFE_NO_PAD.encode(token)
    )
}

/// A client-facing upload id split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadId<'a> {
    pub upstream: &'a str,
    /// `(kek name, kek version, wrapped key)` when the id carries a token.
    pub token: Option<(&'a str, u32, &'a str)>,
}

/// Splits a client-facing upload id. An id without a token is an upstream
/// id that did not come from s3seal's CreateMultipartUpload.
pub fn parse_upload_id(client_id: &str) -> Result<UploadId<'_>, CryptoError> {
    let Some((upstream, rest)) = client_id.rsplit_once(UPLOAD_TOKEN_MARKER) else {
        return Ok(UploadId {
            upstream: client_id,
            token: None,
        });
    };
    let malformed = || CryptoError::MalformedEnvelopeField {
        field: "upload-id",
        reason: "the upload token is malformed".into(),
    };
    let mut fields = rest.splitn(3, '~');
    let (Some(name), Some(version), Some(wrapped)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(malformed());
    };
    let version = version.parse().map_err(|_| malformed())?;
    Ok(UploadId {
        upstream,
        token: Some((name, version, wrapped)),
    })
}

/// Unwraps the upload's data key from a token made by [`seal_upload_id`].
pub fn open_upload_token(
    kek: &SecretKey,
    binding: UploadBinding<'_>,
    wrapped: &str,
) -> Result<DataKey, CryptoError> {
    let mut bytes = URL_SAFE_NO_PAD
        .decode(wrapped.as_bytes())
        .map_err(|_| CryptoError::UnwrapFailed)?;
    if bytes.len() != 12 + 32 + 16 {
        return Err(CryptoError::UnwrapFailed);
    }
    let cipher = Aes256Gcm::new_from_slice(kek.expose()).expect("AES-256-GCM takes a 32-byte key");
    let (nonce, rest) = bytes.split_at_mut(12);
    let (ciphertext, tag) = rest.split_at_mut(32);
    let aad = upload_aad(binding);
    let result = cipher.decrypt_in_place_detached(
        Nonce::from_slice(nonce),
        &aad,
        ciphertext,
        Tag::from_slice(tag),
    );
    let key = result
        .ok()
        .and_then(|()| <[u8; 32]>::try_from(&ciphertext[..]).ok())
        .map(DataKey::from_bytes);
    zeroize::Zeroize::zeroize(&mut bytes);
    key.ok_or(CryptoError::UnwrapFailed)
}

/// Builds the associated data of an upload token: the ASCII tag
/// `s3seal/v1/upload`, then the KEK name and version, bucket, object key and
/// upstream upload id, each as a u32 big-endian length and its bytes.
fn upload_aad(binding: UploadBinding<'_>) -> Vec<u8> {
    let fields: [&[u8]; 5] = [
        binding.kek_name.as_bytes(),
        &binding.kek_version.to_be_bytes(),
        binding.bucket.as_bytes(),
        binding.key.as_bytes(),
        binding.upstream_upload_id.as_bytes(),
    ];
    let mut aad = UPLOAD_TAG.to_vec();
    for field in fields {
        aad.extend_from_slice(&(field.len() as u32).to_be_bytes());
        aad.extend_from_slice(field);
    }
    aad
}

/// The start of a read inside a part: the part (an index into the
/// layout), its header, read separately, and the first segment.
#[derive(Debug, Clone, Copy)]
pub struct SegmentStart<'a> {
    pub part_index: usize,
    pub header: &'a PartHeader,
    pub first_segment: u64,
}

#[derive(Debug)]
enum Stage {
    /// Collecting the 32 header bytes of the next part.
    Header,
    /// Opening the segments of the current part.
    Segments {
        cipher: Box<SegmentCipher>,
        plaintext_len: u64,
        next_segment: u64,
    },
    Done,
}

impl std::fmt::Debug for SegmentCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SegmentCipher")
    }
}

pin_project! {
    /// A body that decrypts a run of stored parts of a multipart object,
    /// reading each part's header from the stream, and yields one plaintext
    /// window of it.
    ///
    /// Each header must name the part number and length that the layout
    /// expects, so a stream cut at the wrong place fails instead of
    /// returning wrong bytes. Bytes of a segment are released only after its
    /// tag verified.
    pub struct MultipartDecryptBody<B> {
        #[pin]
        source: B,
        upload_key: DataKey,
        layout: PartLayout,
        // Index into `layout.parts` of the part being read.
        part_index: usize,
        stage: Stage,
        skip: u64,
        remaining: u64,
        buffer: BytesMut,
        pending: Bytes,
        // Reading a whole object from its first part: see `whole`.
        whole: bool,
    }
}

impl<B> MultipartDecryptBody<B> {
    /// Decrypts a whole object from the start of its first part, whose
    /// plaintext length the caller announced as `layout.plaintext_len()`.
    ///
    /// The layout may be a guess whose part lengths are wrong but whose
    /// part count and total are right: two layouts with the same part count
    /// can have the same stored length. So each part header must name the
    /// next part number, and its own length is used. The total is checked
    /// before the last bytes are released: a stream that does not end
    /// exactly with the last segment of the last part at the announced
    /// length fails instead of yielding a body of that length.
    pub fn whole(source: B, upload_key: DataKey, layout: PartLayout) -> Self {
        let len = layout.plaintext_len();
        let mut body = Self::from_part_start(source, upload_key, layout, 0, 0, len);
        body.whole = true;
        body
    }

    /// Decrypts from the start of part `layout.parts[part_index]` (the
    /// source starts at that part's header), skipping `skip` plaintext bytes
    /// and yielding `len`.
    pub fn from_part_start(
        source: B,
        upload_key: DataKey,
        layout: PartLayout,
        part_index: usize,
        skip: u64,
        len: u64,
    ) -> Self {
        Self {
            source,
            upload_key,
            layout,
            part_index,
            stage: Stage::Header,
            skip,
            remaining: len,
            buffer: BytesMut::new(),
            pending: Bytes::new(),
            whole: false,
        }
    }

    /// Decrypts from segment `first_segment` of a part whose header was read
    /// separately. The source starts at that segment.
    pub fn from_segment(
        source: B,
        upload_key: DataKey,
        layout: PartLayout,
        start: SegmentStart<'_>,
        skip: u64,
        len: u64,
    ) -> Result<Self, CryptoError> {
        let part_index = start.part_index;
        let mut stage = open_part(&upload_key, &layout, part_index, start.header, false)?;
        if let Stage::Segments { next_segment, .. } = &mut stage {
            *next_segment = start.first_segment;
        }
        let mut body = Self::from_part_start(source, upload_key, layout, part_index, skip, len);
        body.stage = stage;
        Ok(body)
    }
}

/// Checks a part header against the layout and builds the part's cipher.
/// With `any_len`, only the part number is checked.
fn open_part(
    upload_key: &DataKey,
    layout: &PartLayout,
    part_index: usize,
    header: &PartHeader,
    any_len: bool,
) -> Result<Stage, CryptoError> {
    let expected = layout
        .parts
        .get(part_index)
        .ok_or(CryptoError::TrailingData { segment: 0 })?;
    if header.part_number != expected.part_number
        || (!any_len && header.plaintext_len != expected.plaintext_len)
    {
        return Err(CryptoError::MalformedEnvelopeField {
            field: "part-header",
            reason: format!(
                "expected part {} of {} bytes, found part {} of {} bytes",
                expected.part_number,
                expected.plaintext_len,
                header.part_number,
                header.plaintext_len
            ),
        });
    }
    let part_key = header.part_key(upload_key);
    let cipher = SegmentCipher::new(&part_key, header.part_number, header.plaintext_len)?;
    Ok(Stage::Segments {
        cipher: Box::new(cipher),
        plaintext_len: header.plaintext_len,
        next_segment: 0,
    })
}

impl<B> Body for MultipartDecryptBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        loop {
            if *this.remaining == 0 || matches!(this.stage, Stage::Done) {
                *this.stage = Stage::Done;
                return Poll::Ready(None);
            }
            let target = match &*this.stage {
                Stage::Header => PART_HEADER_LEN as usize,
                Stage::Segments {
                    cipher,
                    plaintext_len,
                    next_segment,
                } => {
                    let plain = if *next_segment == cipher.final_segment() {
                        plaintext_len - next_segment * SEGMENT_LEN
                    } else {
                        SEGMENT_LEN
                    };
                    (plain + TAG_LEN) as usize
                }
                Stage::Done => 0,
            };
            fill_segment(this.buffer, this.pending, target);
            if this.buffer.len() < target {
                match ready!(this.source.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            *this.pending = data;
                        }
                        continue;
                    }
                    Some(Err(error)) => {
                        *this.stage = Stage::Done;
                        return Poll::Ready(Some(Err(error.into())));
                    }
                    None => {
                        *this.stage = Stage::Done;
                        return Poll::Ready(Some(Err(Box::new(CryptoError::UnexpectedEnd {
                            segment: 0,
                        }))));
                    }
                }
            }

            let stage = std::mem::replace(this.stage, Stage::Done);
            match stage {
                Stage::Header => {
                    let header = this.buffer.split().freeze();
                    let next = PartHeader::parse(&header).and_then(|h| {
                        open_part(
                            this.upload_key,
                            this.layout,
                            *this.part_index,
                            &h,
                            *this.whole,
                        )
                    });
                    match next {
                        Ok(stage) => *this.stage = stage,
                        Err(error) => return Poll::Ready(Some(Err(Box::new(error)))),
                    }
                }
                Stage::Segments {
                    cipher,
                    plaintext_len,
                    next_segment,
                } => {
                    let opened = cipher.open_in_place(next_segment, this.buffer);
                    let plain_len = match opened {
                        Ok(len) => len,
                        Err(error) => return Poll::Ready(Some(Err(Box::new(error)))),
                    };
                    let mut plain = this.buffer.split().freeze();
                    plain.truncate(plain_len);
                    let is_final = next_segment == cipher.final_segment();
                    if *this.whole {
                        // Empty parts after this one add no bytes.
                        let is_end = is_final
                            && this
                                .layout
                                .parts
                                .iter()
                                .skip(*this.part_index + 1)
                                .all(|part| part.plaintext_len == 0);
                        let len = plain.len() as u64;
                        if len > *this.remaining || (len == *this.remaining) != is_end {
                            return Poll::Ready(Some(Err(Box::new(
                                CryptoError::MalformedEnvelopeField {
                                    field: "part-header",
                                    reason: "the parts do not add up to the object's length".into(),
                                },
                            ))));
                        }
                    }
                    *this.stage = if is_final {
                        *this.part_index += 1;
                        Stage::Header
                    } else {
                        Stage::Segments {
                            cipher,
                            plaintext_len,
                            next_segment: next_segment + 1,
                        }
                    };
                    let skip = (*this.skip).min(plain.len() as u64);
                    plain.advance(skip as usize);
                    *this.skip -= skip;
                    let take = (*this.remaining).min(plain.len() as u64);
                    plain.truncate(take as usize);
                    *this.remaining -= take;
                    if !plain.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(plain))));
                    }
                }
                Stage::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::EncryptBody;
    use http_body_util::{BodyExt, Full};

    async fn seal_part(upload_key: &DataKey, part_number: u32, plaintext: &[u8]) -> Vec<u8> {
        let header = PartHeader::new(part_number, plaintext.len() as u64, &mut rand::rngs::OsRng);
        let part_key = header.part_key(upload_key);
        let body = EncryptBody::new(
            Full::new(Bytes::copy_from_slice(plaintext)),
            plaintext.len() as u64,
            &part_key,
            part_number,
        )
        .unwrap();
        let mut out = header.to_bytes().to_vec();
        out.extend_from_slice(&body.collect().await.unwrap().to_bytes());
        out
    }

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    async fn stored_object(upload_key: &DataKey, lens: &[usize]) -> (Vec<u8>, Vec<u8>) {
        let (mut stored, mut plain) = (Vec::new(), Vec::new());
        for (i, &len) in lens.iter().enumerate() {
            let part = data(len, i as u8);
            stored.extend_from_slice(&seal_part(upload_key, i as u32 + 1, &part).await);
            plain.extend_from_slice(&part);
        }
        (stored, plain)
    }

    #[tokio::test]
    async fn plaintext_len_with_empty_last_part() {
        let key = DataKey::generate(&mut rand::rngs::OsRng);
        for lens in [vec![131_072usize, 0], vec![65_536, 65_536, 0], vec![0]] {
            let (stored, plain) = stored_object(&key, &lens).await;
            assert_eq!(
                multipart_plaintext_len(stored.len() as u64, lens.len() as u32),
                Some(plain.len() as u64),
                "{lens:?}"
            );
        }
    }

    #[tokio::test]
    async fn whole_object_round_trip() {
        let key = DataKey::generate(&mut rand::rngs::OsRng);
        let lens = [131_072usize, 131_072, 70_001];
        let (stored, plain) = stored_object(&key, &lens).await;
        assert_eq!(
            multipart_plaintext_len(stored.len() as u64, 3),
            Some(plain.len() as u64)
        );
        let layout = PartLayout::uniform(3, 131_072, stored.len() as u64).unwrap();
        assert_eq!(layout.plaintext_len(), plain.len() as u64);
        let body = MultipartDecryptBody::from_part_start(
            Full::new(Bytes::from(stored)),
            key,
            layout,
            0,
            0,
            plain.len() as u64,
        );
        assert_eq!(body.collect().await.unwrap().to_bytes().to_vec(), plain);
    }

    #[tokio::test]
    async fn unaligned_uniform_parts_found() {
        let key = DataKey::generate(&mut rand::rngs::OsRng);
        let lens = [65_537usize, 65_537, 3];
        let (stored, plain) = stored_object(&key, &lens).await;
        let layout = PartLayout::uniform(3, 65_537, stored.len() as u64).unwrap();
        assert_eq!(layout.plaintext_len(), plain.len() as u64);
        let window = (65_530u64, 20u64);
        let index = layout.part_index_at(window.0).unwrap();
        let span = layout.parts[index];
        let source = Bytes::from(stored[span.stored_offset as usize..].to_vec());
        let body = MultipartDecryptBody::from_part_start(
            Full::new(source),
            key,
            layout,
            index,
            window.0 - span.plaintext_offset,
            window.1,
        );
        let out = body.collect().await.unwrap().to_bytes();
        assert_eq!(
            &out[..],
            &plain[window.0 as usize..(window.0 + window.1) as usize]
        );
    }

    #[tokio::test]
    async fn wrong_layout_fails() {
        let key = DataKey::generate(&mut rand::rngs::OsRng);
        let (stored, plain) = stored_object(&key, &[65_536, 131_072, 10]).await;
        let wrong = PartLayout::from_lens(&[65_536, 65_536, 65_546]);
        let body = MultipartDecryptBody::from_part_start(
            Full::new(Bytes::from(stored)),
            key,
            wrong,
            0,
            0,
            plain.len() as u64,
        );
        assert!(body.collect().await.is_err());
    }

    #[tokio::test]
    async fn whole_read_follows_part_headers() {
        let key = DataKey::generate(&mut rand::rngs::OsRng);
        let lens = [65_537usize, 65_543, 100];
        let (stored, plain) = stored_object(&key, &lens).await;
        // The stored length also fits parts of 65,537, 65,537 and 106 bytes.
        let guess = PartLayout::uniform(3, 65_537, stored.len() as u64).unwrap();
        assert_ne!(guess, PartLayout::from_lens(&[65_537, 65_543, 100]));
        assert_eq!(guess.plaintext_len(), plain.len() as u64);

        let body = MultipartDecryptBody::whole(Full::new(Bytes::from(stored)), key, guess);
        assert_eq!(body.collect().await.unwrap().to_bytes().to_vec(), plain);
    }

    #[tokio::test]
    async fn whole_read_with_empty_last_part() {
        let key = DataKey::generate(&mut rand::rngs::OsRng);
        let (stored, plain) = stored_object(&key, &[65_537, 0]).await;
        let layout = PartLayout::from_lens(&[65_537, 0]);
        let body = MultipartDecryptBody::whole(Full::new(Bytes::from(stored)), key, layout);
        assert_eq!(body.collect().await.unwrap().to_bytes().to_vec(), plain);
    }

    #[tokio::test]
    async fn whole_read_rejects_wrong_total() {
        let key = DataKey::generate(&mut rand::rngs::OsRng);
        let (stored, plain) = stored_object(&key, &[65_537, 65_543, 100]).await;
        for lens in [[65_537, 65_537, 122], [65_537, 65_537, 90]] {
            let layout = PartLayout::from_lens(&lens);
            let announced = layout.plaintext_len();
            let mut body = MultipartDecryptBody::whole(
                Full::new(Bytes::from(stored.clone())),
                key.clone(),
                layout,
            );
            let mut received = 0u64;
            let failed = loop {
                match body.frame().await {
                    Some(Ok(frame)) => received += frame.into_data().unwrap().len() as u64,
                    Some(Err(_)) => break true,
                    None => break false,
                }
            };
            assert!(failed, "{lens:?}");
            assert!(received < announced.min(plain.len() as u64), "{lens:?}");
        }
    }

    #[tokio::test]
    async fn tampered_header_fails() {
        let key = DataKey::generate(&mut rand::rngs::OsRng);
        let (mut stored, plain) = stored_object(&key, &[100]).await;
        stored[20] ^= 1;
        let layout = PartLayout::from_lens(&[100]);
        let body = MultipartDecryptBody::from_part_start(
            Full::new(Bytes::from(stored)),
            key,
            layout,
            0,
            0,
            plain.len() as u64,
        );
        assert!(body.collect().await.is_err());
    }

    #[tokio::test]
    async fn truncated_object_fails() {
        let key = DataKey::generate(&mut rand::rngs::OsRng);
        let (stored, plain) = stored_object(&key, &[65_536, 500]).await;
        let layout = PartLayout::from_lens(&[65_536, 500]);
        let cut = Bytes::from(stored[..stored.len() - 10].to_vec());
        let body = MultipartDecryptBody::from_part_start(
            Full::new(cut),
            key,
            layout,
            0,
            0,
            plain.len() as u64,
        );
        assert!(body.collect().await.is_err());
    }

    #[test]
    fn upload_token_binds_upload() {
        let kek = SecretKey::from_bytes([3u8; 32]);
        let upload_key = DataKey::generate(&mut rand::rngs::OsRng);
        let binding = |kek_version, key, upstream_upload_id| UploadBinding {
            kek_name: "main",
            kek_version,
            bucket: "b",
            key,
            upstream_upload_id,
        };
        let id = seal_upload_id(
            &kek,
            binding(2, "k", "UP-1"),
            &upload_key,
            &mut rand::rngs::OsRng,
        );
        let parsed = parse_upload_id(&id).unwrap();
        assert_eq!(parsed.upstream, "UP-1");
        let (name, version, wrapped) = parsed.token.unwrap();
        assert_eq!((name, version), ("main", 2));
        let opened = open_upload_token(&kek, binding(version, "k", "UP-1"), wrapped).unwrap();
        assert_eq!(opened.commitment(), upload_key.commitment());
        assert!(open_upload_token(&kek, binding(version, "k", "UP-2"), wrapped).is_err());
        assert!(open_upload_token(&kek, binding(version, "other", "UP-1"), wrapped).is_err());
        assert!(open_upload_token(&kek, binding(3, "k", "UP-1"), wrapped).is_err());
        assert_eq!(parse_upload_id("plain-id").unwrap().token, None);
    }

    #[test]
    fn part_header_round_trips() {
        let header = PartHeader::new(7, 12345, &mut rand::rngs::OsRng);
        assert_eq!(PartHeader::parse(&header.to_bytes()).unwrap(), header);
        let mut bad = header.to_bytes();
        bad[0] = b'X';
        assert!(PartHeader::parse(&bad).is_err());
    }
}
