//! The request pipeline: classify the S3 request, authenticate the client,
//! apply the bucket's policy, run the operation, and turn any error into an
//! S3 error response in one place.
//!
//! `ops` holds one file per operation family. Only this module builds HTTP
//! responses from errors.

mod body;
mod ops;
mod request;
mod response;
mod state;

pub use body::ProxyBody;
pub use request::{classify, Operation, S3Request};
pub use state::{Proxy, StartError};

use crate::policy::BucketPolicy;
use crate::s3::{ErrorCode, S3Error};
use http::{Method, Request, Response};
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;
use tracing::Instrument;

/// Everything an operation needs about the request it serves.
pub(crate) struct Context<'a> {
    pub proxy: &'a Proxy,
    pub s3: &'a S3Request,
    pub parts: &'a http::request::Parts,
}

impl Context<'_> {
    pub fn bucket(&self) -> &str {
        self.s3.bucket.as_deref().unwrap_or_default()
    }

    pub fn key(&self) -> &str {
        self.s3.key.as_deref().unwrap_or_default()
    }
}

/// Serves one client request.
pub async fn handle(
    proxy: Arc<Proxy>,
    request: Request<Incoming>,
    client_addr: SocketAddr,
) -> Response<ProxyBody> {
    let request_id = new_request_id();
    let span = tracing::info_span!(
        "request",
        req.id = %request_id,
        client.addr = %client_addr,
        http.method = %request.method(),
        s3.op = tracing::field::Empty,
        s3.bucket = tracing::field::Empty,
        principal = tracing::field::Empty,
    );
    async move {
        let is_head = request.method() == Method::HEAD;
        let started = std::time::Instant::now();
        let (parts, body) = request.into_parts();
        let (mut response, resource) = match serve(&proxy, parts, body).await {
            Ok(response) => (response, None),
            Err((error, resource)) => (response::error(&error, &request_id, resource.as_deref(), is_head), Some(error)),
        };
        if let Ok(value) = http::HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-amz-request-id", value);
        }
        let status = response.status().as_u16();
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match resource {
            Some(error) if error.status().is_server_error() => {
                let level_error = error.code() == ErrorCode::InternalError;
                if level_error {
                    tracing::error!(status, code = %error.code(), error = %error, elapsed_ms, "request failed");
                } else {
                    tracing::warn!(status, code = %error.code(), error = %error, elapsed_ms, "request failed");
                }
            }
            Some(error) => tracing::info!(status, code = %error.code(), error = %error, elapsed_ms, "request rejected"),
            None => tracing::info!(status, elapsed_ms, "request served"),
        }
        response
    }
    .instrument(span)
    .await
}

type Failure = (S3Error, Option<String>);

async fn serve(
    proxy: &Proxy,
    parts: http::request::Parts,
    body: Incoming,
) -> Result<Response<ProxyBody>, Failure> {
    let s3 = classify(&parts, proxy.config.server.base_domain.as_deref()).map_err(|e| (e, None))?;
    let span = tracing::Span::current();
    span.record("s3.op", s3.operation.name());
    if let Some(bucket) = &s3.bucket {
        span.record("s3.bucket", bucket.as_str());
    }
    let resource = Some(s3.resource());
    let fail = |e: S3Error| (e, resource.clone());

    let authenticated =
        crate::auth::authenticate(&parts, &proxy.credentials, &proxy.auth, SystemTime::now())
            .map_err(fail)?;
    span.record("principal", authenticated.access_key_id());

    let policy = match &s3.bucket {
        Some(bucket) => proxy.policy.for_bucket(bucket),
        None => BucketPolicy::Passthrough {
            rule_index: usize::MAX,
        },
    };
    if let BucketPolicy::Deny { rule_index } = &policy {
        let reason = match rule_index {
            Some(index) => format!(
                "bucket rule {index} (match = {:?}) denies this bucket",
                proxy.policy.pattern(*index)
            ),
            None => "no bucket rule matches this bucket".to_string(),
        };
        return Err(fail(S3Error::new(
            ErrorCode::AccessDenied,
            format!("Access Denied: {reason}"),
        )));
    }

    let context = Context {
        proxy,
        s3: &s3,
        parts: &parts,
    };
    ops::dispatch(&context, &policy, authenticated, body)
        .await
        .map_err(fail)
}

/// Returns a new random request id: 16 uppercase hex digits, like S3's.
fn new_request_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode_upper(bytes)
}
