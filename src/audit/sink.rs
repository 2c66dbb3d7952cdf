//! Destinations for audit record lines: the append-only log file and
//! standard output.

use super::{AuditError, MAX_LINE_LEN};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// A destination for audit records.
pub trait AuditSink: Send + Sync {
    /// Writes one or more complete record lines, each ending in `\n`, as
    /// one write. On error the auditor does not advance the chain, so a
    /// sink should leave no part of the lines behind.
    fn append(&self, line: &[u8]) -> Result<(), AuditError>;

    /// Fails when the sink cannot take another record whatever the storage
    /// does, as after another process changed its file. A sink that failed
    /// only for want of space or a passing I/O error is healthy again.
    fn check_writable(&self) -> Result<(), String> {
        Ok(())
    }
}

/// When [`FileSink`] flushes records to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Calls `sync_data` after every write, so a record that
    /// [`super::Auditor::record`] accepted survives a crash of the host,
    /// provided the storage honors cache flushes.
    /// Each record then waits for one flush of the disk's write cache.
    /// Records that arrive during a flush are written and flushed together
    /// next, so the disk's flush rate limits writes, not records.
    Always,
    /// Leaves flushing to the operating system. A crash of the host, but
    /// not of s3seal alone, can lose the newest records or leave an
    /// incomplete last line.
    Never,
}

/// Appends records to a log file and keeps an exclusive lock on the file
/// (`flock` on Unix) until dropped.
pub struct FileSink {
    path: PathBuf,
    fsync: FsyncPolicy,
    state: Mutex<FileState>,
}

struct FileState {
    file: File,
    /// The file's length after the last complete record: where the next
    /// record starts, and where a failed write is cut back to.
    len: u64,
    /// Byte offset of an incomplete record that a failed write left behind
    /// and that could not be truncated away.
    stuck_partial: Option<u64>,
    /// The change that another process made to the log, once a write found it.
    changed: Option<&'static str>,
}

impl FileSink {
    /// Opens or creates the log at `path` for appending, with mode 0600 when
    /// created, and locks it. Fails with [`AuditError::Locked`] when
    /// another open file handle, in this or another process, has the lock.
    pub fn open(path: &Path, fsync: FsyncPolicy) -> Result<Self, AuditError> {
        let write_error = |source| AuditError::Write {
            path: path.into(),
            source,
        };
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(parent) = parent {
            std::fs::create_dir_all(parent).map_err(write_error)?;
        }

        let mut options = std::fs::OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(write_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(AuditError::Locked { path: path.into() })
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(write_error(source)),
        }

        // A new file's directory entry is durable only once the directory
        // is synced. An empty file may be new, so sync in that case.
        let metadata = file.metadata().map_err(write_error)?;
        let len = metadata.len();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    log = %path.display(),
                    mode = %format!("{mode:o}"),
                    "other users may read or change the audit log, which names buckets and \
                     objects and can be cut at its end unnoticed; run chmod 600 on it"
                );
            }
        }
        if fsync == FsyncPolicy::Always && len == 0 {
            if let Some(parent) = parent {
                File::open(parent)
                    .and_then(|dir| dir.sync_all())
                    .map_err(write_error)?;
            }
        }

        Ok(Self {
            path: path.into(),
            fsync,
            state: Mutex::new(FileState {
                file,
                len,
                stuck_partial: None,
                changed: None,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the last line of the log, including its newline, or `None`
    /// when the log is empty.
    pub(crate) fn read_last_line(&self) -> Result<Option<Vec<u8>>, AuditError> {
        let read_error = |source| AuditError::Read {
            path: self.path.clone(),
            source,
        };
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut file = &state.file;
        let len = file.metadata().map_err(read_error)?.len();
        if len == 0 {
            return Ok(None);
        }

        let mut last_byte = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1)).map_err(read_error)?;
        file.read_exact(&mut last_byte).map_err(read_error)?;
        if last_byte[0] != b'\n' {
            let offset = find_line_start(file, len).map_err(read_error)?;
            return Err(AuditError::PartialTail {
                path: self.path.clone(),
                offset,
            });
        }

        let start = find_line_start(file, len - 1).map_err(read_error)?;
        let line_len = len - start;
        if line_len > MAX_LINE_LEN as u64 {
            return Err(AuditError::TailDoesNotVerify {
                path: self.path.clone(),
                reason: super::BrokenKind::Malformed(format!(
                    "line is {line_len} bytes, more than the maximum of {MAX_LINE_LEN}"
                )),
            });
        }
        // `line_len` is at most MAX_LINE_LEN, so it fits in usize.
        let mut line = vec![0u8; line_len as usize];
        file.seek(SeekFrom::Start(start)).map_err(read_error)?;
        file.read_exact(&mut line).map_err(read_error)?;
        Ok(Some(line))
    }
}

impl FileState {
    /// Fails, and keeps failing, once another process has deleted,
    /// truncated or written to the log, whose length s3seal expects to be
    /// `expected_len`.
    fn check_unchanged(&mut self, expected_len: u64) -> std::io::Result<()> {
        match changed_behind_writer(&self.file, expected_len)? {
            Some(change) => {
                self.changed = Some(change);
                Err(std::io::Error::other(changed_message(change)))
            }
            None => Ok(()),
        }
    }
}

fn changed_message(change: &str) -> String {
    format!(
        "the log file was {change} while s3seal runs; restore it from a backup and restart s3seal"
    )
}

/// Returns how the log was changed by someone else, when it was: deleted
/// (no directory entry left), or truncated or written to (its length is
/// not `expected_len`). One `fstat` gives both facts.
fn changed_behind_writer(file: &File, expected_len: u64) -> std::io::Result<Option<&'static str>> {
    let metadata = file.metadata()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if metadata.nlink() == 0 {
            return Ok(Some("deleted"));
        }
    }
    if metadata.len() != expected_len {
        return Ok(Some("truncated or written by another process"));
    }
    Ok(None)
}

/// Returns a description of the change when `path` names a file other
/// than `file`. A missing path is left to the caller, which names it.
fn replaced_at_path(file: &File, path: &Path) -> Option<&'static str> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let open = file.metadata().ok()?;
        let named = std::fs::metadata(path).ok()?;
        if (open.dev(), open.ino()) != (named.dev(), named.ino()) {
            return Some("replaced by another file");
        }
    }
    None
}

/// Returns the offset just past the last `\n` in the first `end` bytes of
/// `file`, or 0 when there is none.
fn find_line_start(mut file: &File, end: u64) -> std::io::Result<u64> {
    const CHUNK: u64 = 8192;
    let mut buffer = [0u8; CHUNK as usize];
    let mut chunk_end = end;
    while chunk_end > 0 {
        let chunk_start = chunk_end.saturating_sub(CHUNK);
        // The chunk is at most CHUNK bytes, so its length fits in usize.
        let chunk = &mut buffer[..(chunk_end - chunk_start) as usize];
        file.seek(SeekFrom::Start(chunk_start))?;
        file.read_exact(chunk)?;
        if let Some(index) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(chunk_start + index as u64 + 1);
        }
        chunk_end = chunk_start;
    }
    Ok(0)
}

impl AuditSink for FileSink {
    fn check_writable(&self) -> Result<(), String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(change) = state.changed {
            return Err(changed_message(change));
        }
        if let Some(offset) = state.stuck_partial {
            return Err(format!(
                "an earlier failed write left an incomplete record at byte offset {offset} \
                 that could not be removed"
            ));
        }
        let expected = state.len;
        state.check_unchanged(expected).map_err(|e| e.to_string())?;
        // A log renamed away and replaced by another file, as a copy moved
        // into its place, is no longer the log at the path, and records
        // written to it would not be found there.
        if let Some(change) = replaced_at_path(&state.file, &self.path) {
            state.changed = Some(change);
            return Err(changed_message(change));
        }
        Ok(())
    }

    fn append(&self, line: &[u8]) -> Result<(), AuditError> {
        let write_error = |source| AuditError::Write {
            path: self.path.clone(),
            source,
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(change) = state.changed {
            return Err(write_error(std::io::Error::other(changed_message(change))));
        }
        if let Some(offset) = state.stuck_partial {
            return Err(write_error(std::io::Error::other(format!(
                "an earlier failed write left an incomplete record at byte offset {offset} \
                 that could not be removed"
            ))));
        }

        let start = state.len;
        // Checked before the write too, so that no record lands in a log
        // that another process has changed.
        state.check_unchanged(start).map_err(write_error)?;
        let written = (&state.file)
            .write_all(line)
            .and_then(|()| match self.fsync {
                FsyncPolicy::Always => state.file.sync_data(),
                FsyncPolicy::Never => Ok(()),
            });
        if let Err(source) = written {
            // Remove whatever part of the record reached the file, so the
            // next record starts on a line of its own. After a failed
            // sync_data the whole record goes, because the chain does not
            // include it.
            let removed = state.file.set_len(start).is_ok()
                || state.file.metadata().is_ok_and(|m| m.len() == start);
            if !removed {
                state.stuck_partial = Some(start);
            }
            return Err(write_error(source));
        }
        // A log deleted while s3seal runs takes every record written to it
        // since, and a log truncated or appended to by another writer no
        // longer contains the chain. In both cases the record counts as lost,
        // and the log stays failed until a restart.
        let expected_len = start + line.len() as u64;
        state.check_unchanged(expected_len).map_err(write_error)?;
        state.len = expected_len;
        Ok(())
    }
}

impl std::fmt::Debug for FileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSink")
            .field("path", &self.path)
            .field("fsync", &self.fsync)
            .finish_non_exhaustive()
    }
}

/// Writes each record line to standard output, holding the stdout lock for
/// the line so that other output cannot interleave with it.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdoutSink;

impl AuditSink for StdoutSink {
    fn append(&self, line: &[u8]) -> Result<(), AuditError> {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(line)
            .and_then(|()| stdout.flush())
            .map_err(AuditError::Stdout)
    }
}
