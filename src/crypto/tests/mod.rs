//! Tests of the streaming bodies and golden vectors of the format.

mod encrypt;
mod round_trip;
mod tamper;
mod vectors;

use std::io;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};
use http_body::{Body, Frame};
use http_body_util::StreamBody;

use super::{BoxError, CryptoError, DataKey, DecryptBody, EncryptBody, SegmentWindow};

type SourceItem = Result<Frame<Bytes>, io::Error>;

/// Plaintext byte `i` is `i % 251`, so that segments differ from each other.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn data_key(seed: u8) -> DataKey {
    DataKey::from_bytes([seed; 32])
}

/// Cuts `data` into data frames of `frame_len` bytes.
fn frames(data: &[u8], frame_len: usize) -> Vec<SourceItem> {
    data.chunks(frame_len)
        .map(|chunk| Ok(Frame::data(Bytes::copy_from_slice(chunk))))
        .collect()
}

/// Returns a body that yields `items` and then ends.
fn source(items: Vec<SourceItem>) -> StreamBody<impl Stream<Item = SourceItem>> {
    StreamBody::new(stream::iter(items))
}

/// Returns a body that yields `items` and then stays pending forever.
fn stalled_source(items: Vec<SourceItem>) -> StreamBody<impl Stream<Item = SourceItem>> {
    StreamBody::new(stream::iter(items).chain(stream::pending()))
}

/// How a drained body stopped.
#[derive(Debug)]
enum End {
    Finished,
    Failed(BoxError),
    Pending,
}

/// Everything a body yielded before it stopped.
#[derive(Debug)]
struct Drained {
    bytes: Vec<u8>,
    end: End,
}

impl Drained {
    /// Returns the bytes, panicking with the error if the body failed.
    fn unwrap(self) -> Vec<u8> {
        match self.end {
            End::Finished => self.bytes,
            end => panic!("body did not finish: {end:?}"),
        }
    }

    /// Returns the body's error as a `CryptoError`, panicking otherwise.
    fn crypto_error(&self) -> &CryptoError {
        match &self.end {
            End::Failed(error) => error
                .downcast_ref::<CryptoError>()
                .unwrap_or_else(|| panic!("not a CryptoError: {error:?}")),
            end => panic!("body did not fail: {end:?}"),
        }
    }
}

/// Polls `body` until it ends, fails or returns `Pending`. The sources in
/// these tests are in memory, so `Pending` means the body waits for a source
/// that will never continue.
fn drain<B: Body<Data = Bytes, Error = BoxError>>(body: B) -> Drained {
    let mut body = pin!(body);
    let mut context = Context::from_waker(Waker::noop());
    let mut bytes = Vec::new();
    let end = loop {
        match body.as_mut().poll_frame(&mut context) {
            Poll::Pending => break End::Pending,
            Poll::Ready(None) => break End::Finished,
            Poll::Ready(Some(Ok(frame))) => {
                let data = frame.into_data().expect("bodies yield only data frames");
                bytes.extend_from_slice(&data);
            }
            Poll::Ready(Some(Err(error))) => {
                assert!(
                    matches!(body.as_mut().poll_frame(&mut context), Poll::Ready(None)),
                    "body continued after an error"
                );
                break End::Failed(error);
            }
        }
    };
    if matches!(end, End::Finished) {
        assert!(body.is_end_stream(), "body ended without is_end_stream");
    }
    Drained { bytes, end }
}

fn encrypt(plaintext: &[u8], key: &DataKey, part_number: u32, frame_len: usize) -> Vec<u8> {
    let body = EncryptBody::new(
        source(frames(plaintext, frame_len)),
        plaintext.len() as u64,
        key,
        part_number,
    )
    .unwrap();
    let expected_len = super::ciphertext_len(plaintext.len() as u64);
    assert_eq!(body.size_hint().exact(), Some(expected_len));

    let ciphertext = drain(body).unwrap();
    assert_eq!(ciphertext.len() as u64, expected_len);
    ciphertext
}

/// Decrypts a ciphertext window fed in frames of `frame_len` bytes.
fn decrypt_window(
    ciphertext: &[u8],
    key: &DataKey,
    part_number: u32,
    plaintext_total: u64,
    window: &SegmentWindow,
    frame_len: usize,
) -> Drained {
    let body = DecryptBody::new(
        source(frames(ciphertext, frame_len)),
        key,
        part_number,
        plaintext_total,
        window,
    )
    .unwrap();
    assert_eq!(body.size_hint().exact(), Some(window.len));
    drain(body)
}

/// Decrypts a whole ciphertext whose plaintext is `plaintext_total` bytes.
fn decrypt_full(
    ciphertext: &[u8],
    key: &DataKey,
    part_number: u32,
    plaintext_total: u64,
) -> Drained {
    let body = DecryptBody::full(
        source(frames(ciphertext, 10_000)),
        key,
        part_number,
        plaintext_total,
    )
    .unwrap();
    assert_eq!(body.size_hint().exact(), Some(plaintext_total));
    drain(body)
}
