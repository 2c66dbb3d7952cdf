//! EncryptBody's handling of sources that misbehave or have not ended yet.

use super::*;
use crate::crypto::{ciphertext_len, MAX_PLAINTEXT_LEN, SEALED_SEGMENT_LEN, SEGMENT_LEN};

const S: usize = SEGMENT_LEN as usize;
const SEALED: usize = SEALED_SEGMENT_LEN as usize;

fn encrypt_items(items: Vec<SourceItem>, declared_len: u64) -> Drained {
    let body = EncryptBody::new(source(items), declared_len, &data_key(31), 0).unwrap();
    drain(body)
}

fn assert_length_mismatch(drained: &Drained, declared: u64) {
    assert!(
        matches!(
            drained.crypto_error(),
            CryptoError::PlaintextLengthMismatch { declared: d, .. } if *d == declared
        ),
        "expected a length mismatch, got {:?}",
        drained.end
    );
}

#[test]
fn encrypt_short_source() {
    for (sent, declared) in [(0, 1), (S - 1, S), (S, S + 1), (2 * S, 2 * S + 5)] {
        let drained = encrypt_items(frames(&pattern(sent), 1000), declared as u64);
        assert_length_mismatch(&drained, declared as u64);
        assert!((drained.bytes.len() as u64) < ciphertext_len(declared as u64));
        // Only complete non-final segments are released.
        let non_final_received = (sent / S).min((declared - 1) / S);
        assert_eq!(
            drained.bytes.len(),
            non_final_received * SEALED,
            "sent {sent}"
        );
    }
}

#[test]
fn encrypt_long_source() {
    for (sent, declared) in [(1, 0), (S + 1, S), (3 * S, 2 * S + 1)] {
        let drained = encrypt_items(frames(&pattern(sent), 1000), declared as u64);
        assert_length_mismatch(&drained, declared as u64);
        assert!((drained.bytes.len() as u64) < ciphertext_len(declared as u64));
    }
}

#[test]
fn encrypt_long_source_fails_in_same_frame() {
    // One frame that overshoots must fail before any segment of it is sent.
    let drained = encrypt_items(frames(&pattern(3 * S), 3 * S), 2 * S as u64);
    assert_length_mismatch(&drained, 2 * S as u64);
    assert!(drained.bytes.is_empty());
}

#[test]
fn encrypt_holds_final_segment_on_source_error() {
    for size in [0, 1, S, S + 1, 3 * S] {
        let mut items = frames(&pattern(size), 7000);
        items.push(Err(io::Error::other("checksum mismatch")));
        let drained = encrypt_items(items, size as u64);

        match &drained.end {
            End::Failed(error) => assert_eq!(error.to_string(), "checksum mismatch"),
            end => panic!("size {size}: expected the source error, got {end:?}"),
        }
        let full_length = ciphertext_len(size as u64) as usize;
        let final_sealed_len = full_length - (size.saturating_sub(1) / S) * SEALED;
        assert!(drained.bytes.len() < full_length, "size {size}");
        assert_eq!(
            drained.bytes.len(),
            full_length - final_sealed_len,
            "size {size}"
        );
    }
}

#[test]
fn encrypt_waits_for_source_end() {
    // All bytes have arrived but the source has not ended, so the final
    // segment stays held back.
    for size in [0, 10, S, 2 * S + 3] {
        let body = EncryptBody::new(
            stalled_source(frames(&pattern(size), 5000)),
            size as u64,
            &data_key(32),
            0,
        )
        .unwrap();
        let drained = drain(body);
        assert!(
            matches!(drained.end, End::Pending),
            "size {size}: {:?}",
            drained.end
        );
        assert_eq!(
            drained.bytes.len(),
            (size.saturating_sub(1) / S) * SEALED,
            "size {size}"
        );
    }
}

#[test]
fn encrypt_drops_source_trailers() {
    let plaintext = pattern(S + 5);
    let mut items = frames(&plaintext, 4096);
    items.insert(3, Ok(Frame::trailers(Default::default())));
    items.push(Ok(Frame::trailers(Default::default())));
    items.push(Ok(Frame::data(Bytes::new())));
    let ciphertext = encrypt_items(items, plaintext.len() as u64).unwrap();
    assert_eq!(ciphertext, encrypt(&plaintext, &data_key(31), 0, 4096));
}

#[test]
fn encrypt_frames_are_whole_segments() {
    let plaintext = pattern(2 * S + 5);
    let body = EncryptBody::new(
        source(frames(&plaintext, 999)),
        plaintext.len() as u64,
        &data_key(33),
        0,
    )
    .unwrap();
    let mut body = std::pin::pin!(body);
    let mut context = Context::from_waker(Waker::noop());
    let mut lengths = Vec::new();
    while let Poll::Ready(Some(frame)) = body.as_mut().poll_frame(&mut context) {
        lengths.push(frame.unwrap().into_data().unwrap().len());
    }
    assert_eq!(lengths, [SEALED, SEALED, 5 + 16]);
}

#[test]
fn encrypt_rejects_oversized_declared_length() {
    let result = EncryptBody::new(source(Vec::new()), MAX_PLAINTEXT_LEN + 1, &data_key(34), 0);
    assert!(matches!(result, Err(CryptoError::PlaintextTooLarge { .. })));
}
