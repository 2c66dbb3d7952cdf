//! Wrapping of data keys under a key-encryption key (KEK) and the envelope
//! that stores the result in object metadata.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{CryptoError, DataKey, FORMAT_VERSION};
use crate::keys::SecretKey;

const WRAP_TAG: &[u8] = b"s3seal/v1/wrap";
const WRAP_NONCE_LEN: usize = 12;

/// Length of [`Envelope::wrapped_key`]: nonce, encrypted data key and tag.
pub const WRAPPED_KEY_LEN: usize = WRAP_NONCE_LEN + 32 + 16;

/// Envelope field names. The proxy stores each as the user metadata header
/// `x-amz-meta-s3seal-{name}`.
pub mod field {
    pub const FORMAT: &str = "format";
    pub const KEK: &str = "kek";
    pub const KEK_VERSION: &str = "kek-version";
    pub const WRAPPED_KEY: &str = "wrapped-key";
    pub const COMMITMENT: &str = "commitment";
}

/// A wrapped data key and what is needed to unwrap it, stored with each
/// encrypted object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub format_version: u32,
    /// Name of the KEK that wrapped the data key.
    pub kek_name: String,
    pub kek_version: u32,
    /// Wrap nonce (12 bytes), encrypted data key (32 bytes) and GCM tag
    /// (16 bytes).
    pub wrapped_key: Vec<u8>,
    /// `HKDF-SHA256(ikm = data key, info = "s3seal/v1/commitment")`, which
    /// binds the envelope to exactly one data key.
    pub commitment: [u8; 32],
}

/// One KEK version together with the name and version recorded in envelopes.
#[derive(Debug, Clone, Copy)]
pub struct KekRef<'a> {
    pub secret: &'a SecretKey,
    pub name: &'a str,
    pub version: u32,
}

/// The bucket and object key that an envelope is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectId<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
}

/// Wraps `data_key` under `kek` for the object `key` in `bucket`, with a
/// random wrap nonce.
pub fn wrap_data_key(
    kek: &SecretKey,
    kek_name: &str,
    kek_version: u32,
    data_key: &DataKey,
    bucket: &str,
    key: &str,
    rng: &mut (impl rand::RngCore + rand::CryptoRng),
) -> Envelope {
    let mut nonce = [0u8; WRAP_NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let kek = KekRef {
        secret: kek,
        name: kek_name,
        version: kek_version,
    };
    wrap_with_nonce(kek, data_key, ObjectId { bucket, key }, nonce)
}

/// Wraps with a caller-chosen nonce. Only [`wrap_data_key`] and the golden
/// vector tests call this, because reusing a nonce under one KEK breaks
/// AES-GCM.
pub(crate) fn wrap_with_nonce(
    kek: KekRef<'_>,
    data_key: &DataKey,
    object: ObjectId<'_>,
    nonce: [u8; WRAP_NONCE_LEN],
) -> Envelope {
    let aad = wrap_aad(FORMAT_VERSION, kek.name, kek.version, object);
    let cipher = Aes256Gcm::new_from_slice(kek.secret.expose()).expect("KEK is 32 bytes");
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: data_key.secret().expose(),
                aad: &aad,
            },
        )
        .expect("AES-GCM encrypts a 32-byte key");

    let mut wrapped_key = Vec::with_capacity(WRAPPED_KEY_LEN);
    wrapped_key.extend_from_slice(&nonce);
    wrapped_key.extend_from_slice(&sealed);
    Envelope {
        format_version: FORMAT_VERSION,
        kek_name: kek.name.to_owned(),
        kek_version: kek.version,
        wrapped_key,
        commitment: data_key.commitment(),
    }
}

/// Unwraps the data key of the object `key` in `bucket`. The caller selects
/// `kek` by the envelope's `kek_name` and `kek_version`.
///
/// Fails with [`CryptoError::UnwrapFailed`] if the KEK is wrong or the
/// envelope was made for another object, KEK name or version, and with
/// [`CryptoError::CommitmentMismatch`] if the unwrapped key does not match
/// the stored commitment.
pub fn unwrap_data_key(
    kek: &SecretKey,
    envelope: &Envelope,
    bucket: &str,
    key: &str,
) -> Result<DataKey, CryptoError> {
    if envelope.format_version != FORMAT_VERSION {
        return Err(CryptoError::UnknownFormatVersion(envelope.format_version));
    }
    if envelope.wrapped_key.len() != WRAPPED_KEY_LEN {
        return Err(CryptoError::UnwrapFailed);
    }

    let (nonce, sealed) = envelope.wrapped_key.split_at(WRAP_NONCE_LEN);
    let aad = wrap_aad(
        envelope.format_version,
        &envelope.kek_name,
        envelope.kek_version,
        ObjectId { bucket, key },
    );
    let cipher = Aes256Gcm::new_from_slice(kek.expose()).expect("KEK is 32 bytes");
    let key_bytes = Zeroizing::new(
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::UnwrapFailed)?,
    );
    let secret = SecretKey::from_slice(&key_bytes).ok_or(CryptoError::UnwrapFailed)?;
    let data_key = DataKey::from_secret(secret);

    let matches: bool = data_key.commitment().ct_eq(&envelope.commitment).into();
    if !matches {
        return Err(CryptoError::CommitmentMismatch);
    }
    Ok(data_key)
}

/// Re-binds an envelope to another object, for copy and rename: unwraps it
/// for `source` under `source_kek` and wraps the same data key for
/// `destination` under `destination_kek`. The ciphertext stays valid.
pub fn rewrap_data_key(
    envelope: &Envelope,
    source_kek: &SecretKey,
    source: ObjectId<'_>,
    destination_kek: KekRef<'_>,
    destination: ObjectId<'_>,
    rng: &mut (impl rand::RngCore + rand::CryptoRng),
) -> Result<Envelope, CryptoError> {
    let data_key = unwrap_data_key(source_kek, envelope, source.bucket, source.key)?;
    Ok(wrap_data_key(
        destination_kek.secret,
        destination_kek.name,
        destination_kek.version,
        &data_key,
        destination.bucket,
        destination.key,
        rng,
    ))
}

/// Builds the wrap associated data: the ASCII tag `s3seal/v1/wrap`, then the
/// format version, KEK name, KEK version, bucket and object key, each as a
/// u32 big-endian length followed by its bytes. The two versions are 4-byte
/// big-endian integers.
pub(crate) fn wrap_aad(
    format_version: u32,
    kek_name: &str,
    kek_version: u32,
    object: ObjectId<'_>,
) -> Vec<u8> {
    let fields: [&[u8]; 5] = [
        &format_version.to_be_bytes(),
        kek_name.as_bytes(),
        &kek_version.to_be_bytes(),
        object.bucket.as_bytes(),
        object.key.as_bytes(),
    ];
    let mut aad =
        Vec::with_capacity(WRAP_TAG.len() + fields.iter().map(|f| 4 + f.len()).sum::<usize>());
    aad.extend_from_slice(WRAP_TAG);
    for field in fields {
        let len =
            u32::try_from(field.len()).expect("bucket, object key and KEK name are below 4 GiB");
        aad.extend_from_slice(&len.to_be_bytes());
        aad.extend_from_slice(field);
    }
    aad
}

impl Envelope {
    /// Returns the envelope as `(field name, value)` pairs without the
    /// metadata prefix. Binary values are standard base64 with padding.
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            (field::FORMAT, self.format_version.to_string()),
            (field::KEK, self.kek_name.clone()),
            (field::KEK_VERSION, self.kek_version.to_string()),
            (field::WRAPPED_KEY, BASE64.encode(&self.wrapped_key)),
            (field::COMMITMENT, BASE64.encode(self.commitment)),
        ]
    }

    /// Parses an envelope from its fields. `get` looks a field up by its name
    /// without the metadata prefix.
    ///
    /// The format version is checked first, so an object written by a newer
    /// format fails with [`CryptoError::UnknownFormatVersion`] even if its
    /// other fields differ.
    pub fn from_fields<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Envelope, CryptoError> {
        let required =
            |name: &'static str| get(name).ok_or(CryptoError::MissingEnvelopeField { field: name });

        let format_version = parse_u32(field::FORMAT, required(field::FORMAT)?)?;
        if format_version != FORMAT_VERSION {
            return Err(CryptoError::UnknownFormatVersion(format_version));
        }

        let kek_name = required(field::KEK)?;
        if kek_name.is_empty() {
            return Err(malformed(field::KEK, "empty KEK name".to_owned()));
        }
        let kek_version = parse_u32(field::KEK_VERSION, required(field::KEK_VERSION)?)?;
        let wrapped_key = decode_base64(
            field::WRAPPED_KEY,
            required(field::WRAPPED_KEY)?,
            WRAPPED_KEY_LEN,
        )?;
        let commitment = decode_base64(field::COMMITMENT, required(field::COMMITMENT)?, 32)?;

        Ok(Envelope {
            format_version,
            kek_name: kek_name.to_owned(),
            kek_version,
            wrapped_key,
            commitment: commitment
                .try_into()
                .expect("length checked by decode_base64"),
        })
    }
}

fn malformed(field: &'static str, reason: String) -> CryptoError {
    CryptoError::MalformedEnvelopeField { field, reason }
}

fn parse_u32(field: &'static str, value: &str) -> Result<u32, CryptoError> {
    // u32::from_str accepts a leading '+', which no writer produces.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(
            field,
            format!("expected a decimal integer, got {value:?}"),
        ));
    }
    value
        .parse()
        .map_err(|_| malformed(field, format!("{value:?} is out of range for a u32")))
}

fn decode_base64(
    field: &'static str,
    value: &str,
    expected_len: usize,
) -> Result<Vec<u8>, CryptoError> {
    let bytes = BASE64
        .decode(value)
        .map_err(|error| malformed(field, format!("invalid base64: {error}")))?;
    if bytes.len() != expected_len {
        return Err(malformed(
            field,
            format!("expected {expected_len} bytes, got {}", bytes.len()),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;
    use std::collections::HashMap;

    const BUCKET: &str = "photos";
    const KEY: &str = "2024/cat.jpg";

    fn kek(version: u8) -> SecretKey {
        SecretKey::from_bytes([version; 32])
    }

    fn wrapped() -> (DataKey, Envelope) {
        let data_key = DataKey::generate(&mut OsRng);
        let envelope = wrap_data_key(&kek(1), "main", 1, &data_key, BUCKET, KEY, &mut OsRng);
        (data_key, envelope)
    }

    fn assert_unwrap_fails(envelope: &Envelope, kek: &SecretKey, bucket: &str, key: &str) {
        let result = unwrap_data_key(kek, envelope, bucket, key);
        assert!(
            matches!(result, Err(CryptoError::UnwrapFailed)),
            "expected UnwrapFailed, got {result:?}"
        );
    }

    #[test]
    fn wrap_round_trip() {
        let (data_key, envelope) = wrapped();
        assert_eq!(envelope.format_version, 1);
        assert_eq!(envelope.wrapped_key.len(), WRAPPED_KEY_LEN);
        let unwrapped = unwrap_data_key(&kek(1), &envelope, BUCKET, KEY).unwrap();
        assert_eq!(unwrapped, data_key);
    }

    #[test]
    fn wrap_uses_fresh_nonces() {
        let data_key = DataKey::generate(&mut OsRng);
        let first = wrap_data_key(&kek(1), "main", 1, &data_key, BUCKET, KEY, &mut OsRng);
        let second = wrap_data_key(&kek(1), "main", 1, &data_key, BUCKET, KEY, &mut OsRng);
        assert_ne!(first.wrapped_key, second.wrapped_key);
        assert_eq!(first.commitment, second.commitment);
    }

    #[test]
    fn unwrap_wrong_bucket() {
        let (_, envelope) = wrapped();
        assert_unwrap_fails(&envelope, &kek(1), "photos2", KEY);
    }

    #[test]
    fn unwrap_wrong_object_key() {
        let (_, envelope) = wrapped();
        assert_unwrap_fails(&envelope, &kek(1), BUCKET, "2024/dog.jpg");
    }

    #[test]
    fn unwrap_length_prefixes_prevent_shifting() {
        // Without length prefixes, ("ab", "c") and ("a", "bc") would bind
        // the same associated data.
        let data_key = DataKey::generate(&mut OsRng);
        let envelope = wrap_data_key(&kek(1), "main", 1, &data_key, "ab", "c", &mut OsRng);
        assert_unwrap_fails(&envelope, &kek(1), "a", "bc");
    }

    #[test]
    fn unwrap_wrong_kek_secret() {
        let (_, envelope) = wrapped();
        assert_unwrap_fails(&envelope, &kek(2), BUCKET, KEY);
    }

    #[test]
    fn unwrap_wrong_kek_version() {
        let (_, mut envelope) = wrapped();
        envelope.kek_version = 2;
        assert_unwrap_fails(&envelope, &kek(1), BUCKET, KEY);
    }

    #[test]
    fn unwrap_wrong_kek_name() {
        let (_, mut envelope) = wrapped();
        envelope.kek_name = "backup".to_owned();
        assert_unwrap_fails(&envelope, &kek(1), BUCKET, KEY);
    }

    #[test]
    fn unwrap_tampered_wrapped_key() {
        let (_, envelope) = wrapped();
        for index in [0, 12, 43, WRAPPED_KEY_LEN - 1] {
            let mut tampered = envelope.clone();
            tampered.wrapped_key[index] ^= 0x01;
            assert_unwrap_fails(&tampered, &kek(1), BUCKET, KEY);
        }
        let mut short = envelope.clone();
        short.wrapped_key.pop();
        assert_unwrap_fails(&short, &kek(1), BUCKET, KEY);
    }

    #[test]
    fn unwrap_tampered_commitment() {
        let (_, mut envelope) = wrapped();
        envelope.commitment[31] ^= 0x80;
        let result = unwrap_data_key(&kek(1), &envelope, BUCKET, KEY);
        assert!(
            matches!(result, Err(CryptoError::CommitmentMismatch)),
            "{result:?}"
        );
    }

    #[test]
    fn unwrap_unknown_format_version() {
        let (_, mut envelope) = wrapped();
        envelope.format_version = 2;
        let result = unwrap_data_key(&kek(1), &envelope, BUCKET, KEY);
        assert!(
            matches!(result, Err(CryptoError::UnknownFormatVersion(2))),
            "{result:?}"
        );
    }

    #[test]
    fn rewrap_moves_binding() {
        let (data_key, envelope) = wrapped();
        let new_kek = kek(7);
        let destination = ObjectId {
            bucket: "archive",
            key: "cat.jpg",
        };
        let rewrapped = rewrap_data_key(
            &envelope,
            &kek(1),
            ObjectId {
                bucket: BUCKET,
                key: KEY,
            },
            KekRef {
                secret: &new_kek,
                name: "archive-kek",
                version: 3,
            },
            destination,
            &mut OsRng,
        )
        .unwrap();

        assert_eq!(rewrapped.kek_name, "archive-kek");
        assert_eq!(rewrapped.kek_version, 3);
        assert_eq!(rewrapped.commitment, envelope.commitment);
        let unwrapped = unwrap_data_key(&new_kek, &rewrapped, "archive", "cat.jpg").unwrap();
        assert_eq!(unwrapped, data_key);
        assert_unwrap_fails(&rewrapped, &new_kek, BUCKET, KEY);
    }

    #[test]
    fn rewrap_rejects_wrong_source() {
        let (_, envelope) = wrapped();
        let new_kek = kek(7);
        let result = rewrap_data_key(
            &envelope,
            &kek(1),
            ObjectId {
                bucket: BUCKET,
                key: "other",
            },
            KekRef {
                secret: &new_kek,
                name: "main",
                version: 2,
            },
            ObjectId {
                bucket: BUCKET,
                key: KEY,
            },
            &mut OsRng,
        );
        assert!(
            matches!(result, Err(CryptoError::UnwrapFailed)),
            "{result:?}"
        );
    }

    fn field_map(envelope: &Envelope) -> HashMap<&'static str, String> {
        envelope.to_fields().into_iter().collect()
    }

    fn parse(fields: &HashMap<&'static str, String>) -> Result<Envelope, CryptoError> {
        Envelope::from_fields(|name| fields.get(name).map(String::as_str))
    }

    #[test]
    fn fields_round_trip() {
        let (_, envelope) = wrapped();
        let fields = field_map(&envelope);
        let names: Vec<_> = envelope
            .to_fields()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            names,
            ["format", "kek", "kek-version", "wrapped-key", "commitment"]
        );
        assert_eq!(fields["format"], "1");
        assert_eq!(parse(&fields).unwrap(), envelope);
    }

    #[test]
    fn fields_unknown_format() {
        let (_, envelope) = wrapped();
        let mut fields = field_map(&envelope);
        fields.insert("format", "2".to_owned());
        fields.remove("commitment");
        let result = parse(&fields);
        assert!(
            matches!(result, Err(CryptoError::UnknownFormatVersion(2))),
            "{result:?}"
        );
        assert!(result.unwrap_err().to_string().contains("version 2"));
    }

    #[test]
    fn fields_missing() {
        let (_, envelope) = wrapped();
        for name in ["format", "kek", "kek-version", "wrapped-key", "commitment"] {
            let mut fields = field_map(&envelope);
            fields.remove(name);
            let result = parse(&fields);
            assert!(
                matches!(result, Err(CryptoError::MissingEnvelopeField { field }) if field == name),
                "{name}: {result:?}"
            );
        }
    }

    #[test]
    fn fields_malformed() {
        let (_, envelope) = wrapped();
        let cases = [
            ("format", "one"),
            ("format", "+1"),
            ("format", ""),
            ("kek", ""),
            ("kek-version", "-1"),
            ("kek-version", "4294967296"),
            ("wrapped-key", "not base64!"),
            ("wrapped-key", "AAAA"),
            ("commitment", "AAAA"),
        ];
        for (name, value) in cases {
            let mut fields = field_map(&envelope);
            fields.insert(name, value.to_owned());
            let result = parse(&fields);
            assert!(
                matches!(result, Err(CryptoError::MalformedEnvelopeField { field, .. }) if field == name),
                "{name}={value:?}: {result:?}"
            );
        }
    }
}
