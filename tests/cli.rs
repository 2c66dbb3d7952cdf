//! The command line: messages, exit codes and output of the subcommands,
//! run as a separate process.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Secret of the configuration's only client and of the upstream, passed
/// in the environment.
const CLIENT_SECRET: &str = "a-secret-for-the-cli-tests";

/// Returns a command that runs s3seal with `args` in `dir`, without the
/// `S3SEAL_*` environment of the test process.
fn s3seal(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_s3seal"));
    command.args(args).current_dir(dir);
    for (name, _) in std::env::vars() {
        if name.starts_with("S3SEAL_") {
            command.env_remove(name);
        }
    }
    command
        .env("S3SEAL_CLI_CLIENT_SECRET", CLIENT_SECRET)
        .env("S3SEAL_UPSTREAM_ACCESS_KEY_ID", "AKIDCLITEST")
        .env("S3SEAL_UPSTREAM_SECRET_ACCESS_KEY", CLIENT_SECRET);
    command
}

fn run(dir: &Path, args: &[&str]) -> Output {
    s3seal(dir, args).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `/dev/full`, where every write fails with ENOSPC.
fn full_device() -> Stdio {
    Stdio::from(File::options().write(true).open("/dev/full").unwrap())
}

/// Runs s3seal with its stdout on `/dev/full` and returns its exit status
/// and stderr.
fn run_to_full_stdout(dir: &Path, args: &[&str]) -> (ExitStatus, String) {
    let output = s3seal(dir, args)
        .stdout(full_device())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (output.status, stderr(&output))
}

/// Runs s3seal with its stderr on `/dev/full` and returns its exit status.
fn run_to_full_stderr(dir: &Path, args: &[&str]) -> ExitStatus {
    s3seal(dir, args)
        .stdout(Stdio::null())
        .stderr(full_device())
        .status()
        .unwrap()
}

/// Writes a configuration with state files in `dir` and returns its path.
/// The server listens on a port that the system picks, and its upstream
/// is the discard port, where nothing listens.
fn write_config(dir: &Path) -> PathBuf {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
ready_file = "{root}/ready.json"

[upstream]
endpoint = "http://127.0.0.1:9"

[keys]
keyring_file = "{root}/keyring.json"

[audit]
file = "{root}/audit.log"
key_file = "{root}/audit-key"
fsync = "never"

[[clients]]
access_key_id = "CLI"
secret_env = "S3SEAL_CLI_CLIENT_SECRET"

[[buckets]]
match = "*"
mode = "encrypt"
key = "main"
"#,
        root = dir.display()
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Writes a configuration and creates its key, as the commands that read
/// the keyring need.
fn write_config_with_key(dir: &Path) -> PathBuf {
    let config = write_config(dir);
    let created = run(
        dir,
        &["keys", "create", "main", "-c", config.to_str().unwrap()],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    config
}

#[test]
fn failed_stderr_write_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_with_key(dir.path());
    let config = config.to_str().unwrap();

    let status = run_to_full_stderr(dir.path(), &["keys", "rotate", "nonexistent", "-c", config]);
    assert_eq!(status.code(), Some(1));

    let status = run_to_full_stderr(dir.path(), &["serve", "-c", "/nonexistent"]);
    assert_eq!(status.code(), Some(2));

    // Succeeds although its warning about the missing escrow copy is lost.
    let status = run_to_full_stderr(dir.path(), &["keys", "rotate", "main", "-c", config]);
    assert_eq!(status.code(), Some(0));

    // An audit log that others may read gets a warning through the log
    // subscriber, which drops the line it cannot write.
    let audit_log = dir.path().join("audit.log");
    std::fs::set_permissions(&audit_log, std::fs::Permissions::from_mode(0o644)).unwrap();
    let status = run_to_full_stderr(dir.path(), &["keys", "rotate", "main", "-c", config]);
    assert_eq!(status.code(), Some(0));

    let status = run_to_full_stderr(dir.path(), &["keys", "list", "--bogus"]);
    assert_eq!(status.code(), Some(2));
}

#[test]
fn serve_with_failed_log_writes_runs() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_with_key(dir.path());
    let mut child = s3seal(dir.path(), &["serve", "-c", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(full_device())
        .spawn()
        .unwrap();
    let ready_file = dir.path().join("ready.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready_file.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("s3seal exited with {status} before it was ready");
        }
        assert!(Instant::now() < deadline, "s3seal did not start in 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The server logs its start lines once it is ready.
    std::thread::sleep(Duration::from_millis(500));
    if let Some(status) = child.try_wait().unwrap() {
        panic!("s3seal exited with {status} after it was ready");
    }

    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn lost_stdout_output_fails() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_with_key(dir.path());
    let config = config.to_str().unwrap();
    let audit_log = dir.path().join("audit.log");
    let audit_log = audit_log.to_str().unwrap();

    let commands: [(&[&str], i32); 6] = [
        (&["audit", "verify", audit_log, "-c", config], 2),
        (&["keys", "list", "-c", config], 1),
        (&["keys", "rotate", "main", "-c", config], 1),
        (&["config", "check", "-c", config], 1),
        (&["config", "check", "-c", config, "--bucket", "data"], 1),
        (&["--help"], 1),
    ];
    for (args, code) in commands {
        let (status, message) = run_to_full_stdout(dir.path(), args);
        assert_eq!(status.code(), Some(code), "{args:?}: {message}");
        assert!(
            message.contains("failed to write the output to stdout"),
            "{args:?}: {message}"
        );
    }

    // The rotation above went through although its output was lost.
    let listed = run(dir.path(), &["keys", "list", "-c", config]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("main\tversion 2\t"), "{listed}");
}

#[test]
fn missing_config_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let missing = missing.to_str().unwrap();
    let commands: [&[&str]; 5] = [
        &["serve", "-c", missing],
        &["keys", "list", "-c", missing],
        &["keys", "create", "main", "-c", missing],
        &["config", "check", "-c", missing],
        &["audit", "verify", "audit.log", "-c", missing],
    ];
    for args in commands {
        let output = run(dir.path(), args);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert!(
            message.contains(&format!("--config {missing}: file not found")),
            "{args:?}: {message}"
        );
    }
}

#[test]
fn invalid_config_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[server]\nlisten = 1\n").unwrap();
    let config = config.to_str().unwrap();
    let commands: [&[&str]; 3] = [
        &["serve", "-c", config],
        &["keys", "list", "-c", config],
        &["config", "check", "-c", config],
    ];
    for args in commands {
        let output = run(dir.path(), args);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {message}");
        assert!(message.contains("server.listen"), "{args:?}: {message}");
    }
}

#[test]
fn config_check_rejects_bucket_first() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_with_key(dir.path());
    let output = run(
        dir.path(),
        &[
            "config",
            "check",
            "-c",
            config.to_str().unwrap(),
            "--bucket",
            "Bad_Name",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    let message = stderr(&output);
    assert!(message.contains("not a valid bucket name"), "{message}");
}

#[test]
fn every_config_option_has_help() {
    let dir = tempfile::tempdir().unwrap();
    let commands: [&[&str]; 8] = [
        &["serve"],
        &["keys", "create"],
        &["keys", "rotate"],
        &["keys", "escrow"],
        &["keys", "import"],
        &["keys", "list"],
        &["audit", "verify"],
        &["config", "check"],
    ];
    for command in commands {
        let args = [command, &["--help"]].concat();
        let output = run(dir.path(), &args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        let help = String::from_utf8_lossy(&output.stdout);
        // Short help puts an option's text on its line, long help on the next.
        let mut lines = help.lines().skip_while(|line| !line.contains("--config"));
        let option_line = lines.next().unwrap_or_default();
        let text = option_line
            .split("<CONFIG>")
            .nth(1)
            .unwrap_or_default()
            .trim();
        let text = if text.is_empty() || text.starts_with("[default") {
            lines.next().unwrap_or_default().trim()
        } else {
            text
        };
        assert!(
            text.starts_with("Configuration file"),
            "{args:?} --config has no help text:\n{help}"
        );
    }
}

#[test]
fn directory_as_config_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().to_str().unwrap();
    let commands: [&[&str]; 5] = [
        &["serve", "--config", config],
        &["keys", "list", "--config", config],
        &["keys", "rotate", "main", "--config", config],
        &["config", "check", "--config", config],
        &["audit", "verify", "audit.log", "--config", config],
    ];
    for args in commands {
        let output = run(dir.path(), args);
        let message = stderr(&output);
        assert!(!output.status.success(), "{args:?}: {message}");
        assert!(
            message.contains(&format!("--config {config}: is a directory")),
            "{args:?}: {message}"
        );
        assert!(!message.contains("[[clients]]"), "{args:?}: {message}");
    }
}
