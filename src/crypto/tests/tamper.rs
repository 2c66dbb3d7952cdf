//! Each kind of ciphertext modification must end the body with an error and
//! release no plaintext of the affected segment.

use super::*;
use crate::crypto::{plaintext_len, SEALED_SEGMENT_LEN, SEGMENT_LEN};

const S: usize = SEGMENT_LEN as usize;
const SEALED: usize = SEALED_SEGMENT_LEN as usize;

/// Encrypts a three-segment plaintext, the last segment short, and returns
/// the key, the plaintext and the ciphertext.
fn sample() -> (DataKey, Vec<u8>, Vec<u8>) {
    let key = data_key(21);
    let plaintext = pattern(2 * S + 1000);
    let ciphertext = encrypt(&plaintext, &key, 0, 8192);
    (key, plaintext, ciphertext)
}

fn assert_authentication_failure(drained: &Drained, segment: u64) {
    assert!(
        matches!(drained.crypto_error(), CryptoError::SegmentAuthentication { segment: s } if *s == segment),
        "expected authentication failure of segment {segment}, got {:?}",
        drained.end
    );
}

/// Checks that the body released exactly the plaintext of the segments
/// before `segment`, and nothing of `segment` itself.
fn assert_released_before(drained: &Drained, plaintext: &[u8], segment: usize) {
    assert_eq!(drained.bytes.len(), segment * S, "released bytes");
    assert!(
        drained.bytes == plaintext[..segment * S],
        "released bytes differ from the plaintext"
    );
}

#[test]
fn tamper_flipped_ciphertext_bit() {
    let (key, plaintext, ciphertext) = sample();
    for segment in 0..3 {
        let mut tampered = ciphertext.clone();
        tampered[segment * SEALED + 10] ^= 0x04;
        let drained = decrypt_full(&tampered, &key, 0, plaintext.len() as u64);
        assert_authentication_failure(&drained, segment as u64);
        assert_released_before(&drained, &plaintext, segment);
    }
}

#[test]
fn tamper_flipped_tag_bit() {
    let (key, plaintext, ciphertext) = sample();
    let mut tampered = ciphertext.clone();
    tampered[SEALED + S + 3] ^= 0x80;
    let drained = decrypt_full(&tampered, &key, 0, plaintext.len() as u64);
    assert_authentication_failure(&drained, 1);
    assert_released_before(&drained, &plaintext, 1);
}

#[test]
fn tamper_truncated_at_segment_boundary() {
    let (key, plaintext, ciphertext) = sample();
    let truncated = &ciphertext[..2 * SEALED];

    // With the stored plaintext length, the missing segment is noticed.
    let drained = decrypt_full(truncated, &key, 0, plaintext.len() as u64);
    assert!(matches!(
        drained.crypto_error(),
        CryptoError::UnexpectedEnd { segment: 2 }
    ));
    assert_released_before(&drained, &plaintext, 2);

    // With a length taken from the truncated ciphertext, segment 1 is read
    // as final, but it was sealed as non-final.
    let total = plaintext_len(truncated.len() as u64).unwrap();
    assert_eq!(total, 2 * SEGMENT_LEN);
    let drained = decrypt_full(truncated, &key, 0, total);
    assert_authentication_failure(&drained, 1);
    assert_released_before(&drained, &plaintext, 1);
}

#[test]
fn tamper_truncated_mid_segment() {
    let (key, plaintext, ciphertext) = sample();
    for cut in [
        SEALED + 1,
        SEALED + S,
        2 * SEALED + 999,
        ciphertext.len() - 1,
    ] {
        let truncated = &ciphertext[..cut];
        let drained = decrypt_full(truncated, &key, 0, plaintext.len() as u64);
        let segment = cut / SEALED;
        assert!(
            matches!(drained.crypto_error(), CryptoError::UnexpectedEnd { segment: s } if *s == segment as u64),
            "cut at {cut}: {:?}",
            drained.end
        );
        assert_released_before(&drained, &plaintext, segment);

        // A length derived from the truncated ciphertext, where one exists,
        // fails authentication instead.
        if let Some(total) = plaintext_len(cut as u64) {
            let drained = decrypt_full(truncated, &key, 0, total);
            assert_authentication_failure(&drained, segment as u64);
        }
    }
}

#[test]
fn tamper_swapped_segments() {
    let key = data_key(22);
    let plaintext = pattern(3 * S);
    let ciphertext = encrypt(&plaintext, &key, 0, 8192);
    let mut swapped = ciphertext[SEALED..2 * SEALED].to_vec();
    swapped.extend_from_slice(&ciphertext[..SEALED]);
    swapped.extend_from_slice(&ciphertext[2 * SEALED..]);

    let drained = decrypt_full(&swapped, &key, 0, plaintext.len() as u64);
    assert_authentication_failure(&drained, 0);
    assert_released_before(&drained, &plaintext, 0);
}

#[test]
fn tamper_appended_segment() {
    let key = data_key(23);
    let plaintext = pattern(2 * S);
    let ciphertext = encrypt(&plaintext, &key, 0, 8192);
    let longer = encrypt(&pattern(3 * S), &key, 0, 8192);
    let mut appended = ciphertext.clone();
    appended.extend_from_slice(&longer[2 * SEALED..]);

    // With the stored plaintext length, the extra segment is trailing data,
    // and the final segment's plaintext is withheld.
    let drained = decrypt_full(&appended, &key, 0, plaintext.len() as u64);
    assert!(matches!(
        drained.crypto_error(),
        CryptoError::TrailingData { segment: 1 }
    ));
    assert_released_before(&drained, &plaintext, 1);

    // With a length taken from the longer ciphertext, the former final
    // segment is read as non-final.
    let total = plaintext_len(appended.len() as u64).unwrap();
    let drained = decrypt_full(&appended, &key, 0, total);
    assert_authentication_failure(&drained, 1);
}

#[test]
fn tamper_trailing_bytes_in_separate_frame() {
    let (key, plaintext, ciphertext) = sample();
    let mut items = frames(&ciphertext, SEALED);
    items.push(Ok(Frame::data(Bytes::from_static(b"x"))));
    let body = DecryptBody::full(source(items), &key, 0, plaintext.len() as u64).unwrap();
    let drained = drain(body);
    assert!(matches!(
        drained.crypto_error(),
        CryptoError::TrailingData { segment: 2 }
    ));
    assert_released_before(&drained, &plaintext, 2);
}

#[test]
fn tamper_trailing_bytes_in_last_frame() {
    let (key, plaintext, mut ciphertext) = sample();
    ciphertext.push(b'x');
    let body = DecryptBody::full(
        source(frames(&ciphertext, ciphertext.len())),
        &key,
        0,
        plaintext.len() as u64,
    )
    .unwrap();
    let drained = drain(body);
    assert!(matches!(
        drained.crypto_error(),
        CryptoError::TrailingData { segment: 2 }
    ));
    assert_released_before(&drained, &plaintext, 2);
}

#[test]
fn tamper_other_object_data_key() {
    let (_, plaintext, ciphertext) = sample();
    let drained = decrypt_full(&ciphertext, &data_key(99), 0, plaintext.len() as u64);
    assert_authentication_failure(&drained, 0);
    assert!(drained.bytes.is_empty());
}

#[test]
fn tamper_part_read_as_other_part() {
    let key = data_key(24);
    let plaintext = pattern(S + 10);
    let part_one = encrypt(&plaintext, &key, 1, 8192);
    let drained = decrypt_full(&part_one, &key, 2, plaintext.len() as u64);
    assert_authentication_failure(&drained, 0);
    assert!(drained.bytes.is_empty());

    let drained = decrypt_full(&part_one, &key, 0, plaintext.len() as u64);
    assert_authentication_failure(&drained, 0);
}

#[test]
fn tamper_error_messages_name_segment() {
    let (key, plaintext, ciphertext) = sample();
    let mut tampered = ciphertext.clone();
    tampered[SEALED] ^= 1;
    let drained = decrypt_full(&tampered, &key, 0, plaintext.len() as u64);
    let message = drained.crypto_error().to_string();
    assert!(message.contains("segment 1"), "{message}");
}
