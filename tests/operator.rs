//! The operator surface: `/metrics`, `/healthz` and `/readyz` over HTTP,
//! and the log policy that no secret reaches a log line at any level.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::{http_get, reqwest_lite, Harness, Options, ACCESS_KEY_ID};
use s3seal::audit::{AuditError, AuditKey, AuditSink, Auditor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn metrics_harness() -> Harness {
    Harness::start_with_options(Options {
        metrics: true,
        ..Options::default()
    })
    .await
}

/// Scrapes `/metrics` and returns the value of the sample `series`, such
/// as `s3seal_requests_total{operation="PutObject",status="200"}`, or 0
/// when it is absent.
async fn sample(h: &Harness, series: &str) -> f64 {
    let text = scrape(h).await;
    sample_in(&text, series)
}

fn sample_in(text: &str, series: &str) -> f64 {
    text.lines()
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(name, _)| *name == series)
        .map(|(_, value)| value.parse().unwrap())
        .unwrap_or(0.0)
}

async fn scrape(h: &Harness) -> String {
    let url = format!("{}/metrics", h.metrics_endpoint.as_ref().unwrap());
    let (status, text) = http_get(&url).await;
    assert_eq!(status, 200, "{text}");
    text
}

#[tokio::test]
async fn metrics_move_after_requests() {
    let h = metrics_harness().await;
    let bucket = h.bucket("metered").await;
    let put_series = r#"s3seal_requests_total{operation="PutObject",status="200"}"#;
    let get_series = r#"s3seal_requests_total{operation="GetObject",status="200"}"#;
    let generate = r#"s3seal_key_operations_total{action="generate",outcome="ok"}"#;
    let unwrap = r#"s3seal_key_operations_total{action="unwrap",outcome="ok"}"#;
    let unwrap_failed = r#"s3seal_key_operations_total{action="unwrap",outcome="error"}"#;
    let latency_count = r#"s3seal_request_duration_seconds_count{operation="PutObject"}"#;

    let before = scrape(&h).await;
    assert_eq!(
        sample_in(
            &before,
            r#"s3seal_key_operations_total{action="load",outcome="ok"}"#
        ),
        1.0
    );
    assert_eq!(sample_in(&before, "s3seal_audit_records_total"), 1.0);
    assert_eq!(sample_in(&before, "s3seal_audit_write_failures_total"), 0.0);

    let body = vec![7u8; 100_000];
    h.client
        .put_object()
        .bucket(&bucket)
        .key("k")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let got = h
        .client
        .get_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().len(),
        body.len()
    );
    let missing = h
        .client
        .get_object()
        .bucket(&bucket)
        .key("none")
        .send()
        .await;
    assert!(missing.is_err());

    let after = scrape(&h).await;
    let delta = |series: &str| sample_in(&after, series) - sample_in(&before, series);
    assert_eq!(delta(put_series), 1.0);
    assert_eq!(delta(get_series), 1.0);
    assert_eq!(
        delta(r#"s3seal_requests_total{operation="GetObject",status="404"}"#),
        1.0
    );
    assert_eq!(delta(generate), 1.0);
    assert_eq!(delta(unwrap), 1.0);
    assert_eq!(delta(unwrap_failed), 0.0);
    assert_eq!(delta(latency_count), 1.0);
    assert_eq!(delta("s3seal_audit_records_total"), 2.0);
    assert!(delta("s3seal_client_received_bytes_total") >= 100_000.0);
    assert!(delta("s3seal_client_sent_bytes_total") >= 100_000.0);
    assert_eq!(sample_in(&after, "s3seal_requests_in_flight"), 0.0);
    assert!(after.contains("# TYPE s3seal_request_duration_seconds histogram"));
    assert!(after
        .contains(r#"s3seal_request_duration_seconds_bucket{operation="PutObject",le="+Inf"} 1"#));
}

#[tokio::test]
async fn health_endpoints_answer() {
    let h = metrics_harness().await;
    let base = h.metrics_endpoint.clone().unwrap();

    let (status, body) = http_get(&format!("{base}/healthz")).await;
    assert_eq!(status, 200);
    assert_eq!(body, "ok\n");

    let (status, body) = http_get(&format!("{base}/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("keyring: ok, 1 keys loaded"), "{body}");
    assert!(body.contains("audit: ok"), "{body}");
    assert!(body.contains("upstream: ok"), "{body}");

    let (status, _) = http_get(&format!("{base}/other")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn readyz_unavailable_when_upstream_down() {
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let h = Harness::start_with_options(Options {
        metrics: true,
        upstream_endpoint: Some(dead_endpoint),
        ..Options::default()
    })
    .await;
    let base = h.metrics_endpoint.clone().unwrap();

    let (status, body) = http_get(&format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("upstream: failed"), "{body}");
    assert!(body.contains("audit: ok"), "{body}");
    let (status, _) = http_get(&format!("{base}/healthz")).await;
    assert_eq!(status, 200);

    let failed = h.client.list_objects_v2().bucket("any").send().await;
    assert!(failed.is_err());
    let text = scrape(&h).await;
    assert!(
        sample_in(
            &text,
            r#"s3seal_upstream_errors_total{kind="request_failed"}"#
        ) >= 1.0,
        "{text}"
    );
    assert!(
        sample_in(
            &text,
            r#"s3seal_requests_total{operation="ListObjectsV2",status="502"}"#
        ) >= 1.0,
        "{text}"
    );
}

#[tokio::test]
async fn readyz_unavailable_on_upstream_5xx() {
    let h = Harness::start_with_options(Options {
        metrics: true,
        upstream_endpoint: Some(common::html_error_server("503 Service Unavailable").await),
        ..Options::default()
    })
    .await;
    let base = h.metrics_endpoint.clone().unwrap();
    let (status, body) = http_get(&format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("upstream: failed, ListBuckets answered 503"),
        "{body}"
    );
}

#[tokio::test]
async fn readyz_ignores_audit_failure_without_fail_closed() {
    let h = Harness::start_with_options(Options {
        metrics: true,
        audit: "fail_closed = false".into(),
        ..Options::default()
    })
    .await;
    let base = h.metrics_endpoint.clone().unwrap();
    std::fs::remove_file(&h.audit_log).unwrap();
    let (status, body) = http_get(&format!("{base}/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("audit: failed, ignored because audit.fail_closed is false"),
        "{body}"
    );
}

#[tokio::test]
async fn readyz_unavailable_without_audit_log() {
    let h = metrics_harness().await;
    let base = h.metrics_endpoint.clone().unwrap();
    let bucket = h.bucket("deleted-log").await;
    std::fs::remove_file(&h.audit_log).unwrap();
    let (status, body) = http_get(&format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("audit: failed"), "{body}");
    assert!(body.contains("no longer exists"), "{body}");

    // A record that then fails does not hide the cause.
    let put = h
        .client
        .put_object()
        .bucket(&bucket)
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert!(put.is_err());
    let (status, body) = http_get(&format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no longer exists"), "{body}");
}

#[tokio::test]
async fn readyz_unavailable_after_audit_log_truncated() {
    let h = metrics_harness().await;
    let base = h.metrics_endpoint.clone().unwrap();
    let bucket = h.bucket("truncated-log").await;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&h.audit_log)
        .unwrap()
        .set_len(0)
        .unwrap();
    let err = h
        .client
        .put_object()
        .bucket(&bucket)
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(503));
    assert_eq!(std::fs::metadata(&h.audit_log).unwrap().len(), 0);
    let (status, body) = http_get(&format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("audit: failed"), "{body}");
}

#[tokio::test]
async fn readyz_probe_leaves_symlink_target() {
    let h = metrics_harness().await;
    let base = h.metrics_endpoint.clone().unwrap();
    let target = h.dir.path().join("victim");
    std::fs::write(&target, "keep").unwrap();
    let mut probe = h.audit_log.clone().into_os_string();
    probe.push(".probe");
    std::os::unix::fs::symlink(&target, &probe).unwrap();

    let (status, body) = http_get(&format!("{base}/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_readyz_all_ready() {
    let h = metrics_harness().await;
    let url = format!("{}/readyz", h.metrics_endpoint.as_ref().unwrap());
    let pollers: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut failures = Vec::new();
                for _ in 0..150 {
                    let (status, body) = http_get(&url).await;
                    if status != 200 {
                        failures.push(body);
                    }
                }
                failures
            })
        })
        .collect();
    for poller in pollers {
        let failures = poller.await.unwrap();
        assert!(
            failures.is_empty(),
            "{} false failures: {:?}",
            failures.len(),
            failures.first()
        );
    }
}

#[tokio::test]
async fn readyz_unavailable_after_audit_log_replaced() {
    let h = metrics_harness().await;
    let base = h.metrics_endpoint.clone().unwrap();
    let bucket = h.bucket("replaced-log").await;
    let moved = h.dir.path().join("audit.log.1");
    std::fs::rename(&h.audit_log, &moved).unwrap();
    std::fs::copy(&moved, &h.audit_log).unwrap();

    let (status, body) = http_get(&format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("audit: failed"), "{body}");
    assert!(body.contains("replaced"), "{body}");
    // The log stays failed, so no record lands in the renamed file.
    let records = std::fs::read(&moved).unwrap();
    let put = h
        .client
        .put_object()
        .bucket(&bucket)
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert!(put.is_err());
    assert_eq!(std::fs::read(&moved).unwrap(), records);
}

/// Takes the immutable attribute off a file when dropped.
struct Immutable(std::path::PathBuf);

impl Immutable {
    /// Makes `path` immutable, or returns `None` when the file system or
    /// the process's privileges do not allow it.
    fn set(path: &std::path::Path) -> Option<Self> {
        let status = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Self(path.into()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test]
async fn readyz_unavailable_while_audit_log_immutable() {
    let h = metrics_harness().await;
    let base = h.metrics_endpoint.clone().unwrap();
    let Some(immutable) = Immutable::set(&h.audit_log) else {
        eprintln!("skipped: chattr +i is not permitted here");
        return;
    };
    let (status, body) = http_get(&format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("audit: failed"), "{body}");

    drop(immutable);
    let (status, body) = http_get(&format!("{base}/readyz")).await;
    assert_eq!(status, 200, "{body}");
}

#[derive(Clone, Default)]
struct SwitchSink {
    fail: Arc<AtomicBool>,
}

impl AuditSink for SwitchSink {
    fn append(&self, _line: &[u8]) -> Result<(), AuditError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(AuditError::Sink("test sink set to fail".into()));
        }
        Ok(())
    }
}

#[tokio::test]
async fn audit_failures_counted_while_ready() {
    let sink = SwitchSink::default();
    let auditor = Auditor::new(
        AuditKey::from_bytes([5; 32]),
        vec![Box::new(sink.clone())],
        None,
    )
    .unwrap();
    let h = Harness::start_with_options(Options {
        metrics: true,
        audit: "fail_closed = false".into(),
        auditor: Some(auditor),
        ..Options::default()
    })
    .await;
    let base = h.metrics_endpoint.clone().unwrap();
    let bucket = h.bucket("failing").await;

    sink.fail.store(true, Ordering::SeqCst);
    h.client
        .put_object()
        .bucket(&bucket)
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    assert_eq!(sample(&h, "s3seal_audit_write_failures_total").await, 1.0);
    // With fail_closed = false the failure is reported, and the instance
    // stays in service.
    let (status, body) = http_get(&format!("{base}/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("audit: failed, ignored"), "{body}");

    sink.fail.store(false, Ordering::SeqCst);
    h.client
        .put_object()
        .bucket(&bucket)
        .key("k2")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let (status, body) = http_get(&format!("{base}/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("audit: ok"), "{body}");
}

/// Reads the second line of a file: the secret of a two-line credentials
/// file.
fn second_line(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .to_string()
}

/// Polls `path` until it exists and parses as JSON.
fn wait_for_ready_file(
    path: &std::path::Path,
    child: &mut std::process::Child,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(value) = serde_json::from_str(&text) {
                return value;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("s3seal exited with {status} before it was ready");
        }
        assert!(Instant::now() < deadline, "s3seal did not start in 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The s3seal binary started as a process, with its standard error in
/// `log_path`.
struct LoggedServer {
    dir: tempfile::TempDir,
    secret: String,
    child: std::process::Child,
    log_path: std::path::PathBuf,
    endpoint: String,
    metrics: String,
}

impl LoggedServer {
    /// Stops the server and returns what it logged.
    fn stop(&mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        std::fs::read_to_string(&self.log_path).unwrap()
    }
}

/// Starts the s3seal binary with a passthrough rule for `plain-*` buckets
/// and an encrypt rule for all others, with `RUST_LOG` set to `rust_log`,
/// or unset so that the configured default filter applies.
fn start_logged_server(rust_log: Option<&str>) -> LoggedServer {
    start_logged_server_with(rust_log, "", "")
}

/// Starts like [`start_logged_server`], with `server` appended to the
/// `[server]` section and `extra` to the configuration.
fn start_logged_server_with(rust_log: Option<&str>, server: &str, extra: &str) -> LoggedServer {
    let dir = tempfile::tempdir().unwrap();
    let secret = common::random_secret();
    common::write_private(&dir.path().join("client-secret"), &secret);
    s3seal::keys::Keyring::default()
        .create_key(
            &dir.path().join("keyring.json"),
            "main",
            &mut rand::rngs::OsRng,
            "2026-01-01T00:00:00Z",
        )
        .unwrap();
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
ready_file = "ready.json"
{server}

[keys]
keyring_file = "keyring.json"

[audit]
file = "audit.log"
key_file = "audit-key"

[metrics]
listen = "127.0.0.1:0"

[[clients]]
access_key_id = "{ACCESS_KEY_ID}"
secret_file = "client-secret"

[[buckets]]
match = "plain-*"
mode = "passthrough"

[[buckets]]
match = "*"
mode = "encrypt"
key = "main"

{extra}
"#
    );
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    spawn_logged_server(dir, secret, rust_log)
}

/// Runs `s3seal serve` on the `config.toml` in `dir`, logging to
/// `stderr.log` there, and waits until it is ready.
fn spawn_logged_server(
    dir: tempfile::TempDir,
    secret: String,
    rust_log: Option<&str>,
) -> LoggedServer {
    let log_path = dir.path().join("stderr.log");
    let _ = std::fs::remove_file(dir.path().join("ready.json"));
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_s3seal"));
    command
        .args(["serve", "--config", "config.toml"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap());
    for (name, _) in std::env::vars() {
        if name.starts_with("S3SEAL_") {
            command.env_remove(name);
        }
    }
    if let Some(filter) = rust_log {
        command.env("RUST_LOG", filter);
    } else {
        command.env_remove("RUST_LOG");
    }
    let mut child = command.spawn().unwrap();
    let ready = wait_for_ready_file(&dir.path().join("ready.json"), &mut child);
    let endpoint = format!("http://{}", ready["listen"].as_str().unwrap());
    let metrics = format!("http://{}", ready["metrics_listen"].as_str().unwrap());
    LoggedServer {
        dir,
        secret,
        child,
        log_path,
        endpoint,
        metrics,
    }
}

/// Builds a request to `endpoint` signed for `ACCESS_KEY_ID` with `secret`.
fn signed_request(
    endpoint: &str,
    method: &str,
    path: &str,
    secret: &str,
    body: &[u8],
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    let url = format!("{endpoint}{path}");
    let headers = reqwest_lite::sign_headers(method, &url, &[], ACCESS_KEY_ID, secret);
    let mut builder = http::Request::builder().method(method).uri(&url);
    for (name, value) in &headers {
        if name != "host" {
            builder = builder.header(name.as_str(), value.as_str());
        }
    }
    builder
        .body(http_body_util::Full::new(bytes::Bytes::from(body.to_vec())))
        .unwrap()
}

#[tokio::test]
async fn trace_logs_contain_no_secrets() {
    let mut server = start_logged_server(Some("trace"));
    let (endpoint, metrics, secret) = (
        server.endpoint.clone(),
        server.metrics.clone(),
        server.secret.clone(),
    );

    let mut authorizations = Vec::new();
    let mut signed = |method: &str, path: &str, body: &[u8]| {
        let request = signed_request(&endpoint, method, path, &secret, body);
        authorizations.push(
            request.headers()["authorization"]
                .to_str()
                .unwrap()
                .to_string(),
        );
        request
    };
    let requests = vec![
        signed("PUT", "/logged", b""),
        signed("PUT", "/logged/object", b"a secret-free body"),
        signed("GET", "/logged/object", b""),
        signed("HEAD", "/logged/object", b""),
        signed("PUT", "/plain-logged", b""),
    ];
    for request in requests {
        let response = reqwest_lite::send(request).await;
        assert!(
            response.status < 300,
            "{}: {}",
            response.status,
            response.text()
        );
    }
    // An SDK client sends aws-chunked bodies with chunk signatures.
    let client = common::s3_client(&endpoint, ACCESS_KEY_ID, &secret);
    client
        .put_object()
        .bucket("logged")
        .key("sdk")
        .body(ByteStream::from(vec![1u8; 70_000]))
        .send()
        .await
        .unwrap();
    // A wrong secret is rejected and logged.
    let wrong = common::s3_client(&endpoint, ACCESS_KEY_ID, &common::random_secret());
    assert!(wrong.list_buckets().send().await.is_err());
    let (status, _) = http_get(&format!("{metrics}/readyz")).await;
    assert_eq!(status, 200);

    let log = server.stop();
    assert!(
        log.contains("TRACE"),
        "the log was not written at trace level"
    );
    // Every SigV4 Authorization value, the upstream's included, contains
    // "Signature=".
    assert!(
        !log.contains("Signature="),
        "a SigV4 Authorization value appears in the trace log"
    );
    // One info line per request, each with its own request id: five raw
    // requests, the SDK's PutObject and the rejected ListBuckets.
    let request_lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(" INFO request{req.id="))
        .collect();
    assert_eq!(request_lines.len(), 7, "{}", request_lines.join("\n"));
    let mut ids: Vec<&str> = request_lines
        .iter()
        .map(|line| {
            line.split("req.id=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 7);
    assert!(log.contains("request served"), "{log}");

    let keyring: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(server.dir.path().join("keyring.json")).unwrap(),
    )
    .unwrap();
    let kek = keyring["keys"]["main"]["versions"][0]["material"]
        .as_str()
        .unwrap()
        .to_string();
    let audit_key = std::fs::read_to_string(server.dir.path().join("audit-key"))
        .unwrap()
        .trim()
        .to_string();
    let upstream_secret = second_line(&server.dir.path().join("data/embedded-credentials"));

    let mut secrets = vec![
        ("client secret", secret.clone()),
        ("upstream secret", upstream_secret),
        ("KEK material", kek),
        ("audit key", audit_key),
    ];
    for authorization in &authorizations {
        secrets.push(("Authorization header", authorization.clone()));
        let signature = authorization.rsplit_once("Signature=").unwrap().1;
        secrets.push(("request signature", signature.to_string()));
    }
    for (what, value) in &secrets {
        assert!(!value.is_empty(), "{what} is empty");
        assert!(
            !log.contains(value.as_str()),
            "the {what} appears in the trace log"
        );
    }
}

#[tokio::test]
async fn info_request_line_has_fields() {
    let mut server = start_logged_server(None);
    let mut ids = Vec::new();
    let wrong_secret = common::random_secret();
    for (method, path, secret, expected) in [
        ("PUT", "/fields", &server.secret, 200),
        ("GET", "/fields/object", &wrong_secret, 403),
        ("GET", "/fields/missing", &server.secret, 404),
    ] {
        let request = signed_request(&server.endpoint, method, path, secret, b"");
        let response = reqwest_lite::send(request).await;
        assert_eq!(response.status, expected, "{}", response.text());
        ids.push(
            response.headers["x-amz-request-id"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    let log = server.stop();

    let line_of = |id: &str| {
        let lines: Vec<&str> = log
            .lines()
            .filter(|line| line.contains(&format!("req.id={id}")))
            .collect();
        assert_eq!(lines.len(), 1, "{log}");
        lines[0]
    };
    let served = line_of(&ids[0]);
    assert!(served.contains(" INFO "), "{served}");
    assert!(served.contains("request served"), "{served}");
    for field in [
        "http.method=PUT",
        "s3.op=CreateBucket",
        "s3.bucket=fields",
        "status=200",
    ] {
        assert!(served.contains(field), "{field} is missing: {served}");
    }
    assert!(
        served.contains(&format!("principal={ACCESS_KEY_ID}")),
        "{served}"
    );
    let rejected = line_of(&ids[1]);
    assert!(rejected.contains(" INFO "), "{rejected}");
    for field in [
        "request rejected",
        "s3.op=GetObject",
        "status=403",
        "code=SignatureDoesNotMatch",
    ] {
        assert!(rejected.contains(field), "{field} is missing: {rejected}");
    }
    let relayed = line_of(&ids[2]);
    assert!(relayed.contains(" INFO "), "{relayed}");
    for field in [
        "request rejected by the upstream",
        "s3.op=GetObject",
        "status=404",
    ] {
        assert!(relayed.contains(field), "{field} is missing: {relayed}");
    }
    // The embedded store sends no request id, and an empty field is left out.
    assert!(!relayed.contains("upstream.req_id="), "{relayed}");
}

/// An upstream's 501 `NotImplemented` rejects a feature of the request,
/// not a sign of an unhealthy upstream, so it is logged as a rejection and
/// not counted as an upstream error. The embedded store returns 501 for a
/// CORS preflight.
#[tokio::test]
async fn upstream_not_implemented_is_rejection() {
    let mut server = start_logged_server(None);
    let create = signed_request(&server.endpoint, "PUT", "/plain-cors", &server.secret, b"");
    assert_eq!(reqwest_lite::send(create).await.status, 200);
    let preflight = http::Request::builder()
        .method("OPTIONS")
        .uri(format!("{}/plain-cors/k", server.endpoint))
        .header("origin", "http://app.test")
        .header("access-control-request-method", "PUT")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = reqwest_lite::send(preflight).await;
    assert_eq!(response.status, 501, "{}", response.text());
    let id = response.headers["x-amz-request-id"]
        .to_str()
        .unwrap()
        .to_string();

    let (status, metrics) = http_get(&format!("{}/metrics", server.metrics)).await;
    assert_eq!(status, 200, "{metrics}");
    let series = r#"s3seal_upstream_errors_total{kind="error_status"}"#;
    assert_eq!(sample_in(&metrics, series), 0.0, "{metrics}");
    let log = server.stop();
    let line = log
        .lines()
        .find(|line| line.contains(&format!("req.id={id}")))
        .unwrap_or_else(|| panic!("no line for {id}: {log}"));
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("status=501"), "{line}");
}

/// A keyring with keys beside neither an audit log nor its key means that
/// the log and key were deleted, or the keyring was restored without them.
#[test]
fn new_audit_chain_beside_keys_warns() {
    const WARNING: &str = "the audit log and its key are missing";
    // The harness writes the keyring without s3seal's key commands, so the
    // first start finds keys and no audit log.
    let mut server = start_logged_server(None);
    let first = server.stop();
    assert!(first.contains(WARNING), "{first}");

    let LoggedServer { dir, secret, .. } = server;
    let mut server = spawn_logged_server(dir, secret, None);
    let second = server.stop();
    assert!(!second.contains(WARNING), "{second}");

    std::fs::remove_file(server.dir.path().join("audit.log")).unwrap();
    std::fs::remove_file(server.dir.path().join("audit-key")).unwrap();
    let LoggedServer { dir, secret, .. } = server;
    let mut server = spawn_logged_server(dir, secret, None);
    let third = server.stop();
    assert!(third.contains(WARNING), "{third}");
}

#[tokio::test]
async fn malformed_http_gets_400_and_log() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut server = start_logged_server(None);
    let address = server.endpoint.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(b"PUT /bucket/key HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    // The server logs the connection's end after it closed the socket.
    let logged = |log: &str| {
        log.lines().any(|line| {
            line.contains(" INFO ")
                && line.contains("rejected a request that is not valid HTTP/1.1")
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !logged(&std::fs::read_to_string(&server.log_path).unwrap_or_default())
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = server.stop();
    assert!(logged(&log), "{log}");
}

#[tokio::test]
async fn shutdown_drops_slow_upload_with_log() {
    use tokio::io::AsyncWriteExt;

    let mut server = start_logged_server_with(None, "shutdown_grace_secs = 1", "");
    let create = signed_request(&server.endpoint, "PUT", "/slow-upload", &server.secret, b"");
    assert_eq!(reqwest_lite::send(create).await.status, 200);

    // A PutObject of 10 MiB whose body arrives at 640 KiB/s, so it is still
    // running when the grace period ends.
    let length = (10 * 1024 * 1024).to_string();
    let url = format!("{}/slow-upload/object", server.endpoint);
    let headers = reqwest_lite::sign_headers(
        "PUT",
        &url,
        &[
            ("content-length", length.as_str()),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        ],
        ACCESS_KEY_ID,
        &server.secret,
    );
    let mut head = "PUT /slow-upload/object HTTP/1.1\r\n".to_string();
    for (name, value) in &headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let address = server.endpoint.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let sender = tokio::spawn(async move {
        let chunk = vec![7u8; 64 * 1024];
        while stream.write_all(&chunk).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    let dropped = terminate_and_find_dropped(&mut server).await;
    sender.abort();
    assert!(dropped.contains("http.method=PUT"), "{dropped}");
}

#[tokio::test]
async fn shutdown_drops_stalled_request_with_log() {
    // An upstream that accepts connections and never responds.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_endpoint = format!("http://{}", silent.local_addr().unwrap());
    let silent_task = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let credentials = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(credentials.path(), "AKIDSILENT\nsilent-secret\n").unwrap();
    let extra = format!(
        "[upstream]\nendpoint = \"{silent_endpoint}\"\ncredentials_file = \"{}\"\n",
        credentials.path().display()
    );
    let mut server = start_logged_server_with(None, "shutdown_grace_secs = 1", &extra);

    let request = signed_request(&server.endpoint, "GET", "/stalled/key", &server.secret, b"");
    let pending = tokio::spawn(reqwest_lite::send(request));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let dropped = terminate_and_find_dropped(&mut server).await;
    pending.abort();
    silent_task.abort();
    assert!(dropped.contains("http.method=GET"), "{dropped}");
    assert!(dropped.contains("s3.op=GetObject"), "{dropped}");
    assert!(dropped.contains("s3.bucket=stalled"), "{dropped}");
    assert!(
        dropped.contains(&format!("principal={ACCESS_KEY_ID}")),
        "{dropped}"
    );
}

/// Sends SIGTERM to a server whose grace period is 1 s, checks that it
/// stops within 4 s, and returns its one log line of a dropped request.
async fn terminate_and_find_dropped(server: &mut LoggedServer) -> String {
    let started = Instant::now();
    let pid = server.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped_after = started.elapsed();
    assert!(
        server.child.try_wait().unwrap().is_some(),
        "s3seal did not stop within 15 s of SIGTERM"
    );
    assert!(
        stopped_after < Duration::from_secs(4),
        "stopped after {stopped_after:?}"
    );

    let log = std::fs::read_to_string(&server.log_path).unwrap();
    let dropped: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("request dropped before its response"))
        .collect();
    assert_eq!(dropped.len(), 1, "{log}");
    dropped[0].to_string()
}

#[test]
fn key_commands_print_audit_log_warnings() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let config = r#"
[keys]
keyring_file = "keyring.json"

[audit]
file = "audit.log"
key_file = "audit-key"

[[clients]]
access_key_id = "AKIDCOMMANDS"
secret_env = "S3SEAL_TEST_UNUSED_SECRET"

[[buckets]]
match = "*"
mode = "encrypt"
key = "main"
"#;
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let create = |name: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_s3seal"))
            .args(["keys", "create", name, "--config", "config.toml"])
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let quiet = create("first");
    assert!(!quiet.contains("WARN"), "{quiet}");

    let log = dir.path().join("audit.log");
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    let open_mode = create("second");
    assert!(
        open_mode.contains("other users may read or change the audit log"),
        "{open_mode}"
    );

    // A log deleted while its key stays starts a new chain, which the
    // command reports as the server does.
    std::fs::remove_file(&log).unwrap();
    let restarted = create("third");
    assert!(
        restarted.contains("the log starts again at record 1"),
        "{restarted}"
    );
}

#[test]
fn shared_tls_key_warned() {
    use std::os::unix::fs::PermissionsExt;

    let certs = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert_file = certs.path().join("cert.pem");
    let key_file = certs.path().join("key.pem");
    std::fs::write(&cert_file, certified.cert.pem()).unwrap();
    std::fs::write(&key_file, certified.key_pair.serialize_pem()).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let tls = format!(
        "tls_listen = \"127.0.0.1:0\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
        cert_file.display(),
        key_file.display()
    );

    let mut server = start_logged_server_with(None, &tls, "");
    let log = server.stop();

    assert!(
        log.contains("server tls_key_file is readable by group or others"),
        "{log}"
    );
}

#[tokio::test]
async fn embedded_store_listens_on_configured_port() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let config = s3seal::config::EmbeddedConfig {
        data_dir: dir.path().join("store"),
        credentials_file: dir.path().join("credentials"),
        port,
    };
    let store = s3seal::embedded::start(&config).await.unwrap();
    assert_eq!(store.endpoint, format!("http://127.0.0.1:{port}"));
    let second_start = s3seal::embedded::start(&s3seal::config::EmbeddedConfig {
        data_dir: dir.path().join("other-store"),
        credentials_file: dir.path().join("other-credentials"),
        port,
    })
    .await;
    let Err(error) = second_start else {
        panic!("a port in use must fail the start");
    };
    assert!(error.to_string().contains("[embedded] port"), "{error}");
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
}
