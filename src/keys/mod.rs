//! Key-encryption keys: the keyring file, key versions and the zeroizing
//! secret types. Every lookup of key material goes through `Keyring`.

mod keyring;
mod secret;

pub use keyring::{KeyVersion, Keyring, KeyringError};
pub use secret::{SecretKey, SecretString};

/// Returns whether `name` can name a key-encryption key: 1 to 64 ASCII
/// letters, digits, `.`, `_` or `-`. Names are stored in object metadata.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
