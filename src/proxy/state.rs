//! The proxy's long-lived state, built once at start-up from the config:
//! client credentials, bucket policy, the key service with its keyring and
//! audit log, the upstream client, the metrics and, in the default
//! configuration, the embedded store.

use crate::audit::Auditor;
use crate::auth::{AuthConfig, CredentialStore, SigningKeyCache};
use crate::config::{Config, UpstreamKind};
use crate::embedded::{self, EmbeddedStore};
use crate::keys::{KeyService, KeyServiceError, SecretString};
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::upstream::{self, Upstream, UpstreamRequest};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A start-up failure, with a message that names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Keys(#[from] KeyServiceError),
    #[error(transparent)]
    Upstream(#[from] upstream::UpstreamError),
    #[error(transparent)]
    Embedded(#[from] embedded::EmbeddedError),
    #[error("client {access_key_id}: {message}")]
    ClientSecret {
        access_key_id: String,
        message: String,
    },
}

/// Client secrets by access key id, with the signing keys derived from
/// them.
pub struct ClientCredentials {
    secrets: HashMap<String, SecretString>,
    signing_keys: SigningKeyCache,
}

impl CredentialStore for ClientCredentials {
    fn secret_access_key(&self, access_key_id: &str) -> Option<SecretString> {
        self.secrets.get(access_key_id).cloned()
    }

    fn signing_keys(&self) -> Option<&SigningKeyCache> {
        Some(&self.signing_keys)
    }
}

/// The state shared by every request.
pub struct Proxy {
    pub(crate) config: Arc<Config>,
    pub(crate) policy: Policy,
    pub(crate) keys: KeyService,
    pub(crate) credentials: ClientCredentials,
    pub(crate) auth: AuthConfig,
    pub(crate) upstream: Upstream,
    pub(crate) metrics: Arc<Metrics>,
    _embedded: Option<EmbeddedStore>,
}

impl Proxy {
    /// Opens the audit log, loads secrets and keys, starts the embedded
    /// store when configured, and builds the upstream client.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        Self::start_with_auditor(config, None).await
    }

    /// Starts like [`Self::start`], but records key accesses with `auditor`
    /// instead of the audit log of `config.audit` when it is given. Tests
    /// use it to put a failing sink behind the proxy.
    pub async fn start_with_auditor(
        config: Config,
        auditor: Option<Auditor>,
    ) -> Result<Self, StartError> {
        let policy = Policy::new(&config.buckets);
        let required: Vec<&str> = policy.key_names().collect();
        // Client secrets first: a start that fails on them writes no
        // audit records.
        let credentials = load_client_credentials(&config)?;
        let keys = KeyService::start(&config, &required, auditor)?;

        let (endpoint, embedded, (access_key_id, secret)) = match config.upstream.effective_kind() {
            UpstreamKind::Embedded => {
                let store = embedded::start(&config.embedded).await?;
                let creds = (store.access_key_id.clone(), store.secret_access_key.clone());
                (store.endpoint.clone(), Some(store), creds)
            }
            UpstreamKind::Remote => {
                let endpoint = config.upstream.endpoint.clone().unwrap_or_default();
                (
                    endpoint,
                    None,
                    upstream::load_credentials(&config.upstream)?,
                )
            }
        };
        let upstream = Upstream::new(&config.upstream, &endpoint, access_key_id, &secret)?;
        tracing::info!(%endpoint, "upstream configured");

        let auth = AuthConfig {
            regions: vec![config.server.region.clone()],
            max_clock_skew: Duration::from_secs(config.server.max_clock_skew_secs),
        };
        Ok(Self {
            config: Arc::new(config),
            policy,
            keys,
            credentials,
            auth,
            upstream,
            metrics: Arc::new(Metrics::default()),
            _embedded: embedded,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn keys(&self) -> &KeyService {
        &self.keys
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Sends ListBuckets to the upstream and waits at most `timeout` for the
    /// response head. Any HTTP status counts as a response, because an
    /// upstream user without `s3:ListAllMyBuckets` gets 403 from a working
    /// endpoint.
    pub async fn probe_upstream(&self, timeout: Duration) -> Result<http::StatusCode, String> {
        let request = UpstreamRequest {
            method: http::Method::GET,
            bucket: None,
            key: None,
            query: String::new(),
            headers: http::HeaderMap::new(),
            content_length: None,
        };
        match tokio::time::timeout(timeout, self.upstream.send(request, upstream::empty_body()))
            .await
        {
            Ok(Ok(response)) => Ok(response.status()),
            Ok(Err(error)) => Err(error_chain(&error)),
            Err(_) => Err(format!("no response within {} ms", timeout.as_millis())),
        }
    }
}

fn load_client_credentials(config: &Config) -> Result<ClientCredentials, StartError> {
    Ok(ClientCredentials {
        secrets: read_client_secrets(config, true)?,
        signing_keys: SigningKeyCache::default(),
    })
}

/// The minimum length of a client's secret access key. AWS issues secrets
/// of 40 characters.
const MIN_CLIENT_SECRET_CHARS: usize = 16;

/// Reads the secret of every client, for a start and for `config check`.
/// A missing `secret_file` of a client with `generate_secret` is written
/// first with `generate`, and skipped without it.
pub fn read_client_secrets(
    config: &Config,
    generate: bool,
) -> Result<HashMap<String, SecretString>, StartError> {
    let mut map = HashMap::new();
    for client in &config.clients {
        let err = |message: String| StartError::ClientSecret {
            access_key_id: client.access_key_id.clone(),
            message,
        };
        let secret = match (&client.secret_env, &client.secret_file) {
            (Some(var), _) => {
                // Leading and trailing whitespace is dropped, as from a
                // secret_file, because a secret in a file often ends in a
                // newline when a deployment copies it into the variable.
                let secret = std::env::var(var)
                    .map_err(|_| err(format!("environment variable {var} is not set")))?
                    .trim()
                    .to_string();
                if secret.is_empty() {
                    return Err(err(format!("environment variable {var} is empty")));
                }
                secret
            }
            (None, Some(path)) => {
                if !path.exists() && client.generate_secret && !generate {
                    continue;
                }
                if !path.exists() && client.generate_secret {
                    let secret = generate_secret();
                    embedded::write_private_file(path, &format!("{secret}\n"))
                        .map_err(|e| err(format!("failed to write {}: {e}", path.display())))?;
                    tracing::warn!(
                        access_key_id = %client.access_key_id,
                        secret_file = %path.display(),
                        "generated a client secret for local development"
                    );
                }
                crate::config::warn_if_shared(path, "client secret_file");
                let secret = std::fs::read_to_string(path)
                    .map_err(|e| {
                        let fix = match e.kind() {
                            std::io::ErrorKind::NotFound => {
                                "; write the client's secret access key into it, or set \
                                 generate_secret = true to have one generated"
                            }
                            std::io::ErrorKind::PermissionDenied => {
                                "; the user that runs s3seal must be able to read it"
                            }
                            _ => "",
                        };
                        err(format!(
                            "failed to read secret_file {}: {e}{fix}",
                            path.display()
                        ))
                    })?
                    .trim()
                    .to_string();
                if secret.is_empty() {
                    return Err(err(format!(
                        "secret_file {} is empty; write the client's secret access key into it{}",
                        path.display(),
                        if client.generate_secret {
                            ", or delete it to have a new one generated"
                        } else {
                            ""
                        }
                    )));
                }
                secret
            }
            (None, None) => return Err(err("no secret_env or secret_file".into())),
        };
        if secret.is_empty() {
            return Err(err("the secret is empty".into()));
        }
        let length = secret.chars().count();
        if length < MIN_CLIENT_SECRET_CHARS {
            return Err(err(format!(
                "the secret is {length} characters long, and a short secret can be guessed from \
                 one signed request; use at least {MIN_CLIENT_SECRET_CHARS}, such as the output \
                 of `openssl rand -base64 30`"
            )));
        }
        map.insert(client.access_key_id.clone(), SecretString::new(secret));
    }
    Ok(map)
}

/// Returns a random 40-character secret of letters and digits.
fn generate_secret() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, 40)
}

/// Returns an error's message followed by the messages of its sources,
/// such as `upstream request failed: client error (Connect): tcp connect
/// error: Connection refused (os error 111)`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut previous = message.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        // A wrapper that prints its cause would otherwise repeat it.
        let text = cause.to_string();
        if !previous.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        previous = text;
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Transparent(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Outer(#[source] Transparent);

    #[test]
    fn error_chain_skips_repeated_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let error = Outer(Transparent(io));
        assert_eq!(
            error_chain(&error),
            "client error (Connect): connection refused"
        );
    }
}
