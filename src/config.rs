//! Typed configuration: `config.toml` merged with `S3SEAL_`-prefixed
//! environment variables by figment, with defaults and a `validate()` step
//! that rejects contradictory settings at start-up.
//!
//! Environment overrides use `__` between levels, so
//! `S3SEAL_SERVER__LISTEN=127.0.0.1:9000` sets `server.listen`.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub embedded: EmbeddedConfig,
    pub keys: KeysConfig,
    pub audit: AuditConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    /// Credentials that clients sign their requests with.
    pub clients: Vec<ClientCredential>,
    /// Per-bucket rules; the first rule whose pattern matches wins, and a
    /// bucket that no rule matches is denied.
    pub buckets: Vec<BucketRule>,
}

/// Client-facing listeners and request checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Plain HTTP listener. Default `127.0.0.1:8014`; `""` turns it off,
    /// for a server that listens on `tls_listen` only.
    #[serde(deserialize_with = "address_or_off")]
    pub listen: Option<SocketAddr>,
    /// TLS listener; needs `tls_cert_file` and `tls_key_file`.
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate chain for the TLS listener.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for the TLS listener.
    pub tls_key_file: Option<PathBuf>,
    /// Domain for virtual-hosted-style requests: `BUCKET.{base_domain}`.
    /// Without it every request is path-style.
    pub base_domain: Option<String>,
    /// Region that clients sign for. Default `us-east-1`.
    pub region: String,
    /// Largest accepted difference between a request's date and the clock,
    /// in seconds. S3 uses 900.
    pub max_clock_skew_secs: u64,
    /// File written once the listeners are bound, with their addresses as
    /// JSON. Tests and scripts use it to learn ports chosen by the system.
    pub ready_file: Option<PathBuf>,
    /// Seconds to wait for open requests at shutdown.
    pub shutdown_grace_secs: u64,
    /// Seconds an upload may go without sending body data before s3seal
    /// fails it and aborts the upstream request. S3 waits about 20.
    pub body_idle_timeout_secs: u64,
    /// Largest listing or XML response body that is read into memory for
    /// rewriting, in bytes. S3 listings of 1000 keys stay well under 1 MiB.
    pub max_xml_body_bytes: usize,
}

/// Reads a socket address, or `None` from an empty string.
fn address_or_off<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|e| {
        serde::de::Error::custom(format!(
            "{e}: expected an address such as 127.0.0.1:8014, or \"\" for no listener"
        ))
    })
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8014))),
            tls_listen: None,
            tls_cert_file: None,
            tls_key_file: None,
            base_domain: None,
            region: "us-east-1".into(),
            max_clock_skew_secs: 900,
            ready_file: None,
            shutdown_grace_secs: 10,
            body_idle_timeout_secs: 20,
            max_xml_body_bytes: 16 * 1024 * 1024,
        }
    }
}

/// The kind of upstream.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamKind {
    /// The in-process S3 store of the `embedded` section.
    Embedded,
    /// An S3-compatible endpoint at `endpoint`.
    Remote,
}

/// Addressing style for upstream requests.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AddressingStyle {
    Path,
    Virtual,
}

/// The real S3 endpoint that requests are re-signed for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// `embedded` or `remote`. Default: `remote` when `endpoint` is set,
    /// otherwise `embedded`.
    pub kind: Option<UpstreamKind>,
    /// Base URL, `http://` or `https://`, with no path.
    pub endpoint: Option<String>,
    /// Region that upstream requests are signed for.
    pub region: String,
    /// `path` (`endpoint/bucket/key`) or `virtual` (`bucket.endpoint/key`).
    pub addressing_style: AddressingStyle,
    /// Environment variable that contains the upstream access key id.
    pub access_key_id_env: String,
    /// Environment variable that contains the upstream secret access key.
    pub secret_access_key_env: String,
    /// File with the upstream credentials as two lines: access key id, then
    /// secret access key. Used instead of the environment when set.
    pub credentials_file: Option<PathBuf>,
    /// Extra PEM CA bundle trusted for an `https` endpoint, besides the
    /// system roots.
    pub ca_file: Option<PathBuf>,
    /// Seconds to wait for a TCP and TLS connection to the upstream.
    pub connect_timeout_secs: u64,
    /// Seconds the upstream may take to send the response head once the
    /// request body is sent, to send each next piece of the response body,
    /// and to take each next piece of the request body.
    pub response_timeout_secs: u64,
    /// Idle pooled connections kept per upstream host.
    pub pool_max_idle_per_host: usize,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            kind: None,
            endpoint: None,
            region: "us-east-1".into(),
            addressing_style: AddressingStyle::Path,
            access_key_id_env: "S3SEAL_UPSTREAM_ACCESS_KEY_ID".into(),
            secret_access_key_env: "S3SEAL_UPSTREAM_SECRET_ACCESS_KEY".into(),
            credentials_file: None,
            ca_file: None,
            connect_timeout_secs: 10,
            response_timeout_secs: 300,
            pool_max_idle_per_host: 64,
        }
    }
}

impl UpstreamConfig {
    pub fn effective_kind(&self) -> UpstreamKind {
        match (self.kind, &self.endpoint) {
            (Some(kind), _) => kind,
            (None, Some(_)) => UpstreamKind::Remote,
            (None, None) => UpstreamKind::Embedded,
        }
    }
}

/// The embedded local S3 store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    /// Directory of the stored (encrypted) objects.
    pub data_dir: PathBuf,
    /// File with the embedded store's generated credentials (mode 0600).
    pub credentials_file: PathBuf,
    /// Port of the store's listener on 127.0.0.1. 0 picks a free port.
    pub port: u16,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data/store"),
            credentials_file: PathBuf::from("data/embedded-credentials"),
            port: 0,
        }
    }
}

/// Key-encryption keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Keyring file (JSON, mode 0600). s3seal refuses to start when group or
    /// others may read it.
    pub keyring_file: PathBuf,
    /// Create the keyring and every key named by a bucket rule when they are
    /// missing. Meant for local development only: it logs a warning.
    pub create_missing: bool,
    /// age X25519 recipients (`age1...`) of the security team. When set,
    /// every new key version is sealed to all of them as an escrow copy in
    /// `escrow_dir` before it is used, and a version whose copy cannot be
    /// written is not added.
    pub escrow_recipients: Vec<String>,
    /// Directory of the escrow copies, one `NAME.vVERSION.age` file per key
    /// version.
    pub escrow_dir: PathBuf,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            keyring_file: PathBuf::from("data/keyring.json"),
            create_missing: false,
            escrow_recipients: Vec::new(),
            escrow_dir: PathBuf::from("data/escrow"),
        }
    }
}

/// The key-access audit log. Every use of a key-encryption key is recorded
/// there; auditing cannot be turned off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Audit log file (JSON lines, mode 0600 when created). The running
    /// server holds an exclusive lock on it.
    pub file: PathBuf,
    /// File with the 32-byte HMAC key of the audit chain as 64 hex digits.
    /// Created with mode 0600 and a random key when missing.
    pub key_file: PathBuf,
    /// `always` flushes every record to disk before the key operation
    /// completes; `never` leaves flushing to the operating system.
    pub fsync: AuditFsync,
    /// Also write every record to standard output.
    pub stdout: bool,
    /// When a record cannot be written, fail the request that needed the key
    /// with 503 ServiceUnavailable. With `false` the request proceeds and the
    /// failure is logged and counted.
    pub fail_closed: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            file: PathBuf::from("data/audit.log"),
            key_file: PathBuf::from("data/audit-key"),
            fsync: AuditFsync::Always,
            stdout: false,
            fail_closed: true,
        }
    }
}

/// When audit records are flushed to disk.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuditFsync {
    Always,
    Never,
}

/// The operator listener: Prometheus metrics and health endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of the operator listener. Without it there is no listener.
    pub listen: Option<SocketAddr>,
    /// Path of the Prometheus text endpoint.
    pub path: String,
    /// Maximum time in milliseconds that `/readyz` waits for the upstream's
    /// response to its probe request.
    pub ready_timeout_ms: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: None,
            path: "/metrics".into(),
            ready_timeout_ms: 2000,
        }
    }
}

/// Log output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// Default filter when `RUST_LOG` is unset, in `tracing` filter syntax.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// One client credential. The secret is never inline: it comes from an
/// environment variable or a file.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ClientCredential {
    pub access_key_id: String,
    /// Environment variable holding the secret access key.
    pub secret_env: Option<String>,
    /// File holding the secret access key (trailing newline ignored).
    pub secret_file: Option<PathBuf>,
    /// Generate `secret_file` when it is missing. Meant for local development.
    pub generate_secret: bool,
}

/// The handling of a bucket's objects.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BucketMode {
    /// Object bodies are encrypted on the way in and decrypted on the way out.
    Encrypt,
    /// Requests are forwarded re-signed, with bodies unchanged.
    Passthrough,
    /// Every request is rejected with `AccessDenied`.
    Deny,
}

/// A per-bucket rule.
///
/// The four permission lists name the client access key ids that may use
/// the permission, or contain `"*"` for every client. A list that is absent
/// means `["*"]`, and an empty list grants the permission to no client.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketRule {
    /// Exact bucket name or a glob (`*`, `?`, `[a-z]`).
    #[serde(rename = "match")]
    pub pattern: String,
    pub mode: BucketMode,
    /// Key-encryption key name; required for `encrypt`.
    #[serde(default)]
    pub key: Option<String>,
    /// Clients that may read objects: GetObject, HeadObject, and the
    /// source of a copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<Vec<String>>,
    /// Clients that may write: PutObject, the target of a copy, multipart
    /// uploads, CreateBucket and configuration changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<Vec<String>>,
    /// Clients that may list the bucket: ListObjects, HeadBucket and the
    /// other bucket-level reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<Vec<String>>,
    /// Clients that may delete objects and the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<Vec<String>>,
    /// Whether objects in an `encrypt` bucket that carry no s3seal envelope,
    /// such as objects written before s3seal was deployed, are returned as
    /// stored. When `false` reading them fails with AccessDenied.
    #[serde(default)]
    pub allow_unencrypted_reads: bool,
}

impl BucketRule {
    /// Returns a rule with the given mode and key that grants every
    /// permission to every client.
    pub fn new(pattern: impl Into<String>, mode: BucketMode, key: Option<String>) -> Self {
        Self {
            pattern: pattern.into(),
            mode,
            key,
            read: None,
            write: None,
            list: None,
            delete: None,
            allow_unencrypted_reads: false,
        }
    }

    /// Returns the permission lists by name, in the order read, write,
    /// list, delete.
    pub fn permission_lists(&self) -> [(&'static str, Option<&[String]>); 4] {
        [
            ("read", self.read.as_deref()),
            ("write", self.write.as_deref()),
            ("list", self.list.as_deref()),
            ("delete", self.delete.as_deref()),
        ]
    }
}

/// The permission list entry that matches every client.
pub const ANY_CLIENT: &str = "*";

/// A configuration error that names the field and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to load configuration: {}", describe_load_error(.0))]
    Load(#[from] Box<figment::Error>),
    #[error("invalid configuration: {field}: {message}")]
    Invalid { field: String, message: String },
    /// The `--config` path names no configuration file that can be read:
    /// it is missing, a directory or another kind of non-regular file.
    #[error("--config {}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
}

/// Formats every error of a failed extraction as figment does, but names
/// the key by its path alone, without figment's `default.` profile prefix.
fn describe_load_error(error: &figment::Error) -> String {
    let mut messages = Vec::new();
    for error in error.clone() {
        let mut message = describe_kind(&error.kind);
        if !error.path.is_empty() {
            message.push_str(&format!(" for key {:?}", error.path.join(".")));
        }
        if let Some(metadata) = &error.metadata {
            // A file is named by its full path: figment's own display makes
            // it relative to the working directory.
            match &metadata.source {
                Some(figment::Source::File(path)) => {
                    message.push_str(&format!(" in {} {}", path.display(), metadata.name))
                }
                Some(source) => message.push_str(&format!(" in {source} {}", metadata.name)),
                None => message.push_str(&format!(" in {}", metadata.name)),
            }
        }
        messages.push(message);
    }
    messages.join("; ")
}

/// Returns whether two configured paths name one file: the same file when
/// both exist (links included), otherwise the same path once `.`
/// components are dropped.
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return a.dev() == b.dev() && a.ino() == b.ino();
        }
    }
    let plain = |path: &Path| -> PathBuf {
        path.components()
            .filter(|part| *part != std::path::Component::CurDir)
            .collect()
    };
    plain(a) == plain(b)
}

/// Fails for a value of a `*_env` field that cannot name an environment
/// variable, without printing it: such a value is most likely the secret
/// itself, pasted where its variable's name belongs.
fn check_env_name(field: &str, name: &str) -> Result<(), ConfigError> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        return Ok(());
    }
    Err(invalid(
        field,
        "is not an environment variable name (letters, digits and _, value not shown); \
         give the name of the variable that holds the secret, not the secret",
    ))
}

/// Formats one extraction error without the string value that failed, which
/// may be a secret in the wrong place: an age secret key given as a single
/// string where `keys.escrow_recipients` expects a list, for example.
fn describe_kind(kind: &figment::error::Kind) -> String {
    use figment::error::{Actual, Kind};
    match kind {
        Kind::InvalidType(Actual::Str(_), expected) => {
            format!("invalid type: found a string (value not shown), expected {expected}")
        }
        Kind::InvalidValue(Actual::Str(_), expected) => {
            format!("invalid value: a string (value not shown), expected {expected}")
        }
        Kind::UnknownVariant(_, expected) => {
            format!("unknown variant (value not shown), expected one of {expected:?}")
        }
        // figment's own message puts the list of fields in nested backticks.
        Kind::UnknownField(field, expected) => {
            format!("unknown field {field:?}, expected one of {expected:?}")
        }
        other => other.to_string(),
    }
}

/// Fails unless `path` is a regular file that can be opened. figment reads
/// a directory or a missing file as an empty configuration, which would
/// then fail validation with a message about the first missing setting.
fn check_config_file(path: &Path) -> Result<(), ConfigError> {
    let hint = "pass the path of a TOML configuration file such as config.toml";
    let reason = match std::fs::metadata(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            format!("file not found; {hint}")
        }
        Err(error) => format!("failed to read: {error}"),
        Ok(metadata) if metadata.is_dir() => {
            format!("is a directory, not a configuration file; {hint}")
        }
        Ok(metadata) if !metadata.is_file() => {
            format!("is not a regular file, so not a configuration file; {hint}")
        }
        Ok(_) => match std::fs::File::open(path) {
            Ok(_) => return Ok(()),
            Err(error) => format!("failed to open: {error}"),
        },
    };
    Err(ConfigError::File {
        path: path.to_path_buf(),
        reason,
    })
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Returns the environment provider: `S3SEAL_SECTION__FIELD` variables
/// only. Variables without `__`, such as the default upstream credential
/// variables `S3SEAL_UPSTREAM_ACCESS_KEY_ID`, are not configuration.
fn config_env() -> Env {
    Env::prefixed("S3SEAL_")
        .filter(|key| key.as_str().contains("__"))
        .split("__")
}

impl Config {
    /// Loads `path` over the defaults, then the `S3SEAL_` environment, and
    /// validates the result. Fails with [`ConfigError::File`] when `path` is
    /// not a regular file that can be opened. Relative paths in the file are
    /// resolved against the current directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        check_config_file(path)?;
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(path))
            .merge(config_env())
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a configuration from TOML text, without the environment.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Rejects contradictory or incomplete settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let server = &self.server;
        if server.listen.is_none() && server.tls_listen.is_none() {
            return Err(invalid(
                "server.listen",
                "set server.listen or server.tls_listen",
            ));
        }
        if let (Some(plain), Some(tls)) = (server.listen, server.tls_listen) {
            if plain == tls && plain.port() != 0 {
                return Err(invalid(
                    "server.tls_listen",
                    format!("{tls} is already server.listen; use another port"),
                ));
            }
        }
        if server.tls_listen.is_some()
            && (server.tls_cert_file.is_none() || server.tls_key_file.is_none())
        {
            return Err(invalid(
                "server.tls_listen",
                "a TLS listener needs server.tls_cert_file and server.tls_key_file",
            ));
        }
        if server.region.is_empty() {
            return Err(invalid(
                "server.region",
                "must not be empty; S3 clients default to us-east-1",
            ));
        }
        if server.body_idle_timeout_secs == 0 {
            return Err(invalid(
                "server.body_idle_timeout_secs",
                "must be at least 1; S3 uses about 20",
            ));
        }
        // A listing page of 1000 keys of up to 1024 bytes, or the
        // CompleteMultipartUpload document of 10,000 parts, takes about
        // 1.5 MB.
        if server.max_xml_body_bytes < 4 * 1024 * 1024 {
            return Err(invalid(
                "server.max_xml_body_bytes",
                "must be at least 4194304 (4 MiB), because a listing page of 1000 long keys \
                 takes about 1.5 MB",
            ));
        }
        if let Some(domain) = &server.base_domain {
            // A Host header is compared with the name alone, so a port, a
            // wildcard or an address would never match.
            let is_name = !domain.is_empty()
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
                && domain.split('.').all(|label| !label.is_empty())
                && domain.parse::<std::net::IpAddr>().is_err();
            if !is_name {
                return Err(invalid(
                    "server.base_domain",
                    format!(
                        "{domain:?} is not a domain name such as s3.local (no port, wildcard or \
                         IP address)"
                    ),
                ));
            }
        }

        let upstream = &self.upstream;
        match upstream.effective_kind() {
            UpstreamKind::Remote => {
                let Some(endpoint) = &upstream.endpoint else {
                    return Err(invalid(
                        "upstream.endpoint",
                        "kind = \"remote\" needs an endpoint such as https://s3.amazonaws.com",
                    ));
                };
                let uri: http::Uri = endpoint.parse().map_err(|e| {
                    invalid(
                        "upstream.endpoint",
                        format!("{endpoint:?} is not a URL: {e}"),
                    )
                })?;
                if !matches!(uri.scheme_str(), Some("http") | Some("https")) || uri.host().is_none()
                {
                    return Err(invalid(
                        "upstream.endpoint",
                        format!("{endpoint:?} must start with http:// or https:// and name a host"),
                    ));
                }
                if uri.path() != "/" && !uri.path().is_empty() {
                    return Err(invalid(
                        "upstream.endpoint",
                        format!("{endpoint:?} must not have a path"),
                    ));
                }
            }
            UpstreamKind::Embedded => {
                if upstream.addressing_style == AddressingStyle::Virtual {
                    return Err(invalid(
                        "upstream.addressing_style",
                        "the embedded store takes path-style requests only",
                    ));
                }
                self.validate_embedded_port()?;
            }
        }
        if upstream.region.is_empty() {
            return Err(invalid("upstream.region", "must not be empty"));
        }
        if upstream.connect_timeout_secs == 0 {
            return Err(invalid(
                "upstream.connect_timeout_secs",
                "must be at least 1",
            ));
        }
        if upstream.response_timeout_secs == 0 {
            return Err(invalid(
                "upstream.response_timeout_secs",
                "must be at least 1",
            ));
        }

        check_env_name(
            "upstream.access_key_id_env",
            &self.upstream.access_key_id_env,
        )?;
        check_env_name(
            "upstream.secret_access_key_env",
            &self.upstream.secret_access_key_env,
        )?;
        if self.clients.is_empty() {
            return Err(invalid("clients", "add at least one [[clients]] entry with access_key_id and secret_env or secret_file"));
        }
        for (i, client) in self.clients.iter().enumerate() {
            let field = format!("clients[{i}]");
            if client.access_key_id.len() < 3
                || !client
                    .access_key_id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric())
            {
                return Err(invalid(
                    format!("{field}.access_key_id"),
                    "must be at least 3 ASCII letters or digits",
                ));
            }
            if let Some(name) = &client.secret_env {
                check_env_name(&format!("{field}.secret_env"), name)?;
            }
            match (&client.secret_env, &client.secret_file) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => {
                    return Err(invalid(
                        field,
                        "set exactly one of secret_env and secret_file",
                    ))
                }
            }
            if client.generate_secret && client.secret_file.is_none() {
                return Err(invalid(
                    format!("{field}.generate_secret"),
                    "needs secret_file",
                ));
            }
            if self.clients[..i]
                .iter()
                .any(|c| c.access_key_id == client.access_key_id)
            {
                return Err(invalid(format!("{field}.access_key_id"), "is listed twice"));
            }
        }

        if self.buckets.is_empty() {
            return Err(invalid(
                "buckets",
                "add at least one [[buckets]] rule; a bucket that no rule matches is denied",
            ));
        }
        for (i, rule) in self.buckets.iter().enumerate() {
            let field = format!("buckets[{i}]");
            glob::Pattern::new(&rule.pattern).map_err(|e| {
                invalid(
                    format!("{field}.match"),
                    format!("{:?} is not a valid glob: {e}", rule.pattern),
                )
            })?;
            if !can_match_bucket_names(&rule.pattern) {
                return Err(invalid(
                    format!("{field}.match"),
                    format!(
                        "{:?} can never match a bucket name, which s3seal accepts only in \
                         lowercase letters, digits, '.', '-' and '_'",
                        rule.pattern
                    ),
                ));
            }
            match (rule.mode, &rule.key) {
                (BucketMode::Encrypt, None) => {
                    return Err(invalid(
                        format!("{field}.key"),
                        "mode = \"encrypt\" needs the name of a key-encryption key",
                    ))
                }
                (BucketMode::Encrypt, Some(key)) if !crate::keys::is_valid_key_name(key) => {
                    return Err(invalid(
                        format!("{field}.key"),
                        format!("{key:?} is not a valid key name (1 to 64 letters, digits, '.', '_', '-', starting with a letter or digit)"),
                    ))
                }
                (BucketMode::Passthrough | BucketMode::Deny, Some(_)) => {
                    return Err(invalid(
                        format!("{field}.key"),
                        "only mode = \"encrypt\" takes a key",
                    ))
                }
                _ => {}
            }
            self.validate_permissions(&field, rule)?;
            let shadowing = self.buckets[..i]
                .iter()
                .position(|earlier| shadows(&earlier.pattern, &rule.pattern));
            if let Some(earlier) = shadowing {
                return Err(invalid(
                    format!("{field}.match"),
                    format!(
                        "rule {i} (match = {:?}) never applies, because rule {earlier} \
                         (match = {:?}) matches every bucket it names and the first match \
                         wins; move rule {i} above rule {earlier} or remove it",
                        rule.pattern, self.buckets[earlier].pattern
                    ),
                ));
            }
        }

        self.validate_audit()?;
        self.validate_escrow()?;
        self.validate_metrics()
    }

    /// Checks the permission lists and `allow_unencrypted_reads` of one
    /// bucket rule.
    fn validate_permissions(&self, field: &str, rule: &BucketRule) -> Result<(), ConfigError> {
        if rule.allow_unencrypted_reads && rule.mode != BucketMode::Encrypt {
            return Err(invalid(
                format!("{field}.allow_unencrypted_reads"),
                "only mode = \"encrypt\" takes allow_unencrypted_reads; other modes never decrypt",
            ));
        }
        for (name, list) in rule.permission_lists() {
            let Some(list) = list else { continue };
            if rule.mode == BucketMode::Deny {
                return Err(invalid(
                    format!("{field}.{name}"),
                    "mode = \"deny\" rejects every request, so it takes no permission lists",
                ));
            }
            for (j, principal) in list.iter().enumerate() {
                if principal == ANY_CLIENT {
                    if list.len() > 1 {
                        return Err(invalid(
                            format!("{field}.{name}"),
                            "\"*\" already grants every client; list either \"*\" alone or access key ids",
                        ));
                    }
                    continue;
                }
                if !self.clients.iter().any(|c| &c.access_key_id == principal) {
                    return Err(invalid(
                        format!("{field}.{name}[{j}]"),
                        format!(
                            "{principal:?} is not the access_key_id of any [[clients]] entry; \
                             add the client or use \"*\" for every client"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_escrow(&self) -> Result<(), ConfigError> {
        let keys = &self.keys;
        for (i, recipient) in keys.escrow_recipients.iter().enumerate() {
            let field = format!("keys.escrow_recipients[{i}]");
            match crate::keys::Escrow::new(&keys.escrow_dir, std::slice::from_ref(recipient)) {
                Ok(_) => {}
                // The message of this error does not contain the value.
                Err(error @ crate::keys::EscrowError::SecretKeyAsRecipient) => {
                    return Err(invalid(field, error.to_string()))
                }
                Err(_) => {
                    return Err(invalid(
                        field,
                        format!("{recipient:?} is not an age X25519 recipient; age-keygen prints one as \"Public key: age1...\""),
                    ))
                }
            }
        }
        if !keys.escrow_recipients.is_empty() && keys.escrow_dir.as_os_str().is_empty() {
            return Err(invalid("keys.escrow_dir", "must not be empty"));
        }
        Ok(())
    }

    fn validate_audit(&self) -> Result<(), ConfigError> {
        let audit = &self.audit;
        if audit.file.as_os_str().is_empty() {
            return Err(invalid("audit.file", "must not be empty"));
        }
        if audit.key_file.as_os_str().is_empty() {
            return Err(invalid("audit.key_file", "must not be empty"));
        }
        if same_file(&audit.file, &audit.key_file) {
            return Err(invalid(
                "audit.key_file",
                "must differ from audit.file, because the key must not be written into the log",
            ));
        }
        if audit.file.is_dir() {
            return Err(invalid("audit.file", "is a directory; name a file in it"));
        }
        // The audit files must not be any other file that s3seal reads,
        // because the log appends to its file and a start that fails on it
        // advises to move it away.
        let secrets = self
            .clients
            .iter()
            .filter_map(|client| client.secret_file.as_deref())
            .chain(self.upstream.credentials_file.as_deref())
            .chain(Some(self.embedded.credentials_file.as_path()))
            .chain(self.server.tls_key_file.as_deref())
            .chain(self.server.tls_cert_file.as_deref());
        for other in secrets {
            if same_file(&audit.file, other) || same_file(&audit.key_file, other) {
                return Err(invalid(
                    "audit.file",
                    format!(
                        "audit.file and audit.key_file must differ from {}, a file that s3seal reads",
                        other.display()
                    ),
                ));
            }
        }
        let keyring = &self.keys.keyring_file;
        if same_file(&audit.file, keyring) || same_file(&audit.key_file, keyring) {
            return Err(invalid(
                "audit.file",
                "audit.file and audit.key_file must differ from keys.keyring_file",
            ));
        }
        Ok(())
    }

    /// Rejects an embedded store port that a listener of s3seal binds on
    /// 127.0.0.1 or on every address, where the second bind would fail.
    fn validate_embedded_port(&self) -> Result<(), ConfigError> {
        let port = self.embedded.port;
        if port == 0 {
            return Ok(());
        }
        let listeners = [
            ("server.listen", self.server.listen),
            ("server.tls_listen", self.server.tls_listen),
            ("metrics.listen", self.metrics.listen),
        ];
        for (field, addr) in listeners {
            let Some(addr) = addr else { continue };
            // An IPv4-mapped address such as ::ffff:127.0.0.1 binds the
            // IPv4 address.
            let ip = addr.ip().to_canonical();
            if addr.port() == port && (ip == std::net::Ipv4Addr::LOCALHOST || ip.is_unspecified()) {
                return Err(invalid(
                    "embedded.port",
                    format!("{port} is already the port of {field} ({addr}); use another port"),
                ));
            }
        }
        Ok(())
    }

    fn validate_metrics(&self) -> Result<(), ConfigError> {
        let metrics = &self.metrics;
        if !metrics.path.starts_with('/') || metrics.path.contains(['?', '#']) {
            return Err(invalid(
                "metrics.path",
                format!("{:?} must be a URL path that starts with '/'", metrics.path),
            ));
        }
        if matches!(metrics.path.as_str(), "/healthz" | "/readyz") {
            return Err(invalid(
                "metrics.path",
                format!(
                    "{:?} is taken by the health endpoint of that name",
                    metrics.path
                ),
            ));
        }
        if metrics.ready_timeout_ms == 0 {
            return Err(invalid("metrics.ready_timeout_ms", "must be at least 1"));
        }
        if let Some(addr) = metrics.listen {
            let taken = [self.server.listen, self.server.tls_listen];
            if addr.port() != 0 && taken.contains(&Some(addr)) {
                return Err(invalid(
                    "metrics.listen",
                    format!("{addr} is already a client listener; use another port"),
                ));
            }
        }
        Ok(())
    }
}

/// Returns the permission bits of the file at `path` when group or others
/// may access it, or `None` when only its owner may, or when it cannot be
/// read.
pub fn shared_file_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Logs a warning when a file that contains a secret is open to group or
/// others.
pub fn warn_if_shared(path: &Path, description: &str) {
    if let Some(mode) = shared_file_mode(path) {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{mode:o}"),
            "{description} is readable by group or others; run `chmod 600 {}`",
            path.display()
        );
    }
}

/// Returns whether `pattern` is not empty and its characters outside
/// bracket expressions (`[a-z]`) can appear in a bucket name.
fn can_match_bucket_names(pattern: &str) -> bool {
    let mut chars = pattern.chars();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if c == '[' {
            // A `]` right after `[` or `[!` is part of the set.
            let mut set = String::from("[");
            let mut first = true;
            for inner in chars.by_ref() {
                set.push(inner);
                if inner == ']' && !first {
                    break;
                }
                first = first && inner == '!';
            }
            // A set such as `[A-Z]` or `[!a-z0-9._-]` contains no character
            // of a bucket name, so the pattern never matches.
            let matches_name_char = glob::Pattern::new(&set).is_ok_and(|set| {
                ('a'..='z')
                    .chain('0'..='9')
                    .chain(['.', '-', '_'])
                    .any(|name_char| set.matches(name_char.encode_utf8(&mut [0; 4])))
            });
            if !matches_name_char {
                return false;
            }
            continue;
        }
        let allowed = c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || matches!(c, '.' | '-' | '_' | '*' | '?');
        if !allowed {
            return false;
        }
    }
    any
}

/// Returns whether a bucket rule with pattern `earlier` matches every
/// bucket that a later rule with pattern `later` matches. It detects the
/// same pattern, `*`, and a literal name that `earlier` matches, not every
/// case of one glob covering another.
fn shadows(earlier: &str, later: &str) -> bool {
    if earlier == later || earlier == "*" {
        return true;
    }
    let literal = !later.contains(['*', '?', '[']);
    literal && glob::Pattern::new(earlier).is_ok_and(|pattern| pattern.matches(later))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [[clients]]
        access_key_id = "AKIDTEST"
        secret_env = "TEST_SECRET"

        [[buckets]]
        match = "*"
        mode = "encrypt"
        key = "main"
    "#;

    #[test]
    fn minimal_config_uses_defaults() {
        let config = Config::from_toml(MINIMAL).unwrap();
        assert_eq!(config.server.region, "us-east-1");
        assert_eq!(config.upstream.effective_kind(), UpstreamKind::Embedded);
        assert_eq!(config.buckets[0].mode, BucketMode::Encrypt);
    }

    #[test]
    fn encrypt_rule_without_key_rejected() {
        let text = MINIMAL.replace("key = \"main\"", "");
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("buckets[0].key"), "{err}");
    }

    #[test]
    fn unknown_field_rejected() {
        let text = format!("{MINIMAL}\n[server]\nlisten_port = 3\n");
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("listen_port"), "{err}");
        assert!(err.contains("for key \"server.listen_port\""), "{err}");
        assert!(!err.contains("default."), "{err}");
    }

    #[test]
    fn empty_listen_serves_tls_only() {
        let tls =
            "tls_listen = \"127.0.0.1:8443\"\ntls_cert_file = \"c.pem\"\ntls_key_file = \"k.pem\"";
        let text = format!("{MINIMAL}\n[server]\nlisten = \"\"\n{tls}\n");
        let config = Config::from_toml(&text).unwrap();
        assert_eq!(config.server.listen, None);
        assert!(config.server.tls_listen.is_some());

        let text = format!("{MINIMAL}\n[server]\nlisten = \"\"\n");
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(
            err.contains("set server.listen or server.tls_listen"),
            "{err}"
        );

        let text = format!("{MINIMAL}\n[server]\nlisten = \"127.0.0.1:8443\"\n{tls}\n");
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("is already server.listen"), "{err}");
    }

    #[test]
    fn embedded_port_differs_from_listeners() {
        let cases = [
            "[server]\nlisten = \"127.0.0.1:8015\"",
            "[server]\nlisten = \"0.0.0.0:8015\"",
            "[metrics]\nlisten = \"127.0.0.1:8015\"",
            "[server]\nlisten = \"[::ffff:127.0.0.1]:8015\"",
        ];
        for listener in cases {
            let text = format!("{MINIMAL}\n{listener}\n[embedded]\nport = 8015\n");
            let err = Config::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains("embedded.port"), "{listener}: {err}");
            assert!(
                err.contains("8015 is already the port of"),
                "{listener}: {err}"
            );
        }

        let other_address = "[server]\nlisten = \"192.0.2.1:8015\"\n[embedded]\nport = 8015\n";
        assert!(Config::from_toml(&format!("{MINIMAL}\n{other_address}")).is_ok());
        let other_port = "[server]\nlisten = \"127.0.0.1:8014\"\n[embedded]\nport = 8015\n";
        assert!(Config::from_toml(&format!("{MINIMAL}\n{other_port}")).is_ok());
    }

    #[test]
    fn base_domain_needs_a_plain_name() {
        for domain in [
            "s3.test:8014",
            "*.s3.test",
            "a b",
            "127.0.0.1",
            "s3.test.",
            ".s3.test",
        ] {
            let text = format!("{MINIMAL}\n[server]\nbase_domain = {domain:?}\n");
            let err = Config::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains("server.base_domain"), "{domain:?}: {err}");
        }
        for domain in ["s3.local", "S3.TEST", "localhost", "s3-eu.example.com"] {
            let text = format!("{MINIMAL}\n[server]\nbase_domain = {domain:?}\n");
            assert!(Config::from_toml(&text).is_ok(), "{domain:?}");
        }
    }

    #[test]
    fn xml_body_limit_below_a_listing_page_rejected() {
        let text = format!("{MINIMAL}\n[server]\nmax_xml_body_bytes = 65536\n");
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("server.max_xml_body_bytes"), "{err}");
        assert!(err.contains("4194304"), "{err}");
        let text = format!("{MINIMAL}\n[server]\nmax_xml_body_bytes = 4194304\n");
        assert!(Config::from_toml(&text).is_ok());
    }

    #[test]
    fn patterns_that_match_no_bucket_name_rejected() {
        let rejected = [
            "",
            "abc ",
            "ABC",
            "A*",
            "ABC_def",
            "a/b",
            "[A-Z]*",
            "[z-a]bc",
            "[!a-z0-9._-]*",
        ];
        for pattern in rejected {
            let text = MINIMAL.replace("match = \"*\"", &format!("match = {pattern:?}"));
            let err = Config::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains("can never match"), "{pattern:?}: {err}");
        }
        let accepted = [
            "logs-*",
            "[a-z]*",
            "[!A]bc",
            "[]a]x",
            "[A-Z0]x",
            "[.]x",
            "a?c",
            "data_2024.x",
        ];
        for pattern in accepted {
            let text = MINIMAL.replace("match = \"*\"", &format!("match = {pattern:?}"));
            let result = Config::from_toml(&text);
            assert!(result.is_ok(), "{pattern:?}: {:?}", result.err());
        }
    }

    #[test]
    fn rule_behind_a_covering_rule_rejected() {
        let rules = |first: &str, second: &str| {
            format!(
                "[[clients]]\naccess_key_id = \"AKIDTEST\"\nsecret_env = \"TEST_SECRET\"\n\
                 [[buckets]]\nmatch = \"{first}\"\nmode = \"passthrough\"\n\
                 [[buckets]]\nmatch = \"{second}\"\nmode = \"encrypt\"\nkey = \"k\"\n"
            )
        };
        for (first, second) in [
            ("*", "alpha"),
            ("al*", "alpha"),
            ("logs-*", "logs-*"),
            ("*", "b-*"),
        ] {
            let err = Config::from_toml(&rules(first, second))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("never applies"),
                "{first} then {second}: {err}"
            );
        }
        for (first, second) in [("alpha", "*"), ("al*", "beta"), ("a-*", "b-*")] {
            let result = Config::from_toml(&rules(first, second));
            assert!(result.is_ok(), "{first} then {second}: {:?}", result.err());
        }
    }

    #[test]
    fn escrow_secret_key_never_printed() {
        let secret = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ";
        // A stray character before the key must not make it print either.
        for recipient in [secret.to_string(), format!("x{secret}")] {
            let text = format!("{MINIMAL}\n[keys]\nescrow_recipients = [\"{recipient}\"]\n");
            let err = Config::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains("keys.escrow_recipients[0]"), "{err}");
            assert!(err.contains("secret key"), "{err}");
            assert!(!err.contains("QQQQ"), "{err}");
        }
        // A value given for a field of fixed words, or for a variable name.
        for field in ["[audit]\nfsync", "[log]\nformat"] {
            let text = format!("{MINIMAL}\n{field} = \"{secret}\"\n");
            let err = Config::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains("unknown variant"), "{err}");
            assert!(!err.contains("QQQQ"), "{err}");
        }
        let text = format!("{MINIMAL}\n[upstream]\nsecret_access_key_env = \"{secret}\"\n");
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("upstream.secret_access_key_env"), "{err}");
        assert!(!err.contains("QQQQ"), "{err}");
        // A single string where a list belongs fails as a type error.
        let text = format!("{MINIMAL}\n[keys]\nescrow_recipients = \"{secret}\"\n");
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("keys.escrow_recipients"), "{err}");
        assert!(err.contains("expected a sequence"), "{err}");
        assert!(!err.contains("QQQQ"), "{err}");
    }

    #[test]
    fn tls_listener_needs_certificate() {
        let text = format!("{MINIMAL}\n[server]\ntls_listen = \"127.0.0.1:0\"\n");
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("server.tls_listen"), "{err}");
    }

    #[test]
    fn remote_endpoint_with_path_rejected() {
        let text = format!("{MINIMAL}\n[upstream]\nendpoint = \"http://127.0.0.1:9/x\"\n");
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("upstream.endpoint"), "{err}");
    }

    #[test]
    // `Jail::expect_with` fixes the closure's error type to figment's.
    #[allow(clippy::result_large_err)]
    fn environment_needs_double_underscore() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("S3SEAL_UPSTREAM_ACCESS_KEY_ID", "not config");
            jail.set_env("S3SEAL_SERVER__REGION", "eu-west-1");
            jail.create_file("config.toml", MINIMAL)?;
            let config = Config::load(Path::new("config.toml")).map_err(|e| e.to_string())?;
            assert_eq!(config.server.region, "eu-west-1");
            Ok(())
        });
    }

    #[test]
    fn audit_and_metrics_defaults() {
        let config = Config::from_toml(MINIMAL).unwrap();
        assert_eq!(config.audit.file, PathBuf::from("data/audit.log"));
        assert_eq!(config.audit.key_file, PathBuf::from("data/audit-key"));
        assert_eq!(config.audit.fsync, AuditFsync::Always);
        assert!(config.audit.fail_closed);
        assert!(!config.audit.stdout);
        assert_eq!(config.metrics.listen, None);
        assert_eq!(config.metrics.path, "/metrics");
    }

    #[test]
    fn upstream_timeouts_checked() {
        let config = Config::from_toml(MINIMAL).unwrap();
        assert_eq!(config.upstream.response_timeout_secs, 300);

        for field in ["connect_timeout_secs", "response_timeout_secs"] {
            let text = format!("{MINIMAL}\n[upstream]\n{field} = 0\n");
            let err = Config::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains(&format!("upstream.{field}")), "{err}");
        }

        let text = format!("{MINIMAL}\n[upstream]\nresponse_timeout_secs = 1\n");
        let config = Config::from_toml(&text).unwrap();
        assert_eq!(config.upstream.response_timeout_secs, 1);
    }

    #[test]
    fn metrics_path_checked() {
        for path in ["metrics", "/readyz", "/m?x"] {
            let text = format!("{MINIMAL}\n[metrics]\npath = \"{path}\"\n");
            let err = Config::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains("metrics.path"), "{path}: {err}");
        }
    }

    #[test]
    fn audit_files_must_differ_from_secrets() {
        let text = MINIMAL.replace(
            "secret_env = \"TEST_SECRET\"",
            "secret_file = \"data/client-secret\"",
        );
        let text = format!("{text}\n[audit]\nfile = \"./data/client-secret\"\n");
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("data/client-secret"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{MINIMAL}\n[audit]\nfile = \"{}\"\n", dir.path().display());
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
    }

    #[test]
    fn unknown_field_error_lists_fields_once() {
        let text = format!("{MINIMAL}\n[audit]\nfiel = \"a\"\n");
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("unknown field \"fiel\""), "{err}");
        assert!(err.contains("\"file\""), "{err}");
        assert!(!err.contains('`'), "{err}");
    }

    #[test]
    fn load_error_names_full_file_path() {
        // A file below the working directory, which figment would name by a
        // relative path.
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("broken.toml");
        std::fs::write(&path, "[server\nlisten = 1\n").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains(&format!(" in {} ", path.display())), "{err}");
    }

    #[test]
    fn audit_key_file_must_differ_from_log() {
        let text = format!("{MINIMAL}\n[audit]\nfile = \"./a\"\nkey_file = \"a\"\n");
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("audit.key_file"), "{err}");
        let text = format!("{MINIMAL}\n[audit]\nfile = \"a\"\nkey_file = \"a\"\n");
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("audit.key_file"), "{err}");
    }

    #[test]
    fn permission_lists_checked() {
        let cases = [
            ("read = [\"OTHER1\"]", "buckets[0].read[0]"),
            ("write = [\"*\", \"AKIDTEST\"]", "buckets[0].write"),
        ];
        for (line, field) in cases {
            let text = format!("{MINIMAL}{line}\n");
            let err = Config::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains(field), "{line}: {err}");
        }
        let text = format!("{MINIMAL}read = [\"AKIDTEST\"]\ndelete = []\n");
        let config = Config::from_toml(&text).unwrap();
        assert_eq!(config.buckets[0].read, Some(vec!["AKIDTEST".to_string()]));
        assert_eq!(config.buckets[0].delete, Some(Vec::new()));
        assert_eq!(config.buckets[0].write, None);
    }

    #[test]
    fn rule_settings_need_matching_mode() {
        let passthrough = MINIMAL
            .replace("mode = \"encrypt\"", "mode = \"passthrough\"")
            .replace("key = \"main\"", "allow_unencrypted_reads = true");
        let err = Config::from_toml(&passthrough).unwrap_err().to_string();
        assert!(err.contains("buckets[0].allow_unencrypted_reads"), "{err}");

        let deny = MINIMAL
            .replace("mode = \"encrypt\"", "mode = \"deny\"")
            .replace("key = \"main\"", "list = [\"*\"]");
        let err = Config::from_toml(&deny).unwrap_err().to_string();
        assert!(err.contains("buckets[0].list"), "{err}");
    }

    #[test]
    fn client_secret_source_required() {
        let text = MINIMAL.replace("secret_env = \"TEST_SECRET\"", "");
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("clients[0]"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn shared_file_mode_reports_open_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(shared_file_mode(&path), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(shared_file_mode(&path), Some(0o644));
        assert_eq!(shared_file_mode(&dir.path().join("missing")), None);
    }
}
