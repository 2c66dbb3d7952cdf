//! The key-access audit trail: one record per use or change of a
//! key-encryption key, chained with HMAC-SHA256 so that edits, deletions and
//! reordering can be detected later.
//!
//! # Record format
//!
//! The log is JSON lines: each record is one compact JSON object followed by
//! `\n`, with its fields in this fixed order:
//!
//! | field         | value                                                        |
//! |---------------|--------------------------------------------------------------|
//! | `seq`         | record number, starting at 1                                 |
//! | `time`        | RFC 3339 UTC time with milliseconds, `2026-01-02T03:04:05.678Z` |
//! | `request_id`  | request id, or null                                          |
//! | `principal`   | the client's access key id, or null                          |
//! | `client_addr` | the client's address, or null                                |
//! | `operation`   | S3 operation name or CLI command                             |
//! | `bucket`      | bucket name, or null                                         |
//! | `object_key`  | object key, or null                                          |
//! | `key_name`    | name of the key-encryption key                               |
//! | `key_version` | key version, or null                                         |
//! | `action`      | `load`, `generate`, `wrap`, `unwrap`, `create`, `rotate`, `export` or `delete` |
//! | `outcome`     | `ok` or `error`                                              |
//! | `error`       | error message when `outcome` is `error`, otherwise null      |
//! | `prev`        | hex of the previous record's `mac`, 64 zeros in record 1     |
//! | `mac`         | hex of the record's HMAC-SHA256                              |
//!
//! # MAC and chain
//!
//! `mac` is HMAC-SHA256 under the 32-byte audit key over the record's
//! canonical bytes. These are every field except `mac`, in the order above,
//! written as compact JSON by `serde_json`. That form has no whitespace,
//! keeps non-ASCII characters as raw UTF-8 and escapes only `"`, `\` and
//! control characters. The stored line is the
//! canonical bytes with `,"mac":"<hex>"` inserted before the closing brace,
//! and `verify` rejects a line that is not in exactly this form.
//!
//! Each record's `prev` is the `mac` of the record before it and its `seq` is
//! one more than that record's. So [`verify`] detects, at the line where it
//! happens:
//! - an edited record, because its MAC no longer matches;
//! - a deleted, duplicated or reordered record, because `seq` or `prev` no
//!   longer follows from the line before;
//! - an inserted or replaced record written without the audit key, because
//!   its MAC does not match.
//!
//! # What the chain does not protect against
//!
//! - Deleting the newest records. The remaining log is still a valid chain,
//!   so truncation of the tail shows only when `verify` is given a chain
//!   state ([`ChainState`]) saved somewhere the attacker cannot change.
//! - Anyone who holds the audit key. They can rewrite or extend the whole
//!   log with valid MACs, so the key must be kept away from whoever the log
//!   is meant to hold to account.
//! - Deleting or replacing the whole file. An empty log verifies.
//! - Events that were never recorded. The caller decides which key
//!   accesses reach [`Auditor::record`].
//! - The clock. `time` is the host's clock when the record was written and
//!   is authenticated, not checked for plausibility.
//!
//! # Failure behavior
//!
//! Auditing has no off switch. [`Auditor::record`] returns an error when a
//! sink fails, and the caller is expected to fail the key operation with
//! it. A failed record does not advance the chain, so the next successful
//! record follows the last one written.

mod auditor;
mod error;
mod key;
mod record;
mod sink;
mod verify;

#[cfg(test)]
mod tests;

pub use auditor::{Auditor, ChainState};
pub use error::{AuditError, BrokenKind, VerifyError};
pub use key::AuditKey;
pub use record::{AuditAction, AuditEvent};
pub use sink::{AuditSink, FileSink, FsyncPolicy, StdoutSink};
pub use verify::{verify, VerifyReport};

/// Maximum length of one record line in bytes, including the newline.
/// [`Auditor::record`] rejects longer records and [`verify`] reports longer
/// lines as malformed.
pub const MAX_LINE_LEN: usize = 64 * 1024;
