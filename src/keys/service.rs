//! Audited access to key-encryption keys. [`KeyService`] owns the loaded
//! keyring and the audit log, and every use of a key version goes through
//! one of its methods, each of which writes exactly one audit record.
//!
//! The cipher work happens in closures that the caller passes in, because
//! `crypto` builds on the key types of this module and `keys` must not
//! depend on `crypto` in turn. A closure receives the key version as a
//! [`Kek`] and its result decides the record's outcome.

use super::escrow::{Escrow, EscrowError, RecoveredVersion};
use super::keyring::{KeyVersion, Keyring, KeyringError};
use super::SecretKey;
use crate::audit::{AuditAction, AuditError, AuditEvent, AuditKey, Auditor, FsyncPolicy};
use crate::config::{AuditConfig, AuditFsync};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The client and request behind a key access. The proxy builds one per
/// request, and CLI commands leave the request fields empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessContext {
    pub request_id: Option<String>,
    /// The client's access key id.
    pub principal: Option<String>,
    pub client_addr: Option<String>,
    /// S3 operation name, such as `PutObject`, or the CLI command.
    pub operation: String,
    /// Bucket of the request. The audit record names the bucket of the
    /// object whose data key is used, which differs for a copy source.
    pub bucket: Option<String>,
    /// Object key of the request.
    pub object_key: Option<String>,
}

impl AccessContext {
    /// Returns a context for a command or start-up step outside any request.
    pub fn command(operation: impl Into<String>) -> Self {
        Self {
            operation: operation.into(),
            ..Self::default()
        }
    }
}

/// One key-encryption key version, lent to a closure of [`KeyService`].
#[derive(Clone, Copy)]
pub struct Kek<'a> {
    pub name: &'a str,
    pub version: u32,
    pub secret: &'a SecretKey,
}

impl fmt::Debug for Kek<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("name", &self.name)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The object whose data key a key operation produces or opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectRef<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
}

/// A failed key operation.
#[derive(Debug, thiserror::Error)]
pub enum KeyAccessError<E> {
    /// The key or key version is not in the keyring.
    #[error(transparent)]
    Key(KeyringError),
    /// The closure failed, for example because a wrapped key did not
    /// authenticate.
    #[error("{0}")]
    Operation(E),
    /// The audit record could not be written and `audit.fail_closed` is
    /// set, so the result of the operation was discarded.
    #[error(
        "the key operation was not performed because its audit record could not be written: {0}"
    )]
    Audit(AuditError),
}

/// A start-up failure of the key service.
#[derive(Debug, thiserror::Error)]
pub enum KeyServiceError {
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error("audit log: {0}")]
    Audit(#[from] AuditError),
    #[error("key escrow: {0}")]
    Escrow(#[from] EscrowError),
}

/// Counters of key operations and audit writes, for the metrics endpoint.
#[derive(Debug, Default)]
pub struct KeyStats {
    /// Key operations by action and outcome: `[action][0]` counts
    /// successes and `[action][1]` failures, actions in [`ACTIONS`] order.
    operations: [[AtomicU64; 2]; ACTIONS.len()],
    audit_records: AtomicU64,
    audit_failures: AtomicU64,
}

/// Every audit action, in the order of [`KeyStats`] counters.
pub const ACTIONS: [AuditAction; 9] = [
    AuditAction::Load,
    AuditAction::Generate,
    AuditAction::Wrap,
    AuditAction::Unwrap,
    AuditAction::Create,
    AuditAction::Rotate,
    AuditAction::Export,
    AuditAction::Import,
    AuditAction::Delete,
];

/// Returns the lowercase name of an action, as in the audit log.
pub fn action_name(action: AuditAction) -> &'static str {
    match action {
        AuditAction::Load => "load",
        AuditAction::Generate => "generate",
        AuditAction::Wrap => "wrap",
        AuditAction::Unwrap => "unwrap",
        AuditAction::Create => "create",
        AuditAction::Rotate => "rotate",
        AuditAction::Export => "export",
        AuditAction::Import => "import",
        AuditAction::Delete => "delete",
    }
}

fn action_index(action: AuditAction) -> usize {
    ACTIONS.iter().position(|a| *a == action).unwrap_or(0)
}

impl KeyStats {
    fn count_operation(&self, action: AuditAction, ok: bool) {
        self.operations[action_index(action)][usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
    }

    /// Returns the number of operations with `action` that succeeded
    /// (`ok`) or failed.
    pub fn operations(&self, action: AuditAction, ok: bool) -> u64 {
        self.operations[action_index(action)][usize::from(!ok)].load(Ordering::Relaxed)
    }

    /// Returns the number of audit records written.
    pub fn audit_records(&self) -> u64 {
        self.audit_records.load(Ordering::Relaxed)
    }

    /// Returns the number of audit records that could not be written.
    pub fn audit_failures(&self) -> u64 {
        self.audit_failures.load(Ordering::Relaxed)
    }
}

/// The loaded keyring behind the audit log.
pub struct KeyService {
    keyring: Keyring,
    auditor: Arc<Auditor>,
    /// Path of the audit log file, when the auditor writes one.
    audit_path: Option<PathBuf>,
    fail_closed: bool,
    stats: KeyStats,
    /// Whether the last audit write failed, so that a recovery is logged
    /// once.
    audit_failing: AtomicBool,
}

impl fmt::Debug for KeyService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyService")
            .field("keyring", &self.keyring)
            .field("audit_path", &self.audit_path)
            .field("fail_closed", &self.fail_closed)
            .finish_non_exhaustive()
    }
}

/// Opens the audit log of `config`, creating the audit key when it is
/// missing.
pub fn open_auditor(config: &AuditConfig) -> Result<Auditor, AuditError> {
    check_audit_key(config)?;
    let log_is_empty = std::fs::metadata(&config.file).map_or(true, |meta| meta.len() == 0);
    if log_is_empty && config.key_file.exists() {
        tracing::warn!(
            log = %config.file.display(),
            key = %config.key_file.display(),
            "the audit log is missing or empty but its key exists, so earlier records were \
             deleted or moved; the log starts again at record 1"
        );
    }
    let key = AuditKey::load_or_create(&config.key_file)?;
    let fsync = match config.fsync {
        AuditFsync::Always => FsyncPolicy::Always,
        AuditFsync::Never => FsyncPolicy::Never,
    };
    Auditor::open_file(&config.file, key, fsync, config.stdout)
}

/// Warns when the keyring contains keys but neither the audit key nor a
/// log with records exists. s3seal's key commands write records as they
/// make keys, so the log and its key were deleted or moved, or the keyring
/// was restored without them.
fn warn_new_chain_beside_keys(keyring: &Keyring, config: &AuditConfig) {
    let log_has_records = std::fs::metadata(&config.file).is_ok_and(|meta| meta.len() > 0);
    if keyring.names().next().is_none() || config.key_file.exists() || log_has_records {
        return;
    }
    tracing::warn!(
        log = %config.file.display(),
        key = %config.key_file.display(),
        "the keyring holds keys but the audit log and its key are missing, so a new audit \
         chain begins at record 1; if an earlier log and key were deleted, their records are \
         lost, and `audit verify --expect` with a saved checkpoint shows it"
    );
}

/// Checks the audit key file: a present one must load, and a missing one
/// may be created only for a log without records, because the records of
/// a log verify only with the key that wrote them.
pub fn check_audit_key(config: &AuditConfig) -> Result<(), AuditError> {
    if config.key_file.exists() {
        return AuditKey::load(&config.key_file).map(drop);
    }
    let log_has_records = std::fs::metadata(&config.file).is_ok_and(|meta| meta.len() > 0);
    if log_has_records {
        return Err(AuditError::KeyMissing {
            key: config.key_file.clone(),
            log: config.file.clone(),
        });
    }
    Ok(())
}

/// Returns the current UTC time in RFC 3339, for the `created` field of
/// new key versions.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl KeyService {
    /// Opens the audit log and loads the keyring for the server, writing
    /// one `load` record per key version.
    ///
    /// `required` names the keys that bucket rules refer to. A missing one
    /// fails the start, unless `create_missing` is set: then it is created
    /// and recorded with a `create` record. `auditor` replaces the audit
    /// log of `config` when given.
    pub fn start(
        config: &crate::config::Config,
        required: &[&str],
        auditor: Option<Auditor>,
    ) -> Result<Self, KeyServiceError> {
        // The keyring loads first, so that a start that fails on it leaves
        // no new audit key or log behind.
        let path = &config.keys.keyring_file;
        let keys = &config.keys;
        let keyring = if keys.create_missing {
            Keyring::load_or_empty(path)?
        } else {
            Keyring::load(path)?
        };
        let (auditor, audit_path) = match auditor {
            Some(auditor) => (auditor, None),
            None => (
                {
                    warn_new_chain_beside_keys(&keyring, &config.audit);
                    open_auditor(&config.audit)?
                },
                Some(config.audit.file.clone()),
            ),
        };
        let mut service = Self {
            keyring,
            auditor: Arc::new(auditor),
            audit_path,
            fail_closed: config.audit.fail_closed,
            stats: KeyStats::default(),
            audit_failing: AtomicBool::new(false),
        };
        service.record_loads()?;

        let escrow = Escrow::new(&keys.escrow_dir, &keys.escrow_recipients)?;
        if let Some(escrow) = &escrow {
            // A marker of a version that the keyring contains outlived the
            // keyring write of an interrupted command, and its copy is final.
            escrow.clear_markers(|key, number| service.keyring.version(key, number).is_ok());
        }
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|name| !service.keyring.contains(name))
            .collect();
        for name in missing {
            if !keys.create_missing {
                return Err(KeyringError::KeyNotFound(name.to_string()).into());
            }
            service.create_missing(path, name, escrow.as_ref(), &keys.escrow_dir)?;
        }
        service.warn_unescrowed(escrow.as_ref(), !required.is_empty());
        Ok(service)
    }

    /// Creates key `name` for `keys.create_missing`, with its escrow copy
    /// when escrow is on, and records both. The keyring file is written
    /// last, so a start that stops before leaves no key without its copy
    /// and records, and the next start creates the key anew.
    fn create_missing(
        &mut self,
        path: &Path,
        name: &str,
        escrow: Option<&Escrow>,
        escrow_dir: &Path,
    ) -> Result<(), KeyServiceError> {
        let context = AccessContext::command("serve");
        // A copy of version 1 without the key means the keyring was lost,
        // and a new version 1 must not replace the escrowed one, even when
        // escrow is off now. A copy with the marker of an interrupted start
        // is replaced (see `Escrow::begin_copy`).
        let prepared = match escrow {
            Some(escrow) => self
                .keyring
                .with_new_key(name, &mut rand::rngs::OsRng, &now_rfc3339())
                .map_err(KeyServiceError::from)
                .and_then(|keyring| {
                    let version = keyring.version(name, 1)?;
                    escrow.begin_copy(name, 1)?;
                    if let Err(error) = escrow.seal(name, version) {
                        escrow.abandon_copy(name, 1);
                        return Err(error.into());
                    }
                    Ok(keyring)
                }),
            None => super::escrow::check_no_copy(escrow_dir, name, 1)
                .map_err(KeyServiceError::from)
                .and_then(|()| {
                    self.keyring
                        .with_new_key(name, &mut rand::rngs::OsRng, &now_rfc3339())
                        .map_err(KeyServiceError::from)
                }),
        };
        let discard = || {
            if let Some(escrow) = escrow {
                escrow.discard_copy(name, 1);
            }
        };
        let outcome = prepared.as_ref().map(|_| ()).map_err(ToString::to_string);
        if let Err(error) =
            self.record_command(&context, name, Some(1), AuditAction::Create, outcome)
        {
            if prepared.is_ok() {
                discard();
            }
            return Err(error.into());
        }
        let mut keyring = prepared?;
        let undone = |reason: &str| {
            discard();
            let context = AccessContext::command(format!("serve (undone: {reason})"));
            if let Err(error) =
                self.record_command(&context, name, Some(1), AuditAction::Delete, Ok(()))
            {
                tracing::error!(
                    key = name,
                    %error,
                    "the audit log holds the record of a key that was taken out again, and the record of the removal failed"
                );
            }
        };
        if escrow.is_some() {
            if let Err(error) =
                self.record_command(&context, name, Some(1), AuditAction::Export, Ok(()))
            {
                undone("the export record failed");
                return Err(error.into());
            }
        }
        if let Err(error) = keyring.write(path) {
            undone("the keyring write failed");
            return Err(error.into());
        }
        if let Some(escrow) = escrow {
            escrow.clear_markers(|key, number| keyring.version(key, number).is_ok());
        }
        self.keyring = keyring;
        tracing::warn!(
            key = name,
            keyring = %path.display(),
            "created a development key-encryption key because keys.create_missing is set; \
             back up the keyring, because objects encrypted under it cannot be read without it"
        );
        Ok(())
    }

    /// Warns about key versions without an escrow copy.
    fn warn_unescrowed(&self, escrow: Option<&Escrow>, encrypting: bool) {
        match escrow {
            None if encrypting => tracing::warn!(
                "keys.escrow_recipients is empty, so key versions get no escrow copy; \
                 a lost keyring makes every encrypted object unreadable"
            ),
            None => {}
            Some(escrow) => {
                for (name, version) in self.keyring.versions() {
                    if !escrow.exists(name, version.version) {
                        tracing::warn!(
                            key = name,
                            version = version.version,
                            escrow_dir = %escrow.dir().display(),
                            "key version has no escrow copy; run `s3seal keys escrow` to write it"
                        );
                    } else if let Err(error) = escrow.check_intact(name, version.version) {
                        tracing::warn!(key = name, version = version.version, %error, "damaged escrow copy");
                    }
                }
            }
        }
    }

    /// Builds a service from a loaded keyring and an auditor, without
    /// writing any record. `audit_path` is the log file that the readiness
    /// check probes.
    pub fn new(
        keyring: Keyring,
        auditor: Auditor,
        audit_path: Option<PathBuf>,
        fail_closed: bool,
    ) -> Self {
        Self {
            keyring,
            auditor: Arc::new(auditor),
            audit_path,
            fail_closed,
            stats: KeyStats::default(),
            audit_failing: AtomicBool::new(false),
        }
    }

    /// Writes one `load` record for every key version in the keyring.
    fn record_loads(&self) -> Result<(), KeyServiceError> {
        let context = AccessContext::command("serve");
        for (name, version) in self.keyring.versions() {
            self.record_command(
                &context,
                name,
                Some(version.version),
                AuditAction::Load,
                Ok(()),
            )?;
        }
        Ok(())
    }

    /// Records a start-up or command event. A failed write is returned
    /// when `fail_closed` is set and only logged otherwise.
    fn record_command(
        &self,
        context: &AccessContext,
        key_name: &str,
        key_version: Option<u32>,
        action: AuditAction,
        outcome: Result<(), String>,
    ) -> Result<(), AuditError> {
        let event = AuditEvent {
            request_id: context.request_id.clone(),
            principal: context.principal.clone(),
            client_addr: context.client_addr.clone(),
            operation: context.operation.clone(),
            bucket: None,
            object_key: None,
            key_name: key_name.into(),
            key_version,
            action,
            outcome,
        };
        self.stats.count_operation(action, event.outcome.is_ok());
        self.write(event)
    }

    /// Runs `operation` with the current version of `key_name` to generate
    /// and wrap a new data key for `object`, and records one `generate`
    /// event.
    pub async fn generate<T, E: fmt::Display>(
        &self,
        context: &AccessContext,
        key_name: &str,
        object: ObjectRef<'_>,
        operation: impl FnOnce(Kek<'_>) -> Result<T, E>,
    ) -> Result<T, KeyAccessError<E>> {
        let version = self.keyring.current(key_name);
        self.run(
            context,
            AuditAction::Generate,
            key_name,
            None,
            version,
            object,
            operation,
        )
        .await
    }

    /// Runs `operation` with the current version of `key_name` to wrap an
    /// existing data key for `object`, and records one `wrap` event.
    pub async fn wrap<T, E: fmt::Display>(
        &self,
        context: &AccessContext,
        key_name: &str,
        object: ObjectRef<'_>,
        operation: impl FnOnce(Kek<'_>) -> Result<T, E>,
    ) -> Result<T, KeyAccessError<E>> {
        let version = self.keyring.current(key_name);
        self.run(
            context,
            AuditAction::Wrap,
            key_name,
            None,
            version,
            object,
            operation,
        )
        .await
    }

    /// Runs `operation` with version `version` of `key_name` to wrap a
    /// data key for `object`, and records one `wrap` event. A multipart
    /// upload wraps its part key under the version of its object envelope.
    pub async fn wrap_version<T, E: fmt::Display>(
        &self,
        context: &AccessContext,
        key_name: &str,
        version: u32,
        object: ObjectRef<'_>,
        operation: impl FnOnce(Kek<'_>) -> Result<T, E>,
    ) -> Result<T, KeyAccessError<E>> {
        let found = self.keyring.version(key_name, version);
        self.run(
            context,
            AuditAction::Wrap,
            key_name,
            Some(version),
            found,
            object,
            operation,
        )
        .await
    }

    /// Runs `operation` with version `version` of `key_name` to unwrap the
    /// data key of `object`, and records one `unwrap` event.
    pub async fn unwrap<T, E: fmt::Display>(
        &self,
        context: &AccessContext,
        key_name: &str,
        version: u32,
        object: ObjectRef<'_>,
        operation: impl FnOnce(Kek<'_>) -> Result<T, E>,
    ) -> Result<T, KeyAccessError<E>> {
        let found = self.keyring.version(key_name, version);
        self.run(
            context,
            AuditAction::Unwrap,
            key_name,
            Some(version),
            found,
            object,
            operation,
        )
        .await
    }

    /// Runs `operation` on a found key version, then records the outcome.
    #[allow(clippy::too_many_arguments)]
    async fn run<T, E: fmt::Display>(
        &self,
        context: &AccessContext,
        action: AuditAction,
        key_name: &str,
        requested_version: Option<u32>,
        found: Result<&KeyVersion, KeyringError>,
        object: ObjectRef<'_>,
        operation: impl FnOnce(Kek<'_>) -> Result<T, E>,
    ) -> Result<T, KeyAccessError<E>> {
        let (result, key_version) = match found {
            Ok(version) => {
                let kek = Kek {
                    name: key_name,
                    version: version.version,
                    secret: &version.key,
                };
                (
                    operation(kek).map_err(KeyAccessError::Operation),
                    Some(version.version),
                )
            }
            Err(error) => (Err(KeyAccessError::Key(error)), requested_version),
        };
        let outcome = match &result {
            Ok(_) => Ok(()),
            Err(KeyAccessError::Key(error)) => Err(error.to_string()),
            Err(KeyAccessError::Operation(error)) => Err(error.to_string()),
            Err(KeyAccessError::Audit(error)) => Err(error.to_string()),
        };
        let event = AuditEvent {
            request_id: context.request_id.clone(),
            principal: context.principal.clone(),
            client_addr: context.client_addr.clone(),
            operation: context.operation.clone(),
            bucket: Some(object.bucket.into()),
            object_key: Some(object.key.into()),
            key_name: key_name.into(),
            key_version,
            action,
            outcome,
        };
        let written = self.write_async(event).await;
        // A result discarded because its record could not be written is a
        // failed operation for the metrics too.
        self.stats
            .count_operation(action, result.is_ok() && written.is_ok());
        match written {
            Ok(()) => result,
            // The result, such as a data key, is dropped and zeroized here.
            Err(error) => Err(KeyAccessError::Audit(error)),
        }
    }

    /// Writes a record, counts it and applies `fail_closed` to a failure:
    /// the error is returned when it is set and only logged otherwise.
    fn write(&self, event: AuditEvent) -> Result<(), AuditError> {
        let request_id = event.request_id.clone();
        let result = self.auditor.record(event);
        self.finish_write(request_id, result)
    }

    /// Like [`Self::write`], without holding the thread while other
    /// records are written.
    async fn write_async(&self, event: AuditEvent) -> Result<(), AuditError> {
        let request_id = event.request_id.clone();
        let result = self.auditor.record_async(event).await;
        self.finish_write(request_id, result)
    }

    /// Counts a written or failed record and applies `fail_closed`.
    fn finish_write(
        &self,
        request_id: Option<String>,
        result: Result<u64, AuditError>,
    ) -> Result<(), AuditError> {
        match result {
            Ok(_) => {
                self.stats.audit_records.fetch_add(1, Ordering::Relaxed);
                if self.audit_failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("audit log writes succeed again");
                }
                Ok(())
            }
            Err(error) => {
                self.stats.audit_failures.fetch_add(1, Ordering::Relaxed);
                // The first failure of a run of failures is logged at error
                // level; the rest are counted and reported by their requests.
                if !self.audit_failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        req.id = %request_id.as_deref().unwrap_or_default(),
                        %error,
                        fail_closed = self.fail_closed,
                        "failed to write an audit record"
                    );
                } else {
                    tracing::debug!(
                        req.id = %request_id.as_deref().unwrap_or_default(),
                        %error,
                        "failed to write an audit record"
                    );
                }
                if self.fail_closed {
                    Err(error)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Returns the counters of key operations and audit writes.
    pub fn stats(&self) -> &KeyStats {
        &self.stats
    }

    /// Returns the loaded keyring, for listing names and versions. Its key
    /// material stays private to this module.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Checks that the audit log can take records.
    ///
    /// For a log file, the check first confirms that the log still exists
    /// at its path and opens it for appending, which fails when the file
    /// was made read-only or immutable. Then it creates, writes and removes
    /// the file `<log>.probe` next to it, which fails when the directory is
    /// gone, not writable or out of space. It writes nothing into the log.
    /// The sinks then check that the log is still the file they write and
    /// that no other process changed it. Without a log file, the check
    /// reports whether the last record was written.
    pub fn check_audit_sink(&self) -> Result<(), String> {
        // The log's own state comes first, because it names the cause that
        // a failed record only points to.
        if let Some(path) = &self.audit_path {
            probe_directory(path)?;
        }
        // A log that another process replaced or changed stays failed.
        if let Err(reason) = self.auditor.check_writable() {
            return Err(match self.audit_failing.load(Ordering::Relaxed) {
                true => format!("the last audit record could not be written: {reason}"),
                false => reason,
            });
        }
        if self.audit_failing.load(Ordering::Relaxed) && self.audit_path.is_none() {
            return Err(
                "the last audit record could not be written; the server log names the cause".into(),
            );
        }
        Ok(())
    }
}

fn probe_directory(log: &Path) -> Result<(), String> {
    use std::io::Write;
    // Concurrent `/readyz` requests share the probe's path, so one at a
    // time creates and removes it.
    static PROBE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _probing = PROBE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match std::fs::metadata(log) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "audit log {} no longer exists at its path, because it was deleted or renamed; \
                 restore it there and restart s3seal",
                log.display()
            ))
        }
        Err(e) => return Err(format!("failed to check audit log {}: {e}", log.display())),
    }
    if let Err(e) = std::fs::OpenOptions::new().append(true).open(log) {
        return Err(format!(
            "failed to open audit log {} for writing: {e}",
            log.display()
        ));
    }
    let mut probe_name = log.as_os_str().to_owned();
    probe_name.push(".probe");
    let probe = PathBuf::from(probe_name);
    // Removing a leftover probe removes a symbolic link itself, and
    // `create_new` refuses any entry at the path, links included, so the
    // probe never writes through a link into another file.
    match std::fs::remove_file(&probe) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("failed to remove {}: {e}", probe.display())),
    }
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut file| file.write_all(b"probe\n"));
    let removed = std::fs::remove_file(&probe);
    result.map_err(|e| {
        format!(
            "failed to write {} next to the audit log: {e}",
            probe.display()
        )
    })?;
    removed.map_err(|e| format!("failed to remove {}: {e}", probe.display()))
}

/// A key-management command from the CLI: changes the keyring file,
/// writes escrow copies of new key versions, and records each step in the
/// audit log.
pub struct KeyAdmin<'a> {
    pub keyring_path: &'a Path,
    pub auditor: &'a Auditor,
    /// Seals every new key version; `None` when escrow is off.
    pub escrow: Option<&'a Escrow>,
}

/// A failed key-management command.
#[derive(Debug, thiserror::Error)]
pub enum KeyAdminError {
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// The escrow copy of a new version could not be written, so the
    /// keyring file was not changed.
    #[error("the escrow copy of the new version could not be written, so the keyring was left unchanged: {0}")]
    Escrow(EscrowError),
    /// `keys escrow` found a damaged copy or could not write one. The
    /// keyring is not changed by that command.
    #[error(transparent)]
    EscrowCopy(EscrowError),
    /// The command needs escrow recipients, and the configuration has none.
    #[error("keys.escrow_recipients is empty; add the security team's age recipients first")]
    EscrowOff,
    /// The audit record of a change could not be written, so the keyring
    /// file was not changed.
    #[error(
        "the audit record of the change could not be written, so the keyring was left unchanged: {0}"
    )]
    AuditAfterChange(AuditError),
    /// The command failed and its audit record could not be written either.
    #[error("{error}; its audit record could not be written either: {audit}")]
    AuditAfterFailure {
        error: Box<KeyAdminError>,
        audit: AuditError,
    },
    /// The keyring file could not be written after the escrow copy and the
    /// audit records of the change were, so the copy was removed and a
    /// `delete` record marks the change as undone.
    #[error(
        "{0}; the keyring was left unchanged, the escrow copy of the change was removed, and a \
         `delete` audit record marks its records as undone"
    )]
    KeyringWrite(KeyringError),
    /// A document of `keys import` conflicts with the keyring or with an
    /// earlier document, so none of the documents was imported.
    #[error("{origin}: {source}; no version was imported")]
    Import {
        origin: String,
        source: KeyringError,
    },
    /// Two documents of one `keys import` hold one version with other
    /// material, so they come from different keyrings.
    #[error(
        "{origin}: key {name:?} version {version} has other material than an earlier file of \
         this import, so the files come from different keyrings; no version was imported"
    )]
    DocumentConflict {
        origin: String,
        name: String,
        version: u32,
    },
}

impl KeyAdmin<'_> {
    /// Creates key `name` with version 1 and writes one `create` record,
    /// and with escrow on, its escrow copy and one `export` record.
    pub fn create(&self, name: &str) -> Result<u32, KeyAdminError> {
        let prepared = Keyring::load_or_empty(self.keyring_path).and_then(|keyring| {
            let created = keyring.with_new_key(name, &mut rand::rngs::OsRng, &now_rfc3339())?;
            Ok((created, 1))
        });
        self.change("keys create", name, AuditAction::Create, prepared)
    }

    /// Adds a new current version to key `name` and writes one `rotate`
    /// record, and with escrow on, its escrow copy and one `export` record.
    pub fn rotate(&self, name: &str) -> Result<u32, KeyAdminError> {
        let prepared = Keyring::load(self.keyring_path).and_then(|keyring| {
            keyring.with_rotated_key(name, &mut rand::rngs::OsRng, &now_rfc3339())
        });
        self.change("keys rotate", name, AuditAction::Rotate, prepared)
    }

    /// Writes the escrow copy of every key version that has none, with one
    /// `export` record each, and returns the paths written.
    pub fn escrow_missing(&self) -> Result<Vec<PathBuf>, KeyAdminError> {
        let escrow = self.escrow.ok_or(KeyAdminError::EscrowOff)?;
        let keyring = Keyring::load(self.keyring_path)?;
        let mut written = Vec::new();
        for (name, version) in keyring.versions() {
            if escrow.exists(name, version.version) {
                escrow
                    .check_intact(name, version.version)
                    .map_err(KeyAdminError::EscrowCopy)?;
                continue;
            }
            let result = escrow.seal(name, version);
            let mut event = AuditEvent::new("keys escrow", name, AuditAction::Export);
            event.key_version = Some(version.version);
            event.outcome = result.as_ref().map(|_| ()).map_err(ToString::to_string);
            match (result, self.auditor.record(event)) {
                (Ok(path), Ok(_)) => written.push(path),
                (Ok(path), Err(audit)) => {
                    // An escrow copy without its record is removed.
                    let _ = std::fs::remove_file(path);
                    return Err(KeyAdminError::AuditAfterChange(audit));
                }
                (Err(error), Ok(_)) => return Err(KeyAdminError::EscrowCopy(error)),
                (Err(error), Err(audit)) => {
                    return Err(KeyAdminError::AuditAfterFailure {
                        error: Box::new(KeyAdminError::EscrowCopy(error)),
                        audit,
                    })
                }
            }
        }
        Ok(written)
    }

    /// Adds key versions recovered from escrow copies to the keyring,
    /// creating the keyring when it is missing, with one `import` record
    /// each. Each document comes with its origin, a file name or standard
    /// input, for errors.
    ///
    /// The import is all or nothing: every document is checked against the
    /// keyring and the documents before it, and only when none conflicts
    /// are the records and then the keyring written, once. Returns, per
    /// document, `false` when the keyring or an earlier document already
    /// held that version with the same material.
    pub fn import(
        &self,
        documents: Vec<(String, RecoveredVersion)>,
    ) -> Result<Vec<bool>, KeyAdminError> {
        const COMMAND: &str = "keys import";
        let versions: Vec<(String, u32)> = documents
            .iter()
            .map(|(_, recovered)| (recovered.name.clone(), recovered.version.version))
            .collect();
        let Some((first_name, first_version)) = versions.first() else {
            return Ok(Vec::new());
        };
        let mut keyring = match Keyring::load_or_empty(self.keyring_path) {
            Ok(keyring) => keyring,
            Err(error) => {
                let error = KeyAdminError::Keyring(error);
                return Err(self.record_import_failure(first_name, *first_version, error));
            }
        };

        let original = keyring.clone();
        let mut added = Vec::with_capacity(documents.len());
        for (origin, recovered) in documents {
            let (name, version) = (recovered.name.clone(), recovered.version.version);
            match keyring.with_imported_version(&name, recovered.version) {
                Ok(Some(next)) => {
                    keyring = next;
                    added.push(true);
                }
                Ok(None) => added.push(false),
                Err(KeyringError::VersionConflict { .. })
                    if original.version(&name, version).is_err() =>
                {
                    let error = KeyAdminError::DocumentConflict {
                        origin,
                        name: name.clone(),
                        version,
                    };
                    return Err(self.record_import_failure(&name, version, error));
                }
                Err(source) => {
                    let error = KeyAdminError::Import { origin, source };
                    return Err(self.record_import_failure(&name, version, error));
                }
            }
        }

        // A copy whose version the keyring already contains changes nothing,
        // and its record names that outcome.
        for (index, ((name, version), &is_new)) in versions.iter().zip(&added).enumerate() {
            let operation = match is_new {
                true => COMMAND.to_string(),
                false => format!("{COMMAND} (version already present)"),
            };
            let mut event = AuditEvent::new(operation, name, AuditAction::Import);
            event.key_version = Some(*version);
            if let Err(audit) = self.auditor.record(event) {
                self.record_imports_undone(&versions[..index], &added, "an import record failed");
                return Err(KeyAdminError::AuditAfterChange(audit));
            }
        }

        if added.contains(&true) {
            if let Err(error) = keyring.write(self.keyring_path) {
                self.record_imports_undone(&versions, &added, "the keyring write failed");
                return Err(KeyAdminError::KeyringWrite(error));
            }
        }
        Ok(added)
    }

    /// Writes the error record of an import that changed nothing, and
    /// returns `error`, with the record's failure when it could not be
    /// written.
    fn record_import_failure(
        &self,
        name: &str,
        version: u32,
        error: KeyAdminError,
    ) -> KeyAdminError {
        let mut event = AuditEvent::new("keys import", name, AuditAction::Import);
        event.key_version = Some(version);
        event.outcome = Err(error.to_string());
        match self.auditor.record(event) {
            Ok(_) => error,
            Err(audit) => KeyAdminError::AuditAfterFailure {
                error: Box::new(error),
                audit,
            },
        }
    }

    /// Writes a `delete` record for each imported version in `recorded`
    /// whose `import` record was written but which the keyring did not
    /// take. `added` holds, per document, whether it adds a version.
    fn record_imports_undone(&self, recorded: &[(String, u32)], added: &[bool], reason: &str) {
        for ((name, version), _) in recorded.iter().zip(added).filter(|(_, &is_new)| is_new) {
            self.record_undone("keys import", name, *version, reason);
        }
    }

    /// Records that a change whose own record was written has been undone,
    /// for `reason`, so that the log does not claim a version that the
    /// keyring lacks. The log may refuse this record too, which is logged.
    fn record_undone(&self, command: &str, name: &str, version: u32, reason: &str) {
        let mut undone = AuditEvent::new(
            format!("{command} (undone: {reason})"),
            name,
            AuditAction::Delete,
        );
        undone.key_version = Some(version);
        if let Err(error) = self.auditor.record(undone) {
            tracing::error!(
                key = name,
                version,
                %error,
                "the audit log holds the record of a key change that was undone, and the record of the undo failed"
            );
        }
    }

    /// Writes the escrow copy of a new version, the command's records and
    /// then the keyring, in that order. The keyring file is the commit: a
    /// command that stops before it leaves the keyring without the version,
    /// so no version is used without its escrow copy and records. A copy
    /// left by such a command is replaced by the next one, see
    /// [`Escrow::begin_copy`].
    fn change(
        &self,
        command: &str,
        name: &str,
        action: AuditAction,
        prepared: Result<(Keyring, u32), KeyringError>,
    ) -> Result<u32, KeyAdminError> {
        let copied = prepared
            .map_err(KeyAdminError::Keyring)
            .and_then(|(keyring, version)| {
                let copied = match self.escrow {
                    Some(escrow) => {
                        // A marker of a version in the keyring from before
                        // this command outlived the keyring write of an
                        // interrupted command, and its copy is final.
                        escrow.clear_markers(|key, number| {
                            (key, number) != (name, version) && keyring.version(key, number).is_ok()
                        });
                        write_copy(escrow, name, keyring.version(name, version)?)?;
                        true
                    }
                    None => false,
                };
                Ok((keyring, version, copied))
            });

        let mut event = AuditEvent::new(command, name, action);
        event.key_version = copied.as_ref().ok().map(|(_, version, _)| *version);
        event.outcome = copied.as_ref().map(|_| ()).map_err(ToString::to_string);
        let first = self.auditor.record(event).map(|_| ());
        let change_recorded = first.is_ok();
        let recorded = first.and_then(|()| match &copied {
            Ok((_, version, true)) => {
                let mut export = AuditEvent::new(command, name, AuditAction::Export);
                export.key_version = Some(*version);
                self.auditor.record(export).map(|_| ())
            }
            _ => Ok(()),
        });

        let (mut keyring, version, copied) = match (copied, recorded) {
            (Ok(change), Ok(())) => change,
            (Ok((_, version, copied)), Err(audit)) => {
                if let (true, Some(escrow)) = (copied, self.escrow) {
                    escrow.discard_copy(name, version);
                }
                if change_recorded {
                    self.record_undone(command, name, version, "the export record failed");
                }
                return Err(KeyAdminError::AuditAfterChange(audit));
            }
            (Err(error), Ok(())) => return Err(error),
            (Err(error), Err(audit)) => {
                return Err(KeyAdminError::AuditAfterFailure {
                    error: Box::new(error),
                    audit,
                })
            }
        };

        if let Err(error) = keyring.write(self.keyring_path) {
            if let (true, Some(escrow)) = (copied, self.escrow) {
                escrow.discard_copy(name, version);
            }
            self.record_undone(command, name, version, "the keyring write failed");
            return Err(KeyAdminError::KeyringWrite(error));
        }
        if let Some(escrow) = self.escrow {
            escrow.clear_markers(|key, number| keyring.version(key, number).is_ok());
        }
        Ok(version)
    }
}

/// Writes the escrow copy of a version that a key command adds, replacing
/// a copy that an interrupted command left for it.
fn write_copy(escrow: &Escrow, name: &str, version: &KeyVersion) -> Result<(), KeyAdminError> {
    escrow
        .begin_copy(name, version.version)
        .map_err(KeyAdminError::Escrow)?;
    if let Err(error) = escrow.seal(name, version) {
        escrow.abandon_copy(name, version.version);
        return Err(KeyAdminError::Escrow(error));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditSink;
    use std::sync::Mutex;

    /// Keeps record lines in memory, or fails while `fail` is set.
    #[derive(Clone, Default)]
    struct MemorySink {
        lines: Arc<Mutex<Vec<String>>>,
        fail: Arc<AtomicBool>,
        /// Fails the append with this number, counted from 1; 0 fails none.
        fail_append: Arc<std::sync::atomic::AtomicUsize>,
        appends: Arc<std::sync::atomic::AtomicUsize>,
        /// Runs before each append, to inspect files between the steps of
        /// a command.
        on_append: Arc<Mutex<Option<AppendHook>>>,
    }

    type AppendHook = Box<dyn FnMut() + Send>;

    impl AuditSink for MemorySink {
        fn append(&self, line: &[u8]) -> Result<(), AuditError> {
            if let Some(hook) = self.on_append.lock().unwrap().as_mut() {
                hook();
            }
            let number = self.appends.fetch_add(1, Ordering::SeqCst) + 1;
            if self.fail.load(Ordering::SeqCst) || self.fail_append.load(Ordering::SeqCst) == number
            {
                return Err(AuditError::Sink("memory sink set to fail".into()));
            }
            let line = String::from_utf8(line.to_vec()).unwrap();
            self.lines.lock().unwrap().push(line);
            Ok(())
        }

        fn check_writable(&self) -> Result<(), String> {
            match self.fail.load(Ordering::SeqCst) {
                true => Err("memory sink set to fail".into()),
                false => Ok(()),
            }
        }
    }

    impl MemorySink {
        fn records(&self) -> Vec<serde_json::Value> {
            self.lines
                .lock()
                .unwrap()
                .iter()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect()
        }
    }

    /// Returns an auditor that writes to a new memory sink, and the sink.
    fn memory_auditor() -> (Auditor, MemorySink) {
        let sink = MemorySink::default();
        let auditor = Auditor::new(
            AuditKey::from_bytes([1; 32]),
            vec![Box::new(sink.clone())],
            None,
        )
        .unwrap();
        (auditor, sink)
    }

    fn service(fail_closed: bool) -> (KeyService, MemorySink, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let mut keyring = Keyring::default();
        keyring
            .create_key(&path, "main", &mut rand::rngs::OsRng, "t")
            .unwrap();
        let (auditor, sink) = memory_auditor();
        (
            KeyService::new(keyring, auditor, None, fail_closed),
            sink,
            dir,
        )
    }

    fn context() -> AccessContext {
        AccessContext {
            request_id: Some("REQ1".into()),
            principal: Some("CLIENT1".into()),
            client_addr: Some("127.0.0.1:1".into()),
            operation: "PutObject".into(),
            bucket: Some("b".into()),
            object_key: Some("k".into()),
        }
    }

    const OBJECT: ObjectRef<'static> = ObjectRef {
        bucket: "b",
        key: "k",
    };

    #[tokio::test]
    async fn each_access_writes_one_record() {
        let (service, sink, _dir) = service(true);
        let version = service
            .generate(&context(), "main", OBJECT, |kek| {
                Ok::<_, std::convert::Infallible>(kek.version)
            })
            .await
            .unwrap();
        assert_eq!(version, 1);
        service
            .unwrap(&context(), "main", 1, OBJECT, |_| {
                Ok::<_, std::convert::Infallible>(())
            })
            .await
            .unwrap();

        let records = sink.records();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0]["action"], "generate");
        assert_eq!(records[0]["principal"], "CLIENT1");
        assert_eq!(records[0]["request_id"], "REQ1");
        assert_eq!(records[0]["key_version"], 1);
        assert_eq!(records[1]["action"], "unwrap");
        assert_eq!(service.stats().operations(AuditAction::Generate, true), 1);
        assert_eq!(service.stats().audit_records(), 2);
    }

    #[tokio::test]
    async fn failures_recorded_with_error() {
        let (service, sink, _dir) = service(true);
        let missing = service
            .unwrap(&context(), "main", 7, OBJECT, |_| {
                Ok::<_, std::convert::Infallible>(())
            })
            .await;
        assert!(matches!(
            missing,
            Err(KeyAccessError::Key(KeyringError::VersionNotFound { .. }))
        ));
        let failed = service
            .unwrap(&context(), "main", 1, OBJECT, |_| {
                Err::<(), _>("tag mismatch")
            })
            .await;
        assert!(matches!(
            failed,
            Err(KeyAccessError::Operation("tag mismatch"))
        ));

        let records = sink.records();
        assert_eq!(records[0]["outcome"], "error");
        assert_eq!(records[0]["key_version"], 7);
        assert!(records[0]["error"]
            .as_str()
            .unwrap()
            .contains("no version 7"));
        assert_eq!(records[1]["error"], "tag mismatch");
        assert_eq!(service.stats().operations(AuditAction::Unwrap, false), 2);
    }

    #[tokio::test]
    async fn fail_closed_discards_result() {
        let (service, sink, _dir) = service(true);
        sink.fail.store(true, Ordering::SeqCst);
        let result = service
            .generate(&context(), "main", OBJECT, |_| {
                Ok::<_, std::convert::Infallible>(42)
            })
            .await;
        assert!(matches!(result, Err(KeyAccessError::Audit(_))));
        assert_eq!(service.stats().audit_failures(), 1);
        assert!(service.check_audit_sink().is_err());

        sink.fail.store(false, Ordering::SeqCst);
        assert!(service
            .generate(&context(), "main", OBJECT, |_| {
                Ok::<_, std::convert::Infallible>(42)
            })
            .await
            .is_ok());
        assert!(service.check_audit_sink().is_ok());
    }

    #[tokio::test]
    async fn readiness_returns_once_audit_storage_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        std::fs::write(&log, b"").unwrap();
        let mut keyring = Keyring::default();
        keyring
            .create_key(
                &dir.path().join("keyring.json"),
                "main",
                &mut rand::rngs::OsRng,
                "t",
            )
            .unwrap();
        let (auditor, sink) = memory_auditor();
        let service = KeyService::new(keyring, auditor, Some(log), true);

        sink.fail.store(true, Ordering::SeqCst);
        let result = service
            .generate(&context(), "main", OBJECT, |_| {
                Ok::<_, std::convert::Infallible>(42)
            })
            .await;
        assert!(result.is_err());
        assert!(service.check_audit_sink().is_err());

        // Storage that takes writes again makes the server ready before
        // any request has written a record.
        sink.fail.store(false, Ordering::SeqCst);
        assert!(service.check_audit_sink().is_ok());
    }

    #[tokio::test]
    async fn fail_open_returns_result() {
        let (service, sink, _dir) = service(false);
        sink.fail.store(true, Ordering::SeqCst);
        let result = service
            .generate(&context(), "main", OBJECT, |_| {
                Ok::<_, std::convert::Infallible>(42)
            })
            .await;
        assert_eq!(result.unwrap(), 42);
        assert_eq!(service.stats().audit_failures(), 1);
        assert!(sink.records().is_empty());
    }

    #[test]
    fn admin_records_create_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let (auditor, sink) = memory_auditor();
        let admin = KeyAdmin {
            keyring_path: &path,
            auditor: &auditor,
            escrow: None,
        };
        assert_eq!(admin.create("main").unwrap(), 1);
        assert_eq!(admin.rotate("main").unwrap(), 2);
        assert!(admin.rotate("other").is_err());

        let records = sink.records();
        let summary: Vec<(String, serde_json::Value, String)> = records
            .iter()
            .map(|r| {
                (
                    r["action"].as_str().unwrap().to_string(),
                    r["key_version"].clone(),
                    r["outcome"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("create".into(), 1.into(), "ok".into()),
                ("rotate".into(), 2.into(), "ok".into()),
                ("rotate".into(), serde_json::Value::Null, "error".into()),
            ]
        );
        assert_eq!(
            Keyring::load(&path)
                .unwrap()
                .current("main")
                .unwrap()
                .version,
            2
        );
    }

    #[test]
    fn admin_change_undone_without_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let (auditor, sink) = memory_auditor();
        let admin = KeyAdmin {
            keyring_path: &path,
            auditor: &auditor,
            escrow: None,
        };
        admin.create("main").unwrap();
        let before = std::fs::read(&path).unwrap();

        sink.fail.store(true, Ordering::SeqCst);
        let error = admin.rotate("main").unwrap_err();
        assert!(
            matches!(error, KeyAdminError::AuditAfterChange(_)),
            "{error}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before, "the rotation stayed");

        let error = admin.create("second").unwrap_err();
        assert!(
            matches!(error, KeyAdminError::AuditAfterChange(_)),
            "{error}"
        );
        let keyring = Keyring::load(&path).unwrap();
        assert!(!keyring.contains("second"), "the created key stayed");
        assert_eq!(keyring.current("main").unwrap().version, 1);

        let fresh = dir.path().join("fresh.json");
        let admin = KeyAdmin {
            keyring_path: &fresh,
            auditor: &auditor,
            escrow: None,
        };
        admin.create("main").unwrap_err();
        assert!(
            !fresh.exists(),
            "a keyring without a record of its key stayed"
        );
    }

    fn escrow_to(dir: &Path) -> (Escrow, age::x25519::Identity) {
        let identity = age::x25519::Identity::generate();
        let escrow = Escrow::new(&dir.join("escrow"), &[identity.to_public().to_string()])
            .unwrap()
            .unwrap();
        (escrow, identity)
    }

    /// Decrypts an escrow copy with `identity` into a recovered version.
    fn open_copy(path: &Path, identity: &age::x25519::Identity) -> RecoveredVersion {
        use std::io::Read;
        let sealed = std::fs::read(path).unwrap();
        let decryptor =
            age::Decryptor::new_buffered(age::armor::ArmoredReader::new(&sealed[..])).unwrap();
        let mut text = String::new();
        decryptor
            .decrypt(std::iter::once(identity as &dyn age::Identity))
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        super::super::read_escrow_document("copy", &text).unwrap()
    }

    /// Imports one recovered version and returns whether it was added.
    fn import_one(
        admin: &KeyAdmin<'_>,
        recovered: RecoveredVersion,
    ) -> Result<bool, KeyAdminError> {
        let added = admin.import(vec![("copy".into(), recovered)])?;
        Ok(added[0])
    }

    #[test]
    fn admin_escrows_each_new_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let (escrow, identity) = escrow_to(dir.path());
        let (auditor, sink) = memory_auditor();
        let admin = KeyAdmin {
            keyring_path: &path,
            auditor: &auditor,
            escrow: Some(&escrow),
        };
        admin.create("main").unwrap();
        admin.rotate("main").unwrap();

        let keyring = Keyring::load(&path).unwrap();
        for version in [1, 2] {
            let recovered = open_copy(&escrow.path("main", version), &identity);
            assert_eq!(recovered.name, "main");
            assert_eq!(recovered.version.version, version);
            assert_eq!(
                recovered.version.key.expose(),
                keyring.version("main", version).unwrap().key.expose()
            );
        }
        let actions: Vec<(String, u64)> = sink
            .records()
            .iter()
            .map(|r| {
                (
                    r["action"].as_str().unwrap().to_string(),
                    r["key_version"].as_u64().unwrap(),
                )
            })
            .collect();
        let expected = [("create", 1), ("export", 1), ("rotate", 2), ("export", 2)];
        let expected: Vec<(String, u64)> =
            expected.iter().map(|(a, v)| (a.to_string(), *v)).collect();
        assert_eq!(actions, expected);
    }

    #[test]
    fn admin_keeps_no_version_without_escrow_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let (escrow, _identity) = escrow_to(dir.path());
        let (auditor, sink) = memory_auditor();
        let admin = KeyAdmin {
            keyring_path: &path,
            auditor: &auditor,
            escrow: Some(&escrow),
        };
        admin.create("main").unwrap();
        let before = std::fs::read(&path).unwrap();

        // A file in place of the escrow directory makes every copy fail.
        std::fs::remove_dir_all(escrow.dir()).unwrap();
        std::fs::write(escrow.dir(), b"not a directory").unwrap();
        let error = admin.rotate("main").unwrap_err();
        assert!(matches!(error, KeyAdminError::Escrow(_)), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "the rotation stayed");
        let last = sink.records().pop().unwrap();
        assert_eq!(last["action"], "rotate");
        assert_eq!(last["outcome"], "error");

        // With the directory back, a failed audit record takes the version
        // and its copy away again.
        std::fs::remove_file(escrow.dir()).unwrap();
        sink.fail.store(true, Ordering::SeqCst);
        let error = admin.rotate("main").unwrap_err();
        assert!(
            matches!(error, KeyAdminError::AuditAfterChange(_)),
            "{error}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert!(
            !escrow.exists("main", 2),
            "an unrecorded escrow copy stayed"
        );
    }

    #[test]
    fn failed_export_record_is_undone_in_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let (escrow, _identity) = escrow_to(dir.path());
        let (auditor, sink) = memory_auditor();
        let admin = KeyAdmin {
            keyring_path: &path,
            auditor: &auditor,
            escrow: Some(&escrow),
        };
        // The create record is append 1, its export record append 2.
        sink.fail_append.store(2, Ordering::SeqCst);
        assert!(admin.create("main").is_err());
        assert!(!path.exists() || !Keyring::load(&path).unwrap().contains("main"));
        assert!(!escrow.exists("main", 1));
        let actions: Vec<String> = sink
            .records()
            .iter()
            .map(|r| r["action"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(actions, ["create", "delete"]);
    }

    #[test]
    fn rotate_writes_keyring_after_copy_and_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let (escrow, _identity) = escrow_to(dir.path());
        let (auditor, sink) = memory_auditor();
        let admin = KeyAdmin {
            keyring_path: &path,
            auditor: &auditor,
            escrow: Some(&escrow),
        };
        admin.create("main").unwrap();

        // Each record of the rotation observes the state that a crash at that
        // point leaves: the escrow copy of version 2, and a keyring without
        // version 2.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (hook_seen, hook_path, copy) = (seen.clone(), path.clone(), escrow.path("main", 2));
        *sink.on_append.lock().unwrap() = Some(Box::new(move || {
            let in_keyring = Keyring::load(&hook_path)
                .unwrap()
                .version("main", 2)
                .is_ok();
            hook_seen.lock().unwrap().push((in_keyring, copy.exists()));
        }));
        assert_eq!(admin.rotate("main").unwrap(), 2);
        assert_eq!(*seen.lock().unwrap(), [(false, true), (false, true)]);
        assert_eq!(
            Keyring::load(&path)
                .unwrap()
                .current("main")
                .unwrap()
                .version,
            2
        );
    }

    #[test]
    fn create_missing_writes_keyring_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let identity = age::x25519::Identity::generate();
        let text = format!(
            r#"
            [keys]
            keyring_file = "{keyring}"
            escrow_dir = "{escrow}"
            escrow_recipients = ["{recipient}"]
            create_missing = true

            [[clients]]
            access_key_id = "AKIDTEST"
            secret_env = "TEST_SECRET"

            [[buckets]]
            match = "*"
            mode = "encrypt"
            key = "main"
            "#,
            keyring = path.display(),
            escrow = dir.path().join("escrow").display(),
            recipient = identity.to_public(),
        );
        let config = crate::config::Config::from_toml(&text).unwrap();
        let (auditor, sink) = memory_auditor();

        // The `create` and `export` records each observe the state that a
        // crash at that point leaves: the escrow copy, and no keyring file.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let copy = dir.path().join("escrow").join("main.v1.age");
        let (hook_seen, hook_path) = (seen.clone(), path.clone());
        *sink.on_append.lock().unwrap() = Some(Box::new(move || {
            hook_seen
                .lock()
                .unwrap()
                .push((hook_path.exists(), copy.exists()));
        }));
        let service = KeyService::start(&config, &["main"], Some(auditor)).unwrap();

        let actions: Vec<_> = sink.records().iter().map(|r| r["action"].clone()).collect();
        assert_eq!(actions, ["create", "export"]);
        assert_eq!(*seen.lock().unwrap(), [(false, true), (false, true)]);
        assert_eq!(service.keyring().current("main").unwrap().version, 1);
        assert!(Keyring::load(&path).unwrap().contains("main"));
    }

    #[test]
    fn failed_keyring_write_leaves_no_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let (escrow, _identity) = escrow_to(dir.path());
        let (auditor, sink) = memory_auditor();
        let admin = KeyAdmin {
            keyring_path: &path,
            auditor: &auditor,
            escrow: Some(&escrow),
        };
        admin.create("main").unwrap();
        let before = std::fs::read(&path).unwrap();

        // A directory that is not empty at the temporary path fails the
        // keyring write, for root too.
        let blocker = dir.path().join("keyring.json.tmp");
        std::fs::create_dir(&blocker).unwrap();
        std::fs::write(blocker.join("file"), b"").unwrap();
        let error = admin.rotate("main").unwrap_err();
        assert!(matches!(error, KeyAdminError::KeyringWrite(_)), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert!(!escrow.exists("main", 2), "an escrow copy of v2 stayed");
        let summary: Vec<(String, u64)> = sink
            .records()
            .iter()
            .map(|r| {
                let action = r["action"].as_str().unwrap().to_string();
                (action, r["key_version"].as_u64().unwrap())
            })
            .collect();
        let expected = [
            ("create", 1),
            ("export", 1),
            ("rotate", 2),
            ("export", 2),
            ("delete", 2),
        ];
        let expected: Vec<(String, u64)> =
            expected.iter().map(|(a, v)| (a.to_string(), *v)).collect();
        assert_eq!(summary, expected);
        let undone = sink.records().pop().unwrap();
        assert!(
            undone["operation"]
                .as_str()
                .unwrap()
                .contains("the keyring write failed"),
            "{undone}"
        );

        // Once the keyring can be written, version 2 is free.
        std::fs::remove_dir_all(&blocker).unwrap();
        assert_eq!(admin.rotate("main").unwrap(), 2);
        assert!(escrow.exists("main", 2));
    }

    #[test]
    fn interrupted_rotation_copy_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let (escrow, identity) = escrow_to(dir.path());
        let (auditor, _sink) = memory_auditor();
        let admin = KeyAdmin {
            keyring_path: &path,
            auditor: &auditor,
            escrow: Some(&escrow),
        };
        admin.create("main").unwrap();

        // A rotation that stopped before the keyring write left the copy of
        // a version 2 that the keyring lacks, with its marker.
        let abandoned = KeyVersion {
            version: 2,
            created: now_rfc3339(),
            key: SecretKey::generate(&mut rand::rngs::OsRng),
        };
        escrow.begin_copy("main", 2).unwrap();
        escrow.seal("main", &abandoned).unwrap();

        assert_eq!(admin.rotate("main").unwrap(), 2);
        let keyring = Keyring::load(&path).unwrap();
        let recovered = open_copy(&escrow.path("main", 2), &identity);
        assert_eq!(
            recovered.version.key.expose(),
            keyring.version("main", 2).unwrap().key.expose()
        );
        assert_ne!(recovered.version.key.expose(), abandoned.key.expose());
        let names: Vec<String> = std::fs::read_dir(escrow.dir())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            !names.iter().any(|name| name.ends_with(".pending")),
            "{names:?}"
        );

        // A copy without a marker may be the only copy of a lost version,
        // so it still blocks its version number.
        std::fs::write(escrow.path("main", 3), b"age-encryption.org/v1\n").unwrap();
        let error = admin.rotate("main").unwrap_err();
        assert!(
            matches!(error, KeyAdminError::Escrow(EscrowError::Exists { .. })),
            "{error}"
        );
    }

    /// Returns the files in `dir` whose names start with `prefix`.
    fn files_starting(dir: &Path, prefix: &str) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                path.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with(prefix)
            })
            .collect()
    }

    #[test]
    fn marked_copy_of_used_version_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let (escrow, identity) = escrow_to(dir.path());
        let (auditor, _sink) = memory_auditor();
        let admin = KeyAdmin {
            keyring_path: &path,
            auditor: &auditor,
            escrow: Some(&escrow),
        };
        admin.create("main").unwrap();
        let backup = std::fs::read(&path).unwrap();
        admin.rotate("main").unwrap();
        let used = Keyring::load(&path)
            .unwrap()
            .version("main", 2)
            .unwrap()
            .clone();

        // A rotation killed between its keyring write and the marker's
        // removal leaves the marker of a used version. A keyring restored
        // from the backup then lacks that version.
        std::fs::write(escrow.dir().join(".main.v2.age.pending"), b"").unwrap();
        std::fs::write(&path, &backup).unwrap();
        assert_eq!(admin.rotate("main").unwrap(), 2);

        let moved_aside = files_starting(escrow.dir(), "main.v2.age.replaced-");
        assert_eq!(moved_aside.len(), 1, "{moved_aside:?}");
        let recovered = open_copy(&moved_aside[0], &identity);
        assert_eq!(recovered.version.key.expose(), used.key.expose());
    }

    #[test]
    fn copies_moved_aside_within_one_second_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (escrow, _identity) = escrow_to(dir.path());
        // Three interrupted commands in a row leave a marked copy of
        // version 1 each, and the next one moves it aside.
        for _ in 0..3 {
            escrow.begin_copy("main", 1).unwrap();
            let abandoned = KeyVersion {
                version: 1,
                created: now_rfc3339(),
                key: SecretKey::generate(&mut rand::rngs::OsRng),
            };
            escrow.seal("main", &abandoned).unwrap();
        }
        escrow.begin_copy("main", 1).unwrap();
        assert_eq!(
            files_starting(escrow.dir(), "main.v1.age.replaced-").len(),
            3
        );
    }

    #[test]
    fn stale_marker_cleared_by_next_command() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let (escrow, _identity) = escrow_to(dir.path());
        let (auditor, _sink) = memory_auditor();
        let admin = KeyAdmin {
            keyring_path: &path,
            auditor: &auditor,
            escrow: Some(&escrow),
        };
        admin.create("main").unwrap();
        let backup = std::fs::read(&path).unwrap();
        admin.rotate("main").unwrap();

        // The next command finds version 2 in the keyring and clears its
        // marker, so after a restore the copy blocks version 2 again.
        std::fs::write(escrow.dir().join(".main.v2.age.pending"), b"").unwrap();
        assert_eq!(admin.rotate("main").unwrap(), 3);
        assert!(files_starting(escrow.dir(), ".main.v2").is_empty());
        std::fs::write(&path, &backup).unwrap();
        let error = admin.rotate("main").unwrap_err();
        assert!(
            matches!(error, KeyAdminError::Escrow(EscrowError::Exists { .. })),
            "{error}"
        );
    }

    #[test]
    fn marker_never_written_through_link() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let (escrow, _identity) = escrow_to(dir.path());
        let (auditor, _sink) = memory_auditor();
        let admin = KeyAdmin {
            keyring_path: &path,
            auditor: &auditor,
            escrow: Some(&escrow),
        };
        admin.create("main").unwrap();
        let copy = escrow.path("main", 1);
        let before = std::fs::read(&copy).unwrap();

        // A link planted at the marker's path, to the copy of version 1.
        std::os::unix::fs::symlink(&copy, escrow.dir().join(".main.v2.age.pending")).unwrap();
        assert_eq!(admin.rotate("main").unwrap(), 2);
        assert_eq!(std::fs::read(&copy).unwrap(), before);
    }

    #[test]
    fn import_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let (auditor, sink) = memory_auditor();
        let admin = KeyAdmin {
            keyring_path: &path,
            auditor: &auditor,
            escrow: None,
        };
        admin.create("main").unwrap();
        let before = std::fs::read(&path).unwrap();
        let recovered = |name: &str, version: u32| RecoveredVersion {
            name: name.into(),
            version: KeyVersion {
                version,
                created: "2026-01-01T00:00:00Z".into(),
                key: SecretKey::generate(&mut rand::rngs::OsRng),
            },
            checked: true,
        };

        // The second document conflicts with the keyring's main v1.
        let documents = vec![
            ("first".to_string(), recovered("other", 1)),
            ("second".to_string(), recovered("main", 1)),
        ];
        let error = admin.import(documents).unwrap_err();
        assert!(
            matches!(&error, KeyAdminError::Import { origin, .. } if origin == "second"),
            "{error}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "a version was imported"
        );

        // Two documents with other material under one version conflict
        // with each other.
        let documents = vec![
            ("a".to_string(), recovered("other", 1)),
            ("b".to_string(), recovered("other", 1)),
        ];
        let error = admin.import(documents).unwrap_err();
        assert!(
            matches!(&error, KeyAdminError::DocumentConflict { origin, .. } if origin == "b"),
            "{error}"
        );
        assert!(!error.to_string().contains("--keyring"), "{error}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "a version was imported"
        );
        let outcomes: Vec<(String, String)> = sink
            .records()
            .iter()
            .skip(1)
            .map(|r| {
                let action = r["action"].as_str().unwrap().to_string();
                (action, r["outcome"].as_str().unwrap().to_string())
            })
            .collect();
        let failed = ("import".to_string(), "error".to_string());
        assert_eq!(outcomes, [failed.clone(), failed]);

        // Without a conflict, every version is imported with one record
        // each, and a repeated document imports nothing more.
        let first = recovered("other", 1);
        let again = RecoveredVersion {
            name: first.name.clone(),
            version: first.version.clone(),
            checked: true,
        };
        let documents = vec![
            ("a".to_string(), first),
            ("b".to_string(), recovered("other", 2)),
            ("c".to_string(), again),
        ];
        assert_eq!(admin.import(documents).unwrap(), [true, true, false]);
        let keyring = Keyring::load(&path).unwrap();
        assert_eq!(keyring.current("other").unwrap().version, 2);
        assert_eq!(keyring.current("main").unwrap().version, 1);
        assert_eq!(sink.records().len(), 1 + 2 + 3);
    }

    #[test]
    fn escrow_reports_damaged_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let (escrow, _identity) = escrow_to(dir.path());
        let (auditor, _sink) = memory_auditor();
        let admin = KeyAdmin {
            keyring_path: &path,
            auditor: &auditor,
            escrow: Some(&escrow),
        };
        admin.create("main").unwrap();
        escrow.check_intact("main", 1).unwrap();
        assert!(admin.escrow_missing().unwrap().is_empty());

        std::fs::write(escrow.path("main", 1), b"").unwrap();
        let error = admin.escrow_missing().unwrap_err().to_string();
        assert!(error.contains("empty or not an age file"), "{error}");
        assert!(!error.contains("keyring was left unchanged"), "{error}");
        assert!(escrow.check_intact("main", 1).is_err());
    }

    #[test]
    fn admin_never_replaces_escrow_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let (escrow, identity) = escrow_to(dir.path());
        let (auditor, _sink) = memory_auditor();
        let admin = KeyAdmin {
            keyring_path: &path,
            auditor: &auditor,
            escrow: Some(&escrow),
        };
        admin.create("main").unwrap();
        admin.rotate("main").unwrap();
        let copies = [1, 2].map(|version| std::fs::read(escrow.path("main", version)).unwrap());

        // The keyring is lost: a new key or version under an escrowed
        // number fails and leaves the copies as they were.
        std::fs::remove_file(&path).unwrap();
        let error = admin.create("main").unwrap_err();
        assert!(
            matches!(error, KeyAdminError::Escrow(EscrowError::Exists { .. })),
            "{error}"
        );
        assert!(!path.exists(), "a keyring with a new version 1 stayed");

        let recovered = open_copy(&escrow.path("main", 1), &identity);
        assert!(import_one(&admin, recovered).unwrap());
        let error = admin.rotate("main").unwrap_err();
        assert!(
            matches!(error, KeyAdminError::Escrow(EscrowError::Exists { .. })),
            "{error}"
        );
        assert_eq!(
            Keyring::load(&path)
                .unwrap()
                .current("main")
                .unwrap()
                .version,
            1
        );
        for (version, copy) in [1, 2].into_iter().zip(&copies) {
            assert_eq!(&std::fs::read(escrow.path("main", version)).unwrap(), copy);
        }
    }

    #[test]
    fn admin_escrows_missing_and_imports_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let (auditor, sink) = memory_auditor();
        let unescrowed = KeyAdmin {
            keyring_path: &path,
            auditor: &auditor,
            escrow: None,
        };
        assert!(matches!(
            unescrowed.escrow_missing(),
            Err(KeyAdminError::EscrowOff)
        ));
        unescrowed.create("a").unwrap();
        unescrowed.rotate("a").unwrap();
        unescrowed.create("b").unwrap();

        let (escrow, identity) = escrow_to(dir.path());
        let admin = KeyAdmin {
            escrow: Some(&escrow),
            ..unescrowed
        };
        let written = admin.escrow_missing().unwrap();
        assert_eq!(written.len(), 3);
        assert!(admin.escrow_missing().unwrap().is_empty());
        let exports = sink
            .records()
            .iter()
            .filter(|r| r["action"] == "export")
            .count();
        assert_eq!(exports, 3);

        // Recovery: a new keyring built from the copies alone contains
        // the same material.
        let original = Keyring::load(&path).unwrap();
        let rebuilt_path = dir.path().join("rebuilt.json");
        let rebuild = KeyAdmin {
            keyring_path: &rebuilt_path,
            ..admin
        };
        for (name, version) in [("a", 1), ("a", 2), ("b", 1)] {
            let recovered = open_copy(&escrow.path(name, version), &identity);
            assert!(import_one(&rebuild, recovered).unwrap());
        }
        let again = open_copy(&escrow.path("a", 2), &identity);
        assert!(
            !import_one(&rebuild, again).unwrap(),
            "a second import changed the keyring"
        );
        let rebuilt = Keyring::load(&rebuilt_path).unwrap();
        for (name, version) in original.versions() {
            assert_eq!(
                rebuilt.version(name, version.version).unwrap().key.expose(),
                version.key.expose()
            );
        }
        assert_eq!(rebuilt.current("a").unwrap().version, 2);

        // Other material under a held version is refused.
        let mut other = open_copy(&escrow.path("b", 1), &identity);
        other.version.key = SecretKey::generate(&mut rand::rngs::OsRng);
        let error = import_one(&rebuild, other).unwrap_err();
        assert!(
            matches!(
                error,
                KeyAdminError::Import {
                    source: KeyringError::VersionConflict { .. },
                    ..
                }
            ),
            "{error}"
        );
        let imports = sink
            .records()
            .iter()
            .filter(|r| r["action"] == "import")
            .count();
        assert_eq!(imports, 5);
    }

    #[test]
    fn audit_probe_names_errors_other_than_missing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = probe_directory(&dir.path().join("audit.log")).unwrap_err();
        assert!(missing.contains("no longer exists"), "{missing}");

        // A path under a regular file fails with "not a directory", as an
        // unreadable directory fails with "permission denied".
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let error = probe_directory(&file.join("audit.log")).unwrap_err();
        assert!(error.starts_with("failed to check audit log"), "{error}");
        assert!(!error.contains("no longer exists"), "{error}");
    }

    #[test]
    fn create_missing_respects_copies_with_escrow_off() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = dir.path().join("keyring.json");
        let escrow_dir = dir.path().join("escrow");
        std::fs::create_dir(&escrow_dir).unwrap();
        std::fs::write(escrow_dir.join("main.v1.age"), b"age-encryption.org/v1\n").unwrap();
        let text = format!(
            r#"
            [keys]
            keyring_file = "{keyring}"
            escrow_dir = "{escrow}"
            create_missing = true

            [[clients]]
            access_key_id = "AKIDTEST"
            secret_env = "TEST_SECRET"

            [[buckets]]
            match = "*"
            mode = "encrypt"
            key = "main"
            "#,
            keyring = keyring.display(),
            escrow = escrow_dir.display()
        );
        let config = crate::config::Config::from_toml(&text).unwrap();
        let (auditor, _sink) = memory_auditor();
        let error = KeyService::start(&config, &["main"], Some(auditor))
            .err()
            .unwrap();
        assert!(error.to_string().contains("already exists"), "{error}");
        assert!(!Keyring::load_or_empty(&keyring).unwrap().contains("main"));
    }

    #[test]
    fn create_missing_takes_out_unrecorded_key() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = dir.path().join("keyring.json");
        let text = format!(
            r#"
            [keys]
            keyring_file = "{keyring}"
            create_missing = true

            [[clients]]
            access_key_id = "AKIDTEST"
            secret_env = "TEST_SECRET"

            [[buckets]]
            match = "*"
            mode = "encrypt"
            key = "main"
            "#,
            keyring = keyring.display()
        );
        let config = crate::config::Config::from_toml(&text).unwrap();
        let (auditor, sink) = memory_auditor();
        sink.fail.store(true, Ordering::SeqCst);
        assert!(KeyService::start(&config, &["main"], Some(auditor)).is_err());
        let left = Keyring::load_or_empty(&keyring).unwrap();
        assert!(
            !left.contains("main"),
            "a key without its create record stayed"
        );
    }

    #[test]
    fn failed_keyring_load_creates_no_audit_files() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"
            [keys]
            keyring_file = "{dir}/missing-keyring.json"

            [audit]
            file = "{dir}/audit.log"
            key_file = "{dir}/audit-key"

            [[clients]]
            access_key_id = "AKIDTEST"
            secret_env = "TEST_SECRET"

            [[buckets]]
            match = "*"
            mode = "encrypt"
            key = "main"
            "#,
            dir = dir.path().display()
        );
        let config = crate::config::Config::from_toml(&text).unwrap();
        assert!(KeyService::start(&config, &["main"], None).is_err());
        assert!(!dir.path().join("audit-key").exists());
        assert!(!dir.path().join("audit.log").exists());
    }

    #[test]
    fn audit_key_missing_for_written_log() {
        let dir = tempfile::tempdir().unwrap();
        let config = AuditConfig {
            file: dir.path().join("audit.log"),
            key_file: dir.path().join("audit-key"),
            ..AuditConfig::default()
        };
        let auditor = open_auditor(&config).unwrap();
        auditor
            .record(AuditEvent::new("test", "main", AuditAction::Create))
            .unwrap();
        drop(auditor);
        std::fs::remove_file(&config.key_file).unwrap();

        let error = open_auditor(&config).unwrap_err();
        assert!(matches!(error, AuditError::KeyMissing { .. }), "{error}");
        assert!(
            error.to_string().contains("restore the key file"),
            "{error}"
        );
        assert!(!config.key_file.exists(), "a new audit key was created");

        // A log without records gets a new key.
        std::fs::write(&config.file, b"").unwrap();
        open_auditor(&config).unwrap();
        assert!(config.key_file.exists());
    }
}
