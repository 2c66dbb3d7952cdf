//! Upstreams that stop responding: the request fails with 504
//! GatewayTimeout, or its response is aborted, after
//! `upstream.response_timeout_secs`, while a slow but steady upload is not
//! cut off.

mod common;

use bytes::Bytes;
use common::{pattern, reqwest_lite, CapturedLogs, Harness, Options};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `[upstream]` lines of every test here.
const UPSTREAM_TIMEOUTS: &str = "connect_timeout_secs = 1\nresponse_timeout_secs = 1";

/// Upper bound on each client call. A call that takes longer counts as hung.
const HANG_BOUND: Duration = Duration::from_secs(20);

async fn start(endpoint: Option<String>, metrics: bool) -> Harness {
    Harness::start_with_options(Options {
        upstream_endpoint: endpoint,
        upstream: UPSTREAM_TIMEOUTS.into(),
        metrics,
        ..Options::default()
    })
    .await
}

/// Starts an upstream that reads every request, body included, and never
/// responds. The counter contains the connections that s3seal closed.
async fn silent_upstream() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let closed = Arc::new(AtomicUsize::new(0));
    let counter = closed.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 64 * 1024];
                while matches!(stream.read(&mut buffer).await, Ok(n) if n > 0) {}
                counter.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (endpoint, closed)
}

/// Starts an upstream that accepts connections with a small receive
/// buffer and never reads from them.
async fn non_reading_upstream() -> String {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(16).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut open_connections = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open_connections.push(stream);
        }
    });
    endpoint
}

/// Starts an upstream that responds to every request with a head that
/// announces 1000 bytes, sends 10 of them and then stalls. The counter
/// contains the connections that s3seal closed.
async fn stalling_upstream() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let closed = Arc::new(AtomicUsize::new(0));
    let counter = closed.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = vec![0u8; 64 * 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(n) if n > 0 => request.extend_from_slice(&buffer[..n]),
                        _ => return,
                    }
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n\
                            content-length: 1000\r\n\r\n";
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&[b'x'; 10]).await;
                while matches!(stream.read(&mut buffer).await, Ok(n) if n > 0) {}
                counter.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (endpoint, closed)
}

/// A relay to the embedded store that forwards only `budget` more bytes of
/// responses, counted over all connections, and then keeps back the rest.
struct ThrottledRelay {
    endpoint: String,
    target: Arc<OnceLock<String>>,
    budget: Arc<AtomicUsize>,
}

impl ThrottledRelay {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let target = Arc::new(OnceLock::<String>::new());
        let budget = Arc::new(AtomicUsize::new(usize::MAX));
        let (accept_target, accept_budget) = (target.clone(), budget.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Some(address) = accept_target.get() else {
                    continue;
                };
                let store = TcpStream::connect(address.as_str()).await.unwrap();
                tokio::spawn(relay(client, store, accept_budget.clone()));
            }
        });
        Self {
            endpoint,
            target,
            budget,
        }
    }

    /// Sets the store that the relay connects to.
    fn connect_to(&self, h: &Harness) {
        let address = h
            .upstream
            .endpoint
            .trim_start_matches("http://")
            .to_string();
        self.target.set(address).unwrap();
    }

    fn limit_responses(&self, bytes: usize) {
        self.budget.store(bytes, Ordering::SeqCst);
    }
}

async fn relay(client: TcpStream, store: TcpStream, budget: Arc<AtomicUsize>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut store_read, mut store_write) = store.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut store_write).await;
        let _ = store_write.shutdown().await;
    });
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match store_read.read(&mut buffer).await {
            Ok(n) if n > 0 => n,
            _ => return,
        };
        let allowed = n.min(budget.load(Ordering::SeqCst));
        budget.fetch_sub(allowed, Ordering::SeqCst);
        if client_write.write_all(&buffer[..allowed]).await.is_err() {
            return;
        }
        if allowed < n {
            // The rest of the response never arrives, as from a stalled
            // upstream, until the test ends.
            std::future::pending::<()>().await;
        }
    }
}

/// Sends a signed request with `body` and returns the response, failing
/// the test when it takes longer than [`HANG_BOUND`].
async fn signed(h: &Harness, method: &str, path: &str, body: Vec<u8>) -> reqwest_lite::Response {
    let length = body.len().to_string();
    let headers: &[(&str, &str)] = if method == "PUT" {
        &[("content-length", &length)]
    } else {
        &[]
    };
    tokio::time::timeout(HANG_BOUND, h.signed_request(method, path, headers, body))
        .await
        .unwrap_or_else(|_| panic!("{method} {path} got no response"))
}

/// Sends a signed GET and returns the status and the body, or the error
/// that ended the body.
async fn get_with_body_result(h: &Harness, path: &str) -> (u16, Result<Vec<u8>, String>) {
    let url = format!("{}{path}", h.endpoint);
    let headers = reqwest_lite::sign_headers("GET", &url, &[], common::ACCESS_KEY_ID, &h.secret);
    let mut request = http::Request::get(&url);
    for (name, value) in &headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request.body(Full::new(Bytes::new())).unwrap();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let exchange = async {
        let response = client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await;
        (status, body.map(|b| b.to_bytes().to_vec()))
    };
    let (status, body) = tokio::time::timeout(HANG_BOUND, exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {path} hung"));
    (status, body.map_err(|e| e.to_string()))
}

/// Returns the `<Code>` of an S3 error document, or the whole body when it
/// has none.
fn error_code(response: &reqwest_lite::Response) -> String {
    let text = response.text();
    let code = text
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.to_string());
    code.unwrap_or(text)
}

/// Returns the value of `s3seal_upstream_errors_total{kind="request_failed"}`.
async fn request_failed_count(h: &Harness) -> u64 {
    let url = format!("{}/metrics", h.metrics_endpoint.as_ref().unwrap());
    let (_, text) = common::http_get(&url).await;
    text.lines()
        .find_map(|line| {
            line.strip_prefix(r#"s3seal_upstream_errors_total{kind="request_failed"} "#)
        })
        .map_or(0, |value| value.trim().parse().unwrap())
}

/// Waits until `counter` reaches `expected`, at most [`HANG_BOUND`].
async fn wait_for_count(counter: &AtomicUsize, expected: usize) -> bool {
    let deadline = tokio::time::Instant::now() + HANG_BOUND;
    while counter.load(Ordering::SeqCst) < expected {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

#[tokio::test]
async fn silent_upstream_get_times_out() {
    let logs = CapturedLogs::start();
    let (endpoint, closed) = silent_upstream().await;
    let h = start(Some(endpoint), true).await;

    let response = signed(&h, "GET", "/plain-silent/key", Vec::new()).await;
    assert_eq!(response.status, 504, "{}", response.text());
    assert_eq!(error_code(&response), "GatewayTimeout");
    assert!(
        wait_for_count(&closed, 1).await,
        "s3seal kept the upstream connection open"
    );
    assert_eq!(request_failed_count(&h).await, 1);

    let request_id = response.headers["x-amz-request-id"].to_str().unwrap();
    let text = logs.text();
    let line = text
        .lines()
        .find(|line| line.contains(request_id))
        .unwrap_or_else(|| panic!("no log line for {request_id}:\n{text}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("code=GatewayTimeout"), "{line}");
    assert!(line.contains("no response head within 1s"), "{line}");
}

#[tokio::test]
async fn silent_upstream_put_times_out() {
    let (endpoint, closed) = silent_upstream().await;
    let h = start(Some(endpoint), false).await;

    let paths = ["/plain-silent/key", "/sealed-silent/key"];
    for path in paths {
        let response = signed(&h, "PUT", path, pattern(200_000, 1)).await;
        assert_eq!(response.status, 504, "{path}: {}", response.text());
        assert_eq!(error_code(&response), "GatewayTimeout", "{path}");
    }
    assert!(
        wait_for_count(&closed, paths.len()).await,
        "s3seal kept upstream connections open"
    );
}

#[tokio::test]
async fn silent_tls_upstream_fails_to_connect() {
    let (endpoint, closed) = silent_upstream().await;
    let endpoint = endpoint.replace("http://", "https://");
    let h = start(Some(endpoint), false).await;

    let response = signed(&h, "PUT", "/plain-silent/key", pattern(1000, 5)).await;
    assert_eq!(response.status, 502, "{}", response.text());
    assert_eq!(error_code(&response), "BadGateway");
    assert!(
        wait_for_count(&closed, 1).await,
        "s3seal kept the upstream connection open"
    );
}

#[tokio::test]
async fn upstream_that_stops_reading_times_out() {
    let h = start(Some(non_reading_upstream().await), false).await;
    // More than the socket buffers on both sides of the upstream
    // connection take.
    let body = pattern(32 * 1024 * 1024, 2);
    let length = body.len().to_string();
    let url = format!("{}/plain-stuck/key", h.endpoint);
    let headers = reqwest_lite::sign_headers(
        "PUT",
        &url,
        &[("content-length", &length)],
        common::ACCESS_KEY_ID,
        &h.secret,
    );
    let mut head = "PUT /plain-stuck/key HTTP/1.1\r\n".to_string();
    for (name, value) in &headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");

    let address = h.endpoint.trim_start_matches("http://").to_string();
    let stream = TcpStream::connect(address).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    tokio::spawn(async move {
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(&body).await;
    });
    // s3seal closes the connection after the error, possibly with body
    // data unread, so the read may end in a reset after the response.
    let mut response = Vec::new();
    let read_all = async {
        let mut buffer = vec![0u8; 16 * 1024];
        while let Ok(n) = read.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buffer[..n]);
        }
    };
    tokio::time::timeout(HANG_BOUND, read_all)
        .await
        .expect("the proxy neither responded nor closed the connection");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 504"), "{text}");
    assert!(text.contains("<Code>GatewayTimeout</Code>"), "{text}");
}

#[tokio::test]
async fn stalled_response_body_aborts_get() {
    let (endpoint, closed) = stalling_upstream().await;
    let h = start(Some(endpoint), false).await;

    let (status, body) = get_with_body_result(&h, "/plain-stalled/key").await;
    assert_eq!(status, 200);
    assert!(
        body.is_err(),
        "the stalled body ended as complete: {body:?}"
    );
    assert!(
        wait_for_count(&closed, 1).await,
        "s3seal kept the upstream connection open"
    );
}

#[tokio::test]
async fn stalled_object_body_aborts_get() {
    let relay = ThrottledRelay::start().await;
    let h = start(Some(relay.endpoint.clone()), false).await;
    relay.connect_to(&h);
    let bucket = h.bucket("stalled-object").await;
    let data = pattern(300_000, 3);
    h.client
        .put_object()
        .bucket(&bucket)
        .key("key")
        .body(data.clone().into())
        .send()
        .await
        .unwrap();
    assert_eq!(h.get(&bucket, "key").await, data);

    // The head and the first 64 KiB segment arrive, so the status line goes
    // out before the upstream stalls.
    relay.limit_responses(100_000);
    let (status, body) = get_with_body_result(&h, &format!("/{bucket}/key")).await;
    assert_eq!(status, 200);
    assert!(body.is_err(), "the stalled body ended as complete");

    // The upstream stalls inside the first segment, which s3seal decrypts
    // before it sends the status line.
    relay.limit_responses(4096);
    let response = signed(&h, "GET", &format!("/{bucket}/key"), Vec::new()).await;
    assert_eq!(response.status, 504, "{}", response.text());
    assert_eq!(error_code(&response), "GatewayTimeout");
    assert!(
        response
            .text()
            .contains("failed to read the upstream response body"),
        "{}",
        response.text()
    );
}

#[tokio::test]
async fn stalled_listing_times_out() {
    let relay = ThrottledRelay::start().await;
    let h = start(Some(relay.endpoint.clone()), false).await;
    relay.connect_to(&h);
    let bucket = h.bucket("stalled-listing").await;
    // A listing of more than 4096 bytes.
    for i in 0..20 {
        h.client
            .put_object()
            .bucket(&bucket)
            .key(format!(
                "a-long-key-name-that-makes-the-listing-large-{i:04}"
            ))
            .body(b"data".to_vec().into())
            .send()
            .await
            .unwrap();
    }

    relay.limit_responses(2048);
    let response = signed(&h, "GET", &format!("/{bucket}?list-type=2"), Vec::new()).await;
    assert_eq!(response.status, 504, "{}", response.text());
    assert_eq!(error_code(&response), "GatewayTimeout");
    assert!(
        response
            .text()
            .contains("the upstream failed while sending the listing"),
        "{}",
        response.text()
    );
}

#[tokio::test]
async fn slow_steady_upload_succeeds() {
    const PIECES: usize = 7;
    const PIECE_LEN: usize = 64 * 1024;
    // Each pause is shorter than the timeout, and all of them together are
    // longer.
    const PAUSE: Duration = Duration::from_millis(500);

    let h = start(None, false).await;
    for bucket in ["plain-slow", "sealed-slow"] {
        h.bucket(bucket).await;
        let data = pattern(PIECES * PIECE_LEN, 4);
        let url = format!("{}/{bucket}/key", h.endpoint);
        let length = data.len().to_string();
        let headers = reqwest_lite::sign_headers(
            "PUT",
            &url,
            &[("content-length", &length)],
            common::ACCESS_KEY_ID,
            &h.secret,
        );
        let mut request = http::Request::put(&url);
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let pieces: Vec<Bytes> = data.chunks(PIECE_LEN).map(Bytes::copy_from_slice).collect();
        let stream = futures_util::stream::unfold(0, move |i| {
            let piece = pieces.get(i).cloned();
            async move {
                if i > 0 {
                    tokio::time::sleep(PAUSE).await;
                }
                piece.map(|piece| (Ok::<_, std::convert::Infallible>(Frame::data(piece)), i + 1))
            }
        });
        let request = request.body(StreamBody::new(stream).boxed()).unwrap();
        let client = Client::builder(TokioExecutor::new()).build_http();
        let started = std::time::Instant::now();
        let response = tokio::time::timeout(HANG_BOUND, client.request(request))
            .await
            .expect("the upload hung")
            .unwrap();
        let status = response.status().as_u16();
        let text = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(status, 200, "{bucket}: {}", String::from_utf8_lossy(&text));
        assert!(
            started.elapsed() > Duration::from_secs(1),
            "the upload was not slower than the timeout"
        );
        assert_eq!(h.get(bucket, "key").await, data, "{bucket}");
    }
}
