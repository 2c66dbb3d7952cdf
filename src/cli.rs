//! The command line: `serve`, `keys create|rotate|list|escrow|import`,
//! `audit verify` and `config check`.

use crate::audit::{self, AuditError, AuditKey, ChainState};
use crate::config::ConfigError;
use crate::config::{BucketMode, Config, LogFormat};
use crate::keys::{open_auditor, read_escrow_document, Escrow, KeyAdmin, Keyring};
use crate::policy::{EffectiveRule, Permission, Policy};
use clap::{Parser, Subcommand};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Prints a line to stdout through [`write_stdout_line`], which records a
/// failed write where `println!` would panic.
macro_rules! print_line {
    ($($arg:tt)*) => {
        write_stdout_line(format_args!($($arg)*))
    };
}

/// Prints a line to stderr through [`write_stderr_line`], which ignores a
/// failed write where `eprintln!` would panic.
macro_rules! eprint_line {
    ($($arg:tt)*) => {
        write_stderr_line(format_args!($($arg)*))
    };
}

/// The first error of a write to stdout. The command still finishes, so that
/// a key change completes with its audit record, and [`finish_stdout`] then
/// returns the error so that the command fails, because part of its output,
/// such as the `SEQ:MAC` of `audit verify`, was lost.
static STDOUT_ERROR: Mutex<Option<std::io::Error>> = Mutex::new(None);

/// Writes a line to stdout. After a failed write, the error is kept for
/// [`finish_stdout`] and later lines are dropped.
pub fn write_stdout_line(line: std::fmt::Arguments<'_>) {
    let mut first_error = STDOUT_ERROR.lock().unwrap_or_else(PoisonError::into_inner);
    if first_error.is_some() {
        return;
    }
    if let Err(error) = writeln!(std::io::stdout(), "{line}") {
        *first_error = Some(error);
    }
}

/// Flushes stdout and returns the first error of any write to it, which
/// includes a closed pipe, as in `s3seal config check | head -1`.
pub fn finish_stdout() -> std::io::Result<()> {
    let first_error = STDOUT_ERROR
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    match first_error {
        Some(error) => Err(error),
        None => std::io::stdout().flush(),
    }
}

/// Writes a line to stderr and ignores a failed write, because stderr is
/// where that failure would be reported.
pub fn write_stderr_line(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A transparent S3-compatible encrypting reverse proxy.
#[derive(Debug, Parser)]
#[command(name = "s3seal", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy.
    Serve {
        /// Configuration file (TOML); `S3SEAL_*` environment variables override it.
        #[arg(long, short, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Manage key-encryption keys in the keyring file.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Check the key-access audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Check a configuration file.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a new key-encryption key with a random version 1.
    ///
    /// The command is recorded in the audit log of the configuration. A
    /// running server holds a lock on that log, so stop the server first;
    /// it loads the keyring only at start anyway.
    Create {
        /// Key name: 1 to 64 letters, digits, '.', '_' or '-', starting
        /// with a letter or digit.
        name: String,
        /// Configuration file that names the keyring and the audit log.
        #[arg(long, short, default_value = "config.toml")]
        config: PathBuf,
        /// Keyring file to use instead of the one in the configuration.
        #[arg(long)]
        keyring: Option<PathBuf>,
    },
    /// Add a new random version to a key. The new version wraps the data
    /// keys of new objects; older versions stay for reading older objects.
    ///
    /// Recorded in the audit log like `keys create`, so stop the server
    /// first, and start it again to use the new version.
    Rotate {
        /// Name of an existing key.
        name: String,
        /// Configuration file that names the keyring and the audit log.
        #[arg(long, short, default_value = "config.toml")]
        config: PathBuf,
        /// Keyring file to use instead of the one in the configuration.
        #[arg(long)]
        keyring: Option<PathBuf>,
    },
    /// Write the escrow copy of every key version that has none, sealed
    /// to `keys.escrow_recipients`, as after adding the first recipients.
    ///
    /// New versions from `keys create`, `keys rotate` and
    /// `keys.create_missing` get their copy as they are made. Recorded in
    /// the audit log like `keys create`.
    Escrow {
        /// Configuration file that names the keyring and the audit log.
        #[arg(long, short, default_value = "config.toml")]
        config: PathBuf,
        /// Keyring file to use instead of the one in the configuration.
        #[arg(long)]
        keyring: Option<PathBuf>,
    },
    /// Add key versions recovered from escrow copies to the keyring.
    ///
    /// Each FILE is the plaintext of one escrow copy, as `age -d -i
    /// IDENTITY NAME.vN.age` prints it; `-` reads one from standard input.
    /// A version that the keyring already contains with the same material
    /// is skipped. Recorded in the audit log like `keys create`.
    Import {
        /// Decrypted escrow copies, or `-` for standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Configuration file that names the keyring and the audit log.
        #[arg(long, short, default_value = "config.toml")]
        config: PathBuf,
        /// Keyring file to use instead of the one in the configuration.
        #[arg(long)]
        keyring: Option<PathBuf>,
    },
    /// List key names and versions (never key material).
    List {
        /// Configuration file that names the keyring, when `--keyring` is
        /// not given.
        #[arg(long, short, default_value = "config.toml")]
        config: PathBuf,
        /// Keyring file to use instead of the one in the configuration.
        #[arg(long)]
        keyring: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify every record of an audit log: MACs, sequence numbers and the
    /// chain. Prints the record count and exits 0, or prints the first line
    /// where the chain breaks and exits 1. Other failures exit 2.
    Verify {
        /// The audit log file.
        file: PathBuf,
        /// Audit key file (64 hex digits). Without it, `audit.key_file` of
        /// the configuration is used.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Configuration file that names the audit key, when `--key-file`
        /// is not given.
        #[arg(long, short, default_value = "config.toml")]
        config: PathBuf,
        /// A chain state printed by an earlier verify, as `SEQ:MAC`. The log
        /// must still contain that record, which detects deleted records at
        /// the end of the log.
        #[arg(long, value_name = "SEQ:MAC")]
        expect: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration, with its `S3SEAL_*` environment overrides,
    /// and print the effective bucket rules.
    Check {
        /// Configuration file to check.
        #[arg(long, short, default_value = "config.toml")]
        config: PathBuf,
        /// Print only the rule that applies to this bucket name.
        #[arg(long)]
        bucket: Option<String>,
    },
}

/// A failed command: the message and the process exit code.
#[derive(Debug)]
pub struct CommandError {
    pub message: String,
    pub exit_code: u8,
}

impl CommandError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            exit_code: 1,
        }
    }

    fn with_code(message: impl Into<String>, exit_code: u8) -> Self {
        Self {
            message: message.into(),
            exit_code,
        }
    }
}

/// Returns the exit code of a configuration that failed to load: 2, as for
/// clap's usage errors, when `--config` names no file that can be read, and 1
/// for a file with invalid settings.
pub fn config_exit_code(error: &ConfigError) -> u8 {
    match error {
        ConfigError::File { .. } => 2,
        ConfigError::Load(_) | ConfigError::Invalid { .. } => 1,
    }
}

impl From<ConfigError> for CommandError {
    fn from(error: ConfigError) -> Self {
        Self::with_code(error.to_string(), config_exit_code(&error))
    }
}

impl From<String> for CommandError {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

/// Crates whose debug and trace events contain whole request headers. The
/// embedded store (s3s 0.14) logs every request it receives at debug,
/// `Authorization` header included, so these crates log at info at most,
/// whatever level `RUST_LOG` sets.
const HEADER_LOGGING_CRATES: &[&str] = &["s3s", "s3s_fs"];

/// Returns whether an event or span of `target` may carry request headers
/// at `level`.
fn logs_headers(target: &str, level: &tracing::Level) -> bool {
    *level > tracing::Level::INFO
        && HEADER_LOGGING_CRATES.iter().any(|name| {
            target == *name
                || target
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with("::"))
        })
}

/// Installs the tracing subscriber: `RUST_LOG` wins over `log.filter`,
/// except for the crates in [`HEADER_LOGGING_CRATES`].
pub fn install_tracing(format: LogFormat, default_filter: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let no_headers = tracing_subscriber::filter::filter_fn(|metadata| {
        !logs_headers(metadata.target(), metadata.level())
    });
    let registry = tracing_subscriber::registry().with(filter).with(no_headers);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // A log line that cannot be written is dropped: the report of that
    // failure would go to stderr too, and panic there.
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .log_internal_errors(false);
    let result = match format {
        LogFormat::Json => registry.with(layer.json()).try_init(),
        LogFormat::Text => registry.with(layer).try_init(),
    };
    if let Err(error) = result {
        eprint_line!("failed to install the log subscriber: {error}");
    }
}

/// Returns the keyring path from `--keyring` or the configuration. Without
/// `--keyring`, the configuration must load, because it names the file.
fn keyring_path(config: &Path, keyring: Option<PathBuf>) -> Result<PathBuf, CommandError> {
    if let Some(path) = keyring {
        return Ok(path);
    }
    Ok(Config::load(config)?.keys.keyring_file)
}

/// Runs a `keys` subcommand.
pub fn run_keys(command: KeysCommand) -> Result<(), CommandError> {
    match command {
        KeysCommand::Create {
            name,
            config,
            keyring,
        } => {
            let change = open_for_key_change(&config, keyring, true)?;
            if change.escrow.is_none() {
                crate::keys::check_no_escrow_copy(&change.escrow_dir, &name, 1)
                    .map_err(|e| e.to_string())?;
            }
            let version = change.admin().create(&name).map_err(|e| e.to_string())?;
            print_line!(
                "created key {name:?} version {version} in {}",
                change.path.display()
            );
            change.report_escrow(&name, version);
            Ok(())
        }
        KeysCommand::Rotate {
            name,
            config,
            keyring,
        } => {
            let change = open_for_key_change(&config, keyring, true)?;
            let version = change.admin().rotate(&name).map_err(|e| e.to_string())?;
            print_line!(
                "added version {version} of key {name:?} in {}; it wraps new data keys \
                 once s3seal starts again",
                change.path.display()
            );
            change.report_escrow(&name, version);
            Ok(())
        }
        KeysCommand::Escrow { config, keyring } => {
            let change = open_for_key_change(&config, keyring, true)?;
            let written = change.admin().escrow_missing().map_err(|e| e.to_string())?;
            for path in &written {
                print_line!("wrote escrow copy {}", path.display());
            }
            print_line!(
                "{} escrow copies written; every key version in {} has one",
                written.len(),
                change.path.display()
            );
            Ok(())
        }
        KeysCommand::Import {
            files,
            config,
            keyring,
        } => {
            if files.iter().filter(|file| file.as_os_str() == "-").count() > 1 {
                return Err(String::from("standard input (`-`) can be given only once").into());
            }
            // Every document is read before the audit log is opened, so
            // that input which is not an escrow copy leaves no audit files.
            let mut documents = Vec::with_capacity(files.len());
            for file in &files {
                let from_stdin = file.as_os_str() == "-";
                let origin = if from_stdin {
                    "standard input".to_string()
                } else {
                    file.display().to_string()
                };
                let text = read_secret_input(file).map_err(|e| format!("{origin}: {e}"))?;
                let recovered = read_escrow_document(&origin, &text).map_err(|e| e.to_string())?;
                documents.push((origin, from_stdin, recovered));
            }
            let change = open_for_key_change(&config, keyring, false)?;
            for (origin, _, recovered) in &documents {
                if !recovered.checked {
                    eprint_line!(
                        "warning: {origin} has no check value, so damage to its material cannot \
                         be detected; read an object encrypted under key {:?} version {} to \
                         confirm the key",
                        recovered.name,
                        recovered.version.version
                    );
                }
            }
            let summary: Vec<(String, bool, String, u32)> = documents
                .iter()
                .map(|(origin, from_stdin, recovered)| {
                    let version = recovered.version.version;
                    (origin.clone(), *from_stdin, recovered.name.clone(), version)
                })
                .collect();
            let documents = documents
                .into_iter()
                .map(|(origin, _, recovered)| (origin, recovered))
                .collect();
            let added = change
                .admin()
                .import(documents)
                .map_err(|e| e.to_string())?;
            for ((origin, from_stdin, name, version), added) in summary.into_iter().zip(added) {
                if added {
                    print_line!(
                        "imported key {name:?} version {version} into {}",
                        change.path.display()
                    );
                } else {
                    print_line!("key {name:?} version {version} is already in the keyring");
                }
                if !from_stdin {
                    eprint_line!(
                        "warning: {origin} contains key material in plaintext; delete it once \
                         the keyring is backed up"
                    );
                }
            }
            Ok(())
        }
        KeysCommand::List { config, keyring } => {
            let path = keyring_path(&config, keyring)?;
            let ring = Keyring::load(&path).map_err(|e| e.to_string())?;
            warn_unchecked(&ring, &path);
            for (name, version) in ring.versions() {
                let current = ring.current(name).map_err(|e| e.to_string())?.version;
                let role = if version.version == current {
                    "current"
                } else {
                    "unwrap only"
                };
                print_line!(
                    "{name}\tversion {}\tcreated {}\t{role}",
                    version.version,
                    version.created
                );
            }
            Ok(())
        }
    }
}

/// Loads the configuration and opens its audit log for a key command.
/// The keyring path, audit log and escrow settings of a key-changing
/// command.
struct KeyChange {
    path: PathBuf,
    auditor: audit::Auditor,
    escrow: Option<Escrow>,
    /// `keys.escrow_dir`, checked for copies of a new key's version 1
    /// with escrow off too.
    escrow_dir: PathBuf,
}

impl KeyChange {
    fn admin(&self) -> KeyAdmin<'_> {
        KeyAdmin {
            keyring_path: &self.path,
            auditor: &self.auditor,
            escrow: self.escrow.as_ref(),
        }
    }

    /// Prints the path of a new version's escrow copy, or warns that there
    /// is none.
    fn report_escrow(&self, name: &str, version: u32) {
        match &self.escrow {
            Some(escrow) => {
                print_line!("wrote escrow copy {}", escrow.path(name, version).display())
            }
            None => eprint_line!(
                "warning: no escrow copy written, because keys.escrow_recipients is empty; \
                 back up the keyring"
            ),
        }
    }
}

/// Reads a decrypted escrow copy from a file, or from standard input for
/// `-`, into a string that is wiped when dropped.
fn read_secret_input(path: &Path) -> Result<zeroize::Zeroizing<String>, String> {
    use std::io::Read;
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(4096));
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|mut file| file.read_to_end(&mut bytes))
    };
    read.map_err(|e| format!("failed to read: {e}"))?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(zeroize::Zeroizing::new(text.to_string())),
        Err(_) if bytes.starts_with(b"age-encryption.org/") => {
            Err("it is still age-encrypted; decrypt it with `age -d -i IDENTITY COPY` first".into())
        }
        Err(_) => Err(
            "it is not text, so it is not a decrypted escrow copy; decrypt the copy with \
             `age -d -i IDENTITY COPY` first"
                .into(),
        ),
    }
}

fn open_for_key_change(
    config_path: &Path,
    keyring: Option<PathBuf>,
    writes_escrow: bool,
) -> Result<KeyChange, CommandError> {
    let config = Config::load(config_path).map_err(|e| {
        CommandError::with_code(
            format!("{e}; key commands need the configuration because they write to its audit log"),
            config_exit_code(&e),
        )
    })?;
    let auditor = open_auditor(&config.audit).map_err(|error| match error {
        AuditError::Locked { path } => CommandError::new(format!(
            "audit log {} is locked by another process, most likely a running s3seal server. \
             Stop the server, run this command, then start the server again: it loads the \
             keyring only at start",
            path.display()
        )),
        other => CommandError::new(other.to_string()),
    })?;
    let escrow = Escrow::new(&config.keys.escrow_dir, &config.keys.escrow_recipients)
        .map_err(|e| CommandError::new(e.to_string()))?;
    if let (true, Some(other), Some(escrow)) = (writes_escrow, &keyring, &escrow) {
        check_escrow_dir_for(other, &config.keys.keyring_file, escrow.dir())?;
    }
    let path = keyring.unwrap_or(config.keys.keyring_file);
    Ok(KeyChange {
        path,
        auditor,
        escrow,
        escrow_dir: config.keys.escrow_dir,
    })
}

/// Fails when `--keyring` names another keyring than `keys.keyring_file`
/// but its escrow copies would go to the configured keyring's escrow
/// directory. A rehearsal on a scratch keyring would otherwise add copies
/// there that block the configured keyring's next version.
/// `S3SEAL_KEYS__ESCROW_DIR` names the directory explicitly.
fn check_escrow_dir_for(
    keyring: &Path,
    configured: &Path,
    escrow_dir: &Path,
) -> Result<(), CommandError> {
    let same_file = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    if same_file(keyring, configured) || std::env::var_os("S3SEAL_KEYS__ESCROW_DIR").is_some() {
        return Ok(());
    }
    Err(CommandError::new(format!(
        "--keyring {} is not the configured keyring {}, but its escrow copies would go to \
         the configured escrow directory {}; set S3SEAL_KEYS__ESCROW_DIR to a directory for \
         this keyring's copies",
        keyring.display(),
        configured.display(),
        escrow_dir.display()
    )))
}

/// Runs an `audit` subcommand.
pub fn run_audit(command: AuditCommand) -> Result<(), CommandError> {
    let AuditCommand::Verify {
        file,
        key_file,
        config,
        expect,
    } = command;
    let key_file = match key_file {
        Some(path) => path,
        None => Config::load(&config)
            .map(|c| c.audit.key_file)
            .map_err(|e| {
                CommandError::with_code(
                    format!("{e}; pass --key-file to verify without a configuration"),
                    2,
                )
            })?,
    };
    let expected = expect.as_deref().map(parse_chain_state).transpose()?;
    let key = AuditKey::load(&key_file).map_err(|e| CommandError::with_code(e.to_string(), 2))?;
    let reader = std::fs::File::open(&file).map_err(|e| {
        CommandError::with_code(format!("failed to open {}: {e}", file.display()), 2)
    })?;
    match audit::verify(std::io::BufReader::new(reader), &key, expected.as_ref()) {
        Ok(report) => {
            print_line!(
                "ok: {} records; last record {}:{}",
                report.records,
                report.records,
                report.last_mac
            );
            Ok(())
        }
        Err(AuditError::Verify(broken)) => Err(CommandError::new(format!(
            "audit log {} does not verify: {broken}",
            file.display()
        ))),
        Err(other) => Err(CommandError::with_code(other.to_string(), 2)),
    }
}

/// Parses `SEQ:MAC` as printed by `audit verify`.
fn parse_chain_state(text: &str) -> Result<ChainState, CommandError> {
    let invalid = || {
        CommandError::with_code(
            format!("--expect {text:?} is not SEQ:MAC, such as 12:<64 hex digits>"),
            2,
        )
    };
    let (seq, mac) = text.split_once(':').ok_or_else(invalid)?;
    let seq = seq.parse().map_err(|_| invalid())?;
    ChainState::from_hex(seq, mac).ok_or_else(invalid)
}

/// Fails, as a start would, when `keys.create_missing` would create a key
/// whose version 1 already has an escrow copy, which means the keyring
/// lost that key.
fn check_escrow_free<'a>(
    config: &Config,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), CommandError> {
    for name in names {
        crate::keys::check_no_escrow_copy(&config.keys.escrow_dir, name, 1)
            .map_err(|e| CommandError::new(e.to_string()))?;
    }
    Ok(())
}

/// Checks what `serve` checks of the keyring: that it loads (which includes
/// its permissions) and contains every key a rule names, unless
/// `keys.create_missing` lets `serve` create them.
fn check_keyring(config: &Config, config_path: &Path, policy: &Policy) -> Result<(), CommandError> {
    let path = &config.keys.keyring_file;
    // A dangling link is not a missing keyring: `serve` refuses it, and so
    // does the check, through the load below.
    let missing = std::fs::symlink_metadata(path)
        .is_err_and(|error| error.kind() == std::io::ErrorKind::NotFound);
    if config.keys.create_missing && missing {
        return check_escrow_free(config, policy.key_names());
    }
    if missing {
        let commands: Vec<String> = policy
            .key_names()
            .map(|name| {
                format!(
                    "`s3seal keys create {name} --config {}`",
                    config_path.display()
                )
            })
            .collect();
        return Err(CommandError::new(format!(
            "keyring {} does not exist; create the keys that bucket rules name with {}",
            path.display(),
            if commands.is_empty() {
                format!(
                    "`s3seal keys create NAME --config {}`",
                    config_path.display()
                )
            } else {
                commands.join(", ")
            }
        )));
    }
    let keyring = Keyring::load(path).map_err(|e| CommandError::new(e.to_string()))?;
    warn_unchecked(&keyring, path);
    if config.keys.create_missing {
        let missing: std::collections::BTreeSet<&str> = policy
            .key_names()
            .filter(|name| !keyring.contains(name))
            .collect();
        check_escrow_free(config, missing.iter().copied())?;
        for name in missing {
            eprint_line!(
                "note: key {name:?} is not in the keyring {}, so the server creates it at start \
                 because keys.create_missing is set; check the name if that is not intended",
                path.display()
            );
        }
        return Ok(());
    }
    for name in policy.key_names() {
        if !keyring.contains(name) {
            return Err(CommandError::new(format!(
                "key {name:?} named by a bucket rule is not in the keyring {}; if it existed before, \
                 import its escrow copies with `s3seal keys import`, otherwise create it with \
                 `s3seal keys create {name}`",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Runs a `config` subcommand.
pub fn run_config(command: ConfigCommand) -> Result<(), CommandError> {
    let ConfigCommand::Check { config, bucket } = command;
    if let Some(bucket) = bucket.as_deref() {
        if !crate::proxy::is_valid_bucket_name(bucket) {
            return Err(CommandError::new(format!(
                "{bucket:?} is not a valid bucket name: 3 to 63 lowercase letters, digits, '.', \
                 '-' or '_', starting with a letter or digit"
            )));
        }
    }
    let loaded = Config::load(&config)?;
    let policy = Policy::new(&loaded.buckets);
    check_keyring(&loaded, &config, &policy)?;
    crate::server::check_start_inputs(&loaded).map_err(CommandError::new)?;
    print_line!("{}: valid", config.display());
    print_escrow(&loaded)?;
    match bucket {
        Some(bucket) => match policy.matching_rule(&bucket) {
            Some(rule) => {
                print_line!("bucket {bucket:?} matches rule {}:", rule.index);
                print_rule(&rule);
            }
            None => print_line!("bucket {bucket:?} matches no rule and is denied"),
        },
        None => {
            print_line!("bucket rules, first match wins; a bucket that no rule matches is denied:");
            for rule in policy.rules() {
                print_rule(&rule);
            }
        }
    }
    Ok(())
}

/// Warns on standard error about key versions stored without a check
/// value.
fn warn_unchecked(keyring: &Keyring, path: &Path) {
    let unchecked = keyring.unchecked_versions();
    if !unchecked.is_empty() {
        eprint_line!(
            "warning: keyring {} stores {} without a check value, so damage to their material \
             goes undetected; the next `s3seal keys create`, `keys rotate` or `keys import` \
             adds check values",
            path.display(),
            unchecked.join(", ")
        );
    }
}

/// Prints whether key versions get escrow copies, and which lack one.
fn print_escrow(config: &Config) -> Result<(), CommandError> {
    let keys = &config.keys;
    let escrow = Escrow::new(&keys.escrow_dir, &keys.escrow_recipients)
        .map_err(|e| CommandError::new(e.to_string()))?;
    let Some(escrow) = escrow else {
        print_line!("key escrow: off (keys.escrow_recipients is empty)");
        return Ok(());
    };
    print_line!(
        "key escrow: {} recipient(s), copies in {}",
        keys.escrow_recipients.len(),
        escrow.dir().display()
    );
    if let Ok(keyring) = Keyring::load(&keys.keyring_file) {
        for (name, version) in keyring.versions() {
            if !escrow.exists(name, version.version) {
                print_line!(
                    "  key {name:?} version {} has no escrow copy; run `s3seal keys escrow`",
                    version.version
                );
            } else if let Err(error) = escrow.check_intact(name, version.version) {
                print_line!("  key {name:?} version {}: {error}", version.version);
            }
        }
    }
    Ok(())
}

fn print_rule(rule: &EffectiveRule<'_>) {
    let settings = &rule.rule;
    let mode = match settings.mode {
        BucketMode::Encrypt => format!(
            "encrypt with key {:?}",
            settings.key.as_deref().unwrap_or_default()
        ),
        BucketMode::Passthrough => "passthrough".to_string(),
        BucketMode::Deny => "deny".to_string(),
    };
    print_line!("  [{}] match = {:?}: {mode}", rule.index, settings.pattern);
    if settings.mode == BucketMode::Deny {
        return;
    }
    for permission in Permission::ALL {
        print_line!(
            "      {:<6} = {}",
            permission.name(),
            rule.principals(permission)
        );
    }
    if settings.mode == BucketMode::Encrypt {
        print_line!(
            "      allow_unencrypted_reads = {}",
            settings.allow_unencrypted_reads
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn header_logging_crates_capped_at_info() {
        assert!(logs_headers("s3s::service", &Level::DEBUG));
        assert!(logs_headers("s3s", &Level::TRACE));
        assert!(logs_headers("s3s_fs::s3", &Level::DEBUG));
        assert!(!logs_headers("s3s::service", &Level::INFO));
        assert!(!logs_headers("s3s::service", &Level::WARN));
        assert!(!logs_headers("s3seal::proxy", &Level::TRACE));
        assert!(!logs_headers("hyper", &Level::TRACE));
    }
}
