//! Secret byte strings that zeroize on drop, print as a placeholder and
//! compare in constant time.

use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A 256-bit secret key: a key-encryption key version or a data key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    pub const LEN: usize = 32;

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Copies a slice into a key, returning `None` unless it is 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let array: [u8; 32] = bytes.try_into().ok()?;
        Some(Self(array))
    }

    /// Generates a key from the given random source.
    pub fn generate(rng: &mut (impl rand::RngCore + rand::CryptoRng)) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Exposes the key bytes. Every caller is a cipher constructor or a
    /// keyring writer; nothing else reads key material.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Returns the key check value: hex of the first 8 bytes of
    /// HMAC-SHA256 under the key of a fixed label. It is stored beside the
    /// material to detect a damaged copy, and reveals nothing usable about
    /// the key.
    pub fn check_value(&self) -> String {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0)
            .expect("HMAC accepts a key of any length");
        mac.update(CHECK_VALUE_LABEL);
        hex::encode(&mac.finalize().into_bytes()[..8])
    }
}

/// The message that [`SecretKey::check_value`] authenticates.
const CHECK_VALUE_LABEL: &[u8] = b"s3seal key check value";

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// A secret string such as a client's secret access key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_depends_on_every_key_byte() {
        let key = SecretKey::from_bytes([7u8; 32]);
        assert_eq!(key.check_value().len(), 16);
        assert_eq!(
            key.check_value(),
            SecretKey::from_bytes([7u8; 32]).check_value()
        );
        for index in [0, 17, 31] {
            let mut bytes = [7u8; 32];
            bytes[index] ^= 1;
            assert_ne!(
                SecretKey::from_bytes(bytes).check_value(),
                key.check_value()
            );
        }
    }

    #[test]
    fn debug_output_is_redacted() {
        let key = SecretKey::from_bytes([7u8; 32]);
        assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
        let secret = SecretString::new("hunter2".into());
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
