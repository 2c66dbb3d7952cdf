//! Tests of the auditor, its file sink and verification against tampered
//! logs.

use super::*;
use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

fn test_key() -> AuditKey {
    AuditKey::from_bytes([7; 32])
}

fn other_key() -> AuditKey {
    AuditKey::from_bytes([8; 32])
}

fn event(i: u64) -> AuditEvent {
    AuditEvent {
        request_id: Some(format!("req-{i}")),
        principal: Some("AKIDEXAMPLE".into()),
        client_addr: Some("127.0.0.1:40000".into()),
        operation: "PutObject".into(),
        bucket: Some("photos".into()),
        object_key: Some(format!("img/{i}.jpg")),
        key_name: "main".into(),
        key_version: Some(1),
        action: AuditAction::Wrap,
        outcome: Ok(()),
    }
}

/// A sink that keeps lines in memory and, while `fail` is set, fails
/// without writing anything.
#[derive(Clone, Default)]
struct MemorySink {
    bytes: Arc<Mutex<Vec<u8>>>,
    fail: Arc<AtomicBool>,
}

impl MemorySink {
    fn lines(&self) -> Vec<String> {
        let bytes = self.bytes.lock().unwrap();
        String::from_utf8(bytes.clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl AuditSink for MemorySink {
    fn append(&self, line: &[u8]) -> Result<(), AuditError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(AuditError::Sink("memory sink set to fail".into()));
        }
        self.bytes.lock().unwrap().extend_from_slice(line);
        Ok(())
    }
}

/// Records `count` events under `key` and returns the auditor, the sink and
/// the lines without their newlines.
fn record_events(key: AuditKey, count: u64) -> (Auditor, MemorySink, Vec<String>) {
    let sink = MemorySink::default();
    let auditor = Auditor::new(key, vec![Box::new(sink.clone())], None).unwrap();
    for i in 1..=count {
        assert_eq!(auditor.record(event(i)).unwrap(), i);
    }
    let lines = sink.lines();
    (auditor, sink, lines)
}

fn join_lines(lines: &[String]) -> String {
    lines.iter().map(|line| format!("{line}\n")).collect()
}

fn verify_lines(
    lines: &[String],
    expected: Option<&ChainState>,
) -> Result<VerifyReport, AuditError> {
    verify(Cursor::new(join_lines(lines)), &test_key(), expected)
}

fn verify_error(result: Result<VerifyReport, AuditError>) -> VerifyError {
    match result {
        Err(AuditError::Verify(error)) => error,
        other => panic!("expected a verify error, got {other:?}"),
    }
}

fn seqs_in_file(path: &std::path::Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            value["seq"].as_u64().unwrap()
        })
        .collect()
}

fn verify_file(path: &std::path::Path) -> Result<VerifyReport, AuditError> {
    let file = std::fs::File::open(path).unwrap();
    verify(std::io::BufReader::new(file), &test_key(), None)
}

#[test]
fn round_trip_verifies() {
    let (auditor, _, lines) = record_events(test_key(), 10);
    assert_eq!(lines.len(), 10);

    let report = verify_lines(&lines, None).unwrap();
    assert_eq!(report.records, 10);
    assert_eq!(report.last_mac, auditor.chain_state().mac_hex());
    assert_eq!(auditor.chain_state().seq, 10);
}

#[test]
fn first_record_has_zero_prev() {
    let (_, _, lines) = record_events(test_key(), 1);
    let value: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(value["seq"], 1);
    assert_eq!(value["prev"], "0".repeat(64));
    let fields: Vec<&str> = lines[0]
        .trim_matches(['{', '}'])
        .split(",\"")
        .map(|field| field.trim_start_matches('"').split('"').next().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "seq",
            "time",
            "request_id",
            "principal",
            "client_addr",
            "operation",
            "bucket",
            "object_key",
            "key_name",
            "key_version",
            "action",
            "outcome",
            "error",
            "prev",
            "mac"
        ]
    );
}

#[test]
fn empty_log_verifies() {
    let report = verify_lines(&[], None).unwrap();
    assert_eq!(report.records, 0);
    assert_eq!(report.last_mac, "0".repeat(64));
}

#[test]
fn edited_field_fails_mac_at_its_line() {
    let (_, _, lines) = record_events(test_key(), 10);
    for k in [1u64, 5, 10] {
        let mut edited = lines.clone();
        let index = (k - 1) as usize;
        edited[index] = edited[index].replace(&format!("img/{k}.jpg"), "img/other.jpg");
        assert_ne!(edited[index], lines[index]);

        let error = verify_error(verify_lines(&edited, None));
        assert_eq!(error.line, k);
        assert_eq!(error.seq, Some(k));
        assert_eq!(error.kind, BrokenKind::MacMismatch);
    }
}

#[test]
fn edited_seq_fails_mac() {
    let (_, _, lines) = record_events(test_key(), 5);
    let mut edited = lines.clone();
    edited[2] = edited[2].replace("\"seq\":3,", "\"seq\":30,");

    let error = verify_error(verify_lines(&edited, None));
    assert_eq!(error.line, 3);
    assert_eq!(error.seq, Some(30));
    assert_eq!(error.kind, BrokenKind::MacMismatch);
}

#[test]
fn deleted_record_breaks_at_successor() {
    let (_, _, lines) = record_events(test_key(), 10);
    let mut deleted = lines.clone();
    deleted.remove(3);

    let error = verify_error(verify_lines(&deleted, None));
    assert_eq!(error.line, 4);
    assert_eq!(error.seq, Some(5));
    assert_eq!(
        error.kind,
        BrokenKind::SeqGap {
            expected: 4,
            found: 5
        }
    );
}

#[test]
fn deleted_first_record_breaks_at_line_one() {
    let (_, _, lines) = record_events(test_key(), 3);

    let error = verify_error(verify_lines(&lines[1..], None));
    assert_eq!(error.line, 1);
    assert_eq!(
        error.kind,
        BrokenKind::SeqGap {
            expected: 1,
            found: 2
        }
    );
}

#[test]
fn inserted_forged_record_fails_mac() {
    let (auditor, _, lines) = record_events(test_key(), 5);
    let mac_of_3 = {
        let (_, _, first_three) = record_events(test_key(), 3);
        let value: serde_json::Value = serde_json::from_str(&first_three[2]).unwrap();
        value["mac"].as_str().unwrap().to_owned()
    };
    assert_eq!(auditor.chain_state().seq, 5);

    // The forger continues the chain correctly after record 3 but does not
    // have the audit key.
    let forger_sink = MemorySink::default();
    let forger = Auditor::new(
        other_key(),
        vec![Box::new(forger_sink.clone())],
        Some(ChainState::from_hex(3, &mac_of_3).unwrap()),
    )
    .unwrap();
    forger.record(event(99)).unwrap();
    let mut inserted = lines.clone();
    inserted.insert(3, forger_sink.lines()[0].clone());

    let error = verify_error(verify_lines(&inserted, None));
    assert_eq!(error.line, 4);
    assert_eq!(error.seq, Some(4));
    assert_eq!(error.kind, BrokenKind::MacMismatch);
}

#[test]
fn swapped_records_break_at_first() {
    let (_, _, lines) = record_events(test_key(), 6);
    let mut swapped = lines.clone();
    swapped.swap(2, 3);

    let error = verify_error(verify_lines(&swapped, None));
    assert_eq!(error.line, 3);
    assert_eq!(error.seq, Some(4));
    assert_eq!(
        error.kind,
        BrokenKind::SeqGap {
            expected: 3,
            found: 4
        }
    );
    let message = error.kind.to_string();
    assert!(
        message.contains("record 3 was deleted or moved to a later line"),
        "{message}"
    );
}

#[test]
fn partial_last_line_reported_with_offset() {
    let (_, _, lines) = record_events(test_key(), 4);
    let complete = join_lines(&lines[..3]);
    let half = &lines[3][..lines[3].len() / 2];
    let text = format!("{complete}{half}");

    let error = verify_error(verify(Cursor::new(text), &test_key(), None));
    assert_eq!(error.line, 4);
    assert_eq!(
        error.kind,
        BrokenKind::PartialLine {
            offset: complete.len() as u64
        }
    );
}

#[test]
fn truncated_tail_detected_with_expected_state() {
    let (auditor, _, lines) = record_events(test_key(), 10);
    let expected = auditor.chain_state();

    // Without the saved state, the shortened log is a valid chain.
    assert_eq!(verify_lines(&lines[..8], None).unwrap().records, 8);

    let error = verify_error(verify_lines(&lines[..8], Some(&expected)));
    assert_eq!(error.line, 8);
    assert_eq!(error.seq, Some(8));
    assert_eq!(
        error.kind,
        BrokenKind::Truncated {
            expected: 10,
            found: 8
        }
    );
    assert!(error.to_string().starts_with("after line 8:"), "{error}");

    let error = verify_error(verify_lines(&[], Some(&expected)));
    assert_eq!(error.line, 0);
    assert_eq!(error.seq, None);
}

#[test]
fn expected_state_accepts_later_records() {
    let (auditor, _, lines) = record_events(test_key(), 6);
    let report = verify_lines(&lines, Some(&auditor.chain_state())).unwrap();
    assert_eq!(report.records, 6);

    let earlier = verify_lines(&lines[..4], None).unwrap();
    assert_eq!(earlier.records, 4);
    let checkpoint = ChainState::from_hex(earlier.records, &earlier.last_mac).unwrap();
    assert_eq!(verify_lines(&lines, Some(&checkpoint)).unwrap().records, 6);
}

#[test]
fn expected_state_with_other_mac_detected() {
    let (_, _, lines) = record_events(test_key(), 6);
    let checkpoint = ChainState {
        seq: 4,
        mac: [0xaa; 32],
    };

    let error = verify_error(verify_lines(&lines, Some(&checkpoint)));
    assert_eq!(error.line, 4);
    assert_eq!(error.kind, BrokenKind::CheckpointMismatch);
}

#[test]
fn checkpoint_zero_must_be_chain_start() {
    let (_, _, lines) = record_events(test_key(), 3);
    let start = ChainState::GENESIS;
    assert_eq!(verify_lines(&lines, Some(&start)).unwrap().records, 3);
    let other = ChainState {
        seq: 0,
        mac: [0xaa; 32],
    };
    let error = verify_error(verify_lines(&lines, Some(&other)));
    assert_eq!(error.kind, BrokenKind::CheckpointMismatch);
}

#[test]
fn log_under_other_key_fails_at_line_one() {
    let (_, _, lines) = record_events(other_key(), 5);

    let error = verify_error(verify_lines(&lines, None));
    assert_eq!(error.line, 1);
    assert_eq!(error.seq, Some(1));
    assert_eq!(error.kind, BrokenKind::MacMismatch);
}

#[test]
fn spliced_chain_fails_prev() {
    let (_, _, first) = record_events(test_key(), 4);
    let sink = MemorySink::default();
    let second = Auditor::new(test_key(), vec![Box::new(sink.clone())], None).unwrap();
    for i in 101..=104 {
        second.record(event(i)).unwrap();
    }
    let mut spliced = first[..3].to_vec();
    spliced.push(sink.lines()[3].clone());

    let error = verify_error(verify_lines(&spliced, None));
    assert_eq!(error.line, 4);
    assert_eq!(error.seq, Some(4));
    assert_eq!(error.kind, BrokenKind::PrevMismatch);
}

#[test]
fn reformatted_line_is_malformed() {
    let (_, _, lines) = record_events(test_key(), 3);
    let mut reformatted = lines.clone();
    reformatted[1] = reformatted[1].replace(",\"time\"", ", \"time\"");

    let error = verify_error(verify_lines(&reformatted, None));
    assert_eq!(error.line, 2);
    assert_eq!(error.seq, Some(2));
    assert!(
        matches!(&error.kind, BrokenKind::Malformed(message) if message.contains("canonical form")),
        "{error}"
    );
}

#[test]
fn junk_lines_are_malformed() {
    let (_, _, lines) = record_events(test_key(), 2);
    for junk in ["", "not json", "{\"seq\":2}", "[1,2,3]"] {
        let mut damaged = lines[..1].to_vec();
        damaged.push(junk.to_owned());

        let error = verify_error(verify_lines(&damaged, None));
        assert_eq!(error.line, 2, "{junk:?}");
        assert!(
            matches!(error.kind, BrokenKind::Malformed(_)),
            "{junk:?}: {error}"
        );
    }
}

#[test]
fn overlong_line_is_malformed() {
    let text = "a".repeat(MAX_LINE_LEN + 10);

    let error = verify_error(verify(Cursor::new(text), &test_key(), None));
    assert_eq!(error.line, 1);
    assert!(
        matches!(&error.kind, BrokenKind::Malformed(message) if message.contains("longer")),
        "{error}"
    );
}

#[test]
fn verify_error_display_names_line_and_meaning() {
    let error = VerifyError {
        line: 7,
        seq: Some(7),
        kind: BrokenKind::MacMismatch,
    };
    assert_eq!(
        error.to_string(),
        "line 7 (seq 7): MAC does not match: the record was edited or written without the audit key"
    );

    let gap = VerifyError {
        line: 4,
        seq: Some(6),
        kind: BrokenKind::SeqGap {
            expected: 4,
            found: 6,
        },
    };
    assert_eq!(
        gap.to_string(),
        "line 4 (seq 6): expected seq 4 but found 6: records 4 to 5 were deleted or moved"
    );
}

#[test]
fn error_outcome_recorded() {
    let sink = MemorySink::default();
    let auditor = Auditor::new(test_key(), vec![Box::new(sink.clone())], None).unwrap();
    let mut failed = AuditEvent::new("keys rotate", "main", AuditAction::Rotate);
    failed.outcome = Err("keyring is read-only".into());
    auditor.record(failed).unwrap();

    let lines = sink.lines();
    assert!(
        lines[0].contains(r#""operation":"keys rotate","bucket":null"#),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(r#""outcome":"error","error":"keyring is read-only""#),
        "{}",
        lines[0]
    );
    assert_eq!(verify_lines(&lines, None).unwrap().records, 1);
}

#[test]
fn failing_sink_leaves_chain_unchanged() {
    let sink = MemorySink::default();
    let auditor = Auditor::new(test_key(), vec![Box::new(sink.clone())], None).unwrap();
    auditor.record(event(1)).unwrap();
    auditor.record(event(2)).unwrap();
    let before = auditor.chain_state();

    sink.fail.store(true, Ordering::SeqCst);
    let result = auditor.record(event(3));
    assert!(matches!(result, Err(AuditError::Sink(_))), "{result:?}");
    assert_eq!(auditor.chain_state(), before);

    sink.fail.store(false, Ordering::SeqCst);
    assert_eq!(auditor.record(event(4)).unwrap(), 3);
    let report = verify_lines(&sink.lines(), None).unwrap();
    assert_eq!(report.records, 3);
}

#[test]
fn overlong_record_rejected_without_advancing() {
    let sink = MemorySink::default();
    let auditor = Auditor::new(test_key(), vec![Box::new(sink.clone())], None).unwrap();
    auditor.record(event(1)).unwrap();
    let mut huge = event(2);
    huge.object_key = Some("k".repeat(MAX_LINE_LEN));

    let result = auditor.record(huge);
    assert!(
        matches!(result, Err(AuditError::RecordTooLong { .. })),
        "{result:?}"
    );
    assert_eq!(auditor.chain_state().seq, 1);
    assert_eq!(sink.lines().len(), 1);
}

#[test]
fn auditor_without_sinks_rejected() {
    let result = Auditor::new(test_key(), Vec::new(), None);
    assert!(matches!(result, Err(AuditError::NoSinks)));
}

#[test]
fn log_file_created_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs").join("audit.log");

    let auditor = Auditor::open_file(&path, test_key(), FsyncPolicy::Always, false).unwrap();
    auditor.record(event(1)).unwrap();

    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(verify_file(&path).unwrap().records, 1);
}

#[test]
fn log_deleted_while_open_fails_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");

    let auditor = Auditor::open_file(&path, test_key(), FsyncPolicy::Always, false).unwrap();
    assert_eq!(auditor.record(event(1)).unwrap(), 1);
    std::fs::remove_file(&path).unwrap();

    for i in 2..=3 {
        let error = auditor.record(event(i)).unwrap_err().to_string();
        assert!(error.contains("deleted"), "{error}");
    }
    assert_eq!(auditor.chain_state().seq, 1);
}

#[test]
fn log_truncated_while_open_fails_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");

    let auditor = Auditor::open_file(&path, test_key(), FsyncPolicy::Never, false).unwrap();
    for i in 1..=2 {
        auditor.record(event(i)).unwrap();
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();

    // No record lands in the truncated log, then or later.
    let error = auditor.record(event(3)).unwrap_err().to_string();
    assert!(error.contains("truncated"), "{error}");
    assert!(auditor.record(event(4)).is_err());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    assert_eq!(auditor.chain_state().seq, 2);
}

#[test]
fn first_record_seq_read_from_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    assert_eq!(super::auditor::first_record_seq(&path), None);
    let auditor = Auditor::open_file(&path, test_key(), FsyncPolicy::Never, false).unwrap();
    for i in 1..=3 {
        auditor.record(event(i)).unwrap();
    }
    drop(auditor);
    assert_eq!(super::auditor::first_record_seq(&path), Some(1));
    let text = std::fs::read_to_string(&path).unwrap();
    let rest: String = text
        .lines()
        .skip(1)
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&path, rest).unwrap();
    assert_eq!(super::auditor::first_record_seq(&path), Some(2));
}

#[test]
fn resume_continues_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");

    let auditor = Auditor::open_file(&path, test_key(), FsyncPolicy::Always, false).unwrap();
    for i in 1..=3 {
        assert_eq!(auditor.record(event(i)).unwrap(), i);
    }
    drop(auditor);

    let auditor = Auditor::open_file(&path, test_key(), FsyncPolicy::Never, false).unwrap();
    assert_eq!(auditor.chain_state().seq, 3);
    for i in 4..=5 {
        assert_eq!(auditor.record(event(i)).unwrap(), i);
    }
    drop(auditor);

    let report = verify_file(&path).unwrap();
    assert_eq!(report.records, 5);
    assert_eq!(seqs_in_file(&path), [1, 2, 3, 4, 5]);
}

#[test]
fn resume_rejects_edited_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let auditor = Auditor::open_file(&path, test_key(), FsyncPolicy::Never, false).unwrap();
    for i in 1..=3 {
        auditor.record(event(i)).unwrap();
    }
    drop(auditor);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("img/3.jpg", "img/x.jpg")).unwrap();

    let error = Auditor::open_file(&path, test_key(), FsyncPolicy::Never, false).unwrap_err();
    assert!(
        matches!(
            error,
            AuditError::TailDoesNotVerify {
                reason: BrokenKind::MacMismatch,
                ..
            }
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "`s3seal audit verify {} --key-file KEY`",
            path.display()
        )),
        "{message}"
    );
}

#[test]
fn resume_rejects_other_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let auditor = Auditor::open_file(&path, other_key(), FsyncPolicy::Never, false).unwrap();
    auditor.record(event(1)).unwrap();
    drop(auditor);

    let error = Auditor::open_file(&path, test_key(), FsyncPolicy::Never, false).unwrap_err();
    assert!(
        matches!(error, AuditError::TailDoesNotVerify { .. }),
        "{error}"
    );
}

#[test]
fn resume_rejects_partial_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let auditor = Auditor::open_file(&path, test_key(), FsyncPolicy::Never, false).unwrap();
    for i in 1..=3 {
        auditor.record(event(i)).unwrap();
    }
    drop(auditor);
    let complete_len = std::fs::metadata(&path).unwrap().len();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, b"{\"seq\":4,\"time\":\"2026-").unwrap();
    drop(file);

    let error = Auditor::open_file(&path, test_key(), FsyncPolicy::Never, false).unwrap_err();
    assert!(
        matches!(error, AuditError::PartialTail { offset, .. } if offset == complete_len),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains(&format!("byte offset {complete_len}")),
        "{error}"
    );
}

#[test]
fn second_open_of_log_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let first = Auditor::open_file(&path, test_key(), FsyncPolicy::Never, false).unwrap();

    let second = Auditor::open_file(&path, test_key(), FsyncPolicy::Never, false);
    assert!(
        matches!(second, Err(AuditError::Locked { .. })),
        "{second:?}"
    );

    drop(first);
    assert!(Auditor::open_file(&path, test_key(), FsyncPolicy::Never, false).is_ok());
}

#[test]
fn concurrent_records_are_contiguous() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 50;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let auditor =
        Arc::new(Auditor::open_file(&path, test_key(), FsyncPolicy::Never, false).unwrap());

    let handles: Vec<_> = (0..THREADS)
        .map(|thread| {
            let auditor = Arc::clone(&auditor);
            std::thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|i| auditor.record(event(thread * PER_THREAD + i)).unwrap())
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut returned: Vec<u64> = handles
        .into_iter()
        .flat_map(|handle| handle.join().unwrap())
        .collect();
    returned.sort_unstable();
    drop(auditor);

    let all: Vec<u64> = (1..=THREADS * PER_THREAD).collect();
    assert_eq!(returned, all);
    assert_eq!(seqs_in_file(&path), all);
    assert_eq!(verify_file(&path).unwrap().records, THREADS * PER_THREAD);
}

#[cfg(target_os = "linux")]
#[test]
fn failed_file_write_returns_error_and_keeps_chain() {
    // Every write to /dev/full fails with ENOSPC.
    let path = std::path::Path::new("/dev/full");
    let sink = FileSink::open(path, FsyncPolicy::Never).unwrap();
    let auditor = Auditor::new(test_key(), vec![Box::new(sink)], None).unwrap();

    for _ in 0..2 {
        let error = auditor.record(event(1)).unwrap_err();
        assert!(
            matches!(&error, AuditError::Write { path: p, .. } if p == path),
            "{error}"
        );
        assert_eq!(auditor.chain_state(), ChainState::GENESIS);
    }
}

/// A sink whose first write waits until the test opens its gate, and that
/// counts its writes and fails the writes whose number is in `fail_writes`.
#[derive(Clone)]
struct GatedSink {
    memory: MemorySink,
    writes: Arc<Mutex<Vec<usize>>>,
    gate: Arc<(Mutex<bool>, std::sync::Condvar)>,
    fail_writes: Arc<Vec<usize>>,
}

impl GatedSink {
    fn new(fail_writes: Vec<usize>) -> Self {
        Self {
            memory: MemorySink::default(),
            writes: Arc::default(),
            gate: Arc::default(),
            fail_writes: Arc::new(fail_writes),
        }
    }

    fn open_gate(&self) {
        *self.gate.0.lock().unwrap() = true;
        self.gate.1.notify_all();
    }

    /// Returns the number of lines in each write so far.
    fn writes(&self) -> Vec<usize> {
        self.writes.lock().unwrap().clone()
    }
}

impl AuditSink for GatedSink {
    fn append(&self, lines: &[u8]) -> Result<(), AuditError> {
        let number = {
            let mut writes = self.writes.lock().unwrap();
            writes.push(lines.iter().filter(|&&b| b == b'\n').count());
            writes.len()
        };
        if number == 1 {
            let (open, opened) = &*self.gate;
            let mut open = open.lock().unwrap();
            while !*open {
                open = opened.wait(open).unwrap();
            }
        }
        if self.fail_writes.contains(&number) {
            return Err(AuditError::Sink(format!("write {number} set to fail")));
        }
        self.memory.append(lines)
    }
}

/// Starts a record on another thread whose write waits at the gate, and
/// returns once that write has begun.
fn hold_first_write(
    auditor: &Arc<Auditor>,
    sink: &GatedSink,
) -> std::thread::JoinHandle<Result<u64, AuditError>> {
    let holder = {
        let auditor = auditor.clone();
        std::thread::spawn(move || auditor.record(event(1)))
    };
    while sink.writes().is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    holder
}

#[test]
fn queued_records_share_one_write() {
    let sink = GatedSink::new(Vec::new());
    let auditor = Arc::new(Auditor::new(test_key(), vec![Box::new(sink.clone())], None).unwrap());
    let holder = hold_first_write(&auditor, &sink);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let seqs = runtime.block_on(async {
        let tasks: Vec<_> = (2..=9)
            .map(|i| {
                let auditor = auditor.clone();
                tokio::spawn(async move { auditor.record_async(event(i)).await })
            })
            .collect();
        // The runtime's only thread keeps running tasks while the records
        // wait for the write in progress.
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        assert!(tasks.iter().all(|task| !task.is_finished()));
        sink.open_gate();
        let mut seqs = Vec::new();
        for task in tasks {
            seqs.push(task.await.unwrap().unwrap());
        }
        seqs
    });

    assert_eq!(holder.join().unwrap().unwrap(), 1);
    assert_eq!(seqs, (2..=9).collect::<Vec<u64>>());
    assert_eq!(sink.writes(), vec![1, 8]);
    let report = verify_lines(&sink.memory.lines(), Some(&auditor.chain_state())).unwrap();
    assert_eq!(report.records, 9);
}

#[test]
fn failed_write_fails_queued_records() {
    // Write 1 waits at the gate, and write 2 carries records 2 to 4 and fails.
    let sink = GatedSink::new(vec![2]);
    let auditor = Arc::new(Auditor::new(test_key(), vec![Box::new(sink.clone())], None).unwrap());
    let holder = hold_first_write(&auditor, &sink);

    let waiting: Vec<_> = (2..=4)
        .map(|i| {
            let auditor = auditor.clone();
            std::thread::spawn(move || auditor.record(event(i)))
        })
        .collect();
    while auditor.shared_queue_len() < 3 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    sink.open_gate();
    assert_eq!(holder.join().unwrap().unwrap(), 1);
    for thread in waiting {
        assert!(thread.join().unwrap().is_err());
    }

    // The chain continues after the last written record.
    assert_eq!(auditor.chain_state().seq, 1);
    assert_eq!(auditor.record(event(5)).unwrap(), 2);
    let lines = sink.memory.lines();
    assert_eq!(lines.len(), 2);
    verify_lines(&lines, Some(&auditor.chain_state())).unwrap();
}

#[test]
fn concurrent_records_form_one_chain() {
    let sink = MemorySink::default();
    let auditor = Arc::new(Auditor::new(test_key(), vec![Box::new(sink.clone())], None).unwrap());
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let auditor = auditor.clone();
            std::thread::spawn(move || {
                (0..50u64)
                    .map(|i| auditor.record(event(t * 100 + i)).unwrap())
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
    let report = verify_lines(&sink.lines(), Some(&auditor.chain_state())).unwrap();
    assert_eq!(report.records, 200);
}
