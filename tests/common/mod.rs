//! Test harness: an s3s-fs upstream and an s3seal proxy in front of it, both
//! in-process on ephemeral loopback ports, with aws-sdk-s3 clients for the
//! proxy and for the upstream directly.
#![allow(dead_code)]

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use s3seal::audit::Auditor;
use s3seal::config::{Config, EmbeddedConfig};
use s3seal::embedded::EmbeddedStore;
use s3seal::keys::Keyring;
use s3seal::server::RunningServer;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub const ACCESS_KEY_ID: &str = "AKIDS3SEALTEST";
pub const KEY_NAME: &str = "test";

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub config_toml: String,
    pub proxy: Option<RunningServer>,
    pub endpoint: String,
    pub upstream: EmbeddedStore,
    pub secret: String,
    /// Client of the proxy.
    pub client: aws_sdk_s3::Client,
    /// Client of the upstream, bypassing the proxy.
    pub direct: aws_sdk_s3::Client,
    pub keyring_path: PathBuf,
    pub audit_log: PathBuf,
    pub audit_key: PathBuf,
    /// `http://addr` of the operator listener, when `Options::metrics` is set.
    pub metrics_endpoint: Option<String>,
    /// Secrets of the clients in `Options::extra_clients`, by access key id.
    pub client_secrets: HashMap<String, String>,
}

/// How to start a harness. `Default` gives the standard configuration.
#[derive(Default)]
pub struct Options {
    /// TOML appended to the configuration.
    pub extra: String,
    /// Lines for the `[server]` section, after `listen`.
    pub server: String,
    /// Bucket rules in place of [`BUCKET_RULES`].
    pub bucket_rules: Option<String>,
    /// More clients, each with a random secret.
    pub extra_clients: Vec<String>,
    /// Lines for the `[audit]` section, after `file`, `key_file` and `fsync`.
    pub audit: String,
    /// Start the operator listener on an ephemeral port.
    pub metrics: bool,
    /// Upstream endpoint in place of the embedded store's.
    pub upstream_endpoint: Option<String>,
    /// Lines for the `[upstream]` section, after `endpoint` and
    /// `credentials_file`.
    pub upstream: String,
    /// Auditor in place of the audit log file.
    pub auditor: Option<Auditor>,
}

/// Bucket rules of the test configuration.
pub const BUCKET_RULES: &str = r#"
[[buckets]]
match = "plain-*"
mode = "passthrough"

[[buckets]]
match = "denied-*"
mode = "deny"

[[buckets]]
match = "*"
mode = "encrypt"
key = "test"
"#;

impl Harness {
    pub async fn start() -> Self {
        Self::start_with("").await
    }

    /// Starts the harness with extra TOML appended to the configuration.
    pub async fn start_with(extra: &str) -> Self {
        Self::start_with_options(Options {
            extra: extra.into(),
            ..Options::default()
        })
        .await
    }

    /// Starts the harness with `options`.
    pub async fn start_with_options(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let upstream = s3seal::embedded::start(&EmbeddedConfig {
            data_dir: dir.path().join("store"),
            credentials_file: dir.path().join("upstream-credentials"),
            port: 0,
        })
        .await
        .unwrap();

        let secret = random_secret();
        write_private(&dir.path().join("client-secret"), &secret);
        let keyring_path = dir.path().join("keyring.json");
        Keyring::default()
            .create_key(
                &keyring_path,
                KEY_NAME,
                &mut rand::rngs::OsRng,
                "2026-01-01T00:00:00Z",
            )
            .unwrap();

        let mut client_secrets = HashMap::new();
        let mut extra_clients = String::new();
        for id in &options.extra_clients {
            let secret = random_secret();
            let path = dir.path().join(format!("secret-{id}"));
            write_private(&path, &secret);
            extra_clients.push_str(&format!(
                "[[clients]]\naccess_key_id = \"{id}\"\nsecret_file = \"{}\"\n\n",
                path.display()
            ));
            client_secrets.insert(id.clone(), secret);
        }
        let audit_log = dir.path().join("audit.log");
        let audit_key = dir.path().join("audit-key");
        let metrics = if options.metrics {
            "[metrics]\nlisten = \"127.0.0.1:0\"\n"
        } else {
            ""
        };
        let toml = format!(
            r#"
[server]
listen = "127.0.0.1:0"
{server}

[upstream]
endpoint = "{endpoint}"
credentials_file = "{upstream_credentials}"
{upstream}

[keys]
keyring_file = "{keyring}"

[audit]
file = "{audit_file}"
key_file = "{audit_key}"
fsync = "never"
{audit}

{metrics}

[[clients]]
access_key_id = "{ACCESS_KEY_ID}"
secret_file = "{client_secret}"

{extra_clients}
{rules}
{extra}
"#,
            endpoint = options
                .upstream_endpoint
                .as_deref()
                .unwrap_or(&upstream.endpoint),
            upstream_credentials = dir.path().join("upstream-credentials").display(),
            keyring = keyring_path.display(),
            client_secret = dir.path().join("client-secret").display(),
            audit_file = audit_log.display(),
            audit_key = audit_key.display(),
            audit = options.audit,
            server = options.server,
            upstream = options.upstream,
            rules = options.bucket_rules.as_deref().unwrap_or(BUCKET_RULES),
            extra = options.extra,
        );
        let config = Config::from_toml(&toml).unwrap();
        let proxy = s3seal::server::spawn_with_auditor(config, options.auditor)
            .await
            .unwrap();
        let config_toml = toml;
        let endpoint = format!("http://{}", proxy.plain_addr.unwrap());
        let metrics_endpoint = proxy.metrics_addr.map(|addr| format!("http://{addr}"));
        let client = s3_client(&endpoint, ACCESS_KEY_ID, &secret);
        let direct = s3_client(
            &upstream.endpoint,
            &upstream.access_key_id,
            upstream.secret_access_key.expose(),
        );
        Self {
            dir,
            config_toml,
            proxy: Some(proxy),
            endpoint,
            upstream,
            secret,
            client,
            direct,
            keyring_path,
            audit_log,
            audit_key,
            metrics_endpoint,
            client_secrets,
        }
    }

    /// Returns a client of the proxy for `access_key_id`, which is
    /// [`ACCESS_KEY_ID`] or one of `Options::extra_clients`.
    pub fn client_for(&self, access_key_id: &str) -> aws_sdk_s3::Client {
        let secret = if access_key_id == ACCESS_KEY_ID {
            &self.secret
        } else {
            &self.client_secrets[access_key_id]
        };
        s3_client(&self.endpoint, access_key_id, secret)
    }

    /// Returns the audit log's records as JSON values.
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        read_audit_records(&self.audit_log)
    }

    /// Stops the proxy and starts a new one with the same configuration, as
    /// a restart or a second replica would. The client follows the new port.
    pub async fn restart_proxy(&mut self) {
        // Dropping the client closes its pooled connections, so the old
        // proxy, and with it the lock on the audit log, goes away.
        self.client = s3_client("http://127.0.0.1:9", ACCESS_KEY_ID, &self.secret);
        if let Some(proxy) = self.proxy.take() {
            proxy.shutdown().await;
        }
        let config = Config::from_toml(&self.config_toml).unwrap();
        let proxy = s3seal::server::spawn(config).await.unwrap();
        self.endpoint = format!("http://{}", proxy.plain_addr.unwrap());
        self.client = s3_client(&self.endpoint, ACCESS_KEY_ID, &self.secret);
        self.proxy = Some(proxy);
    }

    /// Creates a bucket through the proxy.
    pub async fn bucket(&self, name: &str) -> String {
        self.client
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .unwrap();
        name.to_string()
    }

    /// Reads an object through the proxy.
    pub async fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        out.body.collect().await.unwrap().into_bytes().to_vec()
    }

    /// Reads an object's stored bytes from the upstream directly.
    pub async fn stored(
        &self,
        bucket: &str,
        key: &str,
    ) -> (Vec<u8>, std::collections::HashMap<String, String>) {
        let out = self
            .direct
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        let metadata = out.metadata().cloned().unwrap_or_default();
        let bytes = out.body.collect().await.unwrap().into_bytes().to_vec();
        (bytes, metadata)
    }

    pub fn client_with_secret(&self, access_key_id: &str, secret: &str) -> aws_sdk_s3::Client {
        s3_client(&self.endpoint, access_key_id, secret)
    }

    /// Sends a raw HTTP request with a SigV4 signature made by aws-sigv4.
    pub async fn signed_request(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> reqwest_lite::Response {
        let url = format!("{}{}", self.endpoint, path_and_query);
        reqwest_lite::send_signed(method, &url, headers, body, ACCESS_KEY_ID, &self.secret).await
    }
}

pub fn s3_client(endpoint: &str, access_key_id: &str, secret: &str) -> aws_sdk_s3::Client {
    let credentials = Credentials::new(access_key_id, secret, None, None, "s3seal-tests");
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(credentials)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Reads an audit log's records as JSON values, one per line.
pub fn read_audit_records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Sends a GET to `url` without a signature and returns the status and
/// body, for the operator endpoints.
pub async fn http_get(url: &str) -> (u16, String) {
    let request = http::Request::get(url)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = reqwest_lite::send(request).await;
    (response.status, response.text())
}

pub fn random_secret() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, 40)
}

pub fn write_private(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// Deterministic test data of `len` bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed as usize * 7) % 251) as u8)
        .collect()
}

/// Returns the stored length of an object of `len` plaintext bytes.
pub fn ciphertext_len(len: u64) -> u64 {
    s3seal::crypto::ciphertext_len(len)
}

/// A minimal HTTP/1.1 client for raw signed requests, so that tests can
/// send shapes that SDKs never send.
/// Starts an upstream on 127.0.0.1 that responds to every request with
/// `status` and an HTML page, as a load balancer or proxy in front of a
/// store does, and returns its endpoint.
pub async fn html_error_server(status: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = vec![0u8; 64 * 1024];
                let _ = stream.read(&mut request).await;
                let page = format!("<html><body><h1>{status}</h1></body></html>");
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    endpoint
}

pub mod reqwest_lite {
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{
        sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
        SigningSettings, UriPathNormalizationMode,
    };
    use aws_sigv4::sign::v4;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    pub struct Response {
        pub status: u16,
        pub headers: http::HeaderMap,
        pub body: Vec<u8>,
    }

    impl Response {
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
    }

    /// Returns the headers of a request signed with UNSIGNED-PAYLOAD (or
    /// the given `x-amz-content-sha256`), `host` included.
    pub fn sign_headers(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        access_key_id: &str,
        secret: &str,
    ) -> Vec<(String, String)> {
        let uri: http::Uri = url.parse().unwrap();
        let host = uri.authority().unwrap().to_string();
        let mut all: Vec<(String, String)> = vec![("host".into(), host)];
        let mut payload_hash: Option<String> = None;
        for (n, v) in headers {
            if n.eq_ignore_ascii_case("x-amz-content-sha256") {
                payload_hash = Some(v.to_string());
            }
            all.push((n.to_ascii_lowercase(), v.to_string()));
        }
        if payload_hash.is_none() {
            all.push(("x-amz-content-sha256".into(), "UNSIGNED-PAYLOAD".into()));
        }
        let body = match &payload_hash {
            Some(hash) if hash != "UNSIGNED-PAYLOAD" => SignableBody::Precomputed(hash.clone()),
            _ => SignableBody::UnsignedPayload,
        };
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
        let identity = Credentials::new(access_key_id, secret, None, None, "t").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("s3")
            .time(std::time::SystemTime::now())
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            method,
            url,
            all.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            body,
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        for (name, value) in instructions.headers() {
            all.push((name.to_string(), value.to_string()));
        }
        all
    }

    pub async fn send_signed(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        access_key_id: &str,
        secret: &str,
    ) -> Response {
        let all = sign_headers(method, url, headers, access_key_id, secret);
        let mut builder = http::Request::builder().method(method).uri(url);
        for (n, v) in &all {
            if n != "host" {
                builder = builder.header(n.as_str(), v.as_str());
            }
        }
        let request = builder.body(Full::new(Bytes::from(body))).unwrap();
        send(request).await
    }

    pub async fn send(request: http::Request<Full<Bytes>>) -> Response {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let response = client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .unwrap_or_default();
        Response {
            status,
            headers,
            body,
        }
    }
}

/// Log lines of every proxy in this test binary. The subscriber is global
/// because a thread-local one misses events whose callsites another test's
/// thread registered first; tests find their lines by request id.
pub struct CapturedLogs {
    buffer: Arc<Mutex<Vec<u8>>>,
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    pub fn start() -> Self {
        static BUFFER: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
        let buffer = BUFFER
            .get_or_init(|| {
                let buffer = Arc::new(Mutex::new(Vec::new()));
                let writer = buffer.clone();
                let subscriber = tracing_subscriber::fmt()
                    .with_ansi(false)
                    .with_max_level(tracing::Level::INFO)
                    .with_writer(move || LogWriter(writer.clone()))
                    .finish();
                tracing::subscriber::set_global_default(subscriber).unwrap();
                buffer
            })
            .clone();
        Self { buffer }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }
}

/// Returns the S3 error code of a failed request.
pub fn error_code<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> Option<String>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .map(str::to_string)
}
