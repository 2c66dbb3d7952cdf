//! S3 vocabulary shared by every stage: error codes and the XML error body,
//! Range header parsing, ETag presentation, listing XML rewriting and the
//! named header sets.

pub mod conditional;
pub mod error;
pub mod etag;
pub mod headers;
pub mod listing;
pub mod range;

pub use error::{ErrorCode, S3Error};
