//! Verification of an audit log: every record's MAC, form and place in the
//! chain.

use super::auditor::ChainState;
use super::error::{BrokenKind, VerifyError};
use super::key::AuditKey;
use super::record::{is_valid_time, mac_matches, Outcome, Record};
use super::{AuditError, MAX_LINE_LEN};
use serde::Deserialize;
use std::io::{BufRead, Read};

/// The result of a successful [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Number of records, which is also the last record's `seq`.
    pub records: u64,
    /// Hex of the last record's MAC, or 64 zeros for an empty log.
    pub last_mac: String,
}

/// Verifies an audit log from its first line, and returns the record count
/// or the first line where the chain breaks as [`AuditError::Verify`].
///
/// `expected` is a chain state saved earlier, for example from
/// [`VerifyReport`] or [`super::Auditor::chain_state`]. When it is given,
/// the log must contain the record with that `seq` and MAC, which detects
/// deletion of the newest records up to that point. Records after it are
/// accepted. Reading a log that is being written can report the newest
/// line as [`BrokenKind::PartialLine`].
pub fn verify(
    mut reader: impl BufRead,
    key: &AuditKey,
    expected: Option<&ChainState>,
) -> Result<VerifyReport, AuditError> {
    let mut state = ChainState::GENESIS;
    // Checkpoint 0 is the start of every chain, whose MAC is fixed.
    if let Some(expected) = expected {
        if expected.seq == 0 && expected.mac != state.mac {
            return Err(AuditError::Verify(VerifyError {
                line: 0,
                seq: None,
                kind: BrokenKind::CheckpointMismatch,
            }));
        }
    }
    let mut line_number = 0u64;
    let mut offset = 0u64;
    let mut line = Vec::new();

    loop {
        line.clear();
        // One byte more than the maximum shows an overlong line without
        // reading all of it.
        let read = reader
            .by_ref()
            .take(MAX_LINE_LEN as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(AuditError::ReadLog)?;
        if read == 0 {
            break;
        }
        line_number += 1;
        let broken = |seq, kind| {
            AuditError::Verify(VerifyError {
                line: line_number,
                seq,
                kind,
            })
        };

        if line.last() != Some(&b'\n') {
            let kind = if line.len() > MAX_LINE_LEN {
                BrokenKind::Malformed(format!("line is longer than {MAX_LINE_LEN} bytes"))
            } else {
                BrokenKind::PartialLine { offset }
            };
            return Err(broken(peek_seq(&line), kind));
        }

        let record = check_line(&line, key).map_err(|(seq, kind)| broken(seq, kind))?;
        let seq = Some(record.seq);
        let expected_seq = state.seq.saturating_add(1);
        if record.seq != expected_seq || state.seq == u64::MAX {
            let kind = BrokenKind::SeqGap {
                expected: expected_seq,
                found: record.seq,
            };
            return Err(broken(seq, kind));
        }
        if record.prev != state.mac {
            return Err(broken(seq, BrokenKind::PrevMismatch));
        }
        if let Some(expected) = expected {
            if expected.seq == record.seq && expected.mac != record.mac {
                return Err(broken(seq, BrokenKind::CheckpointMismatch));
            }
        }

        state = ChainState::from(record);
        offset += read as u64;
    }

    if let Some(expected) = expected {
        if state.seq < expected.seq {
            return Err(AuditError::Verify(VerifyError {
                line: line_number,
                seq: (line_number > 0).then_some(state.seq),
                kind: BrokenKind::Truncated {
                    expected: expected.seq,
                    found: state.seq,
                },
            }));
        }
    }

    Ok(VerifyReport {
        records: state.seq,
        last_mac: state.mac_hex(),
    })
}

/// A record that passed [`check_line`], reduced to its place in the chain.
pub(crate) struct CheckedRecord {
    pub seq: u64,
    pub prev: [u8; 32],
    pub mac: [u8; 32],
}

impl From<CheckedRecord> for ChainState {
    fn from(record: CheckedRecord) -> Self {
        Self {
            seq: record.seq,
            mac: record.mac,
        }
    }
}

/// Checks one line, including its newline, on its own: that it parses,
/// that its MAC matches, and that it is in canonical form. On failure it
/// returns the record's `seq` when that could be read.
pub(crate) fn check_line(
    line: &[u8],
    key: &AuditKey,
) -> Result<CheckedRecord, (Option<u64>, BrokenKind)> {
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    if body.is_empty() {
        return Err((None, BrokenKind::Malformed("empty line".into())));
    }

    let mut record: Record = serde_json::from_slice(body)
        .map_err(|e| (peek_seq(body), BrokenKind::Malformed(e.to_string())))?;
    let seq = Some(record.seq);
    let malformed = |message: &str| (seq, BrokenKind::Malformed(message.into()));

    let mac_hex = record
        .mac
        .take()
        .ok_or_else(|| malformed("missing field `mac`"))?;
    let mac =
        decode_hash(&mac_hex).ok_or_else(|| malformed("mac is not 64 lowercase hex digits"))?;
    let canonical = record
        .canonical_bytes()
        .map_err(|e| malformed(&e.to_string()))?;
    if !mac_matches(key, &canonical, &mac) {
        return Err((seq, BrokenKind::MacMismatch));
    }

    // The MAC matched, so the values are authentic. The checks below catch
    // lines that were reformatted and records that s3seal would not write.
    record.mac = Some(mac_hex);
    let stored = record.line_bytes().map_err(|e| malformed(&e.to_string()))?;
    if stored != line {
        return Err(malformed(
            "not in canonical form: whitespace, field order, escaping or a missing null \
             field differs from what s3seal writes",
        ));
    }
    if !is_valid_time(&record.time) {
        return Err(malformed("time is not RFC 3339 UTC with milliseconds"));
    }
    if (record.outcome == Outcome::Error) != record.error.is_some() {
        return Err(malformed(
            "error must be set exactly when outcome is \"error\"",
        ));
    }
    let prev = decode_hash(&record.prev)
        .ok_or_else(|| malformed("prev is not 64 lowercase hex digits"))?;

    Ok(CheckedRecord {
        seq: record.seq,
        prev,
        mac,
    })
}

/// Decodes 64 lowercase hex digits, the only form s3seal writes.
fn decode_hash(text: &str) -> Option<[u8; 32]> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(bytes)
}

/// Reads `seq` from a line that does not parse as a record, for the error
/// report.
fn peek_seq(line: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct SeqOnly {
        seq: u64,
    }
    serde_json::from_slice::<SeqOnly>(line.strip_suffix(b"\n").unwrap_or(line))
        .ok()
        .map(|s| s.seq)
}
