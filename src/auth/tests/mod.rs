//! Tests of the whole module: known-answer tests from the AWS documentation,
//! cross-checks against the `aws-sigv4` signer, failure cases and the
//! verified body.

mod body;
mod errors;
mod known_answers;
mod sdk;

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::request::Parts;
use http_body::{Body, Frame, SizeHint};

use super::sigv4::parse_amz_date;
use super::{authenticate, AuthConfig, Authenticated, CredentialStore, VerifiedBody};
use crate::keys::SecretString;
use crate::s3::S3Error;

/// The example access key id of the AWS SigV4 documentation.
const EXAMPLE_ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
/// The example secret access key of the AWS SigV4 documentation.
const EXAMPLE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// The timestamp of every example in the AWS SigV4 documentation for S3.
const EXAMPLE_DATE: &str = "20130524T000000Z";

/// A credential store backed by a list of key pairs.
struct StaticStore(Vec<(String, String)>);

impl CredentialStore for StaticStore {
    fn secret_access_key(&self, access_key_id: &str) -> Option<SecretString> {
        self.0
            .iter()
            .find(|(id, _)| id == access_key_id)
            .map(|(_, secret)| SecretString::new(secret.clone()))
    }
}

fn example_store() -> StaticStore {
    StaticStore(vec![(
        EXAMPLE_ACCESS_KEY_ID.to_string(),
        EXAMPLE_SECRET.to_string(),
    )])
}

/// Converts an `x-amz-date` timestamp into a clock reading.
fn clock(amz_date: &str) -> SystemTime {
    let time = parse_amz_date(amz_date).expect("test timestamp is valid");
    let secs = u64::try_from(time.unix_timestamp()).expect("test timestamp is after 1970");
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Builds request parts from an origin-form target and headers, as a
/// server receives them.
fn parts(method: &str, target: &str, headers: &[(&str, &str)]) -> Parts {
    let mut builder = http::Request::builder().method(method).uri(target);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).expect("valid test request").into_parts().0
}

fn example_config() -> AuthConfig {
    AuthConfig::default()
}

fn authenticate_at(parts: &Parts, amz_date: &str) -> Result<Authenticated, S3Error> {
    authenticate(parts, &example_store(), &example_config(), clock(amz_date))
}

/// A test body that yields prepared frames, always ready.
struct Pieces {
    frames: VecDeque<Result<Bytes, io::Error>>,
}

impl Pieces {
    fn new<I: IntoIterator<Item = Vec<u8>>>(pieces: I) -> Self {
        Self {
            frames: pieces
                .into_iter()
                .map(|piece| Ok(Bytes::from(piece)))
                .collect(),
        }
    }

    /// Splits `data` at the given offsets, which must be ascending.
    fn split(data: &[u8], offsets: &[usize]) -> Self {
        let mut pieces = Vec::new();
        let mut start = 0;
        for &offset in offsets {
            pieces.push(data[start..offset].to_vec());
            start = offset;
        }
        pieces.push(data[start..].to_vec());
        Self::new(pieces)
    }

    fn with_error(mut self) -> Self {
        self.frames.push_back(Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "client went away",
        )));
        self
    }
}

impl Body for Pieces {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Poll::Ready(self.frames.pop_front().map(|frame| frame.map(Frame::data)))
    }
}

/// Returns an empty body that never fails.
fn empty_body() -> http_body_util::Empty<Bytes> {
    http_body_util::Empty::new()
}

/// Returns a whole body in one frame.
fn full_body(data: &[u8]) -> http_body_util::Full<Bytes> {
    http_body_util::Full::new(Bytes::copy_from_slice(data))
}

/// What reading a verified body to its end produced.
#[derive(Debug)]
struct Outcome {
    data: Vec<u8>,
    error: Option<S3Error>,
    /// The size hint before the first frame.
    initial_hint: SizeHint,
}

impl Outcome {
    fn expect_ok(self) -> Vec<u8> {
        if let Some(error) = self.error {
            panic!("body failed: {error}");
        }
        self.data
    }

    fn expect_error(self) -> S3Error {
        self.error.expect("body should fail")
    }
}

/// Reads a verified body to its end with a no-op waker. Every test body is
/// always ready, so no poll returns `Pending`. Checks that an error is the
/// last frame.
fn read_body<B>(mut body: VerifiedBody<B>) -> Outcome
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let initial_hint = body.size_hint();
    let mut cx = Context::from_waker(Waker::noop());
    let mut data = Vec::new();
    loop {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let chunk = frame.into_data().expect("only data frames");
                assert!(!chunk.is_empty(), "no empty data frames");
                data.extend_from_slice(&chunk);
            }
            Poll::Ready(Some(Err(error))) => {
                let next = Pin::new(&mut body).poll_frame(&mut cx);
                assert!(
                    matches!(next, Poll::Ready(None)),
                    "the body ends after an error"
                );
                assert!(body.is_end_stream());
                return Outcome {
                    data,
                    error: Some(error),
                    initial_hint,
                };
            }
            Poll::Ready(None) => {
                assert!(body.is_end_stream());
                return Outcome {
                    data,
                    error: None,
                    initial_hint,
                };
            }
            Poll::Pending => panic!("test bodies are always ready"),
        }
    }
}
