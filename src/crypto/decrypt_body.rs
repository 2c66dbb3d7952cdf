use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::layout::{SegmentWindow, SEGMENT_LEN, TAG_LEN};
use super::segment::{fill_segment, SegmentCipher};
use super::{BoxError, CryptoError, DataKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    // The final segment verified, and its plaintext waits in
    // `held_plaintext` until the source ends without extra bytes.
    AwaitingEnd,
    Done,
}

pin_project! {
    /// A body that decrypts a ciphertext body of one segment sequence (a
    /// single-part object or one part) and yields one plaintext window.
    ///
    /// The source starts at the first byte of the window's first segment,
    /// after any bytes set by [`discard_leading`](Self::discard_leading). The
    /// body releases a segment's bytes only after its tag verified, and stops
    /// reading the source after the window's last segment. A failed tag, a
    /// source that ends early and extra bytes after the final segment end the
    /// body with a [`CryptoError`] frame instead of plaintext. A window that
    /// ends in the final segment holds back that segment's plaintext until the
    /// source has ended.
    ///
    /// For a multipart object, build one body per part, each with its own
    /// part number, part length and source, and send them one after another.
    pub struct DecryptBody<B> {
        #[pin]
        source: B,
        cipher: SegmentCipher,
        plaintext_total: u64,
        next_segment: u64,
        last_segment: u64,
        // Leading source bytes to drop before the first segment.
        discard: u64,
        // Plaintext bytes to drop from the front of the next opened segment.
        skip_front: u64,
        // Plaintext bytes of the window not yet taken out of a segment.
        remaining: u64,
        // Sealed bytes of segment `next_segment` collected so far.
        segment: BytesMut,
        // Rest of the last source frame, not yet moved into `segment`.
        pending: Bytes,
        held_plaintext: Bytes,
        state: State,
    }
}

impl<B> DecryptBody<B> {
    /// Decrypts `window` of part `part_number` (0 for a single-part object),
    /// whose plaintext is `plaintext_total` bytes long. `window` comes from
    /// [`segment_window`](super::segment_window) or is built by hand with
    /// consistent fields. Its ciphertext offsets are not read.
    ///
    /// A window of length 0 reads and verifies its first segment and yields
    /// nothing. Fails with [`CryptoError::InvalidRange`] if the window does
    /// not fit the plaintext.
    pub fn new(
        source: B,
        data_key: &DataKey,
        part_number: u32,
        plaintext_total: u64,
        window: &SegmentWindow,
    ) -> Result<Self, CryptoError> {
        let cipher = SegmentCipher::new(data_key, part_number, plaintext_total)?;

        let start = window
            .first_segment
            .checked_mul(SEGMENT_LEN)
            .and_then(|offset| offset.checked_add(window.skip_front));
        let end = start.and_then(|start| start.checked_add(window.len));
        let last_segment = match (start, end) {
            (Some(_), Some(end)) if window.len > 0 => (end - 1) / SEGMENT_LEN,
            _ => window.first_segment,
        };
        let fits = matches!(end, Some(end) if end <= plaintext_total)
            && window.skip_front < SEGMENT_LEN
            && window.first_segment <= cipher.final_segment()
            && window.last_segment == last_segment;
        if !fits {
            let start = start.unwrap_or(u64::MAX);
            return Err(CryptoError::InvalidRange {
                start,
                end_inclusive: start.saturating_add(window.len.saturating_sub(1)),
                total: plaintext_total,
            });
        }

        Ok(Self {
            source,
            cipher,
            plaintext_total,
            next_segment: window.first_segment,
            last_segment,
            discard: 0,
            skip_front: window.skip_front,
            remaining: window.len,
            segment: BytesMut::new(),
            pending: Bytes::new(),
            held_plaintext: Bytes::new(),
            state: State::Reading,
        })
    }

    /// Decrypts a whole part (or single-part object) of `plaintext_total`
    /// bytes, verifying every segment including the empty segment of an
    /// empty plaintext.
    pub fn full(
        source: B,
        data_key: &DataKey,
        part_number: u32,
        plaintext_total: u64,
    ) -> Result<Self, CryptoError> {
        let window = SegmentWindow {
            first_segment: 0,
            last_segment: if plaintext_total == 0 {
                0
            } else {
                (plaintext_total - 1) / SEGMENT_LEN
            },
            ciphertext_start: 0,
            ciphertext_end_inclusive: super::ciphertext_len(plaintext_total) - 1,
            skip_front: 0,
            len: plaintext_total,
        };
        Self::new(source, data_key, part_number, plaintext_total, &window)
    }

    /// Drops the first `len` bytes of the source before the first segment,
    /// for a source that starts before the window's first segment, such as
    /// the response to a suffix range request.
    pub fn discard_leading(mut self, len: u64) -> Self {
        self.discard = len;
        self
    }

    fn sealed_len(&self, segment: u64) -> usize {
        let plaintext_len = if segment == self.cipher.final_segment() {
            self.plaintext_total - segment * SEGMENT_LEN
        } else {
            SEGMENT_LEN
        };
        usize::try_from(plaintext_len + TAG_LEN).expect("a sealed segment is at most 64 KiB + 16")
    }
}

impl<B> Body for DecryptBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            match self.state {
                State::Done => return Poll::Ready(None),
                State::AwaitingEnd => {
                    let frame = ready!(self.as_mut().poll_await_end(cx));
                    if frame.is_some() {
                        return Poll::Ready(frame);
                    }
                }
                State::Reading => {
                    if let Some(frame) = ready!(self.as_mut().poll_read_segment(cx)) {
                        return Poll::Ready(Some(frame));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Done => SizeHint::with_exact(0),
            _ => SizeHint::with_exact(self.remaining + self.held_plaintext.len() as u64),
        }
    }
}

impl<B> DecryptBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    /// Advances the reading state by one step. Returns `Ready(Some(frame))`
    /// to emit a frame, and `Ready(None)` after a step that emits nothing
    /// and may have changed the state.
    fn poll_read_segment(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let sealed_len = self.sealed_len(self.next_segment);
        let this = self.project();

        let discard = (*this.discard).min(this.pending.len() as u64);
        this.pending.advance(discard as usize);
        *this.discard -= discard;

        if *this.discard == 0 {
            fill_segment(this.segment, this.pending, sealed_len);
        }

        if this.segment.len() == sealed_len {
            let segment = *this.next_segment;
            let plaintext = match open_segment(
                this.cipher,
                segment,
                this.segment,
                this.skip_front,
                this.remaining,
            ) {
                Ok(plaintext) => plaintext,
                Err(error) => {
                    *this.state = State::Done;
                    return Poll::Ready(Some(Err(Box::new(error))));
                }
            };

            if segment == this.cipher.final_segment() {
                if !this.pending.is_empty() {
                    *this.state = State::Done;
                    return Poll::Ready(Some(Err(Box::new(CryptoError::TrailingData { segment }))));
                }
                *this.held_plaintext = plaintext;
                *this.state = State::AwaitingEnd;
                return Poll::Ready(None);
            }

            if segment == *this.last_segment {
                *this.state = State::Done;
            } else {
                *this.next_segment += 1;
            }
            if plaintext.is_empty() {
                return Poll::Ready(None);
            }
            return Poll::Ready(Some(Ok(Frame::data(plaintext))));
        }

        // `pending` is empty here, because the segment is not yet complete.
        match ready!(this.source.poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    *this.pending = data;
                }
                Poll::Ready(None)
            }
            Some(Err(error)) => {
                *this.state = State::Done;
                Poll::Ready(Some(Err(error.into())))
            }
            None => {
                *this.state = State::Done;
                let error = CryptoError::UnexpectedEnd {
                    segment: *this.next_segment,
                };
                Poll::Ready(Some(Err(Box::new(error))))
            }
        }
    }

    /// Waits for the source to end after the final segment, then emits the
    /// held plaintext. Returns `Ready(None)` after a step that emits nothing.
    fn poll_await_end(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let segment = this.cipher.final_segment();
        match ready!(this.source.poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => {
                    *this.state = State::Done;
                    *this.held_plaintext = Bytes::new();
                    Poll::Ready(Some(Err(Box::new(CryptoError::TrailingData { segment }))))
                }
                _ => Poll::Ready(None),
            },
            Some(Err(error)) => {
                *this.state = State::Done;
                *this.held_plaintext = Bytes::new();
                Poll::Ready(Some(Err(error.into())))
            }
            None => {
                *this.state = State::Done;
                let plaintext = std::mem::take(this.held_plaintext);
                if plaintext.is_empty() {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Ok(Frame::data(plaintext))))
                }
            }
        }
    }
}

/// Verifies and decrypts the sealed segment in `segment`, then splits off the
/// part of its plaintext that lies in the window, leaving `segment` empty.
fn open_segment(
    cipher: &SegmentCipher,
    index: u64,
    segment: &mut BytesMut,
    skip_front: &mut u64,
    remaining: &mut u64,
) -> Result<Bytes, CryptoError> {
    let plaintext_len = cipher.open_in_place(index, segment)?;
    segment.truncate(plaintext_len);

    let skip = usize::try_from(*skip_front).expect("skip_front is below SEGMENT_LEN");
    segment.advance(skip);
    *skip_front = 0;

    let take = (*remaining).min(segment.len() as u64);
    *remaining -= take;
    let plaintext = segment.split_to(take as usize).freeze();
    segment.clear();
    Ok(plaintext)
}
