//! Requests that must fail with the right S3 error and leave nothing
//! behind upstream.

mod common;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use common::{error_code, pattern, reqwest_lite, CapturedLogs, Harness};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn upstream_has(h: &Harness, bucket: &str, key: &str) -> bool {
    h.direct
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .is_ok()
}

#[tokio::test]
async fn wrong_secret_gets_signature_mismatch() {
    let h = Harness::start().await;
    let bad = h.client_with_secret(common::ACCESS_KEY_ID, "not-the-secret");
    let err = bad.list_buckets().send().await.unwrap_err();
    assert_eq!(error_code(&err).as_deref(), Some("SignatureDoesNotMatch"));
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));
}

#[tokio::test]
async fn unknown_access_key_rejected() {
    let h = Harness::start().await;
    let bad = h.client_with_secret("AKIDUNKNOWN", "whatever");
    let err = bad.list_buckets().send().await.unwrap_err();
    assert_eq!(error_code(&err).as_deref(), Some("InvalidAccessKeyId"));
}

#[tokio::test]
async fn anonymous_request_denied_with_xml() {
    let h = Harness::start().await;
    let request = http::Request::get(format!("{}/", h.endpoint))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = reqwest_lite::send(request).await;
    assert_eq!(response.status, 403);
    let text = response.text();
    assert!(text.contains("<Code>AccessDenied</Code>"), "{text}");
    assert!(text.contains("<RequestId>"), "{text}");
    assert!(response.headers.contains_key("x-amz-request-id"));
}

#[tokio::test]
async fn wrong_content_md5_leaves_no_object() {
    let h = Harness::start().await;
    let bucket = h.bucket("digest").await;
    let err = h
        .client
        .put_object()
        .bucket(&bucket)
        .key("bad")
        .content_md5("1B2M2Y8AsgTpgAmY7PhCfg==")
        .body(ByteStream::from_static(b"not empty"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err).as_deref(), Some("BadDigest"));
    assert!(
        !upstream_has(&h, &bucket, "bad").await,
        "a failed upload left an object upstream"
    );
}

#[tokio::test]
async fn failed_upload_keeps_previous_version() {
    let h = Harness::start().await;
    // A passthrough bucket gets the body with its length, so the upstream
    // would store it if the last bytes went out before the hash check.
    for (name, len) in [
        ("keep", 200_000),
        ("plain-keep", 200_000),
        ("plain-small", 5),
    ] {
        let bucket = h.bucket(name).await;
        h.client
            .put_object()
            .bucket(&bucket)
            .key("k")
            .body(ByteStream::from_static(b"first"))
            .send()
            .await
            .unwrap();
        let url = format!("{}/{bucket}/k", h.endpoint);
        let body = pattern(len, 1);
        let wrong_sha = "0000000000000000000000000000000000000000000000000000000000000000";
        let response = reqwest_lite::send_signed(
            "PUT",
            &url,
            &[("x-amz-content-sha256", wrong_sha)],
            body,
            common::ACCESS_KEY_ID,
            &h.secret,
        )
        .await;
        assert_eq!(response.status, 400, "{name}: {}", response.text());
        assert!(
            response.text().contains("XAmzContentSHA256Mismatch"),
            "{name}: {}",
            response.text()
        );
        let out = h
            .client
            .get_object()
            .bucket(&bucket)
            .key("k")
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.body.collect().await.unwrap().into_bytes().as_ref(),
            b"first",
            "{name}"
        );
    }
}

#[tokio::test]
async fn client_disconnect_leaves_no_object() {
    let h = Harness::start().await;
    let bucket = h.bucket("disconnect").await;
    let url = format!("{}/{bucket}/partial", h.endpoint);
    let headers = reqwest_lite::sign_headers(
        "PUT",
        &url,
        &[("content-length", "300000")],
        common::ACCESS_KEY_ID,
        &h.secret,
    );
    let addr = h.endpoint.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("PUT /{bucket}/partial HTTP/1.1\r\n");
    for (name, value) in &headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&pattern(100_000, 1)).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !upstream_has(&h, &bucket, "partial").await,
        "an interrupted upload left an object upstream"
    );
}

#[tokio::test]
async fn seal_metadata_cannot_be_set() {
    let h = Harness::start().await;
    let bucket = h.bucket("reserved").await;
    let err = h
        .client
        .put_object()
        .bucket(&bucket)
        .key("k")
        .metadata("s3seal-format", "1")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err).as_deref(), Some("InvalidArgument"));
}

#[tokio::test]
async fn unsafe_operations_rejected_on_encrypting_bucket() {
    let h = Harness::start().await;
    let bucket = h.bucket("unsafe").await;

    let url = format!("{}/{bucket}", h.endpoint);
    let response = reqwest_lite::send_signed(
        "POST",
        &url,
        &[("content-type", "multipart/form-data; boundary=x")],
        b"--x--".to_vec(),
        common::ACCESS_KEY_ID,
        &h.secret,
    )
    .await;
    assert_eq!(response.status, 501, "{}", response.text());

    let url = format!("{}/{bucket}/m?select&select-type=2", h.endpoint);
    let response = reqwest_lite::send_signed(
        "POST",
        &url,
        &[],
        b"<SelectObjectContentRequest/>".to_vec(),
        common::ACCESS_KEY_ID,
        &h.secret,
    )
    .await;
    assert_eq!(response.status, 501, "{}", response.text());
    assert!(
        response.text().contains("<Code>NotImplemented</Code>"),
        "{}",
        response.text()
    );

    let url = format!("{}/{bucket}/m?attributes", h.endpoint);
    let response = reqwest_lite::send_signed(
        "GET",
        &url,
        &[("x-amz-object-attributes", "ObjectSize")],
        Vec::new(),
        common::ACCESS_KEY_ID,
        &h.secret,
    )
    .await;
    assert_eq!(response.status, 501, "{}", response.text());
}

#[tokio::test]
async fn presigned_get_and_expiry() {
    let h = Harness::start().await;
    let bucket = h.bucket("presign").await;
    let data = pattern(5000, 7);
    h.client
        .put_object()
        .bucket(&bucket)
        .key("p q+r")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();

    let presigned = h
        .client
        .get_object()
        .bucket(&bucket)
        .key("p q+r")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let request = http::Request::get(presigned.uri())
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = reqwest_lite::send(request).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.body, data);

    let short = h
        .client
        .get_object()
        .bucket(&bucket)
        .key("p q+r")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(1)).unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let request = http::Request::get(short.uri())
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = reqwest_lite::send(request).await;
    assert_eq!(response.status, 403);
    assert!(
        response.text().contains("AccessDenied"),
        "{}",
        response.text()
    );
}

#[tokio::test]
async fn head_error_has_no_body() {
    let h = Harness::start().await;
    let url = format!("{}/denied-bucket/k", h.endpoint);
    let response = reqwest_lite::send_signed(
        "HEAD",
        &url,
        &[],
        Vec::new(),
        common::ACCESS_KEY_ID,
        &h.secret,
    )
    .await;
    assert_eq!(response.status, 403);
    assert!(response.body.is_empty());
}

#[tokio::test]
async fn expect_continue_upload_succeeds() {
    let h = Harness::start().await;
    let bucket = h.bucket("expect").await;
    let url = format!("{}/{bucket}/e", h.endpoint);
    let body = pattern(70_000, 3);
    let length = body.len().to_string();
    let headers = reqwest_lite::sign_headers(
        "PUT",
        &url,
        &[("content-length", &length), ("expect", "100-continue")],
        common::ACCESS_KEY_ID,
        &h.secret,
    );
    let addr = h.endpoint.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("PUT /{bucket}/e HTTP/1.1\r\n");
    for (name, value) in &headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).await.unwrap();
    assert!(
        interim.starts_with(b"HTTP/1.1 100 Continue"),
        "{:?}",
        String::from_utf8_lossy(&interim)
    );
    stream.write_all(&body).await.unwrap();
    let mut response = vec![0u8; 12];
    stream.read_exact(&mut response).await.unwrap();
    assert!(
        response.ends_with(b"200"),
        "{:?}",
        String::from_utf8_lossy(&response)
    );
    let out = h
        .client
        .get_object()
        .bucket(&bucket)
        .key("e")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.body.collect().await.unwrap().into_bytes().to_vec(),
        body
    );
}

#[tokio::test]
async fn stalled_upload_times_out() {
    let h = Harness::start_with_options(common::Options {
        server: "body_idle_timeout_secs = 1".into(),
        ..common::Options::default()
    })
    .await;
    let bucket = h.bucket("stalled").await;
    let url = format!("{}/{bucket}/slow", h.endpoint);
    let headers = reqwest_lite::sign_headers(
        "PUT",
        &url,
        &[("content-length", "1000")],
        common::ACCESS_KEY_ID,
        &h.secret,
    );
    let addr = h.endpoint.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("PUT /{bucket}/slow HTTP/1.1\r\n");
    for (name, value) in &headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[0u8; 10]).await.unwrap();
    let mut response = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    assert!(read.is_ok(), "the proxy kept waiting for the stalled body");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("<Code>RequestTimeout</Code>"), "{text}");
    assert!(!upstream_has(&h, &bucket, "slow").await);
}

#[tokio::test]
async fn html_upstream_error_becomes_s3_error() {
    for (status, code) in [
        ("503 Service Unavailable", "ServiceUnavailable"),
        ("500 Internal Server Error", "InternalError"),
    ] {
        let h = Harness::start_with_options(common::Options {
            upstream_endpoint: Some(common::html_error_server(status).await),
            ..common::Options::default()
        })
        .await;
        let url = format!("{}/any-bucket/key", h.endpoint);
        let headers =
            reqwest_lite::sign_headers("GET", &url, &[], common::ACCESS_KEY_ID, &h.secret);
        let mut request = http::Request::get(&url);
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = reqwest_lite::send(
            request
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
        .await;
        assert_eq!(response.status.to_string(), status[..3], "{status}");
        assert_eq!(
            response.headers.get("content-type").unwrap(),
            "application/xml"
        );
        let text = response.text();
        assert!(text.contains(&format!("<Code>{code}</Code>")), "{text}");
        assert!(text.contains("text/html"), "{text}");

        // The SDK gets the error code, not a body it cannot parse.
        let err = h
            .client
            .list_objects_v2()
            .bucket("any-bucket")
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&err).as_deref(), Some(code), "{err:?}");
    }
}

#[tokio::test]
async fn html_success_page_is_not_success() {
    let h = Harness::start_with_options(common::Options {
        upstream_endpoint: Some(common::html_error_server("200 OK").await),
        ..common::Options::default()
    })
    .await;
    for bucket in ["sealed-html", "plain-html"] {
        let err = h
            .client
            .put_object()
            .bucket(bucket)
            .key("k")
            .body(ByteStream::from_static(b"data"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            error_code(&err).as_deref(),
            Some("BadGateway"),
            "{bucket}: {err:?}"
        );
    }
    let err = h
        .client
        .list_objects_v2()
        .bucket("sealed-html")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err).as_deref(), Some("BadGateway"), "{err:?}");
}

/// Sends `head` and `body` on a new connection, shuts down the sending side
/// and returns everything the proxy sends back.
async fn send_then_half_close(h: &Harness, head: String, body: &[u8]) -> String {
    let addr = h.endpoint.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the proxy neither responded nor closed the connection")
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn half_closed_client_gets_response() {
    let h = Harness::start().await;
    let bucket = h.bucket("halfclose").await;
    let body = pattern(300_000, 7);
    let url = format!("{}/{bucket}/key", h.endpoint);
    let length = body.len().to_string();

    let headers = reqwest_lite::sign_headers(
        "PUT",
        &url,
        &[("content-length", length.as_str())],
        common::ACCESS_KEY_ID,
        &h.secret,
    );
    let mut head = format!("PUT /{bucket}/key HTTP/1.1\r\n");
    for (name, value) in &headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let put = send_then_half_close(&h, head, &body).await;
    assert!(put.starts_with("HTTP/1.1 200"), "{put}");
    assert!(h.get(&bucket, "key").await == body, "stored object differs");

    let headers = reqwest_lite::sign_headers("GET", &url, &[], common::ACCESS_KEY_ID, &h.secret);
    let mut head = format!("GET /{bucket}/key HTTP/1.1\r\n");
    for (name, value) in &headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let get = send_then_half_close(&h, head, b"").await;
    assert!(
        get.starts_with("HTTP/1.1 200"),
        "{}",
        &get[..get.len().min(300)]
    );
    assert!(
        get.contains(&format!("content-length: {}", body.len())),
        "{}",
        &get[..300]
    );
}

#[tokio::test]
async fn rejected_upload_closes_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let h = Harness::start().await;
    for name in ["expect-sealed", "plain-expect"] {
        let bucket = h.bucket(name).await;
        // A key with a `..` segment is rejected before the body is read.
        let url = format!("{}/{bucket}/a/../b", h.endpoint);
        let headers = reqwest_lite::sign_headers(
            "PUT",
            &url,
            &[("content-length", "4"), ("expect", "100-continue")],
            common::ACCESS_KEY_ID,
            &h.secret,
        );
        let mut head = format!("PUT /{bucket}/a/../b HTTP/1.1\r\n");
        for (header, value) in &headers {
            head.push_str(&format!("{header}: {value}\r\n"));
        }
        head.push_str("\r\n");

        // The client waits for 100 Continue and sends no body, as botocore
        // does when a final status arrives first.
        let address = h.endpoint.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.read_to_end(&mut response),
        )
        .await;
        let response = String::from_utf8_lossy(&response);
        assert!(
            read.is_ok(),
            "{name}: the connection stayed open: {response}"
        );
        assert!(response.starts_with("HTTP/1.1 400"), "{name}: {response}");
        assert!(response.contains("connection: close"), "{name}: {response}");
        assert!(!response.contains("100 Continue"), "{name}: {response}");
    }
}

#[tokio::test]
async fn silent_tls_client_is_disconnected() {
    let certs = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert_file = certs.path().join("cert.pem");
    let key_file = certs.path().join("key.pem");
    std::fs::write(&cert_file, certified.cert.pem()).unwrap();
    common::write_private(&key_file, &certified.key_pair.serialize_pem());
    let h = Harness::start_with_options(common::Options {
        server: format!(
            "tls_listen = \"127.0.0.1:0\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
            cert_file.display(),
            key_file.display()
        ),
        ..common::Options::default()
    })
    .await;
    let address = h.proxy.as_ref().unwrap().tls_addr.unwrap();

    // The client connects and never sends a ClientHello. The server closes
    // the connection after the 30 s allowed for a request head.
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buffer)).await;
    assert!(read.is_ok(), "the TLS connection was still open after 60 s");
    assert_eq!(read.unwrap().unwrap_or(0), 0, "the server sent data");
}

/// Sends a signed PUT of `body`, already framed as `headers` describe, and
/// returns the raw response.
async fn raw_put(h: &Harness, path: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
    let url = format!("{}{path}", h.endpoint);
    let mut all = headers.to_vec();
    all.push(("connection", "close"));
    let signed = reqwest_lite::sign_headers("PUT", &url, &all, common::ACCESS_KEY_ID, &h.secret);
    let mut head = format!("PUT {path} HTTP/1.1\r\n");
    for (name, value) in &signed {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let addr = h.endpoint.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the proxy neither responded nor closed the connection")
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn chunked_upload_without_length_not_implemented() {
    let h = Harness::start().await;
    for bucket in ["plain-chunked", "sealed-chunked"] {
        h.bucket(bucket).await;
        h.client
            .put_object()
            .bucket(bucket)
            .key("kept")
            .body(ByteStream::from_static(b"original"))
            .send()
            .await
            .unwrap();
        let response = raw_put(
            &h,
            &format!("/{bucket}/kept"),
            &[("transfer-encoding", "chunked")],
            b"5\r\nhello\r\n0\r\n\r\n",
        )
        .await;
        assert!(response.starts_with("HTTP/1.1 501"), "{bucket}: {response}");
        assert!(
            response.contains("<Code>NotImplemented</Code>"),
            "{bucket}: {response}"
        );
        assert!(
            response.contains("<Header>Transfer-Encoding</Header>"),
            "{bucket}: {response}"
        );
        assert_eq!(h.get(bucket, "kept").await, b"original", "{bucket}");
    }
}

#[tokio::test]
async fn aws_chunked_data_beyond_zero_length_rejected() {
    let h = Harness::start().await;
    for bucket in ["plain-zero", "sealed-zero"] {
        h.bucket(bucket).await;
        h.client
            .put_object()
            .bucket(bucket)
            .key("kept")
            .body(ByteStream::from_static(b"original"))
            .send()
            .await
            .unwrap();
        let body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n";
        let length = body.len().to_string();
        let response = raw_put(
            &h,
            &format!("/{bucket}/kept"),
            &[
                ("content-length", &length),
                ("content-encoding", "aws-chunked"),
                ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
                ("x-amz-decoded-content-length", "0"),
                ("x-amz-trailer", "x-amz-checksum-crc32"),
            ],
            body,
        )
        .await;
        assert!(response.starts_with("HTTP/1.1 400"), "{bucket}: {response}");
        assert_eq!(h.get(bucket, "kept").await, b"original", "{bucket}");
    }
}

#[tokio::test]
async fn aws_chunked_empty_body_stores_empty_object() {
    let h = Harness::start().await;
    for bucket in ["plain-empty", "sealed-empty"] {
        h.bucket(bucket).await;
        // The CRC32 of no bytes is 0.
        let body = b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
        let length = body.len().to_string();
        let headers = [
            ("content-length", length.as_str()),
            ("content-encoding", "aws-chunked"),
            ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
            ("x-amz-decoded-content-length", "0"),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
        ];
        let response = raw_put(&h, &format!("/{bucket}/empty"), &headers, body).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{bucket}: {response}");
        assert_eq!(h.get(bucket, "empty").await, b"", "{bucket}");

        let wrong = b"0\r\nx-amz-checksum-crc32:AAAAAQ==\r\n\r\n";
        let response = raw_put(&h, &format!("/{bucket}/wrong"), &headers, wrong).await;
        assert!(response.starts_with("HTTP/1.1 400"), "{bucket}: {response}");
        assert!(!upstream_has(&h, bucket, "wrong").await, "{bucket}");
    }
}

#[tokio::test]
async fn sub_resource_put_stores_nothing() {
    let h = Harness::start().await;
    h.bucket("sealed-sub").await;
    h.bucket("plain-sub").await;
    h.bucket("plain-source").await;
    h.direct
        .put_object()
        .bucket("plain-source")
        .key("obj")
        .body(ByteStream::from_static(b"source data"))
        .send()
        .await
        .unwrap();
    for query in [
        "uploads=",
        "uploadId=1",
        "restore=",
        "torrent=",
        "attributes=",
        "select=",
    ] {
        for bucket in ["sealed-sub", "plain-sub"] {
            let url = format!("{}/{bucket}/leak?{query}", h.endpoint);
            let response = reqwest_lite::send_signed(
                "PUT",
                &url,
                &[],
                b"PLAINTEXT".to_vec(),
                common::ACCESS_KEY_ID,
                &h.secret,
            )
            .await;
            assert_eq!(
                response.status,
                405,
                "{bucket}?{query}: {}",
                response.text()
            );
            assert!(response.text().contains("<Code>MethodNotAllowed</Code>"));
            assert!(!upstream_has(&h, bucket, "leak").await, "{bucket}?{query}");
        }
    }

    // A copy source on a request that is not a copy never reaches the store.
    let url = format!("{}/sealed-sub/copied?restore=", h.endpoint);
    let response = reqwest_lite::send_signed(
        "POST",
        &url,
        &[("x-amz-copy-source", "/plain-source/obj")],
        Vec::new(),
        common::ACCESS_KEY_ID,
        &h.secret,
    )
    .await;
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(response.text().contains("<Code>InvalidRequest</Code>"));
    assert!(!upstream_has(&h, "sealed-sub", "copied").await);
}

/// Returns the first log line that contains both `request_id` and `text`,
/// waiting up to 5 s for it.
async fn wait_for_log_line(logs: &CapturedLogs, request_id: &str, text: &str) -> Option<String> {
    for _ in 0..100 {
        let found = logs
            .text()
            .lines()
            .find(|line| line.contains(request_id) && line.contains(text))
            .map(str::to_owned);
        if found.is_some() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test]
async fn abandoned_download_logged() {
    use aws_sdk_s3::operation::RequestId;

    let logs = CapturedLogs::start();
    let h = Harness::start().await;
    let bucket = h.bucket("abandon").await;
    // Larger than the loopback socket buffers, so the proxy cannot finish
    // writing the body before the client closes the connection.
    let data = pattern(32 << 20, 3);
    h.client
        .put_object()
        .bucket(&bucket)
        .key("big")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();

    let url = format!("{}/{bucket}/big", h.endpoint);
    let headers = reqwest_lite::sign_headers("GET", &url, &[], common::ACCESS_KEY_ID, &h.secret);
    let addr = h.endpoint.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("GET /{bucket}/big HTTP/1.1\r\n");
    for (name, value) in &headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut received = vec![0u8; 64 << 10];
    stream.read_exact(&mut received).await.unwrap();
    drop(stream);
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "{}", &text[..200]);
    let request_id = text
        .lines()
        .find_map(|line| line.strip_prefix("x-amz-request-id: "))
        .expect("response without x-amz-request-id")
        .trim()
        .to_string();
    let line = wait_for_log_line(&logs, &request_id, "response body abandoned").await;
    let line =
        line.unwrap_or_else(|| panic!("no abandoned line for {request_id}:\n{}", logs.text()));
    assert!(line.contains("INFO"), "{line}");
    assert!(line.contains("bytes_expected=33554432"), "{line}");

    // A body read to its end and a HEAD response are not abandoned.
    let whole = h
        .client
        .get_object()
        .bucket(&bucket)
        .key("big")
        .send()
        .await
        .unwrap();
    let whole_id = whole.request_id().unwrap().to_string();
    let body = whole.body.collect().await.unwrap().into_bytes();
    assert!(body[..] == data[..], "GET returned other bytes");
    let head = h
        .client
        .head_object()
        .bucket(&bucket)
        .key("big")
        .send()
        .await
        .unwrap();
    let head_id = head.request_id().unwrap().to_string();
    for id in [&whole_id, &head_id] {
        assert!(
            wait_for_log_line(&logs, id, "request served")
                .await
                .is_some(),
            "no log line for {id}"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = logs.text();
    for id in [&whole_id, &head_id] {
        assert!(
            !text
                .lines()
                .any(|line| line.contains(id.as_str()) && line.contains("abandoned")),
            "{id} logged as abandoned:\n{text}"
        );
    }
}

#[tokio::test]
async fn presigned_put_rejects_unsigned_copy_source() {
    let h = Harness::start().await;
    let bucket = h.bucket("unsigned-headers").await;
    h.client
        .put_object()
        .bucket(&bucket)
        .key("private")
        .body(ByteStream::from_static(b"payroll"))
        .send()
        .await
        .unwrap();
    let presigned = h
        .client
        .put_object()
        .bucket(&bucket)
        .key("upload")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();

    let copy_source = format!("/{bucket}/private");
    let request = http::Request::put(presigned.uri())
        .header("x-amz-copy-source", &copy_source)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = reqwest_lite::send(request).await;
    assert_eq!(response.status, 403, "{}", response.text());
    assert!(
        response.text().contains("<Code>AccessDenied</Code>"),
        "{}",
        response.text()
    );
    assert!(
        response
            .text()
            .contains("<HeadersNotSigned>x-amz-copy-source</HeadersNotSigned>"),
        "{}",
        response.text()
    );
    assert!(!upstream_has(&h, &bucket, "upload").await);

    // The same URL with its body and no added header still uploads.
    let request = http::Request::put(presigned.uri())
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"own data",
        )))
        .unwrap();
    let response = reqwest_lite::send(request).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(h.get(&bucket, "upload").await, b"own data");
}

/// Sends `head` and `body` on a new connection from one task while another
/// reads the response to its end. Returns whether the whole body was
/// written, and the response.
async fn send_while_reading(
    h: &Harness,
    head: String,
    body: Vec<u8>,
) -> (std::io::Result<()>, String) {
    let address = h.endpoint.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        write.write_all(&body).await
    });
    let mut response = Vec::new();
    let read_all =
        tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut response)).await;
    let written = writer.await.unwrap();
    assert!(
        read_all.is_ok(),
        "the proxy neither responded nor closed the connection"
    );
    (written, String::from_utf8_lossy(&response).into_owned())
}

/// Returns the head of a request signed with `secret`, with `headers`.
fn signed_head(
    h: &Harness,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    secret: &str,
) -> String {
    let url = format!("{}{path}", h.endpoint);
    let signed = reqwest_lite::sign_headers(method, &url, headers, common::ACCESS_KEY_ID, secret);
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in &signed {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Returns the head of a signed PutObject of `length` bytes.
fn put_head(
    h: &Harness,
    path: &str,
    length: usize,
    extra: &[(&str, &str)],
    secret: &str,
) -> String {
    let length = length.to_string();
    let mut headers = vec![("content-length", length.as_str())];
    headers.extend_from_slice(extra);
    signed_head(h, "PUT", path, &headers, secret)
}

#[tokio::test]
async fn rejected_upload_response_reaches_sender() {
    // Far more than the socket buffers of both ends hold, so the client is
    // still sending when the error is sent.
    const LENGTH: usize = 32 << 20;

    let h = Harness::start().await;
    let wrong_secret = "W".repeat(40);
    for name in ["linger-sealed", "plain-linger"] {
        let bucket = h.bucket(name).await;
        let cases = [
            (
                format!("/{bucket}/a/../b"),
                h.secret.as_str(),
                "HTTP/1.1 400",
                "InvalidArgument",
            ),
            (
                format!("/{bucket}/key"),
                wrong_secret.as_str(),
                "HTTP/1.1 403",
                "SignatureDoesNotMatch",
            ),
        ];
        for (path, secret, status, code) in cases {
            let head = put_head(&h, &path, LENGTH, &[], secret);
            let (written, response) = send_while_reading(&h, head, vec![b'x'; LENGTH]).await;

            assert!(
                written.is_ok(),
                "{name} {code}: sending the body failed: {written:?}"
            );
            assert!(response.starts_with(status), "{name} {code}: {response}");
            assert!(
                response.contains(&format!("<Code>{code}</Code>")),
                "{name} {code}: {response}"
            );
            assert!(
                response.contains("connection: close"),
                "{name} {code}: {response}"
            );
        }
    }
}

#[tokio::test]
async fn conditional_put_conflict_relays_412() {
    const LENGTH: usize = 32 << 20;

    let h = Harness::start().await;
    for name in ["ifnone-sealed", "plain-ifnone"] {
        let bucket = h.bucket(name).await;
        h.client
            .put_object()
            .bucket(&bucket)
            .key("taken")
            .body(ByteStream::from_static(b"first"))
            .send()
            .await
            .unwrap();

        let path = format!("/{bucket}/taken");
        let head = put_head(&h, &path, LENGTH, &[("if-none-match", "*")], &h.secret);
        let (written, response) = send_while_reading(&h, head, vec![b'y'; LENGTH]).await;

        assert!(
            written.is_ok(),
            "{name}: sending the body failed: {written:?}"
        );
        assert!(response.starts_with("HTTP/1.1 412"), "{name}: {response}");
        assert!(
            response.contains("<Code>PreconditionFailed</Code>"),
            "{name}: {response}"
        );
        assert_eq!(
            h.get(&bucket, "taken").await,
            b"first",
            "{name}: the object changed"
        );
    }
}

#[tokio::test]
async fn unread_body_of_success_response_drained() {
    const LENGTH: usize = 32 << 20;

    let h = Harness::start().await;
    let bucket = h.bucket("drain-sealed").await;
    let length = LENGTH.to_string();
    let head = signed_head(
        &h,
        "DELETE",
        &format!("/{bucket}/missing"),
        &[("content-length", length.as_str())],
        &h.secret,
    );

    let (written, response) = send_while_reading(&h, head, vec![b'z'; LENGTH]).await;

    assert!(written.is_ok(), "sending the body failed: {written:?}");
    assert!(response.starts_with("HTTP/1.1 204"), "{response}");
}

#[tokio::test]
async fn chunked_body_without_length_not_implemented_everywhere() {
    use base64::Engine;
    use md5::Digest;

    let h = Harness::start().await;
    for name in ["te-sealed", "plain-te"] {
        let bucket = h.bucket(name).await;
        let xml = "<Delete><Object><Key>k</Key></Object></Delete>";
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(xml));
        let cases = [
            ("POST", format!("/{bucket}?delete"), Some(md5.as_str()), xml),
            (
                "POST",
                format!("/{bucket}/k?uploadId=none"),
                None,
                "<CompleteMultipartUpload/>",
            ),
            ("PUT", format!("/{bucket}/copy"), None, ""),
        ];
        for (method, path, md5, content) in cases {
            let mut signed = vec![("transfer-encoding", "chunked")];
            if let Some(md5) = md5 {
                signed.push(("content-md5", md5));
            }
            if method == "PUT" {
                signed.push(("x-amz-copy-source", "/te-sealed/k"));
            }
            let head = signed_head(&h, method, &path, &signed, &h.secret);
            let mut body = Vec::new();
            if !content.is_empty() {
                body.extend_from_slice(format!("{:x}\r\n{content}\r\n", content.len()).as_bytes());
            }
            body.extend_from_slice(b"0\r\n\r\n");

            let (_, response) = send_while_reading(&h, head, body).await;

            assert!(
                response.starts_with("HTTP/1.1 501"),
                "{name} {method} {path}: {response}"
            );
            assert!(
                response.contains("<Header>Transfer-Encoding</Header>"),
                "{name} {method} {path}: {response}"
            );
        }
    }
}
