//! The audit key: 32 secret bytes that MAC every audit record.

use super::AuditError;
use hmac::Hmac;
use sha2::Sha256;
use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The 32-byte HMAC-SHA256 key of the audit chain. The bytes are zeroized on
/// drop and never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct AuditKey([u8; 32]);

impl AuditKey {
    pub const LEN: usize = 32;

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Generates a key from the given random source.
    pub fn generate(rng: &mut (impl rand::RngCore + rand::CryptoRng)) -> Self {
        let mut key = Self([0u8; 32]);
        rng.fill_bytes(&mut key.0);
        key
    }

    /// Loads the key from `path`, or creates the file with a random key and
    /// mode 0600 when it does not exist.
    ///
    /// The file contains the key as 64 hex digits, optionally followed by a
    /// newline. A file that group or others can access is rejected.
    pub fn load_or_create(path: &Path) -> Result<Self, AuditError> {
        match Self::load(path) {
            Err(AuditError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            other => return other,
        }
        match Self::create(path) {
            Ok(key) => Ok(key),
            // Another process created the file between the load and the
            // create, so its key is the one to use.
            Err(AuditError::Write { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                Self::load(path)
            }
            Err(error) => Err(error),
        }
    }

    /// Loads the key from `path`, rejecting a file that group or others can
    /// access.
    pub fn load(path: &Path) -> Result<Self, AuditError> {
        let read_error = |source| AuditError::Read {
            path: path.into(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        check_permissions(path, &file)?;

        // The limit keeps a wrong path (a log, a device) from being read
        // whole. A valid file is 64 hex digits and a newline.
        let mut text = Zeroizing::new(String::new());
        file.take(256)
            .read_to_string(&mut text)
            .map_err(read_error)?;
        Self::from_hex(text.trim()).ok_or_else(|| AuditError::InvalidKey {
            path: path.into(),
            message: "expected 64 hex digits (32 bytes)".into(),
        })
    }

    fn from_hex(text: &str) -> Option<Self> {
        let mut key = Self([0u8; 32]);
        hex::decode_to_slice(text, &mut key.0).ok()?;
        Some(key)
    }

    /// Creates `path` with mode 0600 and a new random key. Fails with
    /// `AlreadyExists` rather than overwriting an existing file.
    fn create(path: &Path) -> Result<Self, AuditError> {
        let write_error = |source| AuditError::Write {
            path: path.into(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(write_error)?;
        }

        let key = Self::generate(&mut rand::rngs::OsRng);
        let mut text = Zeroizing::new(hex::encode(key.0));
        text.push('\n');

        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(write_error)?;
        file.write_all(text.as_bytes()).map_err(write_error)?;
        file.sync_all().map_err(write_error)?;
        Ok(key)
    }

    /// Returns an HMAC-SHA256 instance keyed with this key.
    pub(crate) fn hmac(&self) -> HmacSha256 {
        // HMAC pads a key shorter than the 64-byte SHA-256 block with zeros
        // (RFC 2104), so padding here gives the same MAC as the 32-byte key
        // without the fallible `new_from_slice`.
        let mut block = Zeroizing::new([0u8; 64]);
        block[..Self::LEN].copy_from_slice(&self.0);
        <HmacSha256 as hmac::digest::KeyInit>::new(&(*block).into())
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path, file: &std::fs::File) -> Result<(), AuditError> {
    use std::os::unix::fs::PermissionsExt;

    let metadata = file.metadata().map_err(|source| AuditError::Read {
        path: path.into(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(AuditError::KeyPermissions {
            path: path.into(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _file: &std::fs::File) -> Result<(), AuditError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn load_or_create_creates_then_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("audit.key");

        let created = AuditKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));

        let loaded = AuditKey::load_or_create(&path).unwrap();
        assert_eq!(created.0, loaded.0);
    }

    #[test]
    fn key_readable_by_others_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        AuditKey::load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

        let error = AuditKey::load_or_create(&path).unwrap_err();
        assert!(matches!(
            error,
            AuditError::KeyPermissions { mode: 0o644, .. }
        ));
        let message = error.to_string();
        assert!(
            message.contains(&format!("chmod 600 {}", path.display())),
            "{message}"
        );
    }

    #[test]
    fn key_with_wrong_length_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        for content in ["", "abcd\n", &"zz".repeat(32), &"00".repeat(33)] {
            std::fs::write(&path, content).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let error = AuditKey::load_or_create(&path).unwrap_err();
            assert!(
                matches!(error, AuditError::InvalidKey { .. }),
                "{content:?}: {error}"
            );
        }
    }

    #[test]
    fn key_debug_is_redacted() {
        let key = AuditKey::from_bytes([0x42; 32]);
        assert_eq!(format!("{key:?}"), "AuditKey(<redacted>)");
    }
}
