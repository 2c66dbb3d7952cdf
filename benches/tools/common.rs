//! Pieces shared by the benchmark tools: in-memory bodies, ready files, a
//! time limit for servers, and process statistics from /proc.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type that the tools send and serve.
pub type BoxBody = UnsyncBoxBody<Bytes, BoxError>;

/// Frame size of generated and served bodies.
pub const FRAME_LEN: usize = 1 << 20;

/// A body of `len` bytes made of slices of `pattern`, repeated: byte `i` is
/// `pattern[i % pattern.len()]`. Yields frames of at most `pattern.len()`
/// bytes without copying.
pub struct PatternBody {
    pattern: Bytes,
    offset: u64,
    len: u64,
}

impl PatternBody {
    pub fn new(pattern: Bytes, len: u64) -> Self {
        assert!(!pattern.is_empty(), "the pattern must not be empty");
        Self {
            pattern,
            offset: 0,
            len,
        }
    }
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.offset == self.len {
            return Poll::Ready(None);
        }
        let period = self.pattern.len() as u64;
        let start = (self.offset % period) as usize;
        let take = (period - start as u64).min(self.len - self.offset) as usize;
        let frame = self.pattern.slice(start..start + take);
        self.offset += take as u64;
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.offset == self.len
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len - self.offset)
    }
}

/// Returns `data` as a body of [`FRAME_LEN`] slices, without copying.
pub fn bytes_body(data: Bytes) -> BoxBody {
    SliceBody { data, offset: 0 }
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

struct SliceBody {
    data: Bytes,
    offset: usize,
}

impl Body for SliceBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.offset == self.data.len() {
            return Poll::Ready(None);
        }
        let end = (self.offset + FRAME_LEN).min(self.data.len());
        let frame = self.data.slice(self.offset..end);
        self.offset = end;
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.offset == self.data.len()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact((self.data.len() - self.offset) as u64)
    }
}

pub fn empty_body() -> BoxBody {
    http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn text_body(text: impl Into<Bytes>) -> BoxBody {
    http_body_util::Full::new(text.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Writes `{"endpoint": "http://ADDR"}` to `path` through a temporary file,
/// so that a reader never sees a partial file.
pub fn write_ready_file(path: &Path, addr: SocketAddr) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let text = serde_json::json!({ "endpoint": format!("http://{addr}") }).to_string();
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Exits the process after `limit`, so that a server started by a script
/// that died still stops by itself.
pub fn exit_after(limit: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(limit).await;
        eprintln!(
            "stopping after the --max-seconds limit of {} s",
            limit.as_secs()
        );
        std::process::exit(0);
    });
}

/// Returns the user plus system CPU time of process `pid` in clock ticks
/// (fields 14 and 15 of /proc/PID/stat).
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces, so the fields are
    // counted from the closing parenthesis after it.
    let after_name = stat
        .rfind(')')
        .map(|index| &stat[index + 1..])
        .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/stat has no command name"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `fields[0]` is field 3 (state), so field N is `fields[N - 3]`.
    let utime: u64 = fields.get(11).unwrap_or(&"").parse()?;
    let stime: u64 = fields.get(12).unwrap_or(&"").parse()?;
    Ok(utime + stime)
}

/// Returns the peak resident set size (VmHWM) of process `pid` in KiB.
pub fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/status has no VmHWM line"))?;
    let kib = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib)
}
