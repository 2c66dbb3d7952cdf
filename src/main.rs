use clap::Parser;
use s3seal::cli::{self, Cli, Command};
use s3seal::config::Config;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return print_clap_output(&error),
    };
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::Keys { command } => {
            install_command_tracing();
            exit(cli::run_keys(command), 1)
        }
        Command::Audit { command } => {
            install_command_tracing();
            // `audit verify` exits 1 only for a log that does not verify.
            exit(cli::run_audit(command), 2)
        }
        Command::Config { command } => {
            install_command_tracing();
            exit(cli::run_config(command), 1)
        }
    }
}

/// Prints the warnings that commands share with the server (a restarted
/// audit chain, a secret file that others may read) on stderr, as
/// `warning: ...` lines. `RUST_LOG` sets another level.
fn install_command_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let result = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .log_internal_errors(false)
        .try_init();
    if let Err(error) = result {
        cli::write_stderr_line(format_args!(
            "failed to install the log subscriber: {error}"
        ));
    }
}

/// Prints clap's help, version or usage error and returns its exit code.
/// Help and version go to stdout, and exit 1 when that write fails.
fn print_clap_output(error: &clap::Error) -> ExitCode {
    let printed = error.print();
    if error.use_stderr() {
        return ExitCode::from(2);
    }
    match printed.and_then(|()| cli::finish_stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(write_error) => {
            report_stdout_error(&write_error);
            ExitCode::FAILURE
        }
    }
}

/// Prints a command's error and returns its exit code. A command that
/// succeeded but failed to write its output to stdout exits with
/// `output_error_code`.
fn exit(result: Result<(), cli::CommandError>, output_error_code: u8) -> ExitCode {
    let stdout = cli::finish_stdout();
    if let Err(write_error) = &stdout {
        report_stdout_error(write_error);
    }
    match (result, stdout) {
        (Ok(()), Ok(())) => ExitCode::SUCCESS,
        (Ok(()), Err(_)) => ExitCode::from(output_error_code),
        (Err(error), _) => {
            cli::write_stderr_line(format_args!("error: {}", error.message));
            ExitCode::from(error.exit_code)
        }
    }
}

fn report_stdout_error(error: &std::io::Error) {
    cli::write_stderr_line(format_args!(
        "error: failed to write the output to stdout, so it is incomplete: {error}"
    ));
}

fn serve(path: std::path::PathBuf) -> ExitCode {
    let config = match Config::load(&path) {
        Ok(config) => config,
        Err(error) => {
            cli::write_stderr_line(format_args!("error: {error}"));
            return ExitCode::from(cli::config_exit_code(&error));
        }
    };
    cli::install_tracing(config.log.format, &config.log.filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            cli::write_stderr_line(format_args!(
                "error: failed to start the async runtime: {error}"
            ));
            return ExitCode::FAILURE;
        }
    };
    let clients = config.clients.clone();
    runtime.block_on(async move {
        let server = match s3seal::server::spawn(config).await {
            Ok(server) => server,
            Err(error) => {
                tracing::error!(%error, "failed to start");
                return ExitCode::FAILURE;
            }
        };
        log_client_setup(&server, &clients);
        shutdown_signal().await;
        server.shutdown().await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

/// Logs how to point a client at the proxy: the endpoint, the access key
/// id and where the secret is. The secret itself is never logged.
fn log_client_setup(
    server: &s3seal::server::RunningServer,
    clients: &[s3seal::config::ClientCredential],
) {
    let endpoint = match (server.plain_addr, server.tls_addr) {
        (Some(addr), _) => format!("http://{addr}"),
        (None, Some(addr)) => format!("https://{addr}"),
        (None, None) => return,
    };
    for client in clients {
        let secret_source = match (&client.secret_file, &client.secret_env) {
            (Some(path), _) => format!("$(cat {})", path.display()),
            (None, Some(var)) => format!("${var}"),
            (None, None) => continue,
        };
        tracing::info!(
            "ready: export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={secret_source} AWS_DEFAULT_REGION=us-east-1; \
             aws --endpoint-url {endpoint} s3 ls",
            client.access_key_id
        );
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "failed to install the SIGTERM handler");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
