//! Bucket rules through the proxy: per-permission client lists on
//! passthrough and encrypting buckets, deny rules, copies that need read
//! on the source and write on the target, and `allow_unencrypted_reads`.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::reqwest_lite::{self, Response};
use common::{Harness, Options, ACCESS_KEY_ID};

const READER: &str = "READER";
const WRITER: &str = "WRITER";
const LISTER: &str = "LISTER";
const DELETER: &str = "DELETER";
const COPIER: &str = "COPIER";
const OUTSIDER: &str = "OUTSIDER";
const PRINCIPALS: [&str; 6] = [READER, WRITER, LISTER, DELETER, COPIER, OUTSIDER];

const RULES: &str = r#"
[[buckets]]
match = "plain-*"
mode = "passthrough"
read = ["READER", "COPIER"]
write = ["WRITER"]
list = ["LISTER"]
delete = ["DELETER"]

[[buckets]]
match = "denied-*"
mode = "deny"

[[buckets]]
match = "legacy-*"
mode = "encrypt"
key = "test"
allow_unencrypted_reads = true

[[buckets]]
match = "sealed-*"
mode = "encrypt"
key = "test"
read = ["READER"]
write = ["WRITER", "COPIER"]
list = ["LISTER"]
delete = ["DELETER"]

[[buckets]]
match = "*"
mode = "encrypt"
key = "test"
"#;

/// Returns whether `principal` is in the `permission` list of the rule for
/// `bucket`: rule 0 (`plain-*`) or rule 3 (`sealed-*`) of [`RULES`].
fn granted(bucket: &str, permission: &str, principal: &str) -> bool {
    let plain = bucket.starts_with("plain-");
    let list: &[&str] = match (plain, permission) {
        (true, "read") => &[READER, COPIER],
        (false, "read") => &[READER],
        (true, "write") => &[WRITER],
        (false, "write") => &[WRITER, COPIER],
        (_, "list") => &[LISTER],
        (_, "delete") => &[DELETER],
        _ => unreachable!("unknown permission {permission}"),
    };
    list.contains(&principal)
}

fn rule_of(bucket: &str) -> (usize, &'static str) {
    if bucket.starts_with("plain-") {
        (0, "plain-*")
    } else {
        (3, "sealed-*")
    }
}

async fn start() -> Harness {
    Harness::start_with_options(Options {
        bucket_rules: Some(RULES.into()),
        extra_clients: PRINCIPALS.iter().map(|p| p.to_string()).collect(),
        ..Options::default()
    })
    .await
}

fn secret_of<'a>(h: &'a Harness, principal: &str) -> &'a str {
    if principal == ACCESS_KEY_ID {
        &h.secret
    } else {
        &h.client_secrets[principal]
    }
}

/// Sends a request signed by `principal`.
async fn send(
    h: &Harness,
    principal: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let url = format!("{}{}", h.endpoint, path);
    reqwest_lite::send_signed(
        method,
        &url,
        headers,
        body.to_vec(),
        principal,
        secret_of(h, principal),
    )
    .await
}

/// Creates `bucket` and the object `seed` in it as WRITER, through the
/// proxy, and the objects that DELETE requests remove.
async fn seed_bucket(h: &Harness, bucket: &str) {
    let created = send(h, WRITER, "PUT", &format!("/{bucket}"), &[], b"").await;
    assert_eq!(created.status, 200, "{}", created.text());
    for key in ["seed"].into_iter().chain(PRINCIPALS.iter().copied()) {
        let put = send(
            h,
            WRITER,
            "PUT",
            &format!("/{bucket}/{key}"),
            &[],
            b"seed data",
        )
        .await;
        assert_eq!(put.status, 200, "{}", put.text());
    }
}

/// One request of an operation class: method, path, success status.
fn request_for(bucket: &str, permission: &str, principal: &str) -> (&'static str, String, u16) {
    match permission {
        "read" => ("GET", format!("/{bucket}/seed"), 200),
        "write" => ("PUT", format!("/{bucket}/new-{principal}"), 200),
        "list" => ("GET", format!("/{bucket}?list-type=2"), 200),
        "delete" => ("DELETE", format!("/{bucket}/{principal}"), 204),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn permissions_table() {
    let h = start().await;
    for bucket in ["plain-perm", "sealed-perm"] {
        seed_bucket(&h, bucket).await;
    }

    let mut checked = 0;
    for bucket in ["plain-perm", "sealed-perm"] {
        let (index, pattern) = rule_of(bucket);
        for permission in ["read", "write", "list", "delete"] {
            for principal in PRINCIPALS {
                let (method, path, ok_status) = request_for(bucket, permission, principal);
                let response = send(&h, principal, method, &path, &[], b"body").await;
                let case = format!("{principal} {method} {path}: {}", response.text());
                if granted(bucket, permission, principal) {
                    assert_eq!(response.status, ok_status, "{case}");
                } else {
                    assert_eq!(response.status, 403, "{case}");
                    assert!(
                        response.text().contains("<Code>AccessDenied</Code>"),
                        "{case}"
                    );
                    let message = format!(
                        "{principal} is not granted {permission} on bucket &quot;{bucket}&quot;"
                    );
                    assert!(response.text().contains(&message), "{case}");
                    assert!(!response.text().contains(pattern), "{case}");
                    assert!(
                        !response.text().contains(&format!("rule {index}")),
                        "{case}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * 4 * PRINCIPALS.len());
}

#[tokio::test]
async fn head_needs_read() {
    let h = start().await;
    seed_bucket(&h, "sealed-head").await;
    for principal in PRINCIPALS {
        let response = send(&h, principal, "HEAD", "/sealed-head/seed", &[], b"").await;
        let expected = if granted("sealed-head", "read", principal) {
            200
        } else {
            403
        };
        assert_eq!(response.status, expected, "{principal}");
    }
}

#[tokio::test]
async fn bucket_create_and_delete_permissions() {
    let h = start().await;
    let denied = send(&h, READER, "PUT", "/sealed-new", &[], b"").await;
    assert_eq!(denied.status, 403, "{}", denied.text());
    assert!(
        denied.text().contains("is not granted write"),
        "{}",
        denied.text()
    );

    let created = send(&h, WRITER, "PUT", "/sealed-new", &[], b"").await;
    assert_eq!(created.status, 200, "{}", created.text());

    let denied = send(&h, WRITER, "DELETE", "/sealed-new", &[], b"").await;
    assert_eq!(denied.status, 403, "{}", denied.text());
    assert!(
        denied.text().contains("is not granted delete"),
        "{}",
        denied.text()
    );

    let deleted = send(&h, DELETER, "DELETE", "/sealed-new", &[], b"").await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
}

#[tokio::test]
async fn copy_needs_source_read_and_target_write() {
    let h = start().await;
    seed_bucket(&h, "plain-src").await;
    seed_bucket(&h, "sealed-dst").await;
    let source = [("x-amz-copy-source", "/plain-src/seed")];

    // COPIER reads plain-* and writes sealed-*.
    let copied = send(&h, COPIER, "PUT", "/sealed-dst/copy", &source, b"").await;
    assert_eq!(copied.status, 200, "{}", copied.text());
    let read = send(&h, READER, "GET", "/sealed-dst/copy", &[], b"").await;
    assert_eq!(read.body, b"seed data");

    // WRITER writes sealed-* but may not read plain-*.
    let denied = send(&h, WRITER, "PUT", "/sealed-dst/copy2", &source, b"").await;
    assert_eq!(denied.status, 403, "{}", denied.text());
    assert!(
        denied
            .text()
            .contains("copy source: WRITER is not granted read on bucket &quot;plain-src&quot;"),
        "{}",
        denied.text()
    );

    // READER reads plain-* but may not write sealed-*.
    let denied = send(&h, READER, "PUT", "/sealed-dst/copy3", &source, b"").await;
    assert_eq!(denied.status, 403, "{}", denied.text());
    assert!(
        denied
            .text()
            .contains("is not granted write on bucket &quot;sealed-dst&quot;"),
        "{}",
        denied.text()
    );
}

/// Sends an unsigned OPTIONS request for `path` with `headers`.
async fn options(h: &Harness, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = http::Request::builder()
        .method("OPTIONS")
        .uri(format!("{}{path}", h.endpoint));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    reqwest_lite::send(request).await
}

#[tokio::test]
async fn preflight_of_denied_bucket_denied() {
    let h = start().await;
    let preflight = [
        ("origin", "http://app.test"),
        ("access-control-request-method", "PUT"),
    ];
    let response = options(&h, "/denied-one/k", &preflight).await;
    assert_eq!(response.status, 403, "{}", response.text());
    assert!(
        response.text().contains("<Code>AccessDenied</Code>"),
        "{}",
        response.text()
    );
}

#[tokio::test]
async fn options_without_origin_rejected() {
    let h = start().await;
    for headers in [
        &[("access-control-request-method", "PUT")][..],
        &[("origin", "http://app.test")][..],
    ] {
        let response = options(&h, "/plain-cors/k", headers).await;
        assert_eq!(response.status, 400, "{headers:?}: {}", response.text());
        assert!(
            response.text().contains("<Code>InvalidRequest</Code>"),
            "{}",
            response.text()
        );
    }
}

#[tokio::test]
async fn deny_rule_denies_every_operation() {
    let h = start().await;
    h.direct
        .create_bucket()
        .bucket("denied-one")
        .send()
        .await
        .unwrap();
    let requests = [
        ("GET", "/denied-one/k"),
        ("HEAD", "/denied-one/k"),
        ("PUT", "/denied-one/k"),
        ("GET", "/denied-one?list-type=2"),
        ("DELETE", "/denied-one/k"),
        ("PUT", "/denied-two"),
    ];
    for (method, path) in requests {
        let response = send(&h, ACCESS_KEY_ID, method, path, &[], b"x").await;
        assert_eq!(response.status, 403, "{method} {path}");
        if method != "HEAD" {
            assert!(
                response.text().contains("is denied to every client"),
                "{method} {path}: {}",
                response.text()
            );
        }
    }

    // A copy out of a denied bucket is denied by the source check.
    let copy = send(
        &h,
        ACCESS_KEY_ID,
        "PUT",
        "/other/k",
        &[("x-amz-copy-source", "/denied-one/k")],
        b"",
    )
    .await;
    assert_eq!(copy.status, 403);
    assert!(
        copy.text()
            .contains("copy source: bucket &quot;denied-one&quot; is denied to every client"),
        "{}",
        copy.text()
    );
}

/// Bucket rules match bucket names, so a copy source named in another form
/// (upper case, an access point ARN) would escape the rule of the bucket
/// behind it. Such sources are rejected before anything goes upstream.
#[tokio::test]
async fn copy_source_needs_valid_bucket_name() {
    let h = start().await;
    for source in [
        "/DENIED-ONE/k",
        "/arn%3Aaws%3As3%3Aus-east-1%3A123456789012%3Aaccesspoint/denied-ap/object/k",
        "/de..nied/k",
        "/open-ap-1234567890abcdef-s3alias/k",
    ] {
        let headers = [("x-amz-copy-source", source)];
        let copy = send(&h, ACCESS_KEY_ID, "PUT", "/other/k", &headers, b"").await;
        assert_eq!(copy.status, 400, "{source}: {}", copy.text());
        assert!(
            copy.text().contains("<Code>InvalidBucketName</Code>"),
            "{source}: {}",
            copy.text()
        );
    }
}

#[tokio::test]
async fn absent_lists_allow_every_client() {
    let h = start().await;
    for principal in [ACCESS_KEY_ID, OUTSIDER] {
        let bucket = format!("open-{}", principal.to_ascii_lowercase());
        let created = send(&h, principal, "PUT", &format!("/{bucket}"), &[], b"").await;
        assert_eq!(created.status, 200, "{}", created.text());
        let put = send(&h, principal, "PUT", &format!("/{bucket}/k"), &[], b"data").await;
        assert_eq!(put.status, 200);
        let get = send(&h, principal, "GET", &format!("/{bucket}/k"), &[], b"").await;
        assert_eq!(get.body, b"data");
    }
}

/// Stores `body` in the upstream directly, without an envelope.
async fn put_unencrypted(h: &Harness, bucket: &str, key: &str, body: &'static [u8]) {
    h.direct
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(body))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn unencrypted_reads_when_allowed() {
    let h = start().await;
    let legacy = h.bucket("legacy-data").await;
    let body: &[u8] = b"written before s3seal was deployed";
    put_unencrypted(&h, &legacy, "old", b"written before s3seal was deployed").await;

    let got = h
        .client
        .get_object()
        .bucket(&legacy)
        .key("old")
        .send()
        .await
        .unwrap();
    let etag = got.e_tag().unwrap().to_string();
    assert!(etag.ends_with("-0\""), "{etag}");
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        body
    );

    let head = h
        .client
        .head_object()
        .bucket(&legacy)
        .key("old")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(body.len() as i64));
    assert_eq!(head.e_tag(), Some(etag.as_str()));

    let ranged = h
        .client
        .get_object()
        .bucket(&legacy)
        .key("old")
        .range("bytes=8-13")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ranged.body.collect().await.unwrap().into_bytes().as_ref(),
        &body[8..14]
    );

    // The client's ETag matches in conditional requests.
    let not_modified = h
        .client
        .get_object()
        .bucket(&legacy)
        .key("old")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        not_modified.raw_response().map(|r| r.status().as_u16()),
        Some(304)
    );

    // Encrypted objects in the same bucket are still decrypted.
    h.client
        .put_object()
        .bucket(&legacy)
        .key("new")
        .body(ByteStream::from_static(b"sealed"))
        .send()
        .await
        .unwrap();
    let (stored, _) = h.stored(&legacy, "new").await;
    assert_ne!(stored, b"sealed");
    let new = h
        .client
        .get_object()
        .bucket(&legacy)
        .key("new")
        .send()
        .await
        .unwrap();
    assert_eq!(
        new.body.collect().await.unwrap().into_bytes().as_ref(),
        b"sealed"
    );
}

#[tokio::test]
async fn unencrypted_reads_check_conditions() {
    let h = start().await;
    h.bucket("legacy-ranges").await;
    let path = "/legacy-ranges/old";
    put_unencrypted(&h, "legacy-ranges", "old", b"first unencrypted version").await;
    let first = send(&h, ACCESS_KEY_ID, "HEAD", path, &[], b"").await;
    let old_etag = first.headers["etag"].to_str().unwrap().to_string();
    let new: &[u8] = b"second unencrypted version, longer";
    put_unencrypted(&h, "legacy-ranges", "old", new).await;
    let second = send(&h, ACCESS_KEY_ID, "HEAD", path, &[], b"").await;
    let etag = second.headers["etag"].to_str().unwrap().to_string();
    assert!(etag.ends_with("-0\""), "{etag}");
    assert_ne!(old_etag, etag);

    let stale = [("range", "bytes=5-"), ("if-range", old_etag.as_str())];
    let got = send(&h, ACCESS_KEY_ID, "GET", path, &stale, b"").await;
    assert_eq!(got.status, 200, "stale If-Range");
    assert_eq!(got.body, new, "stale If-Range body");

    let current = [("range", "bytes=5-"), ("if-range", etag.as_str())];
    let got = send(&h, ACCESS_KEY_ID, "GET", path, &current, b"").await;
    assert_eq!(got.status, 206, "current If-Range");
    assert_eq!(got.body, &new[5..], "current If-Range body");

    let not_modified = [("range", "bytes=99999-"), ("if-none-match", etag.as_str())];
    for method in ["GET", "HEAD"] {
        let got = send(&h, ACCESS_KEY_ID, method, path, &not_modified, b"").await;
        assert_eq!(got.status, 304, "{method} with If-None-Match");
    }
}

#[tokio::test]
async fn unencrypted_reads_refused_by_default() {
    let h = start().await;
    let bucket = h.bucket("strict-data").await;
    put_unencrypted(&h, &bucket, "old", b"plain").await;
    let response = send(&h, ACCESS_KEY_ID, "GET", "/strict-data/old", &[], b"").await;
    assert_eq!(response.status, 403);
    assert!(
        response
            .text()
            .contains("treated as not encrypted; reading it is refused"),
        "{}",
        response.text()
    );
    let head = send(&h, ACCESS_KEY_ID, "HEAD", "/strict-data/old", &[], b"").await;
    assert_eq!(head.status, 403);
}

#[tokio::test]
async fn unknown_principal_in_rule_rejected() {
    let text = r#"
[[clients]]
access_key_id = "KNOWN1"
secret_env = "UNUSED_SECRET"

[[buckets]]
match = "*"
mode = "passthrough"
read = ["KNOWN1", "TYPO1"]
"#;
    let error = s3seal::config::Config::from_toml(text)
        .unwrap_err()
        .to_string();
    assert!(error.contains("buckets[0].read[1]"), "{error}");
    assert!(error.contains("\"TYPO1\""), "{error}");
}

/// Runs `s3seal config check` on `text` with extra arguments.
fn config_check(text: &str, extra: &[&str]) -> std::process::Output {
    config_check_with_secret(text, extra, "a-secret-for-config-check")
}

/// Runs `s3seal config check` on `text`, with `secret` as the value of
/// `S3SEAL_CHECK_CLIENT_SECRET`.
fn config_check_with_secret(text: &str, extra: &[&str], secret: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_s3seal"));
    command
        .args(["config", "check", "--config", path.to_str().unwrap()])
        .args(extra)
        .current_dir(dir.path());
    for (name, _) in std::env::vars() {
        if name.starts_with("S3SEAL_") {
            command.env_remove(name);
        }
    }
    command.env("S3SEAL_CHECK_CLIENT_SECRET", secret);
    command.output().unwrap()
}

const CHECKED_CONFIG: &str = r#"
[keys]
keyring_file = "missing-keyring.json"
create_missing = true

[[clients]]
access_key_id = "READER"
secret_env = "S3SEAL_CHECK_CLIENT_SECRET"

[[clients]]
access_key_id = "WRITER"
secret_env = "S3SEAL_CHECK_CLIENT_SECRET"

[[buckets]]
match = "logs-*"
mode = "passthrough"
write = ["WRITER"]

[[buckets]]
match = "old-*"
mode = "deny"

[[buckets]]
match = "*"
mode = "encrypt"
key = "main"
read = ["READER", "WRITER"]
allow_unencrypted_reads = true
"#;

#[test]
fn config_check_needs_named_keys() {
    let text = CHECKED_CONFIG.replace("create_missing = true", "create_missing = false");
    let output = config_check(&text, &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing-keyring.json"), "{stderr}");
}

#[test]
fn config_check_rejects_short_secret() {
    let output = config_check_with_secret(CHECKED_CONFIG, &[], "fifteen-chars-x");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("15 characters long"), "{stderr}");
    assert!(stderr.contains("at least 16"), "{stderr}");
    assert!(!stderr.contains("  "), "{stderr}");
    // Whitespace around the secret does not count.
    let output = config_check_with_secret(CHECKED_CONFIG, &[], "fifteen-chars-x\n");
    assert!(!output.status.success());

    let output = config_check_with_secret(CHECKED_CONFIG, &[], "sixteen-chars-xy");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
}

#[test]
fn config_check_prints_effective_rules() {
    let output = config_check(CHECKED_CONFIG, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected = [
        "  [0] match = \"logs-*\": passthrough",
        "      read   = [\"*\"]",
        "      write  = [\"WRITER\"]",
        "  [1] match = \"old-*\": deny",
        "  [2] match = \"*\": encrypt with key \"main\"",
        "      read   = [\"READER\", \"WRITER\"]",
        "      allow_unencrypted_reads = true",
    ];
    for line in expected {
        assert!(
            stdout.lines().any(|l| l == line),
            "{line:?} missing in\n{stdout}"
        );
    }
}

#[test]
fn config_check_names_rule_for_bucket() {
    let output = config_check(CHECKED_CONFIG, &["--bucket", "logs-app"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        stdout.contains("bucket \"logs-app\" matches rule 0:"),
        "{stdout}"
    );
    assert!(!stdout.contains("[2]"), "{stdout}");

    let unmatched = CHECKED_CONFIG.replace("match = \"*\"", "match = \"data-*\"");
    let output = config_check(&unmatched, &["--bucket", "other"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("matches no rule and is denied"), "{stdout}");

    // A name that no client could use is reported as such.
    let output = config_check(CHECKED_CONFIG, &["--bucket", "Bad_Bucket.."]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a valid bucket name"), "{stderr}");
}

#[test]
fn config_check_rejects_invalid_config() {
    let invalid = CHECKED_CONFIG.replace("write = [\"WRITER\"]", "write = [\"NOBODY\"]");
    let output = config_check(&invalid, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("buckets[0].write[0]"), "{stderr}");
}

#[test]
fn config_check_reads_secrets_and_keys() {
    let unset = CHECKED_CONFIG.replace("S3SEAL_CHECK_CLIENT_SECRET", "S3SEAL_CHECK_UNSET_SECRET");
    let output = config_check(&unset, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("S3SEAL_CHECK_UNSET_SECRET is not set"),
        "{stderr}"
    );

    let missing_file = CHECKED_CONFIG.replacen(
        "secret_env = \"S3SEAL_CHECK_CLIENT_SECRET\"",
        "secret_file = \"no-such-secret\"",
        1,
    );
    let output = config_check(&missing_file, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-such-secret"), "{stderr}");

    let bad_tls = CHECKED_CONFIG.replacen(
        "[keys]",
        "[server]\ntls_listen = \"127.0.0.1:0\"\ntls_cert_file = \"no-cert.pem\"\ntls_key_file = \"no-key.pem\"\n\n[keys]",
        1,
    );
    let output = config_check(&bad_tls, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-cert.pem"), "{stderr}");
}

#[tokio::test]
async fn unencrypted_copy_source_when_allowed() {
    let h = start().await;
    let legacy = h.bucket("legacy-copy").await;
    let body: &[u8] = b"plaintext written before s3seal";
    put_unencrypted(&h, &legacy, "old", body).await;

    h.client
        .copy_object()
        .bucket(&legacy)
        .key("new")
        .copy_source(format!("{legacy}/old"))
        .send()
        .await
        .unwrap();
    let got = h
        .client
        .get_object()
        .bucket(&legacy)
        .key("new")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        body
    );
    let (stored, metadata) = h.stored(&legacy, "new").await;
    assert_ne!(stored, body, "the copy is stored in plaintext");
    assert!(metadata.contains_key("s3seal-wrapped-key"), "{metadata:?}");
}

#[tokio::test]
async fn unencrypted_copy_sources_checked_against_client_etag() {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let h = Harness::start_with_options(Options {
        bucket_rules: Some(
            r#"
[[buckets]]
match = "plain-*"
mode = "passthrough"

[[buckets]]
match = "legacy-*"
mode = "encrypt"
key = "test"
allow_unencrypted_reads = true
"#
            .into(),
        ),
        ..Options::default()
    })
    .await;
    let legacy = h.bucket("legacy-conditions").await;
    let plain = h.bucket("plain-conditions").await;
    let body: &[u8] = b"plaintext written before s3seal";
    put_unencrypted(&h, &legacy, "old", body).await;
    let head = h
        .client
        .head_object()
        .bucket(&legacy)
        .key("old")
        .send()
        .await
        .unwrap();
    let etag = head.e_tag().unwrap().to_string();

    // CopyObject accepts the ETag that HEAD shows.
    h.client
        .copy_object()
        .bucket(&plain)
        .key("copied")
        .copy_source(format!("{legacy}/old"))
        .copy_source_if_match(&etag)
        .send()
        .await
        .unwrap();

    // UploadPartCopy into a passthrough upload checks the condition too.
    let upload = h
        .client
        .create_multipart_upload()
        .bucket(&plain)
        .key("parted")
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    let part_copy = |condition: &str| {
        h.client
            .upload_part_copy()
            .bucket(&plain)
            .key("parted")
            .upload_id(upload_id)
            .part_number(1)
            .copy_source(format!("{legacy}/old"))
            .copy_source_if_match(condition)
            .send()
    };
    let err = part_copy("\"0123456789abcdef0123456789abcdef\"")
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(412));
    let copied = part_copy(&etag).await.unwrap();
    let part = CompletedPart::builder()
        .part_number(1)
        .e_tag(copied.copy_part_result().unwrap().e_tag().unwrap())
        .build();
    h.client
        .complete_multipart_upload()
        .bucket(&plain)
        .key("parted")
        .upload_id(upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().parts(part).build())
        .send()
        .await
        .unwrap();
    let (stored, _) = h.stored(&plain, "parted").await;
    assert_eq!(stored, body);
}

#[test]
fn deploy_sidecar_config_checks() {
    let dir = tempfile::tempdir().unwrap();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/sidecar.toml");
    let run = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_s3seal"));
        command
            .args(args)
            .args(["--config", config])
            .current_dir(dir.path());
        for (name, _) in std::env::vars() {
            if name.starts_with("S3SEAL_") {
                command.env_remove(name);
            }
        }
        let state = dir.path();
        command
            .env("S3SEAL_KEYS__KEYRING_FILE", state.join("keyring.json"))
            .env("S3SEAL_AUDIT__FILE", state.join("audit.log"))
            .env("S3SEAL_AUDIT__KEY_FILE", state.join("audit-key"))
            .env("S3SEAL_UPSTREAM_ACCESS_KEY_ID", "AKIDDEPLOYCHECK")
            .env("S3SEAL_UPSTREAM_SECRET_ACCESS_KEY", common::random_secret())
            .env("S3SEAL_CLIENT_LEGACYAPP_SECRET", common::random_secret());
        command.output().unwrap()
    };

    // Before the key exists, the check names the command that creates it.
    let output = run(&["config", "check"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("s3seal keys create app"), "{stderr}");

    let output = run(&["keys", "create", "app"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = run(&["config", "check"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("encrypt with key \"app\""), "{stdout}");
}
