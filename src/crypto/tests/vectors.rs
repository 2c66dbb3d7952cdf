//! Golden vectors in tests/vectors/crypto-v1.txt, written by a separate
//! Python implementation of the format (tests/vectors/generate_crypto_v1.py).

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::*;
use crate::crypto::envelope::{wrap_aad, wrap_with_nonce};
use crate::crypto::segment::derive_segment_key;
use crate::crypto::{unwrap_data_key, Envelope, KekRef, ObjectId};
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
