//! The embedded local S3 store (s3s-fs) that the default configuration uses
//! as its upstream. It listens on an ephemeral loopback port, checks SigV4
//! with credentials generated on first start, and keeps objects under
//! `embedded.data_dir`.

use crate::config::EmbeddedConfig;
use crate::keys::SecretString;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use rand::RngCore;
use std::net::SocketAddr;
use std::path::Path;
use tokio::net::TcpListener;

/// A running embedded store.
#[derive(Debug)]
pub struct EmbeddedStore {
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("failed to prepare the embedded store at {path}: {message}")]
    Setup { path: String, message: String },
    #[error("failed to bind the embedded store listener: {0}")]
    Bind(std::io::Error),
}

/// Starts the embedded store on `127.0.0.1:0` and returns its endpoint.
pub async fn start(config: &EmbeddedConfig) -> Result<EmbeddedStore, EmbeddedError> {
    let setup_err = |path: &Path, e: &dyn std::fmt::Display| EmbeddedError::Setup {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(&config.data_dir).map_err(|e| setup_err(&config.data_dir, &e))?;
    let (access_key_id, secret) = load_or_create_credentials(&config.credentials_file)?;

    let fs = s3s_fs::FileSystem::new(&config.data_dir)
        .map_err(|e| setup_err(&config.data_dir, &format!("{e:?}")))?;
    let service = {
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(
            access_key_id.clone(),
            secret.expose(),
        ));
        builder.build()
    };

    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(EmbeddedError::Bind)?;
    let addr = listener.local_addr().map_err(EmbeddedError::Bind)?;
    let task = tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let (socket, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(error) => {
                    tracing::warn!(%error, "embedded store failed to accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                if let Err(error) = conn.await {
                    tracing::debug!(%error, "embedded store connection ended with an error");
                }
            });
        }
    });
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "embedded S3 store started");
    Ok(EmbeddedStore {
        endpoint: format!("http://{addr}"),
        access_key_id,
        secret_access_key: secret,
        task,
    })
}

/// Reads the store's credentials, generating and saving them (mode 0600)
/// on first start.
fn load_or_create_credentials(path: &Path) -> Result<(String, SecretString), EmbeddedError> {
    let err = |e: &dyn std::fmt::Display| EmbeddedError::Setup {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    if path.exists() {
        let text = std::fs::read_to_string(path).map_err(|e| err(&e))?;
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if let (Some(id), Some(secret)) = (lines.next(), lines.next()) {
            return Ok((id.to_string(), SecretString::new(secret.to_string())));
        }
        return Err(err(
            &"expected the access key id and the secret on two lines",
        ));
    }
    let mut bytes = [0u8; 30];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let id = format!("EMBEDDED{}", hex::encode_upper(&bytes[..6]));
    let secret = SecretString::new(base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &bytes[6..],
    ));
    write_private_file(path, &format!("{id}\n{}\n", secret.expose())).map_err(|e| err(&e))?;
    Ok((id, secret))
}

/// Writes `text` to `path` with mode 0600, creating parent directories.
pub fn write_private_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
