//! S3 vocabulary shared by every stage: error codes and the XML error body,
//! Range header parsing, ETag presentation, listing XML rewriting, the
//! named header sets and the parts of a SigV4 canonical request, which the
//! client's signature check and the upstream signer both build.

pub mod canonical;
pub mod conditional;
pub mod error;
pub mod etag;
pub mod headers;
pub mod listing;
pub mod range;

pub use error::{ErrorCode, S3Error};
