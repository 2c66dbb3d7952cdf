use proptest::prelude::*;

use super::*;
use crate::crypto::{ciphertext_len, plaintext_len, segment_window, suffix_cover_len, SEGMENT_LEN};

const S: usize = SEGMENT_LEN as usize;

const BOUNDARY_SIZES: [usize; 11] = [
    0,
    1,
    15,
    16,
    17,
    S - 1,
    S,
    S + 1,
    2 * S - 1,
    2 * S,
    2 * S + 1,
];

#[test]
fn round_trip_boundary_sizes() {
    let key = data_key(1);
    for size in BOUNDARY_SIZES {
        let plaintext = pattern(size);
        for frame_len in [1, 7, 100 * 1024] {
            let ciphertext = encrypt(&plaintext, &key, 0, frame_len);
            let decrypted = decrypt_full(&ciphertext, &key, 0, size as u64).unwrap();
            assert!(
                decrypted == plaintext,
                "size {size}, frame length {frame_len}"
            );
        }
    }
}

#[test]
fn round_trip_multi_mebibyte() {
    let key = data_key(2);
    let size = 3 * 1024 * 1024 + 12_345;
    let plaintext = pattern(size);
    for frame_len in [1, 7, 100 * 1024] {
        let ciphertext = encrypt(&plaintext, &key, 0, frame_len);
        let decrypted = decrypt_full(&ciphertext, &key, 0, size as u64).unwrap();
        assert!(decrypted == plaintext, "frame length {frame_len}");
    }
}

#[test]
fn round_trip_decrypt_frame_sizes() {
    let key = data_key(3);
    let plaintext = pattern(2 * S + 1);
    let ciphertext = encrypt(&plaintext, &key, 0, 4096);
    let window = segment_window(plaintext.len() as u64, 0, plaintext.len() as u64 - 1).unwrap();
    for frame_len in [1, 7, 16, S + 16, S + 17, 100 * 1024, ciphertext.len()] {
        let decrypted = decrypt_window(
            &ciphertext,
            &key,
            0,
            plaintext.len() as u64,
            &window,
            frame_len,
        );
        assert!(decrypted.unwrap() == plaintext, "frame length {frame_len}");
    }
}

#[test]
fn round_trip_multipart_parts() {
    let key = data_key(4);
    for part_number in [1, 2, 10_000] {
        let plaintext = pattern(S + 3 * part_number as usize);
        let ciphertext = encrypt(&plaintext, &key, part_number, 1000);
        let decrypted = decrypt_full(&ciphertext, &key, part_number, plaintext.len() as u64);
        assert!(decrypted.unwrap() == plaintext, "part {part_number}");
    }
}

#[test]
fn encryption_is_deterministic_per_part() {
    let key = data_key(5);
    let plaintext = pattern(100);
    assert_eq!(
        encrypt(&plaintext, &key, 1, 7),
        encrypt(&plaintext, &key, 1, 100)
    );
    assert_ne!(
        encrypt(&plaintext, &key, 1, 7),
        encrypt(&plaintext, &key, 2, 7)
    );
}

#[test]
fn window_stops_reading_source() {
    // The source fails after the ciphertext, so reading past the window's
    // last segment would surface the error.
    let key = data_key(6);
    let plaintext = pattern(3 * S);
    let ciphertext = encrypt(&plaintext, &key, 0, 4096);
    let window = segment_window(3 * S as u64, 10, S as u64 + 5).unwrap();
    let sealed = &ciphertext[..window.ciphertext_len() as usize];

    let mut items = frames(sealed, 1000);
    items.push(Err(io::Error::other("read past the window")));
    let body = DecryptBody::new(source(items), &key, 0, 3 * S as u64, &window).unwrap();
    let decrypted = drain(body).unwrap();
    assert!(decrypted == plaintext[10..S + 6]);
}

#[test]
fn zero_length_window_verifies_segment() {
    let key = data_key(7);
    let ciphertext = encrypt(&[], &key, 0, 1);
    assert!(decrypt_full(&ciphertext, &key, 0, 0).unwrap().is_empty());

    let mut tampered = ciphertext.clone();
    tampered[0] ^= 1;
    let drained = decrypt_full(&tampered, &key, 0, 0);
    assert!(matches!(
        drained.crypto_error(),
        CryptoError::SegmentAuthentication { segment: 0 }
    ));
}

#[test]
fn decrypt_forwards_source_error() {
    let key = data_key(8);
    let ciphertext = encrypt(&pattern(2 * S), &key, 0, 4096);
    let mut items = frames(&ciphertext[..S + 16 + 100], 1000);
    items.push(Err(io::Error::other("connection reset")));
    let body = DecryptBody::full(source(items), &key, 0, 2 * S as u64).unwrap();
    let drained = drain(body);
    assert_eq!(drained.bytes.len(), S, "only the verified first segment");
    match drained.end {
        End::Failed(error) => assert_eq!(error.to_string(), "connection reset"),
        end => panic!("expected the source error, got {end:?}"),
    }
}

#[test]
fn decrypt_rejects_invalid_window() {
    let key = data_key(9);
    let total = 2 * SEGMENT_LEN;
    let valid = segment_window(total, 5, total - 1).unwrap();
    let invalid = [
        SegmentWindow {
            len: valid.len + 1,
            ..valid
        },
        SegmentWindow {
            skip_front: SEGMENT_LEN,
            len: 1,
            last_segment: 1,
            ..valid
        },
        SegmentWindow {
            first_segment: 2,
            last_segment: 2,
            skip_front: 0,
            len: 0,
            ..valid
        },
        SegmentWindow {
            last_segment: 0,
            ..valid
        },
        SegmentWindow {
            first_segment: u64::MAX,
            ..valid
        },
    ];
    for window in invalid {
        let result = DecryptBody::new(source(Vec::new()), &key, 0, total, &window);
        assert!(
            matches!(result, Err(CryptoError::InvalidRange { .. })),
            "{window:?} was accepted"
        );
    }
}

#[test]
fn suffix_request_with_discard() {
    let key = data_key(10);
    let total = 3 * S + 500;
    let plaintext = pattern(total);
    let ciphertext = encrypt(&plaintext, &key, 0, 4096);

    for suffix in [1, 499, 500, 501, S, S + 500, total] {
        let cover = suffix_cover_len(suffix as u64).min(ciphertext.len() as u64);
        let response_start = ciphertext.len() as u64 - cover;
        let response = &ciphertext[response_start as usize..];

        let total_from_length = plaintext_len(ciphertext.len() as u64).unwrap();
        let window = segment_window(
            total_from_length,
            total_from_length - suffix as u64,
            total_from_length - 1,
        )
        .unwrap();
        let body = DecryptBody::new(
            source(frames(response, 777)),
            &key,
            0,
            total_from_length,
            &window,
        )
        .unwrap()
        .discard_leading(window.ciphertext_start - response_start);

        let decrypted = drain(body).unwrap();
        assert!(decrypted == plaintext[total - suffix..], "suffix {suffix}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip_random_sizes(
        size in 0..(4 * S),
        encrypt_frame in 1..(150 * 1024usize),
        decrypt_frame in 1..(150 * 1024usize),
        part_number in 0..=10_000u32,
    ) {
        let key = data_key(11);
        let plaintext = pattern(size);
        let ciphertext = encrypt(&plaintext, &key, part_number, encrypt_frame);
        prop_assert_eq!(ciphertext.len() as u64, ciphertext_len(size as u64));

        let window = SegmentWindow {
            first_segment: 0,
            last_segment: if size == 0 { 0 } else { (size as u64 - 1) / SEGMENT_LEN },
            ciphertext_start: 0,
            ciphertext_end_inclusive: ciphertext.len() as u64 - 1,
            skip_front: 0,
            len: size as u64,
        };
        let decrypted = decrypt_window(&ciphertext, &key, part_number, size as u64, &window, decrypt_frame);
        prop_assert!(decrypted.unwrap() == plaintext);
    }

    #[test]
    fn window_equals_plaintext_slice(
        size in 1..(4 * S),
        a in any::<usize>(),
        b in any::<usize>(),
        frame_len in 1..(150 * 1024usize),
    ) {
        let key = data_key(12);
        let plaintext = pattern(size);
        let ciphertext = encrypt(&plaintext, &key, 0, 65_000);

        let (start, end) = (a % size, b % size);
        let (start, end) = (start.min(end), start.max(end));
        let window = segment_window(size as u64, start as u64, end as u64).unwrap();
        let range = window.ciphertext_start as usize..=window.ciphertext_end_inclusive as usize;

        let decrypted = decrypt_window(&ciphertext[range], &key, 0, size as u64, &window, frame_len);
        prop_assert!(decrypted.unwrap() == plaintext[start..=end]);
    }

    #[test]
    fn suffix_cover_serves_suffix(size in 1..(4 * S), suffix in 1..(2 * S)) {
        let key = data_key(13);
        let plaintext = pattern(size);
        let ciphertext = encrypt(&plaintext, &key, 0, 65_000);
        let suffix = suffix.min(size);

        let cover = suffix_cover_len(suffix as u64).min(ciphertext.len() as u64);
        let response_start = ciphertext.len() as u64 - cover;
        let total = plaintext_len(ciphertext.len() as u64).unwrap();
        let window = segment_window(total, total - suffix as u64, total - 1).unwrap();
        prop_assert!(window.ciphertext_start >= response_start);

        let body = DecryptBody::new(
            source(frames(&ciphertext[response_start as usize..], 3000)),
            &key,
            0,
            total,
            &window,
        )
        .unwrap()
        .discard_leading(window.ciphertext_start - response_start);
        prop_assert!(drain(body).unwrap() == plaintext[size - suffix..]);
    }
}
