use clap::Parser;
use s3seal::cli::{self, Cli, Command};
use s3seal::config::Config;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::Keys { command } => {
            install_command_tracing();
            exit(cli::run_keys(command))
        }
        Command::Audit { command } => {
            install_command_tracing();
            exit(cli::run_audit(command))
        }
        Command::Config { command } => {
            install_command_tracing();
            exit(cli::run_config(command))
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
        .try_init();
    if let Err(error) = result {
        eprintln!("failed to install the log subscriber: {error}");
    }
}

/// Prints a command's error and returns its exit code.
fn exit(result: Result<(), cli::CommandError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", error.message);
            ExitCode::from(error.exit_code)
        }
    }
}

fn serve(path: std::path::PathBuf) -> ExitCode {
    let config = match Config::load(&path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    cli::install_tracing(config.log.format, &config.log.filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start the async runtime: {error}");
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
