//! Escrow copies of key versions, sealed to the security team.
//!
//! Each escrow copy is one file, `NAME.vVERSION.age` in the escrow
//! directory: an ASCII-armored age file encrypted to every configured age
//! X25519 recipient. Its plaintext is one JSON document that names the key
//! and version and carries the key material, so that `age -d -i IDENTITY
//! FILE` recovers the version without s3seal, and `s3seal keys import`
//! puts recovered versions back into a keyring.

use super::{is_valid_key_name, KeyVersion, SecretKey};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const ESCROW_FORMAT: u32 = 1;
/// The `kind` field of an escrow document, which distinguishes it from other
/// JSON files that a recovering operator may have.
const ESCROW_KIND: &str = "s3seal-key-escrow";

#[derive(Debug, thiserror::Error)]
pub enum EscrowError {
    #[error("escrow recipient {0:?} is not an age X25519 recipient (age1...)")]
    Recipient(String),
    /// The value is an age identity, which is never printed.
    #[error(
        "an escrow recipient is an age secret key (AGE-SECRET-KEY-1...); configure its \
         public key (age1..., printed by `age-keygen -y`) and keep the secret key away from s3seal"
    )]
    SecretKeyAsRecipient,
    #[error(
        "failed to write escrow copy {path}: {source}; check that the escrow directory exists \
         or can be created, and that this user may write to it"
    )]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "escrow copy {path} already exists, so the keyring lacks versions that were escrowed \
         before; import them with `age -d -i IDENTITY COPY | s3seal keys import -` first"
    )]
    Exists { path: PathBuf },
    #[error(
        "escrow copy {path} is empty or not an age file, so it cannot restore its key \
         version; move it away and run `s3seal keys escrow` to write it again"
    )]
    Damaged { path: PathBuf },
    #[error("failed to seal escrow copy {path}: {message}")]
    Seal { path: PathBuf, message: String },
    #[error("{origin} is not an s3seal escrow document: {message}")]
    Document { origin: String, message: String },
}

/// The plaintext of an escrow copy.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EscrowDocument {
    kind: String,
    format: u32,
    key: String,
    version: u32,
    created: String,
    /// Base64 of the 32 key bytes.
    material: String,
    /// The key check value of the material. Copies written before s3seal
    /// stored it have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    check: Option<String>,
}

/// A key version read back from a decrypted escrow document.
pub struct RecoveredVersion {
    pub name: String,
    pub version: KeyVersion,
    /// Whether the copy carried a check value, which the material matched.
    /// Copies written before s3seal stored check values have none.
    pub checked: bool,
}

impl std::fmt::Debug for RecoveredVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveredVersion")
            .field("name", &self.name)
            .field("version", &self.version)
            .finish()
    }
}

/// The escrow directory and the recipients that escrow copies are sealed to.
pub struct Escrow {
    dir: PathBuf,
    recipients: Vec<age::x25519::Recipient>,
}

impl std::fmt::Debug for Escrow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Escrow")
            .field("dir", &self.dir)
            .field("recipients", &self.recipients.len())
            .finish()
    }
}

impl Escrow {
    /// Parses the recipients. Returns `None` when there are none, which
    /// turns escrow off.
    pub fn new(dir: &Path, recipients: &[String]) -> Result<Option<Self>, EscrowError> {
        if recipients.is_empty() {
            return Ok(None);
        }
        let recipients = recipients
            .iter()
            .map(|text| {
                let text = text.trim();
                if text.to_ascii_uppercase().contains("AGE-SECRET-KEY-") {
                    return Err(EscrowError::SecretKeyAsRecipient);
                }
                text.parse::<age::x25519::Recipient>()
                    .map_err(|_| EscrowError::Recipient(text.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(Self {
            dir: dir.to_path_buf(),
            recipients,
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the path of the escrow copy of version `version` of `name`.
    pub fn path(&self, name: &str, version: u32) -> PathBuf {
        self.dir.join(format!("{name}.v{version}.age"))
    }

    /// Returns whether the escrow copy of a version exists.
    pub fn exists(&self, name: &str, version: u32) -> bool {
        self.path(name, version).exists()
    }

    /// Fails for an escrow copy that exists but does not start like an age
    /// file, binary or armored. Only the recipients can check more, because
    /// only they can decrypt it.
    pub fn check_intact(&self, name: &str, version: u32) -> Result<(), EscrowError> {
        use std::io::Read;
        const BINARY: &[u8] = b"age-encryption.org/v1\n";
        const ARMORED: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
        let path = self.path(name, version);
        let mut start = Vec::with_capacity(ARMORED.len());
        let read = std::fs::File::open(&path)
            .and_then(|file| file.take(ARMORED.len() as u64).read_to_end(&mut start));
        match read {
            Ok(_) if start.starts_with(BINARY) || start.starts_with(ARMORED) => Ok(()),
            _ => Err(EscrowError::Damaged { path }),
        }
    }

    /// Fails when the escrow copy of a version exists already, which means
    /// the keyring lacks an escrowed version that a new one would replace.
    pub fn check_free(&self, name: &str, version: u32) -> Result<(), EscrowError> {
        check_no_copy(&self.dir, name, version)
    }

    /// Returns the path of the marker that [`Self::begin_copy`] writes: a
    /// hidden file, so no key name can collide with it.
    fn marker_path(&self, name: &str, version: u32) -> PathBuf {
        self.dir.join(format!(".{name}.v{version}.age.pending"))
    }

    /// Prepares the escrow copy of a version that a key command adds, before
    /// the command writes the copy, its audit records and then the keyring.
    ///
    /// The method writes a marker next to the copy, which stays until the
    /// keyring contains the version. A copy with a marker was most likely
    /// left by a command that stopped before it wrote the keyring, so this
    /// method moves it aside to `NAME.vVERSION.age.replaced-SECONDS` and
    /// logs both names. It never deletes such a copy, because a marker
    /// that outlived a keyring write, or a keyring restored from an older
    /// backup, can make a copy of a used version look unused. A copy
    /// without a marker may be the only copy of a version that the keyring
    /// lost, so the method fails with [`EscrowError::Exists`] and keeps it.
    pub fn begin_copy(&self, name: &str, version: u32) -> Result<(), EscrowError> {
        let path = self.path(name, version);
        let marker = self.marker_path(name, version);
        if std::fs::symlink_metadata(&path).is_ok() {
            // Only a regular file counts as a marker: a link or directory
            // planted at its path does not release a copy.
            let marked = std::fs::symlink_metadata(&marker).is_ok_and(|meta| meta.is_file());
            if !marked {
                return Err(EscrowError::Exists { path });
            }
            let seconds = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs());
            // A copy moved aside earlier in the same second keeps its name.
            let aside = (1..100)
                .map(|n| match n {
                    1 => format!("{name}.v{version}.age.replaced-{seconds}"),
                    n => format!("{name}.v{version}.age.replaced-{seconds}-{n}"),
                })
                .map(|file_name| self.dir.join(file_name))
                .find(|aside| std::fs::symlink_metadata(aside).is_err())
                .ok_or_else(|| EscrowError::Exists { path: path.clone() })?;
            std::fs::rename(&path, &aside).map_err(|source| EscrowError::Write {
                path: path.clone(),
                source,
            })?;
            tracing::warn!(
                copy = %path.display(),
                kept_as = %aside.display(),
                key = name,
                version,
                "moved aside the escrow copy that an interrupted key command left for a version \
                 that the keyring lacks; keep it until you know that no object uses that version"
            );
        }
        write_marker(&marker).map_err(|source| EscrowError::Write {
            path: marker,
            source,
        })
    }

    /// Removes the marker of a version whose copy [`Self::seal`] did not
    /// write.
    pub fn abandon_copy(&self, name: &str, version: u32) {
        remove_logged(&self.marker_path(name, version), "marker");
    }

    /// Removes the copy and the marker of a version that the keyring did not
    /// take, because a later step of the key command failed.
    pub fn discard_copy(&self, name: &str, version: u32) {
        // The copy goes first: a marker without a copy blocks nothing.
        remove_logged(&self.path(name, version), "escrow copy");
        remove_logged(&self.marker_path(name, version), "marker");
    }

    /// Removes the markers of the versions for which `in_keyring` returns
    /// true, because the keyring took those versions and their copies are
    /// final.
    pub fn clear_markers(&self, in_keyring: impl Fn(&str, u32) -> bool) {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            // No directory yet means no markers either.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return,
            Err(error) => {
                tracing::error!(escrow_dir = %self.dir.display(), %error, "failed to list the escrow directory to remove markers");
                return;
            }
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some((name, version)) = file_name.to_str().and_then(parse_marker_name) else {
                continue;
            };
            if in_keyring(name, version) {
                remove_logged(&entry.path(), "marker");
            }
        }
    }

    /// Seals `version` of key `name` to every recipient and writes the
    /// escrow copy through a temporary file linked into place. Returns the
    /// copy's path. An existing copy is never replaced, because it may be
    /// the only copy of a version that the keyring lost.
    pub fn seal(&self, name: &str, version: &KeyVersion) -> Result<PathBuf, EscrowError> {
        self.check_free(name, version.version)?;
        let path = self.path(name, version.version);
        let document = EscrowDocument {
            kind: ESCROW_KIND.into(),
            format: ESCROW_FORMAT,
            key: name.into(),
            version: version.version,
            created: version.created.clone(),
            material: BASE64.encode(version.key.expose()),
            check: Some(version.key.check_value()),
        };
        let plaintext = Zeroizing::new(document_text(&document));
        drop(Zeroizing::new(document.material));

        let seal_error = |message: String| EscrowError::Seal {
            path: path.clone(),
            message,
        };
        let encryptor = age::Encryptor::with_recipients(
            self.recipients.iter().map(|r| r as &dyn age::Recipient),
        )
        .map_err(|e| seal_error(e.to_string()))?;
        let mut sealed = Vec::new();
        let armor =
            age::armor::ArmoredWriter::wrap_output(&mut sealed, age::armor::Format::AsciiArmor)
                .map_err(|e| seal_error(e.to_string()))?;
        let mut writer = encryptor
            .wrap_output(armor)
            .map_err(|e| seal_error(e.to_string()))?;
        writer
            .write_all(plaintext.as_bytes())
            .map_err(|e| seal_error(e.to_string()))?;
        writer
            .finish()
            .and_then(|armor| armor.finish())
            .map_err(|e| seal_error(e.to_string()))?;

        match write_new_file(&path, &sealed) {
            Ok(()) => Ok(path),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(EscrowError::Exists { path })
            }
            Err(source) => Err(EscrowError::Write { path, source }),
        }
    }
}

fn document_text(document: &EscrowDocument) -> String {
    let mut text = serde_json::to_string_pretty(document).expect("the document serializes");
    text.push('\n');
    text
}

/// Reads a decrypted escrow document. `origin` names the file or stream in
/// errors.
pub fn read_document(origin: &str, text: &str) -> Result<RecoveredVersion, EscrowError> {
    let error = |message: String| EscrowError::Document {
        origin: origin.into(),
        message,
    };

    let start = text.trim_start();
    if start.is_empty() {
        return Err(error(
            "it is empty; check that `age -d` succeeded".to_string(),
        ));
    }
    if start.starts_with("-----BEGIN AGE ENCRYPTED FILE-----")
        || start.starts_with("age-encryption.org/")
    {
        return Err(error(
            "it is still age-encrypted; decrypt it with `age -d -i IDENTITY COPY` first"
                .to_string(),
        ));
    }

    let document: EscrowDocument =
        serde_json::from_str(text).map_err(|e| error(super::keyring::redact_json_error(&e)))?;
    let document = WipedDocument(document);
    if document.kind != ESCROW_KIND || document.format != ESCROW_FORMAT {
        return Err(error(format!(
            "kind {:?} format {} (expected {ESCROW_KIND:?} format {ESCROW_FORMAT})",
            document.kind, document.format
        )));
    }

    if !is_valid_key_name(&document.key) {
        return Err(error(format!("{:?} is not a valid key name", document.key)));
    }
    if document.version == 0 {
        return Err(error("version 0 is not a valid key version".to_string()));
    }
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    if time::OffsetDateTime::parse(&document.created, rfc3339).is_err() {
        return Err(error(format!(
            "created {:?} is not an RFC 3339 time",
            document.created
        )));
    }

    let bytes = Zeroizing::new(
        BASE64
            .decode(document.material.as_bytes())
            .map_err(|e| error(format!("material is not base64: {e}")))?,
    );
    let key = SecretKey::from_slice(&bytes)
        .ok_or_else(|| error("material is not 32 bytes".to_string()))?;
    if let Some(check) = &document.check {
        if !super::keyring::is_check_value(check) {
            return Err(error("the check value is not 16 hex digits".to_string()));
        }
        if !check.eq_ignore_ascii_case(&key.check_value()) {
            return Err(error(
                "the material does not match its check value, so the copy was damaged or edited"
                    .to_string(),
            ));
        }
    }
    Ok(RecoveredVersion {
        checked: document.check.is_some(),
        name: document.key.clone(),
        version: KeyVersion {
            version: document.version,
            created: document.created.clone(),
            key,
        },
    })
}

/// Wipes the document's material when it is dropped.
struct WipedDocument(EscrowDocument);

impl std::ops::Deref for WipedDocument {
    type Target = EscrowDocument;
    fn deref(&self) -> &EscrowDocument {
        &self.0
    }
}

impl Drop for WipedDocument {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0.material);
    }
}

/// Writes `bytes` to a new file `path` with mode 0600 through a temporary
/// file in the same directory, created with mode 0700 when missing. The
/// hard link that puts the file in place fails when `path` exists.
/// Fails when `dir` contains an escrow copy of `version` of `name`. Key
/// creation checks this with escrow off too: copies written while it was
/// on still belong to the lost version, and a new version under that
/// number would be restored from them.
pub fn check_no_copy(dir: &Path, name: &str, version: u32) -> Result<(), EscrowError> {
    let path = dir.join(format!("{name}.v{version}.age"));
    if std::fs::symlink_metadata(&path).is_ok() {
        return Err(EscrowError::Exists { path });
    }
    Ok(())
}

/// Returns the key name and version of a marker file name,
/// `.NAME.vVERSION.age.pending`.
fn parse_marker_name(file_name: &str) -> Option<(&str, u32)> {
    let stem = file_name.strip_prefix('.')?.strip_suffix(".age.pending")?;
    let (name, version) = stem.rsplit_once(".v")?;
    let version = version.parse().ok()?;
    is_valid_key_name(name).then_some((name, version))
}

/// Removes `path` and logs a failure other than a missing file.
/// `description` names the file in the log line.
fn remove_logged(path: &Path, description: &str) {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            tracing::error!(path = %path.display(), %error, "failed to remove the {description}");
        }
        _ => {}
    }
}

/// Creates `dir` with mode 0700 when it is missing.
fn create_dir(dir: &Path) -> std::io::Result<()> {
    if !dir.as_os_str().is_empty() && !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
    }
    Ok(())
}

/// Syncs directory `dir`, so that the files created in it or removed from
/// it stay so after a power loss.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    })?
    .sync_all()?;
    Ok(())
}

/// Writes the marker of a pending escrow copy and syncs its directory, so
/// that the marker is on disk before the copy is. A file or link at the
/// marker's path is removed first and the marker is created anew, so the
/// write never goes through a link into another file.
fn write_marker(marker: &Path) -> std::io::Result<()> {
    let dir = marker.parent().unwrap_or(Path::new("."));
    create_dir(dir)?;
    match std::fs::symlink_metadata(marker) {
        Ok(meta) if meta.is_dir() => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a directory is in the way of the marker",
            ))
        }
        Ok(_) => std::fs::remove_file(marker)?,
        Err(_) => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(marker)?;
    file.write_all(
        b"s3seal writes the escrow copy of this version before the keyring; this file stays \
          until the keyring contains the version\n",
    )?;
    file.sync_all()?;
    sync_dir(dir)
}

fn write_new_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dir(dir)?;
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("escrow");
    let temporary = dir.join(format!(".{file_name}.tmp"));
    // A file or link left at the temporary path is removed, not written
    // through, so that its mode or target cannot become the copy's.
    match std::fs::remove_file(&temporary) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut file = options.open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::hard_link(&temporary, path)
    })();
    let _ = std::fs::remove_file(&temporary);
    result?;
    // A copy that may not survive a power loss is taken away again, so that
    // the caller's error and the directory agree.
    sync_dir(dir).inspect_err(|_| {
        let _ = std::fs::remove_file(path);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;
    use std::io::Read;

    fn version(n: u32) -> KeyVersion {
        KeyVersion {
            version: n,
            created: "2026-12-05T00:00:00Z".into(),
            key: SecretKey::generate(&mut rand::rngs::OsRng),
        }
    }

    fn open(identity: &age::x25519::Identity, sealed: &[u8]) -> Zeroizing<String> {
        let decryptor =
            age::Decryptor::new_buffered(age::armor::ArmoredReader::new(sealed)).unwrap();
        let mut reader = decryptor
            .decrypt(std::iter::once(identity as &dyn age::Identity))
            .unwrap();
        let mut text = Zeroizing::new(String::new());
        reader.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn sealed_copy_opens_with_each_recipient() {
        let dir = tempfile::tempdir().unwrap();
        let first = age::x25519::Identity::generate();
        let second = age::x25519::Identity::generate();
        let recipients = vec![
            first.to_public().to_string(),
            second.to_public().to_string(),
        ];
        let escrow = Escrow::new(&dir.path().join("escrow"), &recipients)
            .unwrap()
            .unwrap();
        let key = version(3);
        let path = escrow.seal("main", &key).unwrap();
        assert_eq!(path, dir.path().join("escrow/main.v3.age"));

        let sealed = std::fs::read(&path).unwrap();
        assert!(sealed.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"));
        let material = BASE64.encode(key.key.expose());
        assert!(!String::from_utf8_lossy(&sealed).contains(&material));
        for identity in [&first, &second] {
            let text = open(identity, &sealed);
            let recovered = read_document("copy", &text).unwrap();
            assert_eq!(recovered.name, "main");
            assert_eq!(recovered.version.version, 3);
            assert_eq!(recovered.version.created, key.created);
            assert_eq!(recovered.version.key.expose(), key.key.expose());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn other_identity_cannot_open() {
        let dir = tempfile::tempdir().unwrap();
        let recipient = age::x25519::Identity::generate();
        let stranger = age::x25519::Identity::generate();
        let escrow = Escrow::new(dir.path(), &[recipient.to_public().to_string()])
            .unwrap()
            .unwrap();
        let path = escrow.seal("k", &version(1)).unwrap();
        let sealed = std::fs::read(path).unwrap();
        let decryptor =
            age::Decryptor::new_buffered(age::armor::ArmoredReader::new(&sealed[..])).unwrap();
        assert!(decryptor
            .decrypt(std::iter::once(&stranger as &dyn age::Identity))
            .is_err());
        // The identity's secret is not part of what was written.
        let secret = recipient.to_string();
        assert!(!String::from_utf8_lossy(&sealed).contains(secret.expose_secret()));
    }

    #[test]
    fn stale_temporary_file_not_written_through() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let recipient = age::x25519::Identity::generate();
        let escrow = Escrow::new(dir.path(), &[recipient.to_public().to_string()])
            .unwrap()
            .unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, b"other").unwrap();
        std::os::unix::fs::symlink(&outside, dir.path().join(".k.v1.age.tmp")).unwrap();
        let stale = dir.path().join(".k.v2.age.tmp");
        std::fs::write(&stale, b"stale").unwrap();
        std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();

        for number in [1, 2] {
            let path = escrow.seal("k", &version(number)).unwrap();
            let metadata = std::fs::symlink_metadata(&path).unwrap();
            assert!(
                metadata.file_type().is_file(),
                "copy {number} is not a regular file"
            );
            assert_eq!(
                metadata.permissions().mode() & 0o777,
                0o600,
                "copy {number}"
            );
            escrow.check_intact("k", number).unwrap();
        }
        assert_eq!(std::fs::read(&outside).unwrap(), b"other");
    }

    #[test]
    fn no_recipients_turns_escrow_off() {
        assert!(Escrow::new(Path::new("x"), &[]).unwrap().is_none());
    }

    #[test]
    fn bad_recipient_rejected() {
        for text in ["age1nope", "ssh-ed25519 AAAA", ""] {
            let error = Escrow::new(Path::new("x"), &[text.to_string()]).unwrap_err();
            assert!(
                matches!(error, EscrowError::Recipient(_)),
                "{text}: {error}"
            );
        }
    }

    #[test]
    fn documents_checked_on_read() {
        let good = r#"{"kind":"s3seal-key-escrow","format":1,"key":"main","version":2,
            "created":"2026-12-05T00:00:00Z","material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}"#;
        assert_eq!(read_document("good", good).unwrap().version.version, 2);
        for (bad, why) in [
            (good.replace("s3seal-key-escrow", "other"), "kind"),
            (good.replace("\"format\":1", "\"format\":2"), "format"),
            (good.replace("\"version\":2", "\"version\":0"), "version"),
            (good.replace("\"main\"", "\"a/b\""), "key name"),
            (good.replace("\"main\"", "\".hidden\""), "hidden key name"),
            (good.replace("2026-12-05T00:00:00Z", "yesterday"), "created"),
            (String::new(), "empty"),
            (
                "-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n".to_string(),
                "still encrypted",
            ),
            (good.replace("AAAA=", "AA=="), "material length"),
            (good.replace("AAAA=", "!!!="), "material base64"),
            (
                good.replace("\"created\"", "\"extra\":1,\"created\""),
                "unknown field",
            ),
            (
                good.replace(
                    "\"material\"",
                    "\"check\":\"0000000000000000\",\"material\"",
                ),
                "check value",
            ),
        ] {
            assert!(
                matches!(
                    read_document("bad", &bad),
                    Err(EscrowError::Document { .. })
                ),
                "{why}"
            );
        }
    }

    #[test]
    fn sealed_copy_carries_check_value() {
        let key = SecretKey::from_bytes([0u8; 32]);
        let text = format!(
            r#"{{"kind":"s3seal-key-escrow","format":1,"key":"main","version":2,
            "created":"2026-12-05T00:00:00Z","material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "check":"{}"}}"#,
            key.check_value()
        );
        assert_eq!(read_document("good", &text).unwrap().version.key, key);
    }

    #[test]
    fn document_errors_do_not_print_values() {
        let material = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=";
        let text = format!(
            r#"{{"kind":"s3seal-key-escrow","format":1,"key":"main","version":"{material}",
            "created":"2026-12-05T00:00:00Z","material":"{material}"}}"#
        );
        let error = read_document("bad", &text).err().unwrap().to_string();
        assert!(error.contains("invalid type"), "{error}");
        assert!(!error.contains(material), "{error}");
    }
}
