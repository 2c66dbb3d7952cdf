//! Golden vectors in tests/vectors/crypto-v1.txt, written by a separate
//! Python implementation of the format (tests/vectors/generate_crypto_v1.py).
//!
//! s3seal seals segments with ring's AES-256-GCM. The vectors are also
//! checked against the aes-gcm crate, and each implementation opens what
//! the other sealed.

use std::collections::HashMap;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::Aes256Gcm;
use sha2::{Digest, Sha256};

use super::*;
use crate::crypto::envelope::{wrap_aad, wrap_with_nonce};
use crate::crypto::layout::segment_nonce;
use crate::crypto::segment::derive_segment_key;
use crate::crypto::{unwrap_data_key, Envelope, KekRef, ObjectId, SEGMENT_LEN};
use crate::keys::SecretKey;

const MANIFEST: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/crypto-v1.txt"
));

/// Ciphertext files named by the manifest's `ciphertext-file` entries.
const FILES: [(&str, &[u8]); 2] = [
    (
        "crypto-v1-one-segment.bin",
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/crypto-v1-one-segment.bin"
        )),
    ),
    (
        "crypto-v1-two-segments.bin",
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/crypto-v1-two-segments.bin"
        )),
    ),
];

/// The manifest's global entries and its `[name]` sections, in order.
struct Manifest {
    global: HashMap<String, String>,
    sections: Vec<(String, HashMap<String, String>)>,
}

fn parse_manifest() -> Manifest {
    let mut manifest = Manifest {
        global: HashMap::new(),
        sections: Vec::new(),
    };
    for line in MANIFEST.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            manifest.sections.push((name.to_owned(), HashMap::new()));
            continue;
        }
        let (key, value) = line
            .split_once(" = ")
            .unwrap_or_else(|| panic!("invalid manifest line {line:?}"));
        let entries = match manifest.sections.last_mut() {
            Some((_, entries)) => entries,
            None => &mut manifest.global,
        };
        entries.insert(key.to_owned(), value.to_owned());
    }
    manifest
}

fn entry<'a>(entries: &'a HashMap<String, String>, key: &str) -> &'a str {
    entries
        .get(key)
        .unwrap_or_else(|| panic!("manifest entry {key} is missing"))
}

fn hex_entry(entries: &HashMap<String, String>, key: &str) -> Vec<u8> {
    hex::decode(entry(entries, key)).unwrap_or_else(|error| panic!("manifest entry {key}: {error}"))
}

fn key_entry(entries: &HashMap<String, String>, key: &str) -> [u8; 32] {
    hex_entry(entries, key).try_into().expect("32-byte key")
}

#[test]
fn vector_envelope() {
    let manifest = parse_manifest();
    let global = &manifest.global;
    let data_key = DataKey::from_bytes(key_entry(global, "data-key"));
    let kek = SecretKey::from_bytes(key_entry(global, "kek"));
    let object = ObjectId {
        bucket: entry(global, "bucket"),
        key: entry(global, "object-key"),
    };
    let kek_ref = KekRef {
        secret: &kek,
        name: entry(global, "kek-name"),
        version: entry(global, "kek-version").parse().unwrap(),
    };

    assert_eq!(
        derive_segment_key(&data_key).to_vec(),
        hex_entry(global, "segment-key")
    );
    assert_eq!(
        wrap_aad(1, kek_ref.name, kek_ref.version, object),
        hex_entry(global, "wrap-aad")
    );

    let nonce = hex_entry(global, "wrap-nonce")
        .try_into()
        .expect("12-byte nonce");
    let envelope = wrap_with_nonce(kek_ref, &data_key, object, nonce);
    for (name, value) in envelope.to_fields() {
        assert_eq!(
            value,
            entry(global, &format!("envelope.{name}")),
            "envelope field {name}"
        );
    }

    let stored =
        Envelope::from_fields(|name| global.get(&format!("envelope.{name}")).map(String::as_str))
            .unwrap();
    assert_eq!(stored, envelope);
    let unwrapped = unwrap_data_key(&kek, &stored, object.bucket, object.key).unwrap();
    assert_eq!(unwrapped, data_key);
}

#[test]
fn vector_ciphertexts() {
    let manifest = parse_manifest();
    let data_key = DataKey::from_bytes(key_entry(&manifest.global, "data-key"));
    let names: Vec<&str> = manifest
        .sections
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        names,
        ["empty", "one-byte", "one-segment", "two-segments", "part-2"]
    );

    for (name, entries) in &manifest.sections {
        let part_number: u32 = entry(entries, "part").parse().unwrap();
        let plaintext = pattern(entry(entries, "plaintext-len").parse().unwrap());
        let stored = match entries.get("ciphertext-file") {
            Some(file) => {
                let (_, bytes) = FILES
                    .iter()
                    .find(|(file_name, _)| file_name == file)
                    .unwrap_or_else(|| panic!("{name}: {file} is not included"));
                bytes.to_vec()
            }
            None => hex_entry(entries, "ciphertext-hex"),
        };
        assert_eq!(
            stored.len().to_string(),
            entry(entries, "ciphertext-len"),
            "{name}"
        );
        assert_eq!(
            hex::encode(Sha256::digest(&stored)),
            entry(entries, "ciphertext-sha256"),
            "{name}: stored ciphertext digest"
        );

        let ciphertext = encrypt(&plaintext, &data_key, part_number, 4096);
        assert!(
            ciphertext == stored,
            "{name}: encryption differs from the vector"
        );

        let decrypted =
            decrypt_full(&stored, &data_key, part_number, plaintext.len() as u64).unwrap();
        assert!(
            decrypted == plaintext,
            "{name}: decryption differs from the plaintext"
        );
    }
}

/// Returns the stored ciphertext of a manifest section, from its file or
/// its hex entry.
fn stored_ciphertext(name: &str, entries: &HashMap<String, String>) -> Vec<u8> {
    match entries.get("ciphertext-file") {
        Some(file) => {
            let (_, bytes) = FILES
                .iter()
                .find(|(file_name, _)| file_name == file)
                .unwrap_or_else(|| panic!("{name}: {file} is not included"));
            bytes.to_vec()
        }
        None => hex_entry(entries, "ciphertext-hex"),
    }
}

/// Seals `plaintext` in the segment format with the aes-gcm crate, one
/// segment at a time, independently of `SegmentCipher`.
fn seal_with_aes_gcm(plaintext: &[u8], data_key: &DataKey, part_number: u32) -> Vec<u8> {
    let cipher = Aes256Gcm::new_from_slice(derive_segment_key(data_key).as_slice()).unwrap();
    let segments: Vec<&[u8]> = if plaintext.is_empty() {
        vec![&[]]
    } else {
        plaintext.chunks(SEGMENT_LEN as usize).collect()
    };
    let mut sealed = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        let is_final = index == segments.len() - 1;
        let nonce = segment_nonce(part_number, index as u32, is_final);
        let mut buffer = segment.to_vec();
        let tag = cipher
            .encrypt_in_place_detached(&nonce.into(), b"", &mut buffer)
            .unwrap();
        sealed.extend_from_slice(&buffer);
        sealed.extend_from_slice(&tag);
    }
    sealed
}

/// Opens a segment-format ciphertext of `plaintext_len` bytes with the
/// aes-gcm crate, or returns `None` if a segment fails authentication.
fn open_with_aes_gcm(
    sealed: &[u8],
    data_key: &DataKey,
    part_number: u32,
    plaintext_len: usize,
) -> Option<Vec<u8>> {
    let cipher = Aes256Gcm::new_from_slice(derive_segment_key(data_key).as_slice()).unwrap();
    let sealed_segment_len = SEGMENT_LEN as usize + 16;
    let segment_count = plaintext_len.div_ceil(SEGMENT_LEN as usize).max(1);
    let mut plaintext = Vec::new();
    for (index, segment) in sealed.chunks(sealed_segment_len).enumerate() {
        let is_final = index == segment_count - 1;
        let nonce = segment_nonce(part_number, index as u32, is_final);
        let (ciphertext, tag) = segment.split_at(segment.len().checked_sub(16)?);
        let mut buffer = ciphertext.to_vec();
        cipher
            .decrypt_in_place_detached(&nonce.into(), b"", &mut buffer, tag.into())
            .ok()?;
        plaintext.extend_from_slice(&buffer);
    }
    Some(plaintext)
}

#[test]
fn vector_ciphertexts_across_implementations() {
    let manifest = parse_manifest();
    let data_key = DataKey::from_bytes(key_entry(&manifest.global, "data-key"));
    assert_eq!(manifest.sections.len(), 5);

    for (name, entries) in &manifest.sections {
        let part_number: u32 = entry(entries, "part").parse().unwrap();
        let plaintext = pattern(entry(entries, "plaintext-len").parse().unwrap());
        let stored = stored_ciphertext(name, entries);

        let sealed_by_aes_gcm = seal_with_aes_gcm(&plaintext, &data_key, part_number);
        assert!(
            sealed_by_aes_gcm == stored,
            "{name}: aes-gcm sealing differs from the vector"
        );
        let opened_by_aes_gcm = open_with_aes_gcm(&stored, &data_key, part_number, plaintext.len());
        assert!(
            opened_by_aes_gcm.as_deref() == Some(plaintext.as_slice()),
            "{name}: aes-gcm fails to open the vector"
        );

        let sealed_by_ring = encrypt(&plaintext, &data_key, part_number, 4096);
        let opened_ring_by_aes_gcm =
            open_with_aes_gcm(&sealed_by_ring, &data_key, part_number, plaintext.len());
        assert!(
            opened_ring_by_aes_gcm.as_deref() == Some(plaintext.as_slice()),
            "{name}: aes-gcm fails to open what SegmentCipher sealed"
        );

        let opened_aes_gcm_by_ring = decrypt_full(
            &sealed_by_aes_gcm,
            &data_key,
            part_number,
            plaintext.len() as u64,
        )
        .unwrap();
        assert!(
            opened_aes_gcm_by_ring == plaintext,
            "{name}: SegmentCipher fails to open what aes-gcm sealed"
        );
    }
}

#[test]
fn aes_gcm_rejects_altered_segment_sealed_by_ring() {
    let data_key = data_key(44);
    let plaintext = pattern(SEGMENT_LEN as usize + 100);
    let mut sealed = encrypt(&plaintext, &data_key, 3, 4096);
    sealed[SEGMENT_LEN as usize + 20] ^= 1;
    assert_eq!(
        open_with_aes_gcm(&sealed, &data_key, 3, plaintext.len()),
        None
    );
}
