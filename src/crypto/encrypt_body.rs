use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::layout::{ciphertext_len, SEGMENT_LEN};
use super::segment::{fill_segment, SegmentCipher};
use super::{BoxError, CryptoError, DataKey};

pin_project! {
    /// A body that encrypts a plaintext body of a declared length into the
    /// segment format, one sealed segment per frame.
    ///
    /// The final segment is released only after the source has ended without
    /// error, so a source that fails at its end (for example a signature or
    /// checksum check) never lets a complete ciphertext through. A source
    /// that sends more or fewer bytes than declared ends the body with
    /// [`CryptoError::PlaintextLengthMismatch`]. Source errors are passed on,
    /// and source trailers are dropped.
    ///
    /// Memory use is one segment buffer plus the source frame being consumed.
    pub struct EncryptBody<B> {
        #[pin]
        source: B,
        cipher: SegmentCipher,
        declared_len: u64,
        received: u64,
        next_segment: u64,
        // Plaintext of segment `next_segment` collected so far.
        segment: BytesMut,
        // Rest of the last source frame, not yet moved into `segment`.
        pending: Bytes,
        done: bool,
    }
}

impl<B> EncryptBody<B> {
    /// Wraps `source`, which must send exactly `declared_len` bytes, as part
    /// `part_number` (0 for a single-part object) of the object whose data
    /// key is `data_key`.
    ///
    /// Fails with [`CryptoError::PlaintextTooLarge`] above
    /// [`MAX_PLAINTEXT_LEN`](super::MAX_PLAINTEXT_LEN).
    pub fn new(
        source: B,
        declared_len: u64,
        data_key: &DataKey,
        part_number: u32,
    ) -> Result<Self, CryptoError> {
        Ok(Self {
            source,
            cipher: SegmentCipher::new(data_key, part_number, declared_len)?,
            declared_len,
            received: 0,
            next_segment: 0,
            segment: BytesMut::new(),
            pending: Bytes::new(),
            done: false,
        })
    }
}

impl<B> Body for EncryptBody<B>
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
            if *this.done {
                return Poll::Ready(None);
            }

            let is_final = *this.next_segment == this.cipher.final_segment();
            let target = if is_final {
                *this.declared_len - *this.next_segment * SEGMENT_LEN
            } else {
                SEGMENT_LEN
            };
            let target = usize::try_from(target).expect("a segment is at most 64 KiB");
            fill_segment(this.segment, this.pending, target);

            if this.segment.len() == target && !is_final {
                let sealed = seal(this.cipher, *this.next_segment, this.segment);
                *this.next_segment += 1;
                return Poll::Ready(Some(Ok(Frame::data(sealed))));
            }

            // `pending` is empty here. Either the segment is not yet full, or
            // it is the complete final segment, and then no byte follows it
            // because `received <= declared_len`.
            match ready!(this.source.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    *this.received += data.len() as u64;
                    if *this.received > *this.declared_len {
                        *this.done = true;
                        return Poll::Ready(Some(Err(length_mismatch(
                            this.declared_len,
                            this.received,
                        ))));
                    }
                    *this.pending = data;
                }
                Some(Err(error)) => {
                    *this.done = true;
                    return Poll::Ready(Some(Err(error.into())));
                }
                None => {
                    *this.done = true;
                    if *this.received != *this.declared_len {
                        return Poll::Ready(Some(Err(length_mismatch(
                            this.declared_len,
                            this.received,
                        ))));
                    }
                    let sealed = seal(this.cipher, *this.next_segment, this.segment);
                    return Poll::Ready(Some(Ok(Frame::data(sealed))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(ciphertext_len(self.declared_len))
    }
}

fn length_mismatch(declared: &u64, received: &u64) -> BoxError {
    Box::new(CryptoError::PlaintextLengthMismatch {
        declared: *declared,
        received: *received,
    })
}

/// Encrypts the collected plaintext in place, appends the tag and splits the
/// sealed segment off as a frame, leaving `segment` empty.
fn seal(cipher: &SegmentCipher, index: u64, segment: &mut BytesMut) -> Bytes {
    let tag = cipher.seal_in_place(index, segment);
    segment.extend_from_slice(&tag);
    segment.split().freeze()
}
