//! The auditor: appends MAC-chained records to its sinks, one at a time.

use super::key::AuditKey;
use super::record::{compute_mac, format_time, AuditEvent, Record, GENESIS_PREV};
use super::sink::{AuditSink, FileSink, FsyncPolicy, StdoutSink};
use super::verify::check_line;
use super::{AuditError, MAX_LINE_LEN};
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

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
/// across threads by reference or `Arc`. Each record takes an internal lock
/// while it is serialized, MACed and written.
pub struct Auditor {
    key: AuditKey,
    inner: Mutex<Inner>,
}

struct Inner {
    state: ChainState,
    sinks: Vec<Box<dyn AuditSink>>,
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
        Ok(Self {
            key,
            inner: Mutex::new(Inner {
                state: resume.unwrap_or(ChainState::GENESIS),
                sinks,
            }),
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

    /// Appends a record of `event` to every sink and returns its `seq`.
    ///
    /// On error the chain state stays as it was, so the next successful
    /// record follows the last one that every sink accepted.
    pub fn record(&self, event: AuditEvent) -> Result<u64, AuditError> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);

        let seq = inner
            .state
            .seq
            .checked_add(1)
            .ok_or(AuditError::SeqExhausted)?;
        // The time is taken under the lock so that times never decrease
        // along the chain unless the system clock steps back.
        let time = format_time(time::OffsetDateTime::now_utc())?;
        let record = Record::from_event(event, seq, time, &inner.state.mac);
        let canonical = record.canonical_bytes()?;
        let mac = compute_mac(&self.key, &canonical);
        let line = Record::line_from_canonical(canonical, &mac);
        if line.len() > MAX_LINE_LEN {
            return Err(AuditError::RecordTooLong {
                len: line.len(),
                max: MAX_LINE_LEN,
            });
        }

        for sink in &inner.sinks {
            sink.append(&line)?;
        }
        inner.state = ChainState { seq, mac };
        Ok(seq)
    }

    /// Returns the state after the last recorded event. Saving it where the
    /// log's writer cannot change it lets [`super::verify`] detect later
    /// deletion of records up to that point.
    pub fn chain_state(&self) -> ChainState {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .state
    }
}

impl fmt::Debug for Auditor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Auditor")
            .field("state", &inner.state)
            .field("sinks", &inner.sinks.len())
            .finish_non_exhaustive()
    }
}
