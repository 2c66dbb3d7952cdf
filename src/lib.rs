//! s3seal: a transparent S3-compatible encrypting reverse proxy.
//!
//! A request's life, one module per stage:
//!
//! ```text
//! client -> server -> proxy (classify) -> auth -> policy -> proxy::ops -> crypto -> upstream
//!                                                              |                      |
//! client <- server <- proxy (response rewrite) <---------------+---- (decrypt) <------+
//! ```
//!
//! - [`server`] accepts plain and TLS connections and hands each request to
//!   [`proxy::handle`]. [`operator`] serves metrics and the health
//!   endpoints on a listener of their own.
//! - [`proxy`] classifies the S3 request, calls [`auth`] and [`policy`], runs
//!   the operation and maps every error to an S3 XML error once.
//! - [`auth`] verifies the client's SigV4 signature and decodes aws-chunked
//!   bodies, checking chunk signatures and checksums.
//! - [`crypto`] turns plaintext streams into ciphertext streams and back.
//! - [`keys`] contains the key-encryption keys and is the only way to them:
//!   every access writes a record to the [`audit`] log. [`upstream`]
//!   re-signs and sends.
//! - [`metrics`] contains the request and traffic counters.
//! - [`s3`] is the shared S3 vocabulary; [`config`] the typed configuration;
//!   [`embedded`] the local S3 store of the default configuration;
//!   [`linger`] the lingering close of the listeners of [`server`] and
//!   [`embedded`].
//!
//! Dependencies run one way, down this list.

pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod embedded;
pub mod keys;
pub mod linger;
pub mod metrics;
pub mod operator;
pub mod policy;
pub mod proxy;
pub mod s3;
pub mod server;
pub mod upstream;
