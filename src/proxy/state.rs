//! The proxy's long-lived state, built once at start-up from the config:
//! client credentials, bucket policy, keyring, upstream client and, in the
//! default configuration, the embedded store.

use crate::auth::{AuthConfig, CredentialStore};
use crate::config::{Config, UpstreamKind};
use crate::embedded::{self, EmbeddedStore};
use crate::keys::{Keyring, SecretString};
use crate::policy::Policy;
use crate::upstream::{self, Upstream};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A start-up failure, with a message that names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Keyring(#[from] crate::keys::KeyringError),
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

/// Client secrets by access key id.
pub struct ClientCredentials(HashMap<String, SecretString>);

impl CredentialStore for ClientCredentials {
    fn secret_access_key(&self, access_key_id: &str) -> Option<SecretString> {
        self.0.get(access_key_id).cloned()
    }
}

/// The state shared by every request.
pub struct Proxy {
    pub(crate) config: Arc<Config>,
    pub(crate) policy: Policy,
    pub(crate) keyring: Keyring,
    pub(crate) credentials: ClientCredentials,
    pub(crate) auth: AuthConfig,
    pub(crate) upstream: Upstream,
    _embedded: Option<EmbeddedStore>,
}

impl Proxy {
    /// Loads secrets and keys, starts the embedded store when configured,
    /// and builds the upstream client.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let policy = Policy::new(&config.buckets);
        let keyring = load_keyring(&config, &policy)?;
        let credentials = load_client_credentials(&config)?;

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
            keyring,
            credentials,
            auth,
            upstream,
            _embedded: embedded,
        })
    }
}

/// Loads the keyring and checks that every key named by a bucket rule is
/// in it. With `keys.create_missing`, missing keys are created first.
fn load_keyring(config: &Config, policy: &Policy) -> Result<Keyring, StartError> {
    let path = &config.keys.keyring_file;
    let mut keyring = if config.keys.create_missing {
        Keyring::load_or_empty(path)?
    } else {
        Keyring::load(path)?
    };
    for name in policy.key_names() {
        if keyring.contains(name) {
            continue;
        }
        if !config.keys.create_missing {
            return Err(crate::keys::KeyringError::KeyNotFound(name.to_string()).into());
        }
        let created = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        keyring.create_key(path, name, &mut rand::rngs::OsRng, &created)?;
        tracing::warn!(
            key = name,
            keyring = %path.display(),
            "created a development key-encryption key because keys.create_missing is set; \
             back up the keyring, because objects encrypted under it cannot be read without it"
        );
    }
    Ok(keyring)
}

fn load_client_credentials(config: &Config) -> Result<ClientCredentials, StartError> {
    let mut map = HashMap::new();
    for client in &config.clients {
        let err = |message: String| StartError::ClientSecret {
            access_key_id: client.access_key_id.clone(),
            message,
        };
        let secret = match (&client.secret_env, &client.secret_file) {
            (Some(var), _) => std::env::var(var)
                .map_err(|_| err(format!("environment variable {var} is not set")))?,
            (None, Some(path)) => {
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
                std::fs::read_to_string(path)
                    .map_err(|e| {
                        err(format!(
                            "failed to read secret_file {}: {e}",
                            path.display()
                        ))
                    })?
                    .trim()
                    .to_string()
            }
            (None, None) => return Err(err("no secret_env or secret_file".into())),
        };
        if secret.is_empty() {
            return Err(err("the secret is empty".into()));
        }
        map.insert(client.access_key_id.clone(), SecretString::new(secret));
    }
    Ok(ClientCredentials(map))
}

/// Returns a random 40-character secret of letters and digits.
fn generate_secret() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, 40)
}
