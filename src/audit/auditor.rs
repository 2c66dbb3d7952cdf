//! The auditor: chains records with MACs and appends them to its sinks.
//!
//! Records that arrive while a write is in progress are queued and written
//! together by the next write, with one flush for the group (group
//! commit). A record that finds no write in progress is written at once by
//! the thread that created it, so an idle auditor adds no thread handoff.
//! When a write ends with records queued, a writer thread of the auditor
//! writes them, so that callers of [`Auditor::record_async`] wait without
//! holding a thread.

use super::key::AuditKey;
use super::record::{compute_mac, format_time, AuditEvent, Record, GENESIS_PREV};
use super::sink::{AuditSink, FileSink, FsyncPolicy, StdoutSink};
use super::verify::check_line;
use super::{AuditError, MAX_LINE_LEN};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// The position of a chain: the last record's `seq` and MAC. The genesis
/// state, before the first record, is `seq` 0 with a MAC of 32 zero bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ChainState {
    pub seq: u64,
    pub mac: [u8; 32],
}

impl ChainState {
    pub const GENESIS: Self = Self {
        seq: 0,
        mac: GENESIS_PREV,
    };

    /// Parses a chain state from a `seq` and the hex of a MAC, as printed
    /// by [`Self::mac_hex`] or stored in a record's `mac` field.
    pub fn from_hex(seq: u64, mac_hex: &str) -> Option<Self> {
        let mut mac = [0u8; 32];
        hex::decode_to_slice(mac_hex, &mut mac).ok()?;
        Some(Self { seq, mac })
    }

    pub fn mac_hex(&self) -> String {
        hex::encode(self.mac)
    }
}

impl fmt::Debug for ChainState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainState")
            .field("seq", &self.seq)
            .field("mac", &self.mac_hex())
            .finish()
    }
}

/// Writes audit records to every sink and keeps the chain state. Share it
/// across threads by reference or `Arc`.
pub struct Auditor {
    key: AuditKey,
    shared: Arc<Shared>,
    writer: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    inner: Mutex<Inner>,
    /// Wakes the writer thread when records wait and no write runs.
    work: Condvar,
    /// Used only by the one caller or thread that set `Inner::writing`.
    sinks: Vec<Box<dyn AuditSink>>,
}

struct Inner {
    /// The last record chained, written or still queued.
    head: ChainState,
    /// The last record that every sink accepted.
    written: ChainState,
    /// Chained records not yet handed to a write, oldest first.
    queue: Vec<Queued>,
    /// A write is in progress, and its records are no longer in `queue`.
    writing: bool,
    stop: bool,
}

struct Queued {
    line: Vec<u8>,
    state: ChainState,
    done: Done,
}

/// The receiver of a queued record's outcome.
enum Done {
    Blocking(std::sync::mpsc::SyncSender<Result<u64, AuditError>>),
    Async(tokio::sync::oneshot::Sender<Result<u64, AuditError>>),
}

impl Done {
    fn send(self, result: Result<u64, AuditError>) {
        // A caller that stopped waiting no longer needs the outcome.
        match self {
            Self::Blocking(sender) => drop(sender.send(result)),
            Self::Async(sender) => drop(sender.send(result)),
        }
    }
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Writes `batch` to every sink as one write, then reports the outcome
    /// to each of its records and ends the write.
    ///
    /// On failure the chain goes back to the last written record, and the
    /// records queued meanwhile fail too, because they chain on the
    /// records that were not written.
    fn write_batch(&self, batch: Vec<Queued>) {
        let result = match batch.as_slice() {
            [one] => self.append(&one.line),
            _ => {
                let mut bytes = Vec::with_capacity(batch.iter().map(|q| q.line.len()).sum());
                for queued in &batch {
                    bytes.extend_from_slice(&queued.line);
                }
                self.append(&bytes)
            }
        };

        let mut inner = lock(&self.inner);
        inner.writing = false;
        let failed = match result {
            Ok(()) => {
                if let Some(last) = batch.last() {
                    inner.written = last.state;
                }
                if !inner.queue.is_empty() {
                    self.work.notify_one();
                }
                drop(inner);
                for queued in batch {
                    queued.done.send(Ok(queued.state.seq));
                }
                return;
            }
            Err(error) => error,
        };
        inner.head = inner.written;
        let later = std::mem::take(&mut inner.queue);
        drop(inner);

        let message = failed.to_string();
        let mut first = Some(failed);
        for queued in batch.into_iter().chain(later) {
            let error = first
                .take()
                .unwrap_or_else(|| AuditError::Batch(message.clone()));
            queued.done.send(Err(error));
        }
    }

    fn append(&self, bytes: &[u8]) -> Result<(), AuditError> {
        for sink in &self.sinks {
            sink.append(bytes)?;
        }
        Ok(())
    }

    /// Runs the writer thread: writes queued records whenever no other
    /// write runs, until the auditor is dropped and the queue is empty.
    fn run_writer(&self) {
        loop {
            let batch = {
                let mut inner = lock(&self.inner);
                loop {
                    if !inner.writing && !inner.queue.is_empty() {
                        inner.writing = true;
                        break std::mem::take(&mut inner.queue);
                    }
                    if inner.stop && !inner.writing {
                        return;
                    }
                    inner = self
                        .work
                        .wait(inner)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            self.write_batch(batch);
        }
    }
}

/// Reads the `seq` of the log's first record, or `None` when the log is
/// empty or its first line is not a record.
pub(super) fn first_record_seq(path: &Path) -> Option<u64> {
    use std::io::{BufRead, Read};
    let file = std::fs::File::open(path).ok()?;
    let mut line = String::new();
    std::io::BufReader::new(file.take(super::MAX_LINE_LEN as u64))
        .read_line(&mut line)
        .ok()?;
    let record: serde_json::Value = serde_json::from_str(&line).ok()?;
    record.get("seq")?.as_u64()
}

impl Auditor {
    /// Creates an auditor that continues the chain after `resume`, or starts
    /// a new chain when it is `None`.
    ///
    /// Records go to the sinks in order, and the chain advances only when
    /// every sink accepted the record. When a sink fails, the sinks before
    /// it have already written the record, and the next record reuses its
    /// `seq`. So put the sink whose copy is verified last.
    pub fn new(
        key: AuditKey,
        sinks: Vec<Box<dyn AuditSink>>,
        resume: Option<ChainState>,
    ) -> Result<Self, AuditError> {
        if sinks.is_empty() {
            return Err(AuditError::NoSinks);
        }
        let state = resume.unwrap_or(ChainState::GENESIS);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                head: state,
                written: state,
                queue: Vec::new(),
                writing: false,
                stop: false,
            }),
            work: Condvar::new(),
            sinks,
        });
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("s3seal-audit".into())
            .spawn(move || writer_shared.run_writer())
            .map_err(|e| AuditError::Sink(format!("failed to start the audit writer: {e}")))?;
        Ok(Self {
            key,
            shared,
            writer: Some(writer),
        })
    }

    /// Opens the log file at `path`, creating it with mode 0600, and
    /// continues its chain. With `also_stdout`, every record is also written
    /// to standard output, before the file.
    ///
    /// Only the last record is checked, because reading the whole log at
    /// every start would take time proportional to its size. The open fails
    /// when the log ends in an incomplete line, when its last record does
    /// not verify with `key`, or when another process has the log open.
    pub fn open_file(
        path: &Path,
        key: AuditKey,
        fsync: FsyncPolicy,
        also_stdout: bool,
    ) -> Result<Self, AuditError> {
        let file = FileSink::open(path, fsync)?;
        if let Some(seq) = first_record_seq(path).filter(|&seq| seq != 1) {
            tracing::warn!(
                log = %path.display(),
                first_seq = seq,
                "the audit log starts at record {seq}, so records 1 to {} were removed or the \
                 log was cut; `s3seal audit verify` reports the same",
                seq - 1
            );
        }
        let state = match file.read_last_line()? {
            None => ChainState::GENESIS,
            Some(line) => match check_line(&line, &key) {
                Ok(record) => ChainState::from(record),
                Err((_, reason)) => {
                    return Err(AuditError::TailDoesNotVerify {
                        path: path.into(),
                        reason,
                    })
                }
            },
        };

        let mut sinks: Vec<Box<dyn AuditSink>> = Vec::with_capacity(2);
        if also_stdout {
            sinks.push(Box::new(StdoutSink));
        }
        sinks.push(Box::new(file));
        Self::new(key, sinks, Some(state))
    }

    /// Appends a record of `event` to every sink and returns its `seq`,
    /// blocking the thread until the record is written.
    ///
    /// On error the chain state stays as it was, so the next successful
    /// record follows the last one that every sink accepted.
    pub fn record(&self, event: AuditEvent) -> Result<u64, AuditError> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        self.submit(event, Done::Blocking(sender))?;
        receiver.recv().unwrap_or(Err(AuditError::Stopped))
    }

    /// Like [`Self::record`], but waits for the write without blocking the
    /// thread when another write is in progress.
    pub async fn record_async(&self, event: AuditEvent) -> Result<u64, AuditError> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.submit(event, Done::Async(sender))?;
        receiver.await.unwrap_or(Err(AuditError::Stopped))
    }

    /// Chains a record of `event` and queues it. When no write is in
    /// progress, writes the queue on the calling thread.
    fn submit(&self, event: AuditEvent, done: Done) -> Result<(), AuditError> {
        let mut inner = lock(&self.shared.inner);
        let seq = inner
            .head
            .seq
            .checked_add(1)
            .ok_or(AuditError::SeqExhausted)?;
        // The time is taken under the lock so that times never decrease
        // along the chain unless the system clock steps back.
        let time = format_time(time::OffsetDateTime::now_utc())?;
        let record = Record::from_event(event, seq, time, &inner.head.mac);
        let canonical = record.canonical_bytes()?;
        let mac = compute_mac(&self.key, &canonical);
        let line = Record::line_from_canonical(canonical, &mac);
        if line.len() > MAX_LINE_LEN {
            return Err(AuditError::RecordTooLong {
                len: line.len(),
                max: MAX_LINE_LEN,
            });
        }

        let state = ChainState { seq, mac };
        inner.head = state;
        inner.queue.push(Queued { line, state, done });
        if inner.writing {
            return Ok(());
        }
        inner.writing = true;
        let batch = std::mem::take(&mut inner.queue);
        drop(inner);
        self.shared.write_batch(batch);
        Ok(())
    }

    /// Returns the state after the last written record. Saving it where
    /// the log's writer cannot change it lets [`super::verify`] detect
    /// later deletion of records up to that point.
    /// Fails with the reason when a sink cannot take another record
    /// whatever the storage does (see [`AuditSink::check_writable`]).
    pub fn check_writable(&self) -> Result<(), String> {
        self.shared
            .sinks
            .iter()
            .try_for_each(|sink| sink.check_writable())
    }

    pub fn chain_state(&self) -> ChainState {
        lock(&self.shared.inner).written
    }

    /// Returns the number of records waiting for a write.
    #[cfg(test)]
    pub(crate) fn shared_queue_len(&self) -> usize {
        lock(&self.shared.inner).queue.len()
    }
}

impl Drop for Auditor {
    /// Stops the writer thread after it wrote the queued records.
    fn drop(&mut self) {
        lock(&self.shared.inner).stop = true;
        self.shared.work.notify_all();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl fmt::Debug for Auditor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = lock(&self.shared.inner);
        f.debug_struct("Auditor")
            .field("state", &inner.written)
            .field("sinks", &self.shared.sinks.len())
            .finish_non_exhaustive()
    }
}
