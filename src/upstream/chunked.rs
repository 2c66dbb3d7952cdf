//! The `aws-chunked` encoding with an unsigned trailer. The trailer carries
//! a checksum to the upstream after the body, once its value is known.
//!
//! The body is cut into chunks of [`CHUNK_LEN`] bytes and one shorter last
//! chunk, so the encoded length follows from the decoded length and the
//! request can carry an exact `Content-Length`. Data frames are split, not
//! copied: each chunk's size line and closing line go out as frames of
//! their own between pieces of the data.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use http_body::{Body, Frame, SizeHint};

use super::{BoxError, UpstreamBody};

/// The decoded length of every chunk but the last.
pub const CHUNK_LEN: u64 = 64 * 1024;

/// A checksum that goes upstream in the trailer of the body.
pub struct TrailingChecksum {
    /// The trailer's name, such as `x-amz-checksum-crc32`.
    pub name: HeaderName,
    /// The length of the base64 value, which the algorithm fixes.
    pub value_len: usize,
    /// Returns the value once the whole body has been read and checked.
    pub value: Box<dyn FnOnce() -> Option<HeaderValue> + Send>,
}

/// Returns the length of a body of `decoded_len` bytes in the encoding,
/// with a trailer of `name` and a value of `value_len` bytes.
pub fn encoded_len(decoded_len: u64, name: &HeaderName, value_len: usize) -> u64 {
    let full_chunks = decoded_len / CHUNK_LEN;
    let last = decoded_len % CHUNK_LEN;
    let mut len = full_chunks * chunk_overhead(CHUNK_LEN) + decoded_len;
    if last > 0 {
        len += chunk_overhead(last);
    }
    // "0\r\n", then "name:value\r\n", then "\r\n".
    len + 3 + name.as_str().len() as u64 + 1 + value_len as u64 + 2 + 2
}

/// Returns the bytes that frame a chunk of `len` bytes: its size in hex
/// and two line ends.
fn chunk_overhead(len: u64) -> u64 {
    let hex_digits = (64 - len.leading_zeros()).div_ceil(4).max(1);
    u64::from(hex_digits) + 4
}

/// Encodes `inner`, which must yield exactly `decoded_len` bytes.
pub struct AwsChunkedBody {
    inner: UpstreamBody,
    /// Bytes of the decoded body not yet received.
    remaining: u64,
    /// Bytes of the current chunk not yet sent.
    in_chunk: u64,
    queued: VecDeque<Bytes>,
    trailer: Option<TrailingChecksum>,
    len: u64,
    done: bool,
}

impl AwsChunkedBody {
    pub fn new(inner: UpstreamBody, decoded_len: u64, trailer: TrailingChecksum) -> Self {
        let len = encoded_len(decoded_len, &trailer.name, trailer.value_len);
        Self {
            inner,
            remaining: decoded_len,
            in_chunk: 0,
            queued: VecDeque::new(),
            trailer: Some(trailer),
            len,
            done: false,
        }
    }

    /// Queues `data` with the framing of the chunks it falls into.
    fn queue_data(&mut self, mut data: Bytes) -> Result<(), BoxError> {
        if data.len() as u64 > self.remaining {
            return Err("the body is longer than its declared length".into());
        }
        while !data.is_empty() {
            if self.in_chunk == 0 {
                let size = self.remaining.min(CHUNK_LEN);
                self.queued.push_back(Bytes::from(format!("{size:x}\r\n")));
                self.in_chunk = size;
            }
            let take = self.in_chunk.min(data.len() as u64);
            // `take` is at most `data.len()`, so it fits in usize.
            self.queued.push_back(data.split_to(take as usize));
            self.in_chunk -= take;
            self.remaining -= take;
            if self.in_chunk == 0 {
                self.queued.push_back(Bytes::from_static(b"\r\n"));
            }
        }
        Ok(())
    }

    /// Queues the last chunk and the trailer.
    fn queue_end(&mut self) -> Result<(), BoxError> {
        if self.remaining != 0 {
            return Err("the body ended before its declared length".into());
        }
        let trailer = self.trailer.take().ok_or("the trailer was already sent")?;
        let value = (trailer.value)().ok_or("the body's checksum is not known at its end")?;
        if value.len() != trailer.value_len {
            return Err("the checksum value does not have its algorithm's length".into());
        }
        let mut end = Vec::with_capacity(3 + trailer.name.as_str().len() + 1 + value.len() + 4);
        end.extend_from_slice(b"0\r\n");
        end.extend_from_slice(trailer.name.as_str().as_bytes());
        end.push(b':');
        end.extend_from_slice(value.as_bytes());
        end.extend_from_slice(b"\r\n\r\n");
        self.queued.push_back(Bytes::from(end));
        Ok(())
    }
}

impl Body for AwsChunkedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if let Some(piece) = this.queued.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(piece))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            let queued = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.queue_data(data),
                    // Transport trailers of the source are not forwarded.
                    Err(_) => Ok(()),
                },
                Some(Err(error)) => Err(error),
                None => {
                    this.done = true;
                    this.queue_end()
                }
            };
            if let Err(error) = queued {
                this.done = true;
                this.queued.clear();
                return Poll::Ready(Some(Err(error)));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.queued.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    const NAME: &str = "x-amz-checksum-crc32";

    fn trailer(value: &'static str) -> TrailingChecksum {
        TrailingChecksum {
            name: HeaderName::from_static(NAME),
            value_len: 8,
            value: Box::new(move || Some(HeaderValue::from_static(value))),
        }
    }

    fn source(pieces: Vec<Vec<u8>>) -> UpstreamBody {
        let frames = pieces
            .into_iter()
            .map(|piece| Ok::<_, BoxError>(Frame::data(Bytes::from(piece))));
        StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
    }

    async fn encode(pieces: Vec<Vec<u8>>, decoded_len: u64) -> Result<Vec<u8>, BoxError> {
        let body = AwsChunkedBody::new(source(pieces), decoded_len, trailer("AAAAAA=="));
        Ok(body.collect().await?.to_bytes().to_vec())
    }

    /// Decodes the encoding the way S3 reads it, checking every chunk's
    /// framing, and returns the data and the trailer line.
    fn decode(mut encoded: &[u8]) -> (Vec<u8>, String) {
        let mut data = Vec::new();
        loop {
            let line_end = encoded.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&encoded[..line_end]).unwrap(), 16)
                    .unwrap();
            encoded = &encoded[line_end + 2..];
            if size == 0 {
                break;
            }
            assert!(size as u64 <= CHUNK_LEN);
            data.extend_from_slice(&encoded[..size]);
            assert_eq!(&encoded[size..size + 2], b"\r\n");
            encoded = &encoded[size + 2..];
        }
        let text = std::str::from_utf8(encoded).unwrap();
        let trailer = text.strip_suffix("\r\n\r\n").unwrap();
        (data, trailer.to_string())
    }

    #[tokio::test]
    async fn encoded_length_matches_output() {
        let chunk = CHUNK_LEN as usize;
        for len in [1, 15, chunk - 1, chunk, chunk + 1, 3 * chunk, 5 * chunk + 7] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            // Frames that straddle chunk boundaries.
            let pieces: Vec<Vec<u8>> = plain.chunks(40_000).map(<[u8]>::to_vec).collect();
            let encoded = encode(pieces, len as u64).await.unwrap();
            assert_eq!(
                encoded.len() as u64,
                encoded_len(len as u64, &HeaderName::from_static(NAME), 8),
                "length {len}"
            );
            let (data, trailer) = decode(&encoded);
            assert_eq!(data, plain, "length {len}");
            assert_eq!(trailer, format!("{NAME}:AAAAAA=="));
        }
    }

    #[tokio::test]
    async fn encoder_rejects_wrong_body_length() {
        assert!(encode(vec![vec![1; 10]], 11).await.is_err());
        assert!(encode(vec![vec![1; 12]], 11).await.is_err());
    }

    #[tokio::test]
    async fn encoder_rejects_bad_checksum_value() {
        let missing = TrailingChecksum {
            name: HeaderName::from_static(NAME),
            value_len: 8,
            value: Box::new(|| None),
        };
        let body = AwsChunkedBody::new(source(vec![vec![1; 4]]), 4, missing);
        assert!(body.collect().await.is_err());
        let body = AwsChunkedBody::new(source(vec![vec![1; 4]]), 4, trailer("AAAA"));
        assert!(body.collect().await.is_err());
    }

    #[test]
    fn chunk_overhead_counts_hex_digits() {
        assert_eq!(chunk_overhead(1), 5);
        assert_eq!(chunk_overhead(15), 5);
        assert_eq!(chunk_overhead(16), 6);
        assert_eq!(chunk_overhead(CHUNK_LEN), 9);
    }
}
