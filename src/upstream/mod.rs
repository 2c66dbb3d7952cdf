//! The HTTP client to the real S3 endpoint: connection pool, TLS,
//! re-signing of every forwarded request (`signer`), and the timeouts of
//! an upstream that stops responding (`timeout`).
//!
//! Upstream requests carry `x-amz-content-sha256: UNSIGNED-PAYLOAD` and an
//! exact `Content-Length`: s3seal streams bodies it cannot hash in advance,
//! and the ciphertext's own GCM tags protect what it stores. A body whose
//! checksum is known only at its end goes in the `aws-chunked` encoding
//! with the checksum in an unsigned trailer (`chunked`).

use http::HeaderName;

use crate::config::{AddressingStyle, UpstreamConfig};
use crate::keys::SecretString;
use bytes::Bytes;
use http::header::{HeaderValue, HOST};
use http::{HeaderMap, Method, Request, Response, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use signer::Signer;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

mod chunked;
mod signer;
mod timeout;

pub use chunked::TrailingChecksum;

pub use signer::SignError;
pub use timeout::{is_timeout, ResponseBody, Timeout};

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Request body sent upstream.
pub type UpstreamBody = UnsyncBoxBody<Bytes, BoxError>;

/// Returns an empty upstream body.
pub fn empty_body() -> UpstreamBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Wraps a complete in-memory body.
pub fn full_body(bytes: impl Into<Bytes>) -> UpstreamBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream credentials are missing: {0}")]
    Credentials(String),
    #[error("failed to read upstream CA file {path}: {message}")]
    CaFile { path: String, message: String },
    #[error("failed to build the upstream request: {0}")]
    Build(String),
    #[error("failed to sign the upstream request: {0}")]
    Sign(#[from] SignError),
    #[error("upstream request failed: {0}")]
    Send(#[source] hyper_util::client::legacy::Error),
    #[error("upstream request timed out")]
    TimedOut(#[source] Timeout),
}

/// A request for the upstream, before addressing and signing.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    pub method: Method,
    pub bucket: Option<String>,
    /// Object key, decoded.
    pub key: Option<String>,
    /// Query string, already percent-encoded, without `?`.
    pub query: String,
    /// Headers to forward; hop-by-hop and signature headers are removed
    /// before signing.
    pub headers: HeaderMap,
    /// Exact body length; `None` only for bodiless requests.
    pub content_length: Option<u64>,
}

/// The headers of a body sent in the `aws-chunked` encoding.
struct Framing {
    decoded_len: u64,
    trailer: HeaderName,
    encoded_len: u64,
}

impl Framing {
    /// Sets the framing headers. `aws-chunked` goes first in
    /// `Content-Encoding`, before any encoding of the content itself.
    fn apply(self, headers: &mut HeaderMap) -> Result<(), UpstreamError> {
        let encoding = match headers
            .get(http::header::CONTENT_ENCODING)
            .map(HeaderValue::to_str)
        {
            None => HeaderValue::from_static("aws-chunked"),
            Some(Ok(rest)) => HeaderValue::from_str(&format!("aws-chunked,{rest}"))
                .map_err(|e| UpstreamError::Build(e.to_string()))?,
            Some(Err(e)) => return Err(UpstreamError::Build(e.to_string())),
        };
        headers.insert(http::header::CONTENT_ENCODING, encoding);
        headers.insert(
            http::header::CONTENT_LENGTH,
            HeaderValue::from(self.encoded_len),
        );
        headers.insert(
            HeaderName::from_static("x-amz-decoded-content-length"),
            HeaderValue::from(self.decoded_len),
        );
        headers.insert(
            HeaderName::from_static("x-amz-trailer"),
            HeaderValue::from_name(self.trailer),
        );
        Ok(())
    }
}

/// The upstream S3 endpoint with pooled connections.
#[derive(Clone)]
pub struct Upstream {
    client: Client<timeout::Connector, timeout::TrackedBody>,
    /// `upstream.response_timeout_secs`.
    response_timeout: Duration,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    style: AddressingStyle,
    signer: Arc<Signer>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("endpoint", &format!("{}://{}", self.scheme, self.authority))
            .finish()
    }
}

/// Headers that are never forwarded: hop-by-hop headers, the client's
/// signature and payload mode (s3seal signs anew), and framing that s3seal
/// decodes itself.
pub static STRIPPED_REQUEST_HEADERS: [HeaderName; 16] = [
    HeaderName::from_static("authorization"),
    HeaderName::from_static("connection"),
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("te"),
    HeaderName::from_static("trailer"),
    HeaderName::from_static("transfer-encoding"),
    HeaderName::from_static("upgrade"),
    HeaderName::from_static("expect"),
    HeaderName::from_static("host"),
    HeaderName::from_static("content-length"),
    HeaderName::from_static("x-amz-date"),
    HeaderName::from_static("x-amz-content-sha256"),
    HeaderName::from_static("x-amz-security-token"),
    HeaderName::from_static("x-amz-decoded-content-length"),
    HeaderName::from_static("x-amz-trailer"),
];

/// Reads the upstream credentials from the configured file or environment.
pub fn load_credentials(config: &UpstreamConfig) -> Result<(String, SecretString), UpstreamError> {
    if let Some(path) = &config.credentials_file {
        crate::config::warn_if_shared(path, "upstream credentials_file");
        let text = std::fs::read_to_string(path).map_err(|e| {
            UpstreamError::Credentials(format!("failed to read {}: {e}", path.display()))
        })?;
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let (Some(id), Some(secret)) = (lines.next(), lines.next()) else {
            return Err(UpstreamError::Credentials(format!(
                "{} must hold the access key id and the secret access key on two lines",
                path.display()
            )));
        };
        return Ok((id.to_string(), SecretString::new(secret.to_string())));
    }
    let read = |name: &str| match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        Ok(_) => Err(UpstreamError::Credentials(format!(
            "environment variable {name} is empty"
        ))),
        Err(_) => Err(UpstreamError::Credentials(format!(
            "environment variable {name} is not set"
        ))),
    };
    let id = read(&config.access_key_id_env)?;
    let secret = read(&config.secret_access_key_env)?;
    Ok((id, SecretString::new(secret)))
}

impl Upstream {
    /// Builds the client for `endpoint` with the given credentials.
    pub fn new(
        config: &UpstreamConfig,
        endpoint: &str,
        access_key_id: String,
        secret: &SecretString,
    ) -> Result<Self, UpstreamError> {
        let uri: Uri = endpoint
            .parse()
            .map_err(|e| UpstreamError::Build(format!("endpoint {endpoint:?}: {e}")))?;
        let scheme = uri.scheme().cloned().unwrap_or(http::uri::Scheme::HTTP);
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| UpstreamError::Build(format!("endpoint {endpoint:?} has no host")))?;

        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs_or_empty();
        roots.add_parsable_certificates(native);
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|e| UpstreamError::CaFile {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<Result<_, _>>()
                .map_err(|e| UpstreamError::CaFile {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(UpstreamError::CaFile {
                    path: path.display().to_string(),
                    message: "no certificate found".into(),
                });
            }
            roots.add_parsable_certificates(certs);
        }
        let tls = rustls::ClientConfig::builder_with_provider(tls_crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| UpstreamError::Build(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let connect_timeout = Duration::from_secs(config.connect_timeout_secs);
        http.set_connect_timeout(Some(connect_timeout));
        let response_timeout = Duration::from_secs(config.response_timeout_secs);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let connector = timeout::Connector::new(connector, connect_timeout, response_timeout);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(30))
            .http1_max_headers(crate::s3::headers::MAX_HEADER_FIELDS)
            .build(connector);

        let signer = Arc::new(Signer::new(access_key_id, secret, config.region.clone()));
        Ok(Self {
            client,
            response_timeout,
            scheme,
            authority,
            style: config.addressing_style,
            signer,
        })
    }

    /// Addresses, signs and sends `request` with `body`.
    ///
    /// Fails with [`UpstreamError::TimedOut`] when the upstream sends no
    /// response head for `upstream.response_timeout_secs` after the body
    /// is sent, and with a [`Timeout::Write`] in the source chain of
    /// [`UpstreamError::Send`] when it takes no request data for that time.
    /// The returned body fails with [`Timeout::ResponseBody`] after such a
    /// gap in its data.
    pub async fn send(
        &self,
        request: UpstreamRequest,
        body: UpstreamBody,
    ) -> Result<Response<ResponseBody>, UpstreamError> {
        let signed = self.build_signed(request, None, SystemTime::now())?;
        self.send_signed(signed, body).await
    }

    /// Sends like [`Self::send`], with `body` (of `request.content_length`
    /// bytes) in the `aws-chunked` encoding and `checksum` in an unsigned
    /// trailer. The upstream then stores a checksum known only at the end.
    pub async fn send_with_trailer(
        &self,
        request: UpstreamRequest,
        body: UpstreamBody,
        checksum: TrailingChecksum,
    ) -> Result<Response<ResponseBody>, UpstreamError> {
        let decoded_len = request.content_length.unwrap_or(0);
        let framing = Framing {
            decoded_len,
            trailer: checksum.name.clone(),
            encoded_len: chunked::encoded_len(decoded_len, &checksum.name, checksum.value_len),
        };
        let signed = self.build_signed(request, Some(framing), SystemTime::now())?;
        let body = chunked::AwsChunkedBody::new(body, decoded_len, checksum).boxed_unsync();
        self.send_signed(signed, body).await
    }

    async fn send_signed(
        &self,
        signed: Request<()>,
        body: UpstreamBody,
    ) -> Result<Response<ResponseBody>, UpstreamError> {
        let (parts, ()) = signed.into_parts();
        let (body, sent) = timeout::TrackedBody::new(body);
        let request = Request::from_parts(parts, body);
        // Dropping the request future on a timeout makes hyper close the
        // connection.
        let Some(sent) = sent else {
            // Without a body the timer starts at once, which a plain timeout
            // does with one timer and no channel.
            return match tokio::time::timeout(self.response_timeout, self.client.request(request))
                .await
            {
                Ok(result) => {
                    let response = result.map_err(UpstreamError::Send)?;
                    Ok(response.map(|body| ResponseBody::new(body, self.response_timeout)))
                }
                Err(_) => Err(UpstreamError::TimedOut(timeout::Timeout::ResponseHead(
                    self.response_timeout,
                ))),
            };
        };
        tokio::select! {
            biased;
            result = self.client.request(request) => {
                let response = result.map_err(UpstreamError::Send)?;
                Ok(response.map(|body| ResponseBody::new(body, self.response_timeout)))
            }
            expired = timeout::expire(sent, self.response_timeout) => {
                Err(UpstreamError::TimedOut(expired))
            }
        }
    }

    /// Builds the upstream URI and headers and signs them. With `framing`,
    /// the headers describe an `aws-chunked` body with a trailer.
    fn build_signed(
        &self,
        request: UpstreamRequest,
        framing: Option<Framing>,
        now: SystemTime,
    ) -> Result<Request<()>, UpstreamError> {
        let (host, path) = self.address(request.bucket.as_deref(), request.key.as_deref());
        let mut headers = request.headers;
        crate::s3::headers::remove_matching(&mut headers, |name| {
            STRIPPED_REQUEST_HEADERS.contains(name)
        });
        headers.insert(
            HOST,
            HeaderValue::from_str(&host).map_err(|e| UpstreamError::Build(e.to_string()))?,
        );
        let payload_hash = match framing {
            None => {
                if let Some(len) = request.content_length {
                    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
                }
                signer::UNSIGNED_PAYLOAD
            }
            Some(framing) => {
                framing.apply(&mut headers)?;
                signer::UNSIGNED_PAYLOAD_TRAILER
            }
        };
        self.signer.sign(
            &request.method,
            &path,
            &request.query,
            &mut headers,
            payload_hash,
            now,
        )?;

        let mut path_and_query = path;
        if !request.query.is_empty() {
            path_and_query.push('?');
            path_and_query.push_str(&request.query);
        }
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(host.as_str())
            .path_and_query(path_and_query)
            .build()
            .map_err(|e| UpstreamError::Build(e.to_string()))?;
        let mut out = Request::builder()
            .method(request.method)
            .uri(uri)
            .body(())
            .map_err(|e| UpstreamError::Build(e.to_string()))?;
        *out.headers_mut() = headers;
        Ok(out)
    }

    /// Returns the Host header value and the encoded path for a bucket and key.
    fn address(&self, bucket: Option<&str>, key: Option<&str>) -> (String, String) {
        let key_len = key.map_or(0, str::len);
        match (self.style, bucket) {
            (AddressingStyle::Virtual, Some(bucket)) => {
                let authority = self.authority.as_str();
                let mut host = String::with_capacity(bucket.len() + 1 + authority.len());
                host.push_str(bucket);
                host.push('.');
                host.push_str(authority);
                let mut path = String::with_capacity(1 + key_len);
                path.push('/');
                if let Some(key) = key {
                    push_encoded_key(&mut path, key);
                }
                (host, path)
            }
            (_, Some(bucket)) => {
                let mut path = String::with_capacity(2 + bucket.len() + key_len);
                path.push('/');
                push_encoded(&mut path, bucket);
                if let Some(key) = key {
                    path.push('/');
                    push_encoded_key(&mut path, key);
                }
                (self.authority.to_string(), path)
            }
            (_, None) => (self.authority.to_string(), "/".to_string()),
        }
    }
}

/// Bytes that SigV4 leaves unescaped in a URI: the unreserved set.
const SIGV4_ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a path segment with the SigV4 rule.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    push_encoded(&mut out, segment);
    out
}

/// Percent-encodes an object key with the SigV4 rule, keeping `/`.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    push_encoded_key(&mut out, key);
    out
}

/// Appends `text` percent-encoded with the SigV4 rule.
fn push_encoded(out: &mut String, text: &str) {
    let unreserved =
        |byte: &u8| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~');
    if text.as_bytes().iter().all(unreserved) {
        out.push_str(text);
    } else {
        out.extend(percent_encoding::utf8_percent_encode(text, SIGV4_ESCAPED));
    }
}

/// Appends an object key percent-encoded with the SigV4 rule, keeping `/`.
fn push_encoded_key(out: &mut String, key: &str) {
    for (index, segment) in key.split('/').enumerate() {
        if index > 0 {
            out.push('/');
        }
        push_encoded(out, segment);
    }
}

/// Percent-encodes a query name or value with the SigV4 rule.
pub fn encode_query_component(value: &str) -> String {
    encode_segment(value)
}

/// Returns the rustls crypto provider for both listeners and the upstream
/// client: ring, which builds without a C toolchain beyond cc.
// NOTE: rustls 0.23.48 deprecates ring's provider because it lacks
// post-quantum key exchange; switching to aws-lc-rs brings that back at the
// cost of a cmake build.
#[allow(deprecated)]
pub fn tls_crypto_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

fn rustls_native_certs_or_empty() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    let result = rustls_native_certs::load_native_certs();
    for error in &result.errors {
        tracing::warn!(%error, "failed to load a system CA certificate");
    }
    result.certs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(style: AddressingStyle) -> Upstream {
        let config = UpstreamConfig {
            addressing_style: style,
            ..UpstreamConfig::default()
        };
        Upstream::new(
            &config,
            "http://127.0.0.1:9000",
            "AKID".into(),
            &SecretString::new("secret".into()),
        )
        .unwrap()
    }

    #[test]
    fn key_encoding_keeps_slashes() {
        assert_eq!(encode_key("a b/c+d=e~f"), "a%20b/c%2Bd%3De~f");
        assert_eq!(encode_key("ü"), "%C3%BC");
        assert_eq!(encode_key("a//b"), "a//b");
        assert_eq!(encode_key("/Az09-_.~/"), "/Az09-_.~/");
    }

    #[test]
    fn segment_encoding_ascii_bytes() {
        for code in 0..=0x7f_u8 {
            let text = char::from(code).to_string();
            let expected = if code.is_ascii_alphanumeric() || b"-_.~".contains(&code) {
                text.clone()
            } else {
                format!("%{code:02X}")
            };
            assert_eq!(encode_segment(&text), expected, "byte {code:#04x}");
        }
        assert_eq!(encode_segment("a/ü b"), "a%2F%C3%BC%20b");
    }

    #[test]
    fn path_style_address() {
        let up = upstream(AddressingStyle::Path);
        assert_eq!(
            up.address(Some("bkt"), Some("a b")),
            ("127.0.0.1:9000".into(), "/bkt/a%20b".into())
        );
        assert_eq!(
            up.address(Some("bkt"), None),
            ("127.0.0.1:9000".into(), "/bkt".into())
        );
        assert_eq!(
            up.address(None, None),
            ("127.0.0.1:9000".into(), "/".into())
        );
    }

    #[test]
    fn virtual_style_address() {
        let up = upstream(AddressingStyle::Virtual);
        assert_eq!(
            up.address(Some("bkt"), Some("k")),
            ("bkt.127.0.0.1:9000".into(), "/k".into())
        );
    }

    #[test]
    fn signed_request_carries_sigv4() {
        let up = upstream(AddressingStyle::Path);
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_static("client signature"),
        );
        headers.insert("x-amz-meta-a", HeaderValue::from_static("1"));
        let request = UpstreamRequest {
            method: Method::PUT,
            bucket: Some("b".into()),
            key: Some("k 1".into()),
            query: String::new(),
            headers,
            content_length: Some(5),
        };
        let signed = up
            .build_signed(
                request,
                None,
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            )
            .unwrap();
        let auth = signed.headers()["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKID/20231114/us-east-1/s3/aws4_request"),
            "{auth}"
        );
        assert!(auth.contains("x-amz-meta-a"), "{auth}");
        assert_eq!(signed.headers()["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
        assert_eq!(signed.headers()["content-length"], "5");
        assert_eq!(signed.uri().path(), "/b/k%201");
    }
}
