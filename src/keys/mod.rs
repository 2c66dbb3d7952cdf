//! Key-encryption keys: the keyring file, key versions, the zeroizing
//! secret types, and [`KeyService`], the only way to key material at run
//! time. Every use of a key version through `KeyService`, and every key
//! command through [`KeyAdmin`], writes one record to the audit log.
//!
//! Which action each S3 operation records:
//!
//! | operation | records |
//! |---|---|
//! | server start | `load` per key version (`create` per key made by `keys.create_missing`) |
//! | PutObject, copy into an encrypting bucket from a passthrough bucket | `generate` |
//! | CreateMultipartUpload | `generate`, then `wrap` (the upload id) |
//! | GetObject, UploadPart, copy out of an encrypting bucket | `unwrap` |
//! | UploadPartCopy | `unwrap` (the upload id), then `unwrap` (the source, when it is encrypted) |
//! | CopyObject between encrypting buckets | `unwrap` (source), then `wrap` (target) |
//! | HeadObject, listings | none: they read the envelope, not the key |
//! | `s3seal keys create` / `keys rotate` | `create` / `rotate`, then `export` for the escrow copy |
//! | `s3seal keys escrow` / `keys import` | `export` per copy / `import` per version |

mod escrow;
mod keyring;
mod secret;
mod service;

pub use escrow::{
    check_no_copy as check_no_escrow_copy, read_document as read_escrow_document, Escrow,
    EscrowError, RecoveredVersion,
};
pub use keyring::{KeyVersion, Keyring, KeyringError};
pub use secret::{SecretKey, SecretString};
pub use service::{
    action_name, check_audit_key, now_rfc3339, open_auditor, AccessContext, Kek, KeyAccessError,
    KeyAdmin, KeyAdminError, KeyService, KeyServiceError, KeyStats, ObjectRef, ACTIONS,
};

/// Returns whether `name` can name a key-encryption key: 1 to 64 ASCII
/// letters, digits, `.`, `_` or `-`, starting with a letter or digit so
/// that no escrow copy is a hidden file. Names are stored in object
/// metadata.
pub fn is_valid_key_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
