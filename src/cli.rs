//! The command line: `serve`, `keys create` and `keys list`.

use crate::config::{Config, LogFormat};
use crate::keys::Keyring;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

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
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a new key-encryption key with a random version 1.
    Create {
        /// Key name: 1 to 64 letters, digits, '.', '_' or '-'.
        name: String,
        /// Configuration file whose keys.keyring_file names the keyring.
        #[arg(long, short, default_value = "config.toml")]
        config: PathBuf,
        /// Keyring file to use instead of the one in the configuration.
        #[arg(long)]
        keyring: Option<PathBuf>,
    },
    /// List key names and versions (never key material).
    List {
        #[arg(long, short, default_value = "config.toml")]
        config: PathBuf,
        #[arg(long)]
        keyring: Option<PathBuf>,
    },
}

/// Installs the tracing subscriber: `RUST_LOG` wins over `log.filter`.
pub fn install_tracing(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if let Err(error) = result {
        eprintln!("failed to install the log subscriber: {error}");
    }
}

/// Returns the keyring path from `--keyring` or the configuration. Without
/// `--keyring`, the configuration must load, because it names the file.
fn keyring_path(config: &std::path::Path, keyring: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(path) = keyring {
        return Ok(path);
    }
    Config::load(config)
        .map(|c| c.keys.keyring_file)
        .map_err(|e| e.to_string())
}

/// Runs a `keys` subcommand and returns the process exit code.
pub fn run_keys(command: KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::Create {
            name,
            config,
            keyring,
        } => {
            let path = keyring_path(&config, keyring)?;
            let mut ring = Keyring::load_or_empty(&path).map_err(|e| e.to_string())?;
            let created = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(|e| e.to_string())?;
            ring.create_key(&path, &name, &mut rand::rngs::OsRng, &created)
                .map_err(|e| e.to_string())?;
            println!("created key {name:?} version 1 in {}", path.display());
            Ok(())
        }
        KeysCommand::List { config, keyring } => {
            let path = keyring_path(&config, keyring)?;
            let ring = Keyring::load(&path).map_err(|e| e.to_string())?;
            for name in ring.names() {
                let current = ring.current(name).map_err(|e| e.to_string())?;
                println!(
                    "{name}\tcurrent version {}\tcreated {}",
                    current.version, current.created
                );
            }
            Ok(())
        }
    }
}
