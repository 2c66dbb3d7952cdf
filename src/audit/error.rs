//! Errors of the audit trail, and the typed report of where a chain breaks.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to write the audit record to stdout: {0}")]
    Stdout(std::io::Error),
    /// A sink other than the built-in ones failed.
    #[error("audit sink failed: {0}")]
    Sink(String),
    #[error(
        "audit key {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error(
        "audit key {key} is missing, but audit log {log} has records that only that key verifies; \
         restore the key file from a backup, or move the log away to start a new chain"
    )]
    KeyMissing { key: PathBuf, log: PathBuf },
    #[error("audit key {path} is not valid: {message}")]
    InvalidKey { path: PathBuf, message: String },
    #[error(
        "audit log {path} is locked by another writer; only one s3seal process at a time may \
         append to an audit log, so stop the other process or give this one its own audit.file"
    )]
    Locked { path: PathBuf },
    #[error(
        "audit log {path} ends in an incomplete record starting at byte offset {offset}, \
         probably from a crash during a write. Check the log with `s3seal audit verify {path} --key-file KEY`, \
         then truncate it to {offset} bytes to continue the chain"
    )]
    PartialTail { path: PathBuf, offset: u64 },
    #[error(
        "the last record of audit log {path} does not verify with the audit key ({reason}), \
         so s3seal will not append to it. If that last line was cut or damaged, remove it \
         (keep a copy) or move the log away to start a new chain; `s3seal audit verify {path} \
         --key-file KEY` (KEY is `audit.key_file`) reports the first break in the whole log"
    )]
    TailDoesNotVerify { path: PathBuf, reason: BrokenKind },
    #[error("audit chain is broken: {0}")]
    Verify(#[from] VerifyError),
    #[error("failed to read the audit log: {0}")]
    ReadLog(std::io::Error),
    #[error("failed to serialize the audit record: {0}")]
    Serialize(String),
    #[error("audit record is {len} bytes, more than the maximum of {max}")]
    RecordTooLong { len: usize, max: usize },
    #[error("the audit chain reached the maximum sequence number")]
    SeqExhausted,
    #[error("an auditor needs at least one sink")]
    NoSinks,
    /// The record was written together with others in one write, and that
    /// write failed with the given message.
    #[error("failed to write the audit records of one batch: {0}")]
    Batch(String),
    /// The writer stopped before the record was written.
    #[error("the audit writer stopped")]
    Stopped,
}

/// The first place where an audit log fails verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    /// 1-based line number. For [`BrokenKind::Truncated`] it is the last
    /// line of the log, or 0 for an empty log.
    pub line: u64,
    /// `seq` of the record on that line, when the line parsed.
    pub seq: Option<u64>,
    pub kind: BrokenKind,
}

/// The way in which an audit log fails verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokenKind {
    /// The line is not a record in canonical form.
    Malformed(String),
    /// The MAC does not match the record's contents under the audit key.
    MacMismatch,
    /// `prev` differs from the MAC of the record on the line before.
    PrevMismatch,
    /// `seq` is not one more than the `seq` on the line before.
    SeqGap { expected: u64, found: u64 },
    /// The last line has no terminating newline. `offset` is the byte
    /// offset where the line starts.
    PartialLine { offset: u64 },
    /// The log ends before the expected chain state's `seq`.
    Truncated { expected: u64, found: u64 },
    /// The record with the expected chain state's `seq` has another MAC.
    CheckpointMismatch,
}

impl fmt::Display for BrokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(message) => write!(
                f,
                "not a valid audit record ({message}): the line was edited or corrupted"
            ),
            Self::MacMismatch => f.write_str(
                "MAC does not match: the record was edited or written without the audit key",
            ),
            Self::PrevMismatch => f.write_str(
                "prev does not match the MAC of the record before: a record was replaced, \
                 or records from another chain were spliced in",
            ),
            Self::SeqGap { expected, found } if *found == expected + 1 => write!(
                f,
                "expected seq {expected} but found {found}: record {expected} was deleted \
                 or moved to a later line"
            ),
            Self::SeqGap { expected, found } if found > expected => write!(
                f,
                "expected seq {expected} but found {found}: records {expected} to {} \
                 were deleted or moved",
                found - 1
            ),
            Self::SeqGap { expected, found } => write!(
                f,
                "expected seq {expected} but found {found}: records were reordered or duplicated"
            ),
            Self::PartialLine { offset } => write!(
                f,
                "the last line, starting at byte offset {offset}, has no newline: the writer \
                 stopped in the middle of a record or the file was truncated"
            ),
            Self::Truncated { expected, found } => write!(
                f,
                "the log ends at seq {found} but seq {expected} was expected: records at the \
                 end were deleted"
            ),
            Self::CheckpointMismatch => f.write_str(
                "the MAC differs from the expected one for this seq: the log was rewritten \
                 with the audit key, or the expected chain state belongs to another log",
            ),
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, self.seq) {
            (BrokenKind::Truncated { .. }, _) if self.line == 0 => {
                write!(f, "empty log: {}", self.kind)
            }
            (BrokenKind::Truncated { .. }, _) => {
                write!(f, "after line {}: {}", self.line, self.kind)
            }
            (_, Some(seq)) => write!(f, "line {} (seq {seq}): {}", self.line, self.kind),
            (_, None) => write!(f, "line {}: {}", self.line, self.kind),
        }
    }
}

impl std::error::Error for VerifyError {}
