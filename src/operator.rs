//! The operator listener of `[metrics]`: Prometheus metrics at
//! `metrics.path`, liveness at `/healthz` and readiness at `/readyz`.
//!
//! The listener is separate from the client listeners and needs no
//! signature, so bind it to an address that only the monitoring system can
//! reach.

use crate::keys::{action_name, ACTIONS};
use crate::metrics::header;
use crate::proxy::{Proxy, ProxyBody};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Content type of the Prometheus text format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves the operator endpoints on `listener` until `stop` changes.
pub async fn serve(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    tracing::warn!(%error, "operator listener failed to accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let proxy = proxy.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(&proxy, request).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "operator connection ended with an error");
            }
        });
    }
}

async fn respond<B>(proxy: &Proxy, request: Request<B>) -> Response<ProxyBody> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".into());
    }
    let path = request.uri().path();
    if path == proxy.config().metrics.path {
        let mut response = text(StatusCode::OK, render_metrics(proxy));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(METRICS_CONTENT_TYPE),
        );
        return response;
    }
    match path {
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => {
            let (ready, report) = readiness(proxy).await;
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            text(status, report)
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

/// Renders the proxy's metrics and the key service's counters.
pub fn render_metrics(proxy: &Proxy) -> String {
    let mut out = String::with_capacity(8 * 1024);
    proxy.metrics().render(&mut out);

    let stats = proxy.keys().stats();
    header(
        &mut out,
        "s3seal_key_operations_total",
        "counter",
        "Accesses to key-encryption keys, by audit action and outcome.",
    );
    for action in ACTIONS {
        for (outcome, ok) in [("ok", true), ("error", false)] {
            let _ = writeln!(
                out,
                "s3seal_key_operations_total{{action=\"{}\",outcome=\"{outcome}\"}} {}",
                action_name(action),
                stats.operations(action, ok)
            );
        }
    }
    header(
        &mut out,
        "s3seal_audit_records_total",
        "counter",
        "Audit records written.",
    );
    let _ = writeln!(out, "s3seal_audit_records_total {}", stats.audit_records());
    header(
        &mut out,
        "s3seal_audit_write_failures_total",
        "counter",
        "Audit records that could not be written.",
    );
    let _ = writeln!(
        out,
        "s3seal_audit_write_failures_total {}",
        stats.audit_failures()
    );
    header(
        &mut out,
        "s3seal_build_info",
        "gauge",
        "Always 1; the label carries the s3seal version.",
    );
    let _ = writeln!(
        out,
        "s3seal_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    out
}

/// Runs the readiness checks and returns whether all passed, with one line
/// per check.
pub async fn readiness(proxy: &Proxy) -> (bool, String) {
    let mut ready = true;
    let mut report = String::new();

    let keys = proxy.keys().keyring().names().count();
    let _ = writeln!(report, "keyring: ok, {keys} keys loaded");

    // With `fail_closed = false` requests go on without records, so a
    // failing audit log is reported but keeps the instance in service.
    let fail_closed = proxy.config().audit.fail_closed;
    match proxy.keys().check_audit_sink() {
        Ok(()) => report.push_str("audit: ok\n"),
        Err(message) if fail_closed => {
            ready = false;
            let _ = writeln!(report, "audit: failed: {message}");
        }
        Err(message) => {
            let _ = writeln!(
                report,
                "audit: failed, ignored because audit.fail_closed is false: {message}"
            );
        }
    }

    let timeout = Duration::from_millis(proxy.config().metrics.ready_timeout_ms);
    match proxy.probe_upstream(timeout).await {
        // A 5xx means the endpoint responds but does not serve requests, as a
        // load balancer's maintenance page does.
        Ok(status) if status.is_server_error() => {
            ready = false;
            let _ = writeln!(report, "upstream: failed, ListBuckets answered {status}");
        }
        Ok(status) => {
            let _ = writeln!(report, "upstream: ok, ListBuckets answered {status}");
        }
        Err(message) => {
            ready = false;
            let _ = writeln!(report, "upstream: failed: {message}");
        }
    }
    // Probes repeat every few seconds, so only changes are logged.
    if proxy.metrics().set_ready(ready) {
        let summary = report.trim_end().replace('\n', "; ");
        if ready {
            tracing::info!(report = %summary, "readiness check passed");
        } else {
            tracing::warn!(report = %summary, "readiness check failed");
        }
    }
    (ready, report)
}

fn text(status: StatusCode, body: String) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
