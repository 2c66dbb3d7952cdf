//! The reference hop: a minimal HTTP pass-through that seals PutObject
//! bodies and opens GetObject bodies with s3seal's own segment format
//! (`s3seal::crypto::EncryptBody` and `DecryptBody`), and does nothing else.
//!
//! It sets the lower bound for what an encrypting proxy costs: it does not
//! verify or re-create signatures, keeps the client's `Host` header and
//! `Authorization` (so an upstream that checks signatures still accepts the
//! request, because the client signs only `host`, `x-amz-date` and
//! `x-amz-content-sha256` and sends `UNSIGNED-PAYLOAD`), and has no bucket
//! rules, envelopes or key wrapping.
//!
//! Each upload gets a fresh random data key, stored in plain text in the
//! `x-amz-meta-bench-hop-key` metadata header. This is only acceptable
//! because the hop exists to be measured: it protects nothing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::header::{HeaderName, CONTENT_LENGTH};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::RngCore;
use tokio::net::TcpListener;

use s3seal::crypto::{ciphertext_len, plaintext_len, DataKey, DecryptBody, EncryptBody};

use crate::common::{self, text_body, BoxBody, BoxError};
use crate::upstream::serve;

const KEY_HEADER: &str = "x-amz-meta-bench-hop-key";

/// Headers that apply to one connection and are not forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

#[derive(clap::Args, Debug)]
pub struct HopArgs {
    /// Upstream base URL, such as http://127.0.0.1:9000.
    #[arg(long)]
    upstream: String,
    /// File that receives `{"endpoint": "http://127.0.0.1:PORT"}` once the
    /// listener is bound.
    #[arg(long)]
    ready_file: PathBuf,
    /// Seconds after which the hop exits by itself.
    #[arg(long, default_value_t = 3600)]
    max_seconds: u64,
}

#[derive(Clone)]
struct Hop {
    client: Client<HttpConnector, BoxBody>,
    upstream: http::uri::Authority,
}

pub async fn run(args: HopArgs) -> anyhow::Result<()> {
    common::exit_after(Duration::from_secs(args.max_seconds));
    let upstream: Uri = args.upstream.parse()?;
    anyhow::ensure!(
        upstream.scheme_str() == Some("http"),
        "--upstream must be an http:// URL, got {}",
        args.upstream
    );
    let upstream = upstream
        .authority()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("--upstream {} has no host", args.upstream))?;

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(connector);
    let hop = Hop { client, upstream };

    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    common::write_ready_file(&args.ready_file, addr)?;
    eprintln!(
        "reference hop listening on {addr}, upstream {}",
        hop.upstream
    );
    let service = service_fn(move |request| {
        let hop = hop.clone();
        async move { Ok::<_, std::convert::Infallible>(hop.forward(request).await) }
    });
    serve(listener, service).await
}

impl Hop {
    async fn forward(&self, request: Request<Incoming>) -> Response<BoxBody> {
        match self.try_forward(request).await {
            Ok(response) => response,
            Err(error) => {
                eprintln!("forwarding failed: {error}");
                let mut response = Response::new(text_body(format!("hop error: {error}\n")));
                *response.status_mut() = StatusCode::BAD_GATEWAY;
                response
            }
        }
    }

    async fn try_forward(&self, request: Request<Incoming>) -> Result<Response<BoxBody>, BoxError> {
        let (mut parts, body) = request.into_parts();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|value| value.as_str())
            .unwrap_or("/");
        parts.uri = Uri::builder()
            .scheme("http")
            .authority(self.upstream.clone())
            .path_and_query(path_and_query)
            .build()?;
        for name in HOP_BY_HOP {
            parts.headers.remove(*name);
        }

        let is_head = parts.method == Method::HEAD;
        let is_object = parts.uri.path().trim_start_matches('/').contains('/');
        let is_upload = parts.method == Method::PUT
            && is_object
            && parts.uri.query().is_none()
            && !parts.headers.contains_key("x-amz-copy-source");
        let body: BoxBody = if is_upload {
            let len = content_length(&parts.headers)
                .ok_or("an upload without Content-Length cannot be sealed")?;
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(ciphertext_len(len)));
            parts.headers.insert(
                HeaderName::from_static(KEY_HEADER),
                HeaderValue::from_str(&hex::encode(key))?,
            );
            EncryptBody::new(body, len, &DataKey::from_bytes(key), 0)?.boxed_unsync()
        } else {
            body.map_err(BoxError::from).boxed_unsync()
        };

        let response = self
            .client
            .request(Request::from_parts(parts, body))
            .await?;
        let (mut parts, body) = response.into_parts();
        for name in HOP_BY_HOP {
            parts.headers.remove(*name);
        }
        let sealed_key = parts.headers.remove(KEY_HEADER);
        let body: BoxBody = match sealed_key {
            Some(key) if parts.status == StatusCode::OK => {
                let key: [u8; 32] = hex::decode(key.as_bytes())?
                    .try_into()
                    .map_err(|_| "the stored hop key is not 32 bytes")?;
                let stored = content_length(&parts.headers)
                    .ok_or("a sealed object without Content-Length")?;
                let len = plaintext_len(stored).ok_or("a sealed object of invalid length")?;
                parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
                if is_head {
                    body.map_err(BoxError::from).boxed_unsync()
                } else {
                    DecryptBody::full(body, &DataKey::from_bytes(key), 0, len)?.boxed_unsync()
                }
            }
            _ => body.map_err(BoxError::from).boxed_unsync(),
        };
        Ok(Response::from_parts(parts, body))
    }
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}
