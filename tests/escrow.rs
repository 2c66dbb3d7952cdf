//! Key escrow: every new key version is sealed to the security team's age
//! recipient, and a keyring rebuilt from the escrow copies with the `age`
//! command reads the objects written before the keyring was lost.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::{pattern, random_secret, read_audit_records, s3_client, write_private};
use s3seal::config::Config;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const ACCESS_KEY_ID: &str = "ESCROWDRILL";

/// Runs a command and returns its output. A missing program fails the test
/// with a message that names it.
fn run(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} (install the age package): {e}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn s3seal(args: &[&str], stdin: Option<&[u8]>) -> String {
    let output = run(env!("CARGO_BIN_EXE_s3seal"), args, stdin);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "s3seal {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Makes an age identity with `age-keygen` and returns its recipient.
fn age_identity(path: &Path) -> String {
    let output = run("age-keygen", &["-o", path.to_str().unwrap()], None);
    assert!(output.status.success(), "age-keygen failed: {output:?}");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("# public key: "))
        .expect("age-keygen wrote no public key")
        .to_string()
}

/// Opens an escrow copy with `age -d` and returns its plaintext.
fn age_decrypt(identity: &Path, copy: &Path) -> Vec<u8> {
    let args = [
        "-d",
        "-i",
        identity.to_str().unwrap(),
        copy.to_str().unwrap(),
    ];
    let opened = run("age", &args, None);
    assert!(opened.status.success(), "age -d failed: {opened:?}");
    opened.stdout
}

struct Drill {
    dir: tempfile::TempDir,
    config_path: PathBuf,
    config_toml: String,
    secret: String,
}

impl Drill {
    fn new(recipient: &str, dir: tempfile::TempDir) -> Self {
        let root = dir.path();
        let secret = random_secret();
        write_private(&root.join("client-secret"), &secret);
        let config_toml = format!(
            r#"
[server]
listen = "127.0.0.1:0"

[upstream]
kind = "embedded"

[embedded]
data_dir = "{root}/store"
credentials_file = "{root}/embedded-credentials"

[keys]
keyring_file = "{root}/keyring.json"
escrow_recipients = ["{recipient}"]
escrow_dir = "{root}/escrow"

[audit]
file = "{root}/audit.log"
key_file = "{root}/audit-key"
fsync = "never"

[[clients]]
access_key_id = "{ACCESS_KEY_ID}"
secret_file = "{root}/client-secret"

[[buckets]]
match = "*"
mode = "encrypt"
key = "drill"
"#,
            root = root.display()
        );
        let config_path = root.join("config.toml");
        std::fs::write(&config_path, &config_toml).unwrap();
        Self {
            dir,
            config_path,
            config_toml,
            secret,
        }
    }

    fn config(&self) -> &str {
        self.config_path.to_str().unwrap()
    }

    /// Starts the proxy, runs `work` with a client of it, and stops it.
    async fn with_proxy<F, Fut>(&self, work: F)
    where
        F: FnOnce(aws_sdk_s3::Client) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let config = Config::from_toml(&self.config_toml).unwrap();
        let server = s3seal::server::spawn(config).await.unwrap();
        let endpoint = format!("http://{}", server.plain_addr.unwrap());
        work(s3_client(&endpoint, ACCESS_KEY_ID, &self.secret)).await;
        server.shutdown().await;
    }

    fn escrow_copy(&self, version: u32) -> PathBuf {
        self.dir.path().join(format!("escrow/drill.v{version}.age"))
    }
}

#[tokio::test]
async fn keyring_rebuilt_from_escrow_reads_old_objects() {
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("security-team.key");
    let recipient = age_identity(&identity);
    let drill = Drill::new(&recipient, dir);

    let out = s3seal(&["keys", "create", "drill", "-c", drill.config()], None);
    assert!(out.contains("wrote escrow copy"), "{out}");
    assert!(drill.escrow_copy(1).exists());

    let first = pattern(300_000, 1);
    let second = pattern(70_000, 2);
    drill
        .with_proxy(|client| async move {
            client.create_bucket().bucket("vault").send().await.unwrap();
            client
                .put_object()
                .bucket("vault")
                .key("under-v1")
                .body(ByteStream::from(first.clone()))
                .send()
                .await
                .unwrap();
        })
        .await;
    s3seal(&["keys", "rotate", "drill", "-c", drill.config()], None);
    assert!(drill.escrow_copy(2).exists());
    drill
        .with_proxy(|client| async move {
            client
                .put_object()
                .bucket("vault")
                .key("under-v2")
                .body(ByteStream::from(second.clone()))
                .send()
                .await
                .unwrap();
        })
        .await;

    // The keyring is lost. The security team opens each copy with the age
    // command and its identity, and the plaintext goes straight into a new
    // keyring.
    let keyring = drill.dir.path().join("keyring.json");
    std::fs::remove_file(&keyring).unwrap();

    // A copy whose material was changed fails its check value and imports
    // nothing.
    let plaintext = String::from_utf8(age_decrypt(&identity, &drill.escrow_copy(1))).unwrap();
    let document: serde_json::Value = serde_json::from_str(&plaintext).unwrap();
    let material = document["material"].as_str().unwrap();
    let mut edited = material.as_bytes().to_vec();
    edited[5] = if edited[5] == b'A' { b'B' } else { b'A' };
    let edited = plaintext.replace(material, std::str::from_utf8(&edited).unwrap());
    let rejected = run(
        env!("CARGO_BIN_EXE_s3seal"),
        &["keys", "import", "-", "-c", drill.config()],
        Some(edited.as_bytes()),
    );
    assert!(!rejected.status.success());
    let stderr = String::from_utf8_lossy(&rejected.stderr);
    assert!(stderr.contains("check value"), "{stderr}");
    assert!(!keyring.exists());

    // A copy without a check value, as written before s3seal stored them,
    // imports with a warning.
    let without_check: serde_json::Value = {
        let mut value = document.clone();
        value.as_object_mut().unwrap().remove("check");
        value
    };
    let scratch = drill.dir.path().join("scratch-keyring.json");
    let imported = run(
        env!("CARGO_BIN_EXE_s3seal"),
        &[
            "keys",
            "import",
            "-",
            "-c",
            drill.config(),
            "--keyring",
            scratch.to_str().unwrap(),
        ],
        Some(without_check.to_string().as_bytes()),
    );
    assert!(imported.status.success());
    let stderr = String::from_utf8_lossy(&imported.stderr);
    assert!(stderr.contains("has no check value"), "{stderr}");

    for version in [1, 2] {
        let copy = drill.escrow_copy(version);
        let plaintext = age_decrypt(&identity, &copy);
        let out = s3seal(
            &["keys", "import", "-", "-c", drill.config()],
            Some(&plaintext),
        );
        assert!(out.contains(&format!("version {version}")), "{out}");
    }
    let listed = s3seal(&["keys", "list", "-c", drill.config()], None);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].starts_with("drill\tversion 1\t"), "{listed}");
    assert!(lines[0].ends_with("\tunwrap only"), "{listed}");
    assert!(lines[1].starts_with("drill\tversion 2\t"), "{listed}");
    assert!(lines[1].ends_with("\tcurrent"), "{listed}");

    let (first, second) = (pattern(300_000, 1), pattern(70_000, 2));
    drill
        .with_proxy(|client| async move {
            for (key, expected) in [("under-v1", &first), ("under-v2", &second)] {
                let body = client
                    .get_object()
                    .bucket("vault")
                    .key(key)
                    .send()
                    .await
                    .unwrap()
                    .body
                    .collect()
                    .await
                    .unwrap()
                    .into_bytes();
                assert!(body[..] == expected[..], "{key} differs after recovery");
            }
        })
        .await;

    let actions: Vec<String> = read_audit_records(&drill.dir.path().join("audit.log"))
        .iter()
        .filter(|r| r["key_name"] == "drill")
        .filter_map(|r| {
            let action = r["action"].as_str()?;
            matches!(action, "create" | "rotate" | "export" | "import")
                .then(|| format!("{action} v{}", r["key_version"]))
        })
        .collect();
    assert_eq!(
        actions,
        [
            "create v1",
            "export v1",
            "rotate v2",
            "export v2",
            // The scratch keyring's import, then the rebuilt keyring's.
            "import v1",
            "import v1",
            "import v2"
        ]
    );
    let log = drill.dir.path().join("audit.log");
    let out = s3seal(
        &[
            "audit",
            "verify",
            log.to_str().unwrap(),
            "--config",
            drill.config(),
        ],
        None,
    );
    assert!(out.starts_with("ok: "), "{out}");
}

#[tokio::test]
async fn wrong_identity_cannot_open_escrow_copy() {
    let dir = tempfile::tempdir().unwrap();
    let recipient = age_identity(&dir.path().join("team.key"));
    let stranger = dir.path().join("stranger.key");
    age_identity(&stranger);
    let drill = Drill::new(&recipient, dir);
    s3seal(&["keys", "create", "drill", "-c", drill.config()], None);

    let copy = drill.escrow_copy(1);
    let opened = run(
        "age",
        &[
            "-d",
            "-i",
            stranger.to_str().unwrap(),
            copy.to_str().unwrap(),
        ],
        None,
    );
    assert!(!opened.status.success());
    assert!(opened.stdout.is_empty());
    let keyring = std::fs::read_to_string(drill.dir.path().join("keyring.json")).unwrap();
    let material: serde_json::Value = serde_json::from_str(&keyring).unwrap();
    let material = material["keys"]["drill"]["versions"][0]["material"]
        .as_str()
        .unwrap()
        .to_string();
    let sealed = std::fs::read_to_string(&copy).unwrap();
    assert!(sealed.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    assert!(!sealed.contains(&material));
}

#[test]
fn bad_recipient_fails_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let drill = Drill::new("age1notarecipient", dir);
    let output = run(
        env!("CARGO_BIN_EXE_s3seal"),
        &["config", "check", "-c", drill.config()],
        None,
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("keys.escrow_recipients[0]"), "{stderr}");
}

/// Makes a drill whose configuration sets `keys.create_missing`, with a
/// fresh age identity, and returns the identity's path with it.
fn create_missing_drill() -> (PathBuf, Drill) {
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("team.key");
    let recipient = age_identity(&identity);
    let mut drill = Drill::new(&recipient, dir);
    drill.config_toml = drill
        .config_toml
        .replace("[keys]\n", "[keys]\ncreate_missing = true\n");
    (identity, drill)
}

#[tokio::test]
async fn create_missing_key_gets_escrow_copy() {
    let (identity, drill) = create_missing_drill();

    drill.with_proxy(|_| async {}).await;

    let copy = drill.escrow_copy(1);
    let plaintext = age_decrypt(&identity, &copy);
    let document: serde_json::Value = serde_json::from_slice(&plaintext).unwrap();
    let keyring = std::fs::read_to_string(drill.dir.path().join("keyring.json")).unwrap();
    let keyring: serde_json::Value = serde_json::from_str(&keyring).unwrap();
    assert_eq!(document["key"], "drill");
    assert_eq!(document["version"], 1);
    assert_eq!(
        document["material"],
        keyring["keys"]["drill"]["versions"][0]["material"]
    );
    let actions: Vec<String> = read_audit_records(&drill.dir.path().join("audit.log"))
        .iter()
        .filter_map(|r| r["action"].as_str().map(str::to_string))
        .collect();
    assert_eq!(actions, ["create", "export"]);

    // With the keyring lost, a start does not make a new version 1 that
    // would replace the escrowed one.
    let sealed = std::fs::read(&copy).unwrap();
    std::fs::remove_file(drill.dir.path().join("keyring.json")).unwrap();
    let config = Config::from_toml(&drill.config_toml).unwrap();
    let error = s3seal::server::spawn(config)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("already exists"), "{error}");
    assert!(error.contains("keys import"), "{error}");
    assert_eq!(std::fs::read(&copy).unwrap(), sealed);
}

#[tokio::test]
async fn create_missing_key_removed_when_escrow_fails() {
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("team.key");
    let recipient = age_identity(&identity);
    let mut drill = Drill::new(&recipient, dir);
    // A regular file where the escrow directory should be fails every copy.
    let blocked = drill.dir.path().join("escrow-is-a-file");
    std::fs::write(&blocked, b"").unwrap();
    drill.config_toml = drill
        .config_toml
        .replace("[keys]\n", "[keys]\ncreate_missing = true\n")
        .replace(
            &format!("{}/escrow\"", drill.dir.path().display()),
            &format!("{}\"", blocked.display()),
        );

    let config = Config::from_toml(&drill.config_toml).unwrap();
    assert!(s3seal::server::spawn(config).await.is_err());

    // The keyring is written last, so the failed start wrote none.
    assert!(!drill.dir.path().join("keyring.json").exists());
    let records = read_audit_records(&drill.dir.path().join("audit.log"));
    let actions: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // The copy is written before the key is recorded, so the failed copy
    // fails the create itself.
    assert_eq!(actions, [("create".to_string(), "error".to_string())]);
    assert!(
        records[0]["error"].as_str().unwrap().contains("escrow"),
        "{records:?}"
    );
}

#[tokio::test]
async fn start_without_client_secret_writes_no_audit_record() {
    let (_identity, drill) = create_missing_drill();
    std::fs::remove_file(drill.dir.path().join("client-secret")).unwrap();

    let config = Config::from_toml(&drill.config_toml).unwrap();
    let error = s3seal::server::spawn(config)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("client-secret"), "{error}");
    assert!(!drill.dir.path().join("audit.log").exists());
    assert!(!drill.dir.path().join("keyring.json").exists());
}

#[test]
fn config_check_notes_key_that_create_missing_makes() {
    let (_identity, drill) = create_missing_drill();
    std::fs::write(drill.config(), &drill.config_toml).unwrap();
    s3seal(&["keys", "create", "spare", "-c", drill.config()], None);
    let output = run(
        env!("CARGO_BIN_EXE_s3seal"),
        &["config", "check", "-c", drill.config()],
        None,
    );
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("key \"drill\" is not in the keyring"),
        "{stderr}"
    );
    assert!(stderr.contains("creates it at start"), "{stderr}");

    // An escrow copy of the missing key's version 1 fails the start, and
    // the check with it.
    std::fs::create_dir_all(drill.escrow_copy(1).parent().unwrap()).unwrap();
    std::fs::write(drill.escrow_copy(1), b"age-encryption.org/v1\n").unwrap();
    let output = run(
        env!("CARGO_BIN_EXE_s3seal"),
        &["config", "check", "-c", drill.config()],
        None,
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");
}

#[test]
fn scratch_keyring_needs_own_escrow_dir() {
    let dir = tempfile::tempdir().unwrap();
    let recipient = age_identity(&dir.path().join("identity.txt"));
    let drill = Drill::new(&recipient, dir);
    s3seal(&["keys", "create", "drill", "-c", drill.config()], None);
    let scratch = drill.dir.path().join("scratch-keyring.json");
    let scratch = scratch.to_str().unwrap();

    let args = [
        "keys",
        "create",
        "drill",
        "-c",
        drill.config(),
        "--keyring",
        scratch,
    ];
    let rejected = run(env!("CARGO_BIN_EXE_s3seal"), &args, None);
    assert!(!rejected.status.success());
    let stderr = String::from_utf8_lossy(&rejected.stderr);
    assert!(stderr.contains("S3SEAL_KEYS__ESCROW_DIR"), "{stderr}");
    assert!(!drill.escrow_copy(2).exists());

    let scratch_escrow = drill.dir.path().join("scratch-escrow");
    let output = Command::new(env!("CARGO_BIN_EXE_s3seal"))
        .args(args)
        .env("S3SEAL_KEYS__ESCROW_DIR", &scratch_escrow)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(scratch_escrow.join("drill.v1.age").exists());
    // The configured keyring still rotates: no copy blocks its version 2.
    s3seal(&["keys", "rotate", "drill", "-c", drill.config()], None);
    assert!(drill.escrow_copy(2).exists());
}

#[test]
fn import_of_bad_input_writes_no_audit_files() {
    let dir = tempfile::tempdir().unwrap();
    let recipient = age_identity(&dir.path().join("identity.txt"));
    let drill = Drill::new(&recipient, dir);

    // `age -d` with the wrong identity gives empty output.
    for input in [&b""[..], b"not json"] {
        let rejected = run(
            env!("CARGO_BIN_EXE_s3seal"),
            &["keys", "import", "-", "-c", drill.config()],
            Some(input),
        );
        assert!(!rejected.status.success());
        let stderr = String::from_utf8_lossy(&rejected.stderr);
        assert!(stderr.contains("not an s3seal escrow document"), "{stderr}");
    }

    assert!(!drill.dir.path().join("audit.log").exists());
    assert!(!drill.dir.path().join("audit-key").exists());
    assert!(!drill.dir.path().join("keyring.json").exists());
}

/// Returns whether a thread of process `pid` waits in a write to standard
/// output, as `/proc/PID/task/TID/syscall` shows it: the system call number
/// of `write` or `writev` (x86-64 or AArch64) and file descriptor 1.
#[cfg(target_os = "linux")]
fn writing_to_stdout(pid: u32) -> bool {
    const WRITE_CALLS: [&str; 4] = ["1", "20", "64", "66"];
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        let text = std::fs::read_to_string(task.path().join("syscall")).unwrap_or_default();
        let mut fields = text.split_whitespace();
        let call = fields.next().unwrap_or_default();
        WRITE_CALLS.contains(&call) && fields.next() == Some("0x1")
    })
}

#[cfg(target_os = "linux")]
#[test]
fn rotate_killed_before_keyring_write_adds_no_version() {
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("team.key");
    let recipient = age_identity(&identity);
    let mut drill = Drill::new(&recipient, dir);
    drill.config_toml = drill
        .config_toml
        .replace("[audit]\n", "[audit]\nstdout = true\n");
    std::fs::write(&drill.config_path, &drill.config_toml).unwrap();
    s3seal(&["keys", "create", "drill", "-c", drill.config()], None);

    // The rotation's standard output is a socket whose buffers are full and
    // never read, so its first audit record blocks in the write to standard
    // output, before the record reaches the log file. The process is killed
    // there, as by a crash.
    let (stdout, _reader) = UnixStream::pair().unwrap();
    stdout.set_nonblocking(true).unwrap();
    for size in [4096, 1] {
        let chunk = vec![b'x'; size];
        loop {
            match (&stdout).write(&chunk) {
                Ok(_) => continue,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(error) => panic!("failed to fill the socket: {error}"),
            }
        }
    }
    stdout.set_nonblocking(false).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_s3seal"))
        .args(["keys", "rotate", "drill", "-c", drill.config()])
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(stdout)))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !writing_to_stdout(child.id()) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("keys rotate exited with {status} before it wrote an audit record");
        }
        assert!(
            Instant::now() < deadline,
            "keys rotate wrote no audit record"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let listed = s3seal(&["keys", "list", "-c", drill.config()], None);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.contains("version 1"), "{listed}");
    assert!(
        drill.escrow_copy(2).exists(),
        "the copy was not written first"
    );

    // The next rotation replaces the copy that the killed one left.
    s3seal(&["keys", "rotate", "drill", "-c", drill.config()], None);
    let plaintext = age_decrypt(&identity, &drill.escrow_copy(2));
    let document: serde_json::Value = serde_json::from_slice(&plaintext).unwrap();
    let keyring = std::fs::read_to_string(drill.dir.path().join("keyring.json")).unwrap();
    let keyring: serde_json::Value = serde_json::from_str(&keyring).unwrap();
    assert_eq!(
        document["material"],
        keyring["keys"]["drill"]["versions"][1]["material"]
    );
}

/// Writes a decrypted escrow document of `name` version `version` with
/// random material to `path`.
fn write_document(path: &Path, name: &str, version: u32) {
    use base64::Engine;
    let material: [u8; 32] = rand::random();
    let document = serde_json::json!({
        "kind": "s3seal-key-escrow",
        "format": 1,
        "key": name,
        "version": version,
        "created": "2026-01-01T00:00:00Z",
        "material": base64::engine::general_purpose::STANDARD.encode(material),
    });
    write_private(path, &document.to_string());
}

#[test]
fn import_conflict_imports_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let recipient = age_identity(&dir.path().join("identity.txt"));
    let drill = Drill::new(&recipient, dir);
    s3seal(&["keys", "create", "drill", "-c", drill.config()], None);
    let keyring = drill.dir.path().join("keyring.json");
    let before = std::fs::read(&keyring).unwrap();

    let other = drill.dir.path().join("other.v1.json");
    let conflicting = drill.dir.path().join("drill.v1.json");
    write_document(&other, "other", 1);
    write_document(&conflicting, "drill", 1);
    let output = run(
        env!("CARGO_BIN_EXE_s3seal"),
        &[
            "keys",
            "import",
            other.to_str().unwrap(),
            conflicting.to_str().unwrap(),
            "-c",
            drill.config(),
        ],
        None,
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("drill.v1.json"), "{stderr}");
    assert!(stderr.contains("no version was imported"), "{stderr}");
    assert_eq!(std::fs::read(&keyring).unwrap(), before);
}
