//! The local keyring: a JSON file of named key-encryption keys, each with
//! numbered versions. The newest version wraps new data keys, and every
//! older version stays for unwrapping what it wrapped.

use super::{is_valid_key_name, SecretKey};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("failed to read keyring {path}: {source}{}", read_hint(source))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to write keyring {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "keyring {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("keyring {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "key {0:?} not found in the keyring; if it existed before, import its escrow copies \
         (`age -d -i IDENTITY COPY | s3seal keys import -`), otherwise create it with \
         `s3seal keys create {0}`"
    )]
    KeyNotFound(String),
    #[error("key {name:?} has no version {version}")]
    VersionNotFound { name: String, version: u32 },
    #[error("key {0:?} has reached the maximum version number")]
    VersionsExhausted(String),
    #[error(
        "key {name:?} already has a version {version} with other material, so this copy \
         belongs to another keyring; import it into a new keyring with --keyring"
    )]
    VersionConflict { name: String, version: u32 },
    #[error("key {0:?} already exists")]
    KeyExists(String),
    #[error("{0:?} is not a valid key name (1 to 64 letters, digits, '.', '_', '-', starting with a letter or digit)")]
    InvalidName(String),
    #[error(
        "key {name:?} version {version} does not match its check value, so the copy is damaged; \
         restore it from a backup or import its escrow copy into a new keyring"
    )]
    CheckValue { name: String, version: u32 },
}

/// Returns what to do about a keyring that cannot be read.
fn read_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::NotFound => {
            "; create the keys with `s3seal keys create NAME`, or rebuild the keyring from \
             escrow copies with `s3seal keys import`"
        }
        std::io::ErrorKind::PermissionDenied => {
            "; the user that runs s3seal must own the keyring and its directory"
        }
        _ => "",
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    format: u32,
    keys: BTreeMap<String, KeyFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    versions: Vec<VersionFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionFile {
    version: u32,
    created: String,
    /// Base64 of the 32 key bytes.
    material: String,
    /// The key check value of the material. Keyrings written before s3seal
    /// stored it have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    check: Option<String>,
}

/// One version of a key-encryption key. The key material is private to
/// the `keys` module: other modules reach it only through
/// [`super::KeyService`], which records every access in the audit log.
#[derive(Clone)]
pub struct KeyVersion {
    pub version: u32,
    pub created: String,
    pub(super) key: SecretKey,
}

impl std::fmt::Debug for KeyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVersion")
            .field("version", &self.version)
            .field("created", &self.created)
            .finish()
    }
}

/// Named key-encryption keys loaded from the keyring file.
#[derive(Clone, Default)]
pub struct Keyring {
    keys: Arc<BTreeMap<String, Vec<KeyVersion>>>,
    /// The versions, as `NAME vN`, that the loaded file stored without a
    /// check value.
    unchecked: Arc<Vec<String>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

const KEYRING_FORMAT: u32 = 1;

impl Keyring {
    /// Loads the keyring, rejecting a file that group or others may read.
    pub fn load(path: &Path) -> Result<Self, KeyringError> {
        check_permissions(path)?;
        let text = std::fs::read_to_string(path).map_err(|source| KeyringError::Read {
            path: path.into(),
            source,
        })?;
        let file: KeyringFile = serde_json::from_str(&text).map_err(|e| KeyringError::Invalid {
            path: path.into(),
            message: redact_json_error(&e),
        })?;
        if file.format != KEYRING_FORMAT {
            return Err(KeyringError::Invalid {
                path: path.into(),
                message: format!(
                    "format {} is not supported (expected {KEYRING_FORMAT})",
                    file.format
                ),
            });
        }
        let mut keys = BTreeMap::new();
        let mut unchecked = Vec::new();
        for (name, key) in file.keys {
            if !is_valid_key_name(&name) {
                return Err(KeyringError::Invalid {
                    path: path.into(),
                    message: KeyringError::InvalidName(name).to_string(),
                });
            }
            let mut versions = Vec::with_capacity(key.versions.len());
            for v in key.versions {
                if v.version == 0 {
                    return Err(KeyringError::Invalid {
                        path: path.into(),
                        message: format!("key {name:?} has a version 0; versions start at 1"),
                    });
                }
                let mut bytes =
                    BASE64
                        .decode(v.material.as_bytes())
                        .map_err(|e| KeyringError::Invalid {
                            path: path.into(),
                            message: format!(
                                "key {name:?} version {}: material is not base64: {e}",
                                v.version
                            ),
                        })?;
                let key = SecretKey::from_slice(&bytes);
                zeroize::Zeroize::zeroize(&mut bytes);
                let key = key.ok_or_else(|| KeyringError::Invalid {
                    path: path.into(),
                    message: format!(
                        "key {name:?} version {}: material is not 32 bytes",
                        v.version
                    ),
                })?;
                match &v.check {
                    Some(check) if !is_check_value(check) => {
                        return Err(KeyringError::Invalid {
                            path: path.into(),
                            message: format!(
                                "key {name:?} version {}: the check value is not 16 hex digits",
                                v.version
                            ),
                        })
                    }
                    Some(check) if !check.eq_ignore_ascii_case(&key.check_value()) => {
                        return Err(KeyringError::Invalid {
                            path: path.into(),
                            message: KeyringError::CheckValue {
                                name,
                                version: v.version,
                            }
                            .to_string(),
                        })
                    }
                    Some(_) => {}
                    None => unchecked.push(format!("{name} v{}", v.version)),
                }
                versions.push(KeyVersion {
                    version: v.version,
                    created: v.created,
                    key,
                });
            }
            versions.sort_by_key(|v| v.version);
            if versions.is_empty() || versions.windows(2).any(|w| w[0].version == w[1].version) {
                return Err(KeyringError::Invalid {
                    path: path.into(),
                    message: format!(
                        "key {name:?} needs at least one version and unique version numbers"
                    ),
                });
            }
            keys.insert(name, versions);
        }
        if !unchecked.is_empty() {
            tracing::warn!(
                keyring = %path.display(),
                versions = %unchecked.join(", "),
                "key versions without a check value: damage to their material goes undetected \
                 until the next `s3seal keys create`, `keys rotate` or `keys import` rewrites the \
                 keyring with check values"
            );
        }
        Ok(Self {
            keys: Arc::new(keys),
            unchecked: Arc::new(unchecked),
        })
    }

    /// Loads the keyring, or returns an empty one when the file is missing.
    pub fn load_or_empty(path: &Path) -> Result<Self, KeyringError> {
        // `symlink_metadata` rather than `exists`: a link to a file that is
        // missing (a secret volume that is not mounted) or a path that cannot
        // be read is an error, not an empty keyring to create keys in.
        match std::fs::symlink_metadata(path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            _ => Self::load(path),
        }
    }

    /// Returns the newest version of `name`, which wraps new data keys.
    pub fn current(&self, name: &str) -> Result<&KeyVersion, KeyringError> {
        self.keys
            .get(name)
            .and_then(|versions| versions.last())
            .ok_or_else(|| KeyringError::KeyNotFound(name.into()))
    }

    /// Returns version `version` of `name`.
    pub fn version(&self, name: &str, version: u32) -> Result<&KeyVersion, KeyringError> {
        let versions = self
            .keys
            .get(name)
            .ok_or_else(|| KeyringError::KeyNotFound(name.into()))?;
        versions
            .iter()
            .find(|v| v.version == version)
            .ok_or_else(|| KeyringError::VersionNotFound {
                name: name.into(),
                version,
            })
    }

    /// Returns the versions, as `NAME vN`, that the keyring file stores
    /// without a check value, so damage to their material goes undetected.
    pub fn unchecked_versions(&self) -> &[String] {
        &self.unchecked
    }

    pub fn contains(&self, name: &str) -> bool {
        self.keys.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Adds a new key named `name` with a random version 1 and writes the
    /// keyring to `path`.
    pub fn create_key(
        &mut self,
        path: &Path,
        name: &str,
        rng: &mut (impl rand::RngCore + rand::CryptoRng),
        created: &str,
    ) -> Result<(), KeyringError> {
        let mut changed = self.with_new_key(name, rng, created)?;
        changed.write(path)?;
        *self = changed;
        Ok(())
    }

    /// Appends a random version to `name`, one above its newest version,
    /// writes the keyring to `path` and returns the new version number. The
    /// new version wraps new data keys from then on, and the older versions
    /// stay for unwrapping.
    pub fn rotate_key(
        &mut self,
        path: &Path,
        name: &str,
        rng: &mut (impl rand::RngCore + rand::CryptoRng),
        created: &str,
    ) -> Result<u32, KeyringError> {
        let (mut changed, version) = self.with_rotated_key(name, rng, created)?;
        changed.write(path)?;
        *self = changed;
        Ok(version)
    }

    /// Adds a recovered version of key `name`, creating the key when it is
    /// missing, and writes the keyring to `path`. Returns `false` without a
    /// change when the keyring already contains that version with the
    /// same material, and fails when that version has other material.
    pub fn import_version(
        &mut self,
        path: &Path,
        name: &str,
        version: KeyVersion,
    ) -> Result<bool, KeyringError> {
        let Some(mut changed) = self.with_imported_version(name, version)? else {
            return Ok(false);
        };
        changed.write(path)?;
        *self = changed;
        Ok(true)
    }

    /// Returns a copy of the keyring with a new key named `name` that has a
    /// random version 1. Nothing is written.
    pub fn with_new_key(
        &self,
        name: &str,
        rng: &mut (impl rand::RngCore + rand::CryptoRng),
        created: &str,
    ) -> Result<Self, KeyringError> {
        if !is_valid_key_name(name) {
            return Err(KeyringError::InvalidName(name.into()));
        }
        if self.keys.contains_key(name) {
            return Err(KeyringError::KeyExists(name.into()));
        }
        let mut keys = (*self.keys).clone();
        keys.insert(
            name.into(),
            vec![KeyVersion {
                version: 1,
                created: created.into(),
                key: SecretKey::generate(rng),
            }],
        );
        Ok(self.with_keys(keys))
    }

    /// Returns a copy of the keyring in which `name` has a new random
    /// version, one above its newest, and that version's number. Nothing is
    /// written.
    pub fn with_rotated_key(
        &self,
        name: &str,
        rng: &mut (impl rand::RngCore + rand::CryptoRng),
        created: &str,
    ) -> Result<(Self, u32), KeyringError> {
        let newest = self.current(name)?.version;
        let version = newest
            .checked_add(1)
            .ok_or_else(|| KeyringError::VersionsExhausted(name.into()))?;
        let mut keys = (*self.keys).clone();
        keys.entry(name.into()).or_default().push(KeyVersion {
            version,
            created: created.into(),
            key: SecretKey::generate(rng),
        });
        Ok((self.with_keys(keys), version))
    }

    /// Returns a copy of the keyring with a recovered version of key `name`,
    /// creating the key when it is missing. Nothing is written. Returns
    /// `None` when the keyring already contains that version with the same
    /// material, and fails when that version has other material.
    pub fn with_imported_version(
        &self,
        name: &str,
        version: KeyVersion,
    ) -> Result<Option<Self>, KeyringError> {
        if !is_valid_key_name(name) {
            return Err(KeyringError::InvalidName(name.into()));
        }
        if let Ok(existing) = self.version(name, version.version) {
            return if existing.key.expose() == version.key.expose() {
                Ok(None)
            } else {
                Err(KeyringError::VersionConflict {
                    name: name.into(),
                    version: version.version,
                })
            };
        }
        let mut keys = (*self.keys).clone();
        let versions = keys.entry(name.into()).or_default();
        versions.push(version);
        versions.sort_by_key(|v| v.version);
        Ok(Some(self.with_keys(keys)))
    }

    fn with_keys(&self, keys: BTreeMap<String, Vec<KeyVersion>>) -> Self {
        Self {
            keys: Arc::new(keys),
            unchecked: Arc::clone(&self.unchecked),
        }
    }

    /// Writes the keyring to `path`, or to the file that `path` links to.
    pub fn write(&mut self, path: &Path) -> Result<(), KeyringError> {
        write_keyring(path, &self.keys)?;
        // Every write stores a check value for every version.
        self.unchecked = Arc::default();
        Ok(())
    }

    /// Returns every version of every key, in name and version order.
    pub fn versions(&self) -> impl Iterator<Item = (&str, &KeyVersion)> {
        self.keys
            .iter()
            .flat_map(|(name, versions)| versions.iter().map(move |v| (name.as_str(), v)))
    }
}

/// Returns whether `text` has the form of a key check value: 16 hex
/// digits, in either case.
pub(crate) fn is_check_value(text: &str) -> bool {
    text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Formats a JSON error of a key file without the text of the value it
/// rejects, which may be key material in the wrong field.
pub(crate) fn redact_json_error(error: &serde_json::Error) -> String {
    let mut message = String::new();
    let mut quoted = false;
    for c in error.to_string().chars() {
        if c == '"' {
            if !quoted {
                message.push_str("(value not shown)");
            }
            quoted = !quoted;
        } else if !quoted {
            message.push(c);
        }
    }
    message
}

fn check_permissions(path: &Path) -> Result<(), KeyringError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|source| {
            // A link whose target is missing gets its own advice: the fix
            // is to mount or restore the target, not to create keys.
            match std::fs::read_link(path) {
                Ok(target) if source.kind() == std::io::ErrorKind::NotFound => KeyringError::Read {
                    path: path.into(),
                    source: std::io::Error::other(format!(
                        "it is a link to {}, which does not exist; mount or restore the keyring there",
                        target.display()
                    )),
                },
                _ => KeyringError::Read {
                    path: path.into(),
                    source,
                },
            }
        })?;
        if !meta.is_file() {
            return Err(KeyringError::Read {
                path: path.into(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyringError::Permissions {
                path: path.into(),
                mode,
            });
        }
    }
    Ok(())
}

/// Writes the keyring through a 0600 temporary file renamed into place, so a
/// crash never leaves a half-written keyring.
fn write_keyring(
    path: &Path,
    keys: &BTreeMap<String, Vec<KeyVersion>>,
) -> Result<(), KeyringError> {
    let file = KeyringFile {
        format: KEYRING_FORMAT,
        keys: keys
            .iter()
            .map(|(name, versions)| {
                let versions = versions
                    .iter()
                    .map(|v| VersionFile {
                        version: v.version,
                        created: v.created.clone(),
                        material: BASE64.encode(v.key.expose()),
                        check: Some(v.key.check_value()),
                    })
                    .collect();
                (name.clone(), KeyFile { versions })
            })
            .collect(),
    };
    let mut text = zeroize::Zeroizing::new(serde_json::to_string_pretty(&file).map_err(|e| {
        KeyringError::Invalid {
            path: path.into(),
            message: e.to_string(),
        }
    })?);
    text.push('\n');
    replace_file(path, text.as_bytes())
}

/// Replaces the keyring file at `path` with `bytes` through a 0600
/// temporary file renamed into place. When `path` is a symbolic link, such
/// as one into a mounted secret volume, the file it links to is replaced
/// and the link stays.
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), KeyringError> {
    let write_err = |source| KeyringError::Write {
        path: path.into(),
        source,
    };
    let target = link_target(path).map_err(write_err)?;
    let path = target.as_path();
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        std::fs::create_dir_all(parent).map_err(write_err)?;
    }
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    // A file or link left at the temporary path by an interrupted write, or
    // placed there by someone else, is removed rather than written through,
    // so its mode or target cannot expose the key material.
    match std::fs::remove_file(&tmp) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(write_err(error)),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = options.open(&tmp).map_err(write_err)?;
    out.write_all(bytes).map_err(write_err)?;
    out.sync_all().map_err(write_err)?;
    drop(out);
    std::fs::rename(&tmp, path).map_err(write_err)?;
    // The rename is durable only once the directory is synced. After the
    // rename the new keyring is in place, so a failed sync is only logged.
    // Reported as a failed write, it would make the caller undo the escrow
    // copy and records of a version that the keyring contains.
    #[cfg(unix)]
    if let Err(error) =
        std::fs::File::open(parent.unwrap_or(Path::new("."))).and_then(|dir| dir.sync_all())
    {
        tracing::warn!(
            keyring = %path.display(),
            %error,
            "the keyring was written, but its directory could not be synced, so a power loss \
             may bring back the keyring from before this change"
        );
    }
    Ok(())
}

/// Returns the file that `path` names after following symbolic links, or
/// `path` itself when it is not a link. A link whose target is missing is
/// an error, because writing would create a file where the keyring is
/// expected to be mounted.
fn link_target(path: &Path) -> std::io::Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(path),
        _ => Ok(path.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_temporary_file_not_written_through() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let tmp = dir.path().join("keyring.json.tmp");
        std::fs::write(&tmp, "stale").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
        replace_file(&path, b"{}").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        // A link at the temporary path is replaced, and its target kept.
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "other").unwrap();
        std::os::unix::fs::symlink(&target, &tmp).unwrap();
        replace_file(&path, b"{\"a\":1}").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "other");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn write_through_link_replaces_target() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("volume");
        std::fs::create_dir(&volume).unwrap();
        let target = volume.join("keyring.json");
        let path = dir.path().join("keyring.json");
        let mut ring = Keyring::default();
        ring.create_key(&target, "main", &mut rand::rngs::OsRng, "t1")
            .unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();

        let version = ring
            .rotate_key(&path, "main", &mut rand::rngs::OsRng, "t2")
            .unwrap();
        assert_eq!(version, 2);
        let link = std::fs::symlink_metadata(&path).unwrap();
        assert!(link.file_type().is_symlink(), "the link was replaced");
        assert_eq!(std::fs::read_link(&path).unwrap(), target);
        let written = Keyring::load(&target).unwrap();
        assert_eq!(written.current("main").unwrap().version, 2);
        assert!(!volume.join("keyring.json.tmp").exists());
        assert!(!dir.path().join("keyring.json.tmp").exists());
    }

    #[test]
    fn dangling_keyring_link_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        std::os::unix::fs::symlink(dir.path().join("unmounted/keyring.json"), &path).unwrap();
        let error = Keyring::load_or_empty(&path).err().unwrap().to_string();
        assert!(error.contains("mount or restore the keyring"), "{error}");
        assert!(!error.contains("keys create"), "{error}");
        assert!(std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        let missing = dir.path().join("missing.json");
        assert_eq!(Keyring::load_or_empty(&missing).unwrap().names().count(), 0);
    }

    #[test]
    fn directory_keyring_rejected_as_not_a_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        std::fs::create_dir(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let error = Keyring::load(&path).err().unwrap().to_string();
        assert!(error.contains("not a regular file"), "{error}");
        assert!(!error.contains("chmod"), "{error}");
    }

    #[test]
    fn create_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let mut ring = Keyring::default();
        ring.create_key(
            &path,
            "main",
            &mut rand::rngs::OsRng,
            "2026-01-01T00:00:00Z",
        )
        .unwrap();
        let loaded = Keyring::load(&path).unwrap();
        assert_eq!(loaded.current("main").unwrap().version, 1);
        assert_eq!(
            loaded.current("main").unwrap().key,
            ring.current("main").unwrap().key
        );
        assert!(matches!(
            loaded.version("main", 2),
            Err(KeyringError::VersionNotFound { .. })
        ));
        assert!(matches!(
            loaded.current("other"),
            Err(KeyringError::KeyNotFound(_))
        ));
    }

    #[test]
    fn rotate_appends_current_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let mut ring = Keyring::default();
        ring.create_key(&path, "main", &mut rand::rngs::OsRng, "t1")
            .unwrap();
        let first = ring.current("main").unwrap().key.clone();

        let version = ring
            .rotate_key(&path, "main", &mut rand::rngs::OsRng, "t2")
            .unwrap();
        assert_eq!(version, 2);

        let loaded = Keyring::load(&path).unwrap();
        assert_eq!(loaded.current("main").unwrap().version, 2);
        assert_eq!(loaded.current("main").unwrap().created, "t2");
        assert_eq!(loaded.version("main", 1).unwrap().key, first);
        assert_ne!(loaded.version("main", 2).unwrap().key, first);
        assert_eq!(loaded.versions().count(), 2);
    }

    #[test]
    fn rotate_of_missing_key_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let result = Keyring::default().rotate_key(&path, "none", &mut rand::rngs::OsRng, "t");
        assert!(matches!(result, Err(KeyringError::KeyNotFound(_))));
        assert!(!path.exists());
    }

    #[test]
    fn readable_keyring_rejected() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        Keyring::default()
            .create_key(&path, "main", &mut rand::rngs::OsRng, "t")
            .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Keyring::load(&path),
            Err(KeyringError::Permissions { .. })
        ));
    }

    #[test]
    fn duplicate_and_invalid_names_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let mut ring = Keyring::default();
        ring.create_key(&path, "main", &mut rand::rngs::OsRng, "t")
            .unwrap();
        assert!(matches!(
            ring.create_key(&path, "main", &mut rand::rngs::OsRng, "t"),
            Err(KeyringError::KeyExists(_))
        ));
        assert!(matches!(
            ring.create_key(&path, "a/b", &mut rand::rngs::OsRng, "t"),
            Err(KeyringError::InvalidName(_))
        ));
    }

    /// Creates a keyring at `path` with key `main` and returns it with the
    /// file's text and the base64 material of `main` version 1.
    fn keyring_with_main(path: &Path) -> (Keyring, String, String) {
        let mut ring = Keyring::default();
        ring.create_key(path, "main", &mut rand::rngs::OsRng, "t")
            .unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let file: serde_json::Value = serde_json::from_str(&text).unwrap();
        let material = file["keys"]["main"]["versions"][0]["material"]
            .as_str()
            .unwrap()
            .to_string();
        (ring, text, material)
    }

    #[test]
    fn debug_output_has_no_material() {
        let dir = tempfile::tempdir().unwrap();
        let (ring, _, material) = keyring_with_main(&dir.path().join("keyring.json"));
        assert!(!format!("{ring:?}").contains(&material));
        assert!(!format!("{:?}", ring.current("main").unwrap()).contains(&material));
    }

    fn write_private(path: &Path, text: &str) {
        replace_file(path, text.as_bytes()).unwrap();
    }

    #[test]
    fn damaged_material_rejected_by_check_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let (_, text, material) = keyring_with_main(&path);
        assert!(text.contains("\"check\""));

        // Another base64 digit in the middle still decodes to 32 bytes.
        let mut damaged = material.clone().into_bytes();
        damaged[10] = if damaged[10] == b'A' { b'B' } else { b'A' };
        let damaged = String::from_utf8(damaged).unwrap();
        write_private(&path, &text.replace(&material, &damaged));
        let error = Keyring::load(&path).unwrap_err().to_string();
        assert!(error.contains("does not match its check value"), "{error}");
        assert!(!error.contains(&damaged), "{error}");

        // The check value may be written in upper case; another form is
        // reported as such.
        let file: serde_json::Value = serde_json::from_str(&text).unwrap();
        let check = file["keys"]["main"]["versions"][0]["check"]
            .as_str()
            .unwrap();
        write_private(&path, &text.replace(check, &check.to_ascii_uppercase()));
        Keyring::load(&path).unwrap();
        write_private(&path, &text.replace(check, &check[..15]));
        let error = Keyring::load(&path).unwrap_err().to_string();
        assert!(error.contains("not 16 hex digits"), "{error}");
    }

    #[test]
    fn keyring_without_check_values_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        write_private(
            &path,
            r#"{"format":1,"keys":{"main":{"versions":[{"version":1,"created":"t",
                "material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}}}"#,
        );
        let mut ring = Keyring::load(&path).unwrap();
        assert_eq!(ring.unchecked_versions(), ["main v1"]);
        ring.rotate_key(&path, "main", &mut rand::rngs::OsRng, "t2")
            .unwrap();
        assert!(ring.unchecked_versions().is_empty());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("\"check\"").count(), 2, "{text}");
        assert!(Keyring::load(&path)
            .unwrap()
            .unchecked_versions()
            .is_empty());
    }

    #[test]
    fn bad_names_and_version_zero_rejected_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let entry = |name: &str, version: u32| {
            format!(
                r#"{{"format":1,"keys":{{"{name}":{{"versions":[{{"version":{version},"created":"t",
                    "material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}]}}}}}}"#
            )
        };
        write_private(&path, &entry("../../outside", 1));
        let error = Keyring::load(&path).unwrap_err().to_string();
        assert!(error.contains("not a valid key name"), "{error}");
        write_private(&path, &entry("main", 0));
        let error = Keyring::load(&path).unwrap_err().to_string();
        assert!(error.contains("version 0"), "{error}");
    }

    #[test]
    fn missing_keyring_error_names_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let error = Keyring::load(&dir.path().join("none.json"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("s3seal keys create NAME"), "{error}");
        assert!(error.contains("s3seal keys import"), "{error}");
    }

    #[test]
    fn json_errors_do_not_print_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let material = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=";
        write_private(
            &path,
            &format!(
                r#"{{"format":1,"keys":{{"main":{{"versions":[{{"version":"{material}",
                    "created":"t","material":"{material}"}}]}}}}}}"#
            ),
        );
        let error = Keyring::load(&path).unwrap_err().to_string();
        assert!(error.contains("invalid type"), "{error}");
        assert!(error.contains("line 1"), "{error}");
        assert!(!error.contains(material), "{error}");
    }
}
