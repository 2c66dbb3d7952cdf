//! Single-thread throughput of AES-256-GCM implementations on 64 KiB
//! segments, and of s3seal's streaming bodies, which use whichever
//! implementation `src/crypto` is built with.

use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::StreamBody;
use serde_json::json;

use s3seal::crypto::{DataKey, DecryptBody, EncryptBody};

const SEGMENT: usize = 64 * 1024;
const KEY: [u8; 32] = [7; 32];

#[derive(clap::Args, Debug)]
pub struct CipherArgs {
    /// Rounds per measurement. The reported figure is the median round.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Length of one round, in milliseconds.
    #[arg(long, default_value_t = 400)]
    round_ms: u64,
    /// Label stored with the results, such as the build flags.
    #[arg(long, default_value = "default")]
    label: String,
}

/// One implementation's seal and open of one segment, in place.
trait SegmentAead {
    fn seal(&self, nonce: [u8; 12], buffer: &mut [u8]) -> [u8; 16];
    fn open(&self, nonce: [u8; 12], buffer: &mut [u8], tag: [u8; 16]);
}

struct RustCrypto(aes_gcm::Aes256Gcm);

impl SegmentAead for RustCrypto {
    fn seal(&self, nonce: [u8; 12], buffer: &mut [u8]) -> [u8; 16] {
        self.0
            .encrypt_in_place_detached(&nonce.into(), b"", buffer)
            .expect("seal")
            .into()
    }

    fn open(&self, nonce: [u8; 12], buffer: &mut [u8], tag: [u8; 16]) {
        self.0
            .decrypt_in_place_detached(&nonce.into(), b"", buffer, &tag.into())
            .expect("open");
    }
}

struct Ring(ring::aead::LessSafeKey);

impl SegmentAead for Ring {
    fn seal(&self, nonce: [u8; 12], buffer: &mut [u8]) -> [u8; 16] {
        let nonce = ring::aead::Nonce::assume_unique_for_key(nonce);
        let tag = self
            .0
            .seal_in_place_separate_tag(nonce, ring::aead::Aad::empty(), buffer)
            .expect("seal");
        tag.as_ref().try_into().expect("16-byte tag")
    }

    fn open(&self, nonce: [u8; 12], buffer: &mut [u8], tag: [u8; 16]) {
        let nonce = ring::aead::Nonce::assume_unique_for_key(nonce);
        self.0
            .open_in_place_separate_tag(
                nonce,
                ring::aead::Aad::empty(),
                ring::aead::Tag::from(tag),
                buffer,
                0..,
            )
            .expect("open");
    }
}

/// Runs `rounds` rounds of `round` and returns the median, minimum and
/// maximum of the MB/s (10^6 bytes per second) that each round returns.
fn measure(rounds: usize, mut round: impl FnMut() -> f64) -> serde_json::Value {
    summarize((0..rounds).map(|_| round()).collect())
}

/// Returns the median, minimum and maximum of `figures` as JSON.
fn summarize(mut figures: Vec<f64>) -> serde_json::Value {
    figures.sort_by(f64::total_cmp);
    json!({
        "median": figures[figures.len() / 2],
        "min": figures[0],
        "max": figures[figures.len() - 1],
    })
}

/// Seals 64 KiB segments for `limit` and returns MB/s.
fn seal_round(aead: &dyn SegmentAead, limit: Duration) -> f64 {
    let mut buffer = vec![0x5a_u8; SEGMENT];
    let start = Instant::now();
    let mut segments = 0u64;
    while start.elapsed() < limit {
        for _ in 0..16 {
            let nonce = nonce(segments);
            std::hint::black_box(aead.seal(nonce, &mut buffer));
            segments += 1;
        }
    }
    mb_per_s(segments * SEGMENT as u64, start.elapsed())
}

/// Opens 64 KiB segments for `limit` and returns MB/s. Between two opens the
/// buffer is sealed again with the same nonce, which restores the same
/// ciphertext and tag. Only the opens are timed.
fn open_round(aead: &dyn SegmentAead, limit: Duration) -> f64 {
    let mut buffer = vec![0x5a_u8; SEGMENT];
    let nonce = nonce(1);
    let mut tag = aead.seal(nonce, &mut buffer);
    let mut timed = Duration::ZERO;
    let mut segments = 0u64;
    let start = Instant::now();
    while start.elapsed() < limit {
        let begin = Instant::now();
        aead.open(nonce, &mut buffer, tag);
        timed += begin.elapsed();
        segments += 1;
        tag = aead.seal(nonce, &mut buffer);
    }
    mb_per_s(segments * SEGMENT as u64, timed)
}

fn median(summary: &serde_json::Value) -> f64 {
    summary["median"].as_f64().unwrap_or(f64::NAN)
}

fn nonce(segment: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..8].copy_from_slice(&(segment as u32).to_be_bytes());
    nonce
}

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e6
}

/// Returns a body of `total` bytes in frames that are all slices of
/// `buffer`.
fn frames(buffer: &Bytes, total: usize) -> StreamBody<impl futures_util::Stream<Item = FrameItem>> {
    let chunk = buffer.len();
    let items: Vec<FrameItem> = (0..total.div_ceil(chunk))
        .map(|i| {
            let len = chunk.min(total - i * chunk);
            Ok(Frame::data(buffer.slice(..len)))
        })
        .collect();
    StreamBody::new(futures_util::stream::iter(items))
}

type FrameItem = Result<Frame<Bytes>, std::io::Error>;

/// Polls an in-memory body to its end. Returns the number of bytes it
/// yielded and, if `keep` is set, the frames themselves. Dropping each frame
/// at once, as a proxy does once it has written it, lets the bodies reuse
/// their segment buffer.
fn drain<B>(body: B, keep: bool) -> (usize, Vec<Bytes>)
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let mut body = pin!(body);
    let mut context = Context::from_waker(Waker::noop());
    let mut len = 0;
    let mut kept = Vec::new();
    loop {
        match body.as_mut().poll_frame(&mut context) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    len += data.len();
                    if keep {
                        kept.push(data);
                    }
                }
            }
            Poll::Ready(Some(Err(error))) => panic!("body failed: {error:?}"),
            Poll::Ready(None) => return (len, kept),
            Poll::Pending => panic!("an in-memory body returned Pending"),
        }
    }
}

/// Encrypts and decrypts `total` bytes through s3seal's bodies and returns
/// (encrypt MB/s, decrypt MB/s). The ciphertext that the decryption reads
/// is made before the timing starts.
fn body_round(total: usize) -> (f64, f64) {
    let plaintext = Bytes::from(vec![0x3c_u8; 1 << 20]);
    let data_key = DataKey::from_bytes(KEY);
    let encrypt_body = || {
        EncryptBody::new(frames(&plaintext, total), total as u64, &data_key, 0)
            .expect("encrypt body")
    };
    let (_, sealed) = drain(encrypt_body(), true);

    let start = Instant::now();
    let (encrypted, _) = drain(encrypt_body(), false);
    let encrypt = mb_per_s(total as u64, start.elapsed());
    assert_eq!(
        encrypted as u64,
        s3seal::crypto::ciphertext_len(total as u64)
    );

    let ciphertext: Vec<FrameItem> = sealed.into_iter().map(|b| Ok(Frame::data(b))).collect();
    let start = Instant::now();
    let body = DecryptBody::full(
        StreamBody::new(futures_util::stream::iter(ciphertext)),
        &data_key,
        0,
        total as u64,
    )
    .expect("decrypt body");
    let (opened, _) = drain(body, false);
    let decrypt = mb_per_s(total as u64, start.elapsed());
    assert_eq!(opened, total);
    (encrypt, decrypt)
}

/// Returns the time to set up a fresh object (HKDF, key schedule) and seal
/// 1 KiB with s3seal's encrypting body, in microseconds per object.
fn small_object_round(limit: Duration) -> f64 {
    let plaintext = Bytes::from(vec![0x11_u8; 1024]);
    let data_key = DataKey::from_bytes(KEY);
    let start = Instant::now();
    let mut objects = 0u64;
    while start.elapsed() < limit {
        let body =
            EncryptBody::new(frames(&plaintext, 1024), 1024, &data_key, 0).expect("encrypt body");
        std::hint::black_box(drain(body, false));
        objects += 1;
    }
    start.elapsed().as_secs_f64() * 1e6 / objects as f64
}

pub fn run(args: CipherArgs) -> anyhow::Result<()> {
    let limit = Duration::from_millis(args.round_ms);
    let rust_crypto = RustCrypto(aes_gcm::Aes256Gcm::new(&KEY.into()));
    let unbound = ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &KEY)
        .map_err(|_| anyhow::anyhow!("ring rejected the AES-256-GCM key"))?;
    let ring = Ring(ring::aead::LessSafeKey::new(unbound));

    // Both implementations must produce the same bytes before any timing.
    let mut a = vec![0x42_u8; SEGMENT];
    let mut b = a.clone();
    let tag_a = rust_crypto.seal(nonce(3), &mut a);
    let tag_b = ring.seal(nonce(3), &mut b);
    anyhow::ensure!(a == b && tag_a == tag_b, "aes-gcm and ring disagree");

    let mut implementations = serde_json::Map::new();
    for (name, aead) in [
        ("aes-gcm 0.10", &rust_crypto as &dyn SegmentAead),
        ("ring 0.17", &ring),
    ] {
        let seal = measure(args.rounds, || seal_round(aead, limit));
        let open = measure(args.rounds, || open_round(aead, limit));
        println!(
            "{:<14} seal {:>8.0} MB/s  open {:>8.0} MB/s  (64 KiB segments, median of {})",
            name,
            median(&seal),
            median(&open),
            args.rounds
        );
        implementations.insert(name.into(), json!({ "seal": seal, "open": open }));
    }

    let body_total = 256 << 20;
    let mut encrypt = Vec::new();
    let mut decrypt = Vec::new();
    for _ in 0..args.rounds {
        let (e, d) = body_round(body_total);
        encrypt.push(e);
        decrypt.push(d);
    }
    let encrypt = summarize(encrypt);
    let decrypt = summarize(decrypt);
    println!(
        "s3seal bodies  encrypt {:>5.0} MB/s  decrypt {:>5.0} MB/s  (256 MiB in 1 MiB frames)",
        median(&encrypt),
        median(&decrypt)
    );
    let small = measure(args.rounds, || small_object_round(limit));
    println!(
        "s3seal 1 KiB object: {:.2} µs per object (key derivation, key schedule, seal)",
        median(&small)
    );

    let result = json!({
        "label": args.label,
        "implementations": implementations,
        "s3seal_encrypt_body": encrypt,
        "s3seal_decrypt_body": decrypt,
        "s3seal_small_object_us": small,
    });
    println!("{result}");
    Ok(())
}
