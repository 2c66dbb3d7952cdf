/// Errors of the ciphertext format: segment authentication, stream framing,
/// data-key wrapping and envelope parsing.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// A segment's tag did not verify. The format cannot tell the causes
    /// apart: a modified, truncated, reordered or foreign segment, or the
    /// wrong data key or part number.
    #[error(
        "authentication failed for segment {segment}: the ciphertext was modified, truncated \
         or reordered, or it belongs to another object or part"
    )]
    SegmentAuthentication { segment: u64 },

    #[error("ciphertext ended inside segment {segment}, before its tag")]
    UnexpectedEnd { segment: u64 },

    #[error("ciphertext continues after the final segment {segment}")]
    TrailingData { segment: u64 },

    #[error(
        "data key unwrap failed: wrong key-encryption key, or the envelope does not belong \
         to this bucket and object key"
    )]
    UnwrapFailed,

    #[error("data key does not match the envelope's key commitment")]
    CommitmentMismatch,

    #[error("unknown ciphertext format version {0}; this build reads only version 1")]
    UnknownFormatVersion(u32),

    #[error("missing envelope field {field:?}")]
    MissingEnvelopeField { field: &'static str },

    #[error("invalid envelope field {field:?}: {reason}")]
    MalformedEnvelopeField { field: &'static str, reason: String },

    #[error("plaintext length mismatch: declared {declared} bytes, source body sent {received}")]
    PlaintextLengthMismatch { declared: u64, received: u64 },

    #[error("plaintext of {len} bytes exceeds the format's maximum of {max} bytes per part")]
    PlaintextTooLarge { len: u64, max: u64 },

    #[error("invalid range {start}-{end_inclusive} for a plaintext of {total} bytes")]
    InvalidRange {
        start: u64,
        end_inclusive: u64,
        total: u64,
    },
}
