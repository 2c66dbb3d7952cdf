//! The request pipeline: classify the S3 request, authenticate the client,
//! apply the bucket's policy, run the operation, and turn any error into an
//! S3 error response in one place.
//!
//! `ops` contains one file per operation family. Only this module builds HTTP
//! responses from errors.

mod access;
mod body;
mod ops;
mod request;
mod response;
mod state;
mod unencrypted;

pub use body::ProxyBody;
pub(crate) use request::is_valid_bucket_name;
pub use request::{classify, Operation, S3Request};
pub use state::{read_client_secrets, Proxy, StartError};

use crate::keys::AccessContext;
use crate::metrics::UpstreamErrorKind;
use crate::policy::BucketPolicy;
use crate::s3::{ErrorCode, S3Error};
use body::RequestBody;
use http::{Method, Request, Response};
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;
use tracing::Instrument;

/// Marks a request that arrived on the TLS listener, for URLs that name
/// s3seal itself.
#[derive(Clone, Copy, Debug)]
pub struct TlsConnection;

/// Everything an operation needs about the request it serves.
pub(crate) struct Context<'a> {
    pub proxy: &'a Proxy,
    pub s3: &'a S3Request,
    pub parts: &'a http::request::Parts,
    /// The client and request ids, for the audit records of its key
    /// accesses.
    pub access: AccessContext,
}

impl Context<'_> {
    pub fn bucket(&self) -> &str {
        self.s3.bucket.as_deref().unwrap_or_default()
    }

    pub fn key(&self) -> &str {
        self.s3.key.as_deref().unwrap_or_default()
    }

    /// Returns the URL of the request's object as the client addressed it:
    /// its scheme, `Host` header and path, without the query.
    pub fn object_url(&self) -> String {
        let scheme = match self.parts.extensions.get::<TlsConnection>() {
            Some(_) => "https",
            None => "http",
        };
        let host = self
            .parts
            .headers
            .get(http::header::HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| {
                self.parts
                    .uri
                    .authority()
                    .map(|authority| authority.as_str())
            })
            .unwrap_or_default();
        format!("{scheme}://{host}{}", self.parts.uri.path())
    }
}

/// The request id and client address of one request.
struct RequestMeta<'a> {
    request_id: &'a str,
    client_addr: SocketAddr,
    /// Set once the request is classified, for metrics and the log line.
    operation: Option<Operation>,
    bucket: Option<String>,
    /// The access key id, once the signature is verified.
    principal: Option<String>,
}

/// The log lines of served requests on one client connection. They wait
/// until the connection has written their responses, so that formatting
/// and writing a line does not delay the response.
#[derive(Clone, Default)]
pub struct ServedLines(Arc<std::sync::Mutex<Vec<ServedLine>>>);

/// The fields of one `request served` line.
struct ServedLine {
    request_id: String,
    client_addr: SocketAddr,
    method: Method,
    operation: &'static str,
    bucket: Option<String>,
    principal: Option<String>,
    status: u16,
    elapsed_ms: u64,
}

impl ServedLine {
    fn write(&self) {
        tracing::info!(
            req.id = %self.request_id,
            client.addr = %self.client_addr,
            http.method = %self.method,
            s3.op = %self.operation,
            s3.bucket = %self.bucket.as_deref().unwrap_or_default(),
            principal = %self.principal.as_deref().unwrap_or_default(),
            status = self.status,
            elapsed_ms = self.elapsed_ms,
            "request served"
        );
    }
}

impl ServedLines {
    fn push(&self, line: ServedLine) {
        self.lock().push(line);
    }

    /// Writes and removes the queued lines. The connection calls it after
    /// each poll, once the responses of that poll are written.
    pub fn write(&self) {
        let mut lines = self.lock();
        for line in lines.drain(..) {
            line.write();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ServedLine>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Serves one client request and writes one log line for it. The line of
/// a served request goes to `served`, to be written after the response.
///
/// The line carries the request's fields itself rather than a span, which
/// would cost every request the span's creation and every poll its entry
/// and exit. The `request` span, with the request id only, exists at
/// `debug` and finer, where it ties the events of other crates to a request.
pub async fn handle(
    proxy: Arc<Proxy>,
    request: Request<Incoming>,
    client_addr: SocketAddr,
    served: ServedLines,
) -> Response<ProxyBody> {
    let request_id = new_request_id();
    let span = tracing::debug_span!("request", req.id = %request_id);
    // A queued line is written outside the `request` span, so lines are
    // queued only while the span is off, above `debug`.
    let queue_line = span.is_disabled();
    async move {
        let is_head = request.method() == Method::HEAD;
        let method = request.method().clone();
        let close_after = expects_continue_without_body(request.headers());
        let declares_body = declares_body(request.headers());
        let started = std::time::Instant::now();
        proxy.metrics.request_started();
        let (parts, body) = request.into_parts();
        let idle = std::time::Duration::from_secs(proxy.config.server.body_idle_timeout_secs);
        let body = body::IdleTimeout::new(body, idle);
        let mut unanswered = Unanswered {
            meta: RequestMeta {
                request_id: &request_id,
                client_addr,
                operation: None,
                bucket: None,
                principal: None,
            },
            method: &method,
            started,
            answered: false,
        };
        // Set when the upstream returned a server error (5xx).
        let mut upstream_failed = false;
        // The upstream's request id of a relayed error, which the error
        // document names in place of s3seal's.
        let mut upstream_id = None;
        let (mut response, resource) = match serve(&proxy, parts, body, &mut unanswered.meta).await {
            Ok(response) => {
                upstream_failed = is_upstream_failure(response.status());
                if response.status().as_u16() >= 400 {
                    // S3 names the header `x-amz-request-id`, moto
                    // `x-amzn-requestid`.
                    let headers = response.headers();
                    upstream_id = headers
                        .get("x-amz-request-id")
                        .or_else(|| headers.get("x-amzn-requestid"))
                        .and_then(|value| value.to_str().ok())
                        .map(str::to_owned);
                }
                match response::replace_upstream_error(&response) {
                    Some(error) => (response::error(&error, &request_id, None, is_head), Some(error)),
                    None => (response, None),
                }
            }
            Err((error, resource)) => (response::error(&error, &request_id, resource.as_deref(), is_head), Some(error)),
        };
        unanswered.answered = true;
        // The status line is s3seal's own: a relayed response would keep the
        // upstream's HTTP version (1.0 from some stores) and reason phrase
        // (moto's "NOT FOUND").
        *response.version_mut() = http::Version::HTTP_11;
        response.extensions_mut().remove::<hyper::ext::ReasonPhrase>();
        let meta = &unanswered.meta;
        if let Ok(value) = http::HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-amz-request-id", value);
        }
        if close_after || (declares_body && response.status().as_u16() >= 400) {
            response
                .headers_mut()
                .insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
        }
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        let elapsed_ms = elapsed.as_millis() as u64;
        let operation = meta.operation.map_or("Unclassified", Operation::name);
        proxy.metrics.request_finished(operation, status, elapsed);
        match &resource {
            _ if upstream_failed => proxy.metrics.upstream_error(UpstreamErrorKind::ErrorStatus),
            Some(error) if matches!(error.code(), ErrorCode::BadGateway | ErrorCode::GatewayTimeout) => {
                proxy.metrics.upstream_error(UpstreamErrorKind::RequestFailed);
            }
            _ => {}
        }
        let bucket = meta.bucket.as_deref().unwrap_or_default();
        let principal = meta.principal.as_deref().unwrap_or_default();
        macro_rules! request_line {
            ($level:ident, $($field:tt)*) => {
                tracing::$level!(
                    req.id = %request_id,
                    client.addr = %client_addr,
                    http.method = %method,
                    s3.op = %operation,
                    s3.bucket = %bucket,
                    principal = %principal,
                    status,
                    elapsed_ms,
                    $($field)*
                )
            };
        }
        match resource {
            Some(error) if error.is_operator_fault() => {
                request_line!(error, code = %error.code(), error = %error, "request failed");
            }
            // A 501 rejects a feature of the request, whether s3seal or the
            // upstream sent it.
            Some(error) if error.code() == ErrorCode::NotImplemented => {
                request_line!(info, code = %error.code(), error = %error, "request rejected")
            }
            Some(error) if error.status().is_server_error() => {
                if error.code() == ErrorCode::InternalError && !upstream_failed {
                    request_line!(error, code = %error.code(), error = %error, "request failed");
                } else {
                    request_line!(warn, code = %error.code(), error = %error, "request failed");
                }
            }
            Some(error) => request_line!(info, code = %error.code(), error = %error, "request rejected"),
            None if upstream_failed => {
                // A store that sends no request id gets no empty field.
                request_line!(
                    warn,
                    upstream.req_id = upstream_id.as_deref().map(tracing::field::display),
                    "request failed: the upstream returned a server error, which is relayed to the client"
                )
            }
            None if status >= 400 => {
                // A store that sends no request id gets no empty field.
                request_line!(
                    info,
                    upstream.req_id = upstream_id.as_deref().map(tracing::field::display),
                    "request rejected by the upstream, whose error is relayed to the client"
                )
            }
            None => {
                let line = ServedLine {
                    request_id: request_id.clone(),
                    client_addr,
                    method: method.clone(),
                    operation,
                    bucket: unanswered.meta.bucket.take(),
                    principal: unanswered.meta.principal.take(),
                    status,
                    elapsed_ms,
                };
                if queue_line {
                    served.push(line);
                } else {
                    line.write();
                }
            }
        }
        let request_id = request_id.clone();
        response.map(|body| http_body_util::BodyExt::boxed_unsync(body::LogBodyOutcome::new(body, request_id, proxy.metrics.clone())))
    }
    .instrument(span)
    .await
}

/// Logs the request when its handler is dropped before the response, as
/// at shutdown when the grace period ends.
struct Unanswered<'a> {
    meta: RequestMeta<'a>,
    method: &'a Method,
    started: std::time::Instant,
    answered: bool,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let meta = &self.meta;
        tracing::warn!(
            req.id = %meta.request_id,
            client.addr = %meta.client_addr,
            http.method = %self.method,
            s3.op = %meta.operation.map_or("Unclassified", Operation::name),
            s3.bucket = %meta.bucket.as_deref().unwrap_or_default(),
            principal = %meta.principal.as_deref().unwrap_or_default(),
            elapsed_ms = self.started.elapsed().as_millis() as u64,
            "request dropped before its response: the connection was closed"
        );
    }
}

type Failure = (S3Error, Option<String>);

/// Returns whether a relayed upstream status reports an upstream failure.
/// A 501 rejects a feature of the request, as for a CORS preflight to a
/// store without CORS, so it is no failure of the upstream.
fn is_upstream_failure(status: http::StatusCode) -> bool {
    status.is_server_error() && status != http::StatusCode::NOT_IMPLEMENTED
}

/// Rejects a header value with bytes outside US-ASCII. s3seal signs every
/// header it forwards but `User-Agent`, and S3 and moto fail such a signed
/// value with `SignatureDoesNotMatch`, so the client gets the cause from
/// s3seal instead.
fn check_header_bytes(headers: &http::HeaderMap) -> Result<(), S3Error> {
    let invalid = headers.iter().find(|(name, value)| {
        *name != http::header::USER_AGENT && value.as_bytes().iter().any(|b| !b.is_ascii())
    });
    match invalid {
        Some((name, _)) => Err(S3Error::new(
            ErrorCode::InvalidArgument,
            format!(
                "header {name} has a value with bytes outside US-ASCII; s3seal signs every header \
                 it forwards, and S3 fails signed values outside US-ASCII with \
                 SignatureDoesNotMatch; encode the value, for example as RFC 2047 or with \
                 percent-encoding"
            ),
        )),
        None => Ok(()),
    }
}

async fn serve(
    proxy: &Proxy,
    parts: http::request::Parts,
    body: RequestBody,
    meta: &mut RequestMeta<'_>,
) -> Result<Response<ProxyBody>, Failure> {
    let s3 = classify(&parts, proxy.config.server.base_domain.as_deref()).map_err(|e| (e, None))?;
    meta.operation = Some(s3.operation);
    meta.bucket = s3.bucket.clone();
    let fail = |e: S3Error| (e, Some(s3.resource()));
    if s3.operation == Operation::OptionsObject {
        return ops::preflight(proxy, &s3, &parts).await.map_err(fail);
    }

    let authenticated =
        crate::auth::authenticate(&parts, &proxy.credentials, &proxy.auth, SystemTime::now())
            .map_err(fail)?;
    let principal = authenticated.access_key_id().to_string();
    meta.principal = Some(principal.clone());
    access::authorize(&proxy.policy, &s3, &parts, &principal).map_err(fail)?;
    check_header_bytes(&parts.headers).map_err(fail)?;

    let policy = match &s3.bucket {
        Some(bucket) => proxy.policy.for_bucket(bucket),
        None => BucketPolicy::Passthrough {
            rule_index: usize::MAX,
        },
    };

    let context = Context {
        proxy,
        s3: &s3,
        parts: &parts,
        access: AccessContext {
            request_id: Some(meta.request_id.to_string()),
            principal: Some(principal),
            client_addr: Some(meta.client_addr.to_string()),
            operation: s3.operation.name().to_string(),
            bucket: s3.bucket.clone(),
            object_key: s3.key.clone(),
        },
    };
    match ops::dispatch(&context, &policy, authenticated, body).await {
        Ok(response) => Ok(response),
        Err(error) if unencrypted::may_read_as_stored(&context, &error) => {
            unencrypted::read_as_stored(&context).await.map_err(fail)
        }
        Err(error) => Err(fail(error)),
    }
}

/// Returns whether a request expects `100 Continue` but has an empty body.
///
/// hyper sends `100 Continue` only before reading a body, so such a request
/// gets its final response without it, which HTTP allows. botocore then
/// keeps that response's status line for the next request on the
/// connection that also expects `100 Continue`, and misreads that
/// request's response, so that aws cli and boto3 wait until the server
/// closes the idle connection. Closing the connection after the response
/// avoids that, at the cost of one new connection after each empty upload.
fn expects_continue_without_body(headers: &http::HeaderMap) -> bool {
    let expects = headers
        .get(http::header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let empty = !headers.contains_key(http::header::TRANSFER_ENCODING)
        && headers
            .get(http::header::CONTENT_LENGTH)
            .is_none_or(|value| value.as_bytes() == b"0");
    expects && empty
}

/// Returns whether a request announces a non-empty body.
///
/// An error response may leave such a body unread, and a client that sent
/// `Expect: 100-continue` then never sends it. hyper cannot tell where the
/// next request starts, so the connection closes after the response:
/// botocore clients otherwise read the next response out of step, or
/// find the connection closed under their next request.
pub(crate) fn declares_body(headers: &http::HeaderMap) -> bool {
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|value| value.as_bytes() != b"0")
}

/// Returns a new random request id: 16 uppercase hex digits, like S3's.
fn new_request_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode_upper(bytes)
}
