//! Client-facing listeners (plain HTTP and TLS), one task per connection,
//! a span per request (opened in `proxy::handle`), the operator listener of
//! `[metrics]`, and graceful shutdown.

use crate::audit::Auditor;
use crate::config::{Config, UpstreamKind};
use crate::linger::{LingerSwitch, Lingering};
use crate::metrics::Metrics;
use crate::proxy::{self, Proxy};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Time a client has to send a request's headers, in seconds.
const HEADER_READ_TIMEOUT_SECS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("failed to bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("failed to load TLS certificate or key: {0}")]
    Tls(String),
    #[error("failed to write ready_file {path}: {source}")]
    ReadyFile {
        path: String,
        source: std::io::Error,
    },
}

/// Bound listeners, before serving.
pub struct Listeners {
    plain: Option<TcpListener>,
    tls: Option<(TcpListener, TlsAcceptor)>,
    operator: Option<TcpListener>,
}

impl Listeners {
    /// Binds the listeners named in the config.
    pub async fn bind(config: &Config) -> Result<Self, ServerError> {
        let server = &config.server;
        let plain = match server.listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Bind { addr, source })?,
            ),
            None => None,
        };
        let tls = match server.tls_listen {
            Some(addr) => {
                let (Some(cert), Some(key)) = (&server.tls_cert_file, &server.tls_key_file) else {
                    return Err(ServerError::Tls(
                        "server.tls_listen needs tls_cert_file and tls_key_file".into(),
                    ));
                };
                let acceptor = tls_acceptor(cert, key)?;
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Bind { addr, source })?;
                Some((listener, acceptor))
            }
            None => None,
        };
        let operator = match config.metrics.listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Bind { addr, source })?,
            ),
            None => None,
        };
        Ok(Self {
            plain,
            tls,
            operator,
        })
    }

    /// Returns the bound address of the plain listener.
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Returns the bound address of the TLS listener.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// Returns the bound address of the operator listener.
    pub fn operator_addr(&self) -> Option<SocketAddr> {
        self.operator.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Writes the listener addresses as JSON, for scripts and tests.
    pub fn write_ready_file(&self, path: &Path) -> Result<(), ServerError> {
        let value = serde_json::json!({
            "listen": self.plain_addr().map(|a| a.to_string()),
            "tls_listen": self.tls_addr().map(|a| a.to_string()),
            "metrics_listen": self.operator_addr().map(|a| a.to_string()),
        });
        let tmp = path.with_extension("tmp");
        let err = |source| ServerError::ReadyFile {
            path: path.display().to_string(),
            source,
        };
        std::fs::write(&tmp, value.to_string()).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }
}

/// Reads every file and variable that a start reads, without changing
/// any: client secrets, upstream credentials, the audit key and the TLS
/// certificate and key. `config check` runs it.
pub fn check_start_inputs(config: &Config) -> Result<(), String> {
    crate::proxy::read_client_secrets(config, false).map_err(|e| e.to_string())?;
    if matches!(config.upstream.effective_kind(), UpstreamKind::Remote) {
        crate::upstream::load_credentials(&config.upstream).map_err(|e| e.to_string())?;
    }
    crate::keys::check_audit_key(&config.audit).map_err(|e| e.to_string())?;
    if config.server.tls_listen.is_some() {
        if let (Some(cert), Some(key)) = (&config.server.tls_cert_file, &config.server.tls_key_file)
        {
            tls_acceptor(cert, key).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn tls_acceptor(cert_path: &Path, key_path: &Path) -> Result<TlsAcceptor, ServerError> {
    for (path, field) in [(cert_path, "tls_cert_file"), (key_path, "tls_key_file")] {
        if path.as_os_str().is_empty() {
            return Err(ServerError::Tls(format!(
                "server.{field} is empty; set it to the path of a PEM file"
            )));
        }
    }
    crate::config::warn_if_shared(key_path, "server tls_key_file");
    let cert_pem = std::fs::read(cert_path)
        .map_err(|e| ServerError::Tls(format!("{}: {e}", cert_path.display())))?;
    let key_pem = std::fs::read(key_path)
        .map_err(|e| ServerError::Tls(format!("{}: {e}", key_path.display())))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| ServerError::Tls(format!("{}: {e}", cert_path.display())))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!(
            "{}: no certificate found",
            cert_path.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| ServerError::Tls(format!("{}: {e}", key_path.display())))?
        .ok_or_else(|| {
            // rustls-pemfile skips encrypted keys as unknown sections.
            let encrypted = key_pem
                .windows(b"ENCRYPTED PRIVATE KEY".len())
                .any(|window| window == b"ENCRYPTED PRIVATE KEY");
            ServerError::Tls(match encrypted {
                true => format!(
                    "{}: the private key is encrypted; s3seal needs an unencrypted key \
                     (openssl pkey -in KEY -out PLAIN.key)",
                    key_path.display()
                ),
                false => format!("{}: no private key found", key_path.display()),
            })
        })?;
    let mut config =
        rustls::ServerConfig::builder_with_provider(crate::upstream::tls_crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| ServerError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                ServerError::Tls(format!(
                    "{} and {}: {e}; the key must be the private key of the first certificate",
                    cert_path.display(),
                    key_path.display()
                ))
            })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves both listeners until `shutdown` resolves, then waits up to
/// `grace` for open connections.
pub async fn run(
    proxy: Arc<Proxy>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let graceful = Arc::new(GracefulShutdown::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (abort_tx, abort_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    if let Some(listener) = listeners.plain {
        tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "listening for HTTP");
        tasks.push(tokio::spawn(accept_loop(
            listener,
            None,
            proxy.clone(),
            graceful.clone(),
            stop_rx.clone(),
            abort_rx.clone(),
        )));
    }
    if let Some((listener, acceptor)) = listeners.tls {
        tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "listening for HTTPS");
        tasks.push(tokio::spawn(accept_loop(
            listener,
            Some(acceptor),
            proxy.clone(),
            graceful.clone(),
            stop_rx.clone(),
            abort_rx.clone(),
        )));
    }
    if let Some(listener) = listeners.operator {
        tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "listening for metrics and health checks");
        tasks.push(tokio::spawn(crate::operator::serve(
            listener,
            proxy.clone(),
            stop_rx.clone(),
        )));
    }
    shutdown.await;
    tracing::info!("shutting down: no new connections");
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    tokio::select! {
        () = shutdown_connections(graceful) => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(grace_secs = grace.as_secs(), "open connections did not finish in time and were dropped");
            let _ = abort_tx.send(true);
        }
    }
}

/// Waits until every watched connection has closed.
async fn shutdown_connections(graceful: Arc<GracefulShutdown>) {
    match Arc::try_unwrap(graceful) {
        Ok(graceful) => graceful.shutdown().await,
        Err(_) => tracing::warn!(
            "a connection handle outlived the accept loops; open connections are not awaited"
        ),
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    proxy: Arc<Proxy>,
    graceful: Arc<GracefulShutdown>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    abort: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (stream, client_addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    tracing::warn!(%error, "failed to accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let linger = LingerSwitch::default();
        let stream = Lingering::new(
            CountingStream {
                inner: stream,
                metrics: proxy.metrics().clone(),
            },
            linger.clone(),
        );
        let proxy = proxy.clone();
        // Each connection holds only a watcher, so the accept loops' handle
        // is the last one once they stop.
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let mut abort = abort.clone();
        tokio::spawn(async move {
            let serve = async move {
                match tls {
                    None => {
                        serve_connection(stream, client_addr, proxy, watcher, linger, false).await
                    }
                    // The handshake gets the time limit of a request head,
                    // so a client that sends nothing cannot hold a
                    // connection open.
                    Some(acceptor) => match tokio::time::timeout(
                        Duration::from_secs(HEADER_READ_TIMEOUT_SECS),
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, client_addr, proxy, watcher, linger, true)
                                .await
                        }
                        Ok(Err(error)) => {
                            tracing::info!(%error, %client_addr, "TLS handshake failed")
                        }
                        Err(_) => tracing::info!(
                            %client_addr,
                            timeout_secs = HEADER_READ_TIMEOUT_SECS,
                            "TLS handshake timed out"
                        ),
                    },
                }
            };
            // After the grace period the connection is dropped with its
            // request, which releases the proxy's state.
            tokio::select! {
                () = serve => {}
                _ = abort.wait_for(|aborted| *aborted) => {}
            }
        });
    }
}

async fn serve_connection<S>(
    stream: S,
    client_addr: SocketAddr,
    proxy: Arc<Proxy>,
    graceful: Watcher,
    linger: LingerSwitch,
    tls: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let served = proxy::ServedLines::default();
    let service = service_fn({
        let served = served.clone();
        move |mut request: http::Request<hyper::body::Incoming>| {
            if tls {
                request.extensions_mut().insert(proxy::TlsConnection);
            }
            let proxy = proxy.clone();
            let served = served.clone();
            let linger = linger.clone();
            async move {
                // hyper closes a connection whose request body a response
                // left unread, with or without `Connection: close`, and the
                // client may still be sending that body.
                let announces_body = proxy::declares_body(request.headers());
                let response = proxy::handle(proxy, request, client_addr, served).await;
                let closes = response
                    .headers()
                    .get(http::header::CONNECTION)
                    .is_some_and(|value| value == "close");
                linger.set(announces_body || closes);
                Ok::<_, std::convert::Infallible>(response)
            }
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(HEADER_READ_TIMEOUT_SECS))
        .keep_alive(true)
        // A client may shut down its sending side after the request and
        // still read the response.
        .half_close(true)
        .max_headers(crate::s3::headers::MAX_HEADER_FIELDS)
        .serve_connection(TokioIo::new(stream), service);
    // A poll that completes a request also writes its response, so the
    // request's log line follows the response.
    let mut watched = std::pin::pin!(graceful.watch(connection));
    let result = std::future::poll_fn(|cx| {
        let poll = watched.as_mut().poll(cx);
        served.write();
        poll
    })
    .await;
    if let Err(error) = result {
        if error.is_parse() || error.is_parse_too_large() {
            // hyper has sent 400 or 431 with no S3 error body, and the
            // request never reached the proxy, so it has no request id.
            tracing::info!(%error, client.addr = %client_addr, "rejected a request that is not valid HTTP/1.1");
        } else {
            tracing::debug!(%error, %client_addr, "connection ended with an error");
        }
    }
}

/// Starts a proxy for `config` on its listeners and returns the bound
/// addresses with a handle that stops it. Used by `serve` and by tests.
pub async fn spawn(
    config: Config,
) -> Result<RunningServer, Box<dyn std::error::Error + Send + Sync>> {
    spawn_with_auditor(config, None).await
}

/// Starts like [`spawn`], with `auditor` in place of the audit log of
/// `config.audit` when it is given.
pub async fn spawn_with_auditor(
    config: Config,
    auditor: Option<Auditor>,
) -> Result<RunningServer, Box<dyn std::error::Error + Send + Sync>> {
    let listeners = Listeners::bind(&config).await?;
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let ready_file = config.server.ready_file.clone();
    let proxy = Arc::new(Proxy::start_with_auditor(config, auditor).await?);
    let plain_addr = listeners.plain_addr();
    let tls_addr = listeners.tls_addr();
    let metrics_addr = listeners.operator_addr();
    if let Some(path) = ready_file {
        listeners.write_ready_file(&path)?;
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let weak_proxy = Arc::downgrade(&proxy);
    let task = tokio::spawn(run(
        proxy,
        listeners,
        async move {
            let _ = stop_rx.await;
        },
        grace,
    ));
    Ok(RunningServer {
        plain_addr,
        tls_addr,
        metrics_addr,
        stop: Some(stop_tx),
        task,
        proxy: weak_proxy,
    })
}

/// A proxy running in the background.
pub struct RunningServer {
    pub plain_addr: Option<SocketAddr>,
    pub tls_addr: Option<SocketAddr>,
    /// Address of the operator listener, when `metrics.listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    proxy: std::sync::Weak<Proxy>,
}

impl RunningServer {
    /// Stops accepting connections and waits for the server to finish.
    ///
    /// It also waits up to 5 seconds for the connection tasks to drop the
    /// proxy, because the proxy's audit log stays locked until then, and a
    /// new server or a key command started afterwards needs the lock.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.proxy.strong_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the server stops by itself.
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

/// A client connection that counts the bytes read and written into the
/// metrics, below TLS, so the counts are bytes on the wire.
struct CountingStream {
    inner: TcpStream,
    metrics: Arc<Metrics>,
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 {
            self.metrics.add_received(read as u64);
        }
        result
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = &result {
            self.metrics.add_sent(*written as u64);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(written)) = &result {
            self.metrics.add_sent(*written as u64);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a self-signed certificate and its key to `dir` and returns
    /// their paths.
    fn write_pair(dir: &Path, stem: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
        (cert, key)
    }

    fn tls_error(cert: &Path, key: &Path) -> String {
        match tls_acceptor(cert, key) {
            Ok(_) => panic!("{} and {} loaded", cert.display(), key.display()),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn tls_key_errors_name_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_pair(dir.path(), "one");
        let (_, other_key) = write_pair(dir.path(), "two");
        assert!(tls_acceptor(&cert, &key).is_ok());

        let mismatch = tls_error(&cert, &other_key);
        assert!(mismatch.contains(&cert.display().to_string()), "{mismatch}");
        assert!(
            mismatch.contains(&other_key.display().to_string()),
            "{mismatch}"
        );

        let encrypted = dir.path().join("encrypted.key");
        std::fs::write(
            &encrypted,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        let error = tls_error(&cert, &encrypted);
        assert!(error.contains("is encrypted"), "{error}");

        let error = tls_error(Path::new(""), &key);
        assert!(error.contains("server.tls_cert_file is empty"), "{error}");
    }
}
