//! Length arithmetic of the segment format and translation of plaintext
//! byte ranges to ciphertext byte ranges.

use super::CryptoError;

/// Plaintext bytes in every segment except the last.
pub const SEGMENT_LEN: u64 = 65_536;

/// Length of the AES-GCM authentication tag that follows each segment.
pub const TAG_LEN: u64 = 16;

/// Length of a complete sealed segment: [`SEGMENT_LEN`] plus [`TAG_LEN`].
pub const SEALED_SEGMENT_LEN: u64 = SEGMENT_LEN + TAG_LEN;

/// Maximum number of segments in one part, because the segment index in the
/// nonce is a `u32`.
pub const MAX_SEGMENTS: u64 = 1 << 32;

/// Maximum plaintext length of one part (256 TiB).
pub const MAX_PLAINTEXT_LEN: u64 = MAX_SEGMENTS * SEGMENT_LEN;

/// Returns the number of segments that a plaintext of `plaintext_len` bytes is
/// cut into. An empty plaintext is one empty segment.
pub fn segment_count(plaintext_len: u64) -> u64 {
    plaintext_len.div_ceil(SEGMENT_LEN).max(1)
}

/// Returns the index of the final segment of a plaintext of `plaintext_len`
/// bytes.
pub fn final_segment_index(plaintext_len: u64) -> u64 {
    segment_count(plaintext_len) - 1
}

/// Returns the ciphertext length of a plaintext of `plaintext_len` bytes:
/// `p + 16 * max(1, ceil(p / 65536))`.
///
/// Lengths above [`MAX_PLAINTEXT_LEN`] cannot be encrypted. For those the
/// result is still the formula's value, saturated at `u64::MAX`.
pub fn ciphertext_len(plaintext_len: u64) -> u64 {
    plaintext_len.saturating_add(TAG_LEN * segment_count(plaintext_len))
}

/// Returns the plaintext length whose ciphertext is `ciphertext_len` bytes
/// long, or `None` if no plaintext encrypts to that length.
///
/// With `q = c / 65552` complete segments and `r = c % 65552` bytes left, the
/// invalid lengths are exactly these:
/// - `c = 0`, because even an empty plaintext has one tag.
/// - `r` in `1..=15`, a final segment shorter than its tag.
/// - `r = 16` with `q >= 1`, an empty final segment after full ones. The
///   format never writes it, because such a plaintext ends with a full final
///   segment instead.
/// - Any `c` whose plaintext is longer than [`MAX_PLAINTEXT_LEN`].
pub fn plaintext_len(ciphertext_len: u64) -> Option<u64> {
    let full_segments = ciphertext_len / SEALED_SEGMENT_LEN;
    let remainder = ciphertext_len % SEALED_SEGMENT_LEN;
    let plaintext = match remainder {
        0 if full_segments == 0 => return None,
        0 => full_segments * SEGMENT_LEN,
        1..=15 => return None,
        16 if full_segments > 0 => return None,
        _ => full_segments * SEGMENT_LEN + (remainder - TAG_LEN),
    };
    (plaintext <= MAX_PLAINTEXT_LEN).then_some(plaintext)
}

/// The segments and byte offsets that serve one plaintext byte range of a
/// single segment sequence (a single-part object or one part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentWindow {
    /// Index of the segment that contains the first requested byte.
    pub first_segment: u64,
    /// Index of the segment that contains the last requested byte.
    pub last_segment: u64,
    /// Ciphertext offset of the start of `first_segment`.
    pub ciphertext_start: u64,
    /// Ciphertext offset of the last byte of `last_segment`'s tag.
    pub ciphertext_end_inclusive: u64,
    /// Plaintext bytes to drop from the front of `first_segment`.
    pub skip_front: u64,
    /// Number of plaintext bytes in the range.
    pub len: u64,
}

impl SegmentWindow {
    /// Returns the number of ciphertext bytes in the window.
    pub fn ciphertext_len(&self) -> u64 {
        self.ciphertext_end_inclusive - self.ciphertext_start + 1
    }
}

/// Computes the segment window for the plaintext range
/// `start..=end_inclusive` of a sequence holding `plaintext_total` bytes.
///
/// The caller clamps the range first. A range that is empty or reaches past
/// the end fails with [`CryptoError::InvalidRange`], and so does a total above
/// [`MAX_PLAINTEXT_LEN`].
pub fn segment_window(
    plaintext_total: u64,
    start: u64,
    end_inclusive: u64,
) -> Result<SegmentWindow, CryptoError> {
    if start > end_inclusive
        || end_inclusive >= plaintext_total
        || plaintext_total > MAX_PLAINTEXT_LEN
    {
        return Err(CryptoError::InvalidRange {
            start,
            end_inclusive,
            total: plaintext_total,
        });
    }

    let first_segment = start / SEGMENT_LEN;
    let last_segment = end_inclusive / SEGMENT_LEN;
    let sealed_end = (last_segment + 1) * SEALED_SEGMENT_LEN;
    Ok(SegmentWindow {
        first_segment,
        last_segment,
        ciphertext_start: first_segment * SEALED_SEGMENT_LEN,
        ciphertext_end_inclusive: sealed_end.min(ciphertext_len(plaintext_total)) - 1,
        skip_front: start - first_segment * SEGMENT_LEN,
        len: end_inclusive - start + 1,
    })
}

/// Returns how many bytes from the end of the ciphertext always cover the
/// segments that hold the last `suffix_len` plaintext bytes, whatever the
/// object's length. Returns 0 for an empty suffix.
///
/// The first needed segment starts at most `SEGMENT_LEN - 1` bytes before the
/// suffix, so the cover is the ciphertext of `suffix_len + SEGMENT_LEN - 1`
/// plaintext bytes that end at the object's end.
///
/// To serve `bytes=-n` without knowing the object's length:
/// 1. request `bytes=-{suffix_cover_len(n)}` from the upstream;
/// 2. read `first-last/C` from its Content-Range and compute the plaintext
///    total `T = plaintext_len(C)`;
/// 3. compute `window = segment_window(T, T.saturating_sub(n), T - 1)` when
///    `T > 0`;
/// 4. discard the first `window.ciphertext_start - first` bytes of the
///    response body, then decrypt the rest with `window`, for example through
///    [`DecryptBody::discard_leading`](super::DecryptBody::discard_leading).
pub fn suffix_cover_len(suffix_len: u64) -> u64 {
    if suffix_len == 0 {
        return 0;
    }
    let covered_plaintext = suffix_len.saturating_add(SEGMENT_LEN - 1);
    ciphertext_len(covered_plaintext)
}

/// Builds the 12-byte AES-GCM nonce of segment `segment` of part `part_number`.
///
/// Layout: bytes 0..4 are the part number (big-endian), bytes 4..8 the
/// segment index (big-endian), bytes 8..11 are zero and byte 11 is 1 for the
/// final segment of the part and 0 otherwise.
pub(crate) fn segment_nonce(part_number: u32, segment: u32, is_final: bool) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[0..4].copy_from_slice(&part_number.to_be_bytes());
    nonce[4..8].copy_from_slice(&segment.to_be_bytes());
    nonce[11] = u8::from(is_final);
    nonce
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: u64 = SEGMENT_LEN;

    #[test]
    fn ciphertext_len_table() {
        let cases = [
            (0, 16),
            (1, 17),
            (15, 31),
            (16, 32),
            (17, 33),
            (S - 1, S + 15),
            (S, S + 16),
            (S + 1, S + 1 + 32),
            (2 * S - 1, 2 * S - 1 + 32),
            (2 * S, 2 * S + 32),
            (2 * S + 1, 2 * S + 1 + 48),
        ];
        for (plaintext, expected) in cases {
            assert_eq!(ciphertext_len(plaintext), expected, "plaintext {plaintext}");
            assert_eq!(
                plaintext_len(expected),
                Some(plaintext),
                "ciphertext {expected}"
            );
        }
    }

    #[test]
    fn plaintext_len_rejects_impossible_lengths() {
        let sealed = SEALED_SEGMENT_LEN;
        let mut invalid = vec![0];
        invalid.extend(1..=15);
        for full in 1..=3 {
            invalid.extend((1..=16).map(|r| full * sealed + r));
        }
        for ciphertext in invalid {
            assert_eq!(plaintext_len(ciphertext), None, "ciphertext {ciphertext}");
        }
    }

    #[test]
    fn plaintext_len_matches_exhaustive_scan() {
        // Every plaintext up to three segments, mapped forward, must be
        // exactly the set of lengths that plaintext_len accepts.
        let max_plaintext = 3 * S;
        let mut valid = vec![None; ciphertext_len(max_plaintext) as usize + 1];
        for plaintext in 0..=max_plaintext {
            valid[ciphertext_len(plaintext) as usize] = Some(plaintext);
        }
        for (ciphertext, expected) in valid.iter().enumerate() {
            assert_eq!(
                plaintext_len(ciphertext as u64),
                *expected,
                "ciphertext {ciphertext}"
            );
        }
    }

    #[test]
    fn plaintext_len_limit() {
        let max_ciphertext = ciphertext_len(MAX_PLAINTEXT_LEN);
        assert_eq!(plaintext_len(max_ciphertext), Some(MAX_PLAINTEXT_LEN));
        assert_eq!(plaintext_len(max_ciphertext + 17), None);
        assert_eq!(plaintext_len(u64::MAX), None);
    }

    #[test]
    fn nonce_layout() {
        let nonce = segment_nonce(0x0102_0304, 0x0a0b_0c0d, true);
        assert_eq!(nonce, [1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0, 1]);
        let nonce = segment_nonce(7, 0, false);
        assert_eq!(nonce, [0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn window_within_one_segment() {
        let window = segment_window(10 * S, S + 5, S + 9).unwrap();
        assert_eq!(window.first_segment, 1);
        assert_eq!(window.last_segment, 1);
        assert_eq!(window.ciphertext_start, SEALED_SEGMENT_LEN);
        assert_eq!(window.ciphertext_end_inclusive, 2 * SEALED_SEGMENT_LEN - 1);
        assert_eq!(window.skip_front, 5);
        assert_eq!(window.len, 5);
    }

    #[test]
    fn window_ending_in_short_final_segment() {
        let total = 2 * S + 100;
        let window = segment_window(total, S - 1, total - 1).unwrap();
        assert_eq!(window.first_segment, 0);
        assert_eq!(window.last_segment, 2);
        assert_eq!(window.ciphertext_start, 0);
        assert_eq!(window.ciphertext_end_inclusive, ciphertext_len(total) - 1);
        assert_eq!(window.skip_front, S - 1);
        assert_eq!(window.len, S + 101);
    }

    #[test]
    fn window_rejects_bad_ranges() {
        assert!(segment_window(0, 0, 0).is_err());
        assert!(segment_window(10, 5, 4).is_err());
        assert!(segment_window(10, 0, 10).is_err());
        assert!(segment_window(MAX_PLAINTEXT_LEN + 1, 0, 0).is_err());
    }

    #[test]
    fn suffix_cover_small_values() {
        assert_eq!(suffix_cover_len(0), 0);
        assert_eq!(suffix_cover_len(1), SEALED_SEGMENT_LEN);
        assert_eq!(suffix_cover_len(2), S + 1 + 2 * TAG_LEN);
    }

    proptest! {
        #[test]
        fn length_round_trip(plaintext in 0..=MAX_PLAINTEXT_LEN) {
            let ciphertext = ciphertext_len(plaintext);
            prop_assert_eq!(plaintext_len(ciphertext), Some(plaintext));
        }

        #[test]
        fn plaintext_len_is_exact_inverse(ciphertext in any::<u64>()) {
            if let Some(plaintext) = plaintext_len(ciphertext) {
                prop_assert_eq!(ciphertext_len(plaintext), ciphertext);
            }
        }

        #[test]
        fn small_lengths_are_inverse(ciphertext in 0..(8 * SEALED_SEGMENT_LEN)) {
            if let Some(plaintext) = plaintext_len(ciphertext) {
                prop_assert_eq!(ciphertext_len(plaintext), ciphertext);
            }
        }

        #[test]
        fn window_matches_segment_arithmetic(
            total in 1..(1u64 << 40),
            a in any::<u64>(),
            b in any::<u64>(),
        ) {
            let (start, end) = (a % total, b % total);
            let (start, end) = (start.min(end), start.max(end));
            let window = segment_window(total, start, end).unwrap();

            prop_assert_eq!(window.len, end - start + 1);
            prop_assert!(window.skip_front < SEGMENT_LEN);
            prop_assert_eq!(window.first_segment * S + window.skip_front, start);
            prop_assert!(window.last_segment <= final_segment_index(total));
            prop_assert_eq!(window.ciphertext_start % SEALED_SEGMENT_LEN, 0);
            prop_assert!(window.ciphertext_end_inclusive < ciphertext_len(total));

            // The window's ciphertext is exactly its segments, each sealed.
            let segments = window.last_segment - window.first_segment + 1;
            let last_plaintext_end = ((window.last_segment + 1) * S).min(total);
            let plaintext_in_segments = last_plaintext_end - window.first_segment * S;
            prop_assert_eq!(window.ciphertext_len(), plaintext_in_segments + segments * TAG_LEN);
        }

        #[test]
        fn suffix_cover_reaches_needed_segments(
            total in 1..(1u64 << 40),
            suffix in 1..(1u64 << 20),
        ) {
            let suffix = suffix.min(total);
            let window = segment_window(total, total - suffix, total - 1).unwrap();
            let needed_from_end = ciphertext_len(total) - window.ciphertext_start;
            prop_assert!(suffix_cover_len(suffix) >= needed_from_end);
        }
    }

    #[test]
    fn suffix_cover_is_tight() {
        // A total whose suffix starts one byte into a segment needs the most.
        for suffix in [1, 2, 100, S - 1, S, S + 1, 3 * S + 7] {
            let total = 5 * S + suffix - 1 + S; // (total - suffix) % S == S - 1
            let window = segment_window(total, total - suffix, total - 1).unwrap();
            assert_eq!(window.skip_front, S - 1, "suffix {suffix}");
            let needed_from_end = ciphertext_len(total) - window.ciphertext_start;
            assert_eq!(suffix_cover_len(suffix), needed_from_end, "suffix {suffix}");
        }
    }
}
