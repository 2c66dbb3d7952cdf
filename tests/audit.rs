//! The key-access audit log end to end: the records that requests and key
//! commands write through the proxy, `s3seal audit verify` on intact and
//! tampered logs, and `audit.fail_closed`.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::{error_code, Harness, Options, ACCESS_KEY_ID, KEY_NAME};
use s3seal::audit::{AuditError, AuditKey, AuditSink, Auditor};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Runs the s3seal binary with `args` and no `S3SEAL_*` environment.
fn s3seal(args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_s3seal"));
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("S3SEAL_") {
            command.env_remove(name);
        }
    }
    command.output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The fields of one expected record.
struct Expected<'a> {
    action: &'a str,
    operation: &'a str,
    bucket: Option<&'a str>,
    object_key: Option<&'a str>,
    key_version: u64,
    outcome: &'a str,
}

fn expected<'a>(
    action: &'a str,
    operation: &'a str,
    object: Option<(&'a str, &'a str)>,
    key_version: u64,
) -> Expected<'a> {
    Expected {
        action,
        operation,
        bucket: object.map(|(bucket, _)| bucket),
        object_key: object.map(|(_, key)| key),
        key_version,
        outcome: "ok",
    }
}

/// Checks `records` against `expected` field by field, and that request
/// records carry the client's identity.
fn assert_records(records: &[Value], expected: &[Expected<'_>]) {
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    let expected_actions: Vec<&str> = expected.iter().map(|e| e.action).collect();
    assert_eq!(actions, expected_actions);

    for (i, (record, want)) in records.iter().zip(expected).enumerate() {
        let context = format!("record {i}: {record}");
        assert_eq!(record["seq"], i as u64 + 1, "{context}");
        assert_eq!(record["operation"], want.operation, "{context}");
        assert_eq!(record["bucket"].as_str(), want.bucket, "{context}");
        assert_eq!(record["object_key"].as_str(), want.object_key, "{context}");
        assert_eq!(record["key_version"], want.key_version, "{context}");
        assert_eq!(record["outcome"], want.outcome, "{context}");
        if want.bucket.is_some() {
            assert_eq!(record["principal"], ACCESS_KEY_ID, "{context}");
            assert!(record["request_id"].is_string(), "{context}");
            assert!(
                record["client_addr"]
                    .as_str()
                    .unwrap()
                    .starts_with("127.0.0.1:"),
                "{context}"
            );
        } else {
            assert!(record["principal"].is_null(), "{context}");
        }
    }
}

async fn put(h: &Harness, bucket: &str, key: &str, body: &'static [u8]) {
    h.client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(body))
        .send()
        .await
        .unwrap();
}

async fn get(h: &Harness, bucket: &str, key: &str) -> Vec<u8> {
    let out = h
        .client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

async fn copy(h: &Harness, source: &str, bucket: &str, key: &str) {
    h.client
        .copy_object()
        .copy_source(source)
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
}

/// Writes the harness configuration to a file for the CLI.
fn write_config(h: &Harness) -> PathBuf {
    let path = h.dir.path().join("config.toml");
    std::fs::write(&path, &h.config_toml).unwrap();
    path
}

#[tokio::test]
async fn requests_and_key_commands_recorded() {
    let mut h = Harness::start().await;
    let sealed = h.bucket("audited").await;
    let plain = h.bucket("plain-audited").await;
    let config = write_config(&h);
    let config_arg = config.to_str().unwrap();

    put(&h, &sealed, "a/x", b"first object").await;
    assert_eq!(get(&h, &sealed, "a/x").await, b"first object");
    let head = h
        .client
        .head_object()
        .bucket(&sealed)
        .key("a/x")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(12));
    copy(&h, "audited/a/x", &sealed, "b/y").await;
    copy(&h, "audited/a/x", &plain, "z").await;
    copy(&h, "plain-audited/z", &sealed, "c").await;
    let missing = h
        .client
        .get_object()
        .bucket(&sealed)
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&missing).as_deref(), Some("NoSuchKey"));

    // The envelope of a/x stored under another key fails to unwrap, which
    // is recorded with outcome "error".
    let (bytes, metadata) = h.stored(&sealed, "a/x").await;
    let mut moved = h.direct.put_object().bucket(&sealed).key("moved");
    for (name, value) in &metadata {
        moved = moved.metadata(name, value);
    }
    moved.body(ByteStream::from(bytes)).send().await.unwrap();
    let err = h
        .client
        .get_object()
        .bucket(&sealed)
        .key("moved")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err).as_deref(), Some("AccessDenied"));

    // The running server holds the audit log's lock.
    let locked = s3seal(&["keys", "rotate", KEY_NAME, "--config", config_arg]);
    assert_eq!(locked.status.code(), Some(1), "{}", stderr(&locked));
    assert!(
        stderr(&locked).contains("locked by another process"),
        "{}",
        stderr(&locked)
    );

    h.proxy.take().unwrap().shutdown().await;
    let rotated = s3seal(&["keys", "rotate", KEY_NAME, "--config", config_arg]);
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    assert!(
        stdout(&rotated).contains("added version 2"),
        "{}",
        stdout(&rotated)
    );
    let created = s3seal(&["keys", "create", "second", "--config", config_arg]);
    assert!(created.status.success(), "{}", stderr(&created));
    let duplicate = s3seal(&["keys", "create", "second", "--config", config_arg]);
    assert_eq!(duplicate.status.code(), Some(1));
    assert!(
        stderr(&duplicate).contains("already exists"),
        "{}",
        stderr(&duplicate)
    );

    h.restart_proxy().await;
    put(&h, &sealed, "after-rotation", b"new").await;
    assert_eq!(get(&h, &sealed, "a/x").await, b"first object");

    let records = h.audit_records();
    let mut duplicate_create = expected("create", "keys create", None, 0);
    duplicate_create.outcome = "error";
    let mut failed_unwrap = expected("unwrap", "GetObject", Some(("audited", "moved")), 1);
    failed_unwrap.outcome = "error";
    let want = [
        expected("load", "serve", None, 1),
        expected("generate", "PutObject", Some(("audited", "a/x")), 1),
        expected("unwrap", "GetObject", Some(("audited", "a/x")), 1),
        expected("unwrap", "CopyObject", Some(("audited", "a/x")), 1),
        expected("wrap", "CopyObject", Some(("audited", "b/y")), 1),
        expected("unwrap", "CopyObject", Some(("audited", "a/x")), 1),
        expected("generate", "CopyObject", Some(("audited", "c")), 1),
        failed_unwrap,
        expected("rotate", "keys rotate", None, 2),
        expected("create", "keys create", None, 1),
        duplicate_create,
        expected("load", "serve", None, 1),
        expected("load", "serve", None, 1),
        expected("load", "serve", None, 2),
        expected(
            "generate",
            "PutObject",
            Some(("audited", "after-rotation")),
            2,
        ),
        expected("unwrap", "GetObject", Some(("audited", "a/x")), 1),
    ];
    // A failed create names no version; the comparison below reads null
    // as 0 for it.
    let records: Vec<Value> = records
        .into_iter()
        .map(|mut record| {
            if record["key_version"].is_null() {
                record["key_version"] = Value::from(0);
            }
            record
        })
        .collect();
    assert_records(&records, &want);

    let key_names: Vec<&str> = records[11..14]
        .iter()
        .map(|r| r["key_name"].as_str().unwrap())
        .collect();
    assert_eq!(key_names, ["second", KEY_NAME, KEY_NAME]);
    let unwrap_error = records[7]["error"].as_str().unwrap();
    assert!(unwrap_error.contains("unwrap"), "{unwrap_error}");
    assert_eq!(records[10]["key_name"], "second");

    let verified = s3seal(&[
        "audit",
        "verify",
        h.audit_log.to_str().unwrap(),
        "--key-file",
        h.audit_key.to_str().unwrap(),
    ]);
    assert!(verified.status.success(), "{}", stderr(&verified));
    assert!(
        stdout(&verified).starts_with(&format!("ok: {} records", want.len())),
        "{}",
        stdout(&verified)
    );
}

/// Writes `text` as the log `name` in the harness directory and runs
/// `audit verify` on it with `extra` arguments.
fn verify_lines(h: &Harness, name: &str, text: &str, extra: &[&str]) -> Output {
    let path = h.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let mut args = vec![
        "audit",
        "verify",
        path.to_str().unwrap(),
        "--key-file",
        h.audit_key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    s3seal(&args)
}

fn join(lines: &[&str]) -> String {
    lines.iter().map(|line| format!("{line}\n")).collect()
}

/// Asserts that verify failed with exit code 1 at `location`, such as
/// "line 3 (seq 3)", and gave `reason`.
fn assert_broken(output: &Output, location: &str, reason: &str) {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&format!("does not verify: {location}")),
        "{message}"
    );
    assert!(message.contains(reason), "{message}");
}

#[tokio::test]
async fn tampering_detected_at_record() {
    let h = Harness::start().await;
    let bucket = h.bucket("tamper").await;
    for key in ["k1", "k2", "k3", "k4", "k5"] {
        put(&h, &bucket, key, b"data").await;
    }
    let text = std::fs::read_to_string(&h.audit_log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");

    let intact = verify_lines(&h, "intact.log", &text, &[]);
    assert!(intact.status.success(), "{}", stderr(&intact));
    assert!(stdout(&intact).starts_with("ok: 6 records; last record 6:"));

    let mut edited = lines.clone();
    let edited_line = lines[2].replace("\"k2\"", "\"kX\"");
    edited[2] = &edited_line;
    assert_broken(
        &verify_lines(&h, "edited.log", &join(&edited), &[]),
        "line 3 (seq 3)",
        "MAC does not match",
    );

    let mut deleted = lines.clone();
    deleted.remove(2);
    assert_broken(
        &verify_lines(&h, "deleted.log", &join(&deleted), &[]),
        "line 3 (seq 4)",
        "expected seq 3 but found 4",
    );

    let mut duplicated = lines.clone();
    duplicated.insert(3, lines[2]);
    assert_broken(
        &verify_lines(&h, "duplicated.log", &join(&duplicated), &[]),
        "line 4 (seq 3)",
        "expected seq 4 but found 3",
    );

    // A record written with another audit key and placed in the chain.
    let forged_line = {
        let sink = MemorySink::default();
        let auditor = Auditor::new(
            AuditKey::from_bytes([9; 32]),
            vec![Box::new(sink.clone())],
            None,
        )
        .unwrap();
        auditor
            .record(s3seal::audit::AuditEvent::new(
                "PutObject",
                KEY_NAME,
                s3seal::audit::AuditAction::Generate,
            ))
            .unwrap();
        sink.text().trim_end().to_string()
    };
    let mut inserted = lines.clone();
    inserted.insert(2, &forged_line);
    assert_broken(
        &verify_lines(&h, "inserted.log", &join(&inserted), &[]),
        "line 3 (seq 1)",
        "MAC does not match",
    );

    let mut reordered = lines.clone();
    reordered.swap(3, 4);
    assert_broken(
        &verify_lines(&h, "reordered.log", &join(&reordered), &[]),
        "line 4 (seq 5)",
        "expected seq 4 but found 5",
    );

    let cut = &text[..text.len() - 20];
    assert_broken(
        &verify_lines(&h, "cut.log", cut, &[]),
        "line 6:",
        "has no newline",
    );

    // Deleting whole records at the end leaves a valid chain; the chain
    // state printed by an earlier verify detects it.
    let checkpoint = stdout(&intact)
        .trim_end()
        .rsplit_once("last record ")
        .unwrap()
        .1
        .to_string();
    let shortened = join(&lines[..4]);
    let without_checkpoint = verify_lines(&h, "short.log", &shortened, &[]);
    assert!(without_checkpoint.status.success());
    assert_broken(
        &verify_lines(&h, "short.log", &shortened, &["--expect", &checkpoint]),
        "after line 4",
        "seq 6 was expected",
    );
}

#[tokio::test]
async fn verify_reports_usage_errors() {
    let h = Harness::start().await;
    let missing_key = s3seal(&[
        "audit",
        "verify",
        h.audit_log.to_str().unwrap(),
        "--key-file",
        h.dir.path().join("no-such-key").to_str().unwrap(),
    ]);
    assert_eq!(
        missing_key.status.code(),
        Some(2),
        "{}",
        stderr(&missing_key)
    );

    let bad_expect = s3seal(&[
        "audit",
        "verify",
        h.audit_log.to_str().unwrap(),
        "--key-file",
        h.audit_key.to_str().unwrap(),
        "--expect",
        "12",
    ]);
    assert_eq!(bad_expect.status.code(), Some(2));
    assert!(
        stderr(&bad_expect).contains("SEQ:MAC"),
        "{}",
        stderr(&bad_expect)
    );
}

/// A sink that keeps lines in memory, or fails while `fail` is set.
#[derive(Clone, Default)]
struct MemorySink {
    bytes: Arc<std::sync::Mutex<Vec<u8>>>,
    fail: Arc<AtomicBool>,
}

impl MemorySink {
    fn text(&self) -> String {
        String::from_utf8(self.bytes.lock().unwrap().clone()).unwrap()
    }
}

impl AuditSink for MemorySink {
    fn append(&self, line: &[u8]) -> Result<(), AuditError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(AuditError::Sink("test sink set to fail".into()));
        }
        self.bytes.lock().unwrap().extend_from_slice(line);
        Ok(())
    }
}

async fn harness_with_sink(fail_closed: bool) -> (Harness, MemorySink) {
    let sink = MemorySink::default();
    let auditor = Auditor::new(
        AuditKey::from_bytes([3; 32]),
        vec![Box::new(sink.clone())],
        None,
    )
    .unwrap();
    let h = Harness::start_with_options(Options {
        audit: format!("fail_closed = {fail_closed}"),
        auditor: Some(auditor),
        ..Options::default()
    })
    .await;
    (h, sink)
}

#[tokio::test]
async fn fail_closed_rejects_key_requests() {
    let (h, sink) = harness_with_sink(true).await;
    let sealed = h.bucket("closed").await;
    let plain = h.bucket("plain-closed").await;
    put(&h, &sealed, "before", b"stored before the failure").await;

    sink.fail.store(true, Ordering::SeqCst);
    let put_err = h
        .client
        .put_object()
        .bucket(&sealed)
        .key("during")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&put_err).as_deref(), Some("ServiceUnavailable"));
    let get_err = h
        .client
        .get_object()
        .bucket(&sealed)
        .key("before")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&get_err).as_deref(), Some("ServiceUnavailable"));
    let stored = h
        .direct
        .head_object()
        .bucket(&sealed)
        .key("during")
        .send()
        .await;
    assert!(stored.is_err(), "a refused PutObject stored an object");

    // Requests that use no key are unaffected.
    put(&h, &plain, "p", b"plain").await;
    assert_eq!(get(&h, &plain, "p").await, b"plain");

    sink.fail.store(false, Ordering::SeqCst);
    assert_eq!(
        get(&h, &sealed, "before").await,
        b"stored before the failure"
    );
    let actions: Vec<String> = sink
        .text()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["action"].to_string())
        .collect();
    assert_eq!(actions, ["\"load\"", "\"generate\"", "\"unwrap\""]);
}

#[tokio::test]
async fn fail_open_serves_and_counts() {
    let (h, sink) = harness_with_sink(false).await;
    let sealed = h.bucket("open").await;
    sink.fail.store(true, Ordering::SeqCst);
    put(&h, &sealed, "k", b"served without a record").await;
    assert_eq!(get(&h, &sealed, "k").await, b"served without a record");
    let lines = sink.text().lines().count();
    assert_eq!(lines, 1, "only the load record was written");
}

#[test]
fn key_commands_need_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let output = s3seal(&["keys", "create", "k", "--config", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("audit log"), "{}", stderr(&output));
    assert!(!Path::new(&dir.path().join("keyring.json")).exists());
}
