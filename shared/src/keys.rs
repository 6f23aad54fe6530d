//! Reading secrets, and the HMAC keys held in secrets of their own (the login throttle's, the
//! mail links'). The keys of access tokens are in [`crate::token_keys`].

use std::sync::Arc;

use aws_sdk_secretsmanager::Client;
use secrecy::{ExposeSecret, SecretBox};
use tokio::sync::Mutex;

use crate::error::DependencyError;
use crate::mail::MailKey;
use crate::throttle::ThrottleKey;

const SERVICE: &str = "Secrets Manager";
/// Shortest HMAC-SHA256 key accepted: RFC 2104 §3 (and RFC 7518 §3.2) ask for at least the hash output size.
pub const MIN_KEY_BYTES: usize = 32;

/// The value of a secret's current version (`AWSCURRENT`; functions may read no other stage).
pub(crate) async fn read_current_secret(client: &Client, secret_id: &str) -> Result<SecretBox<[u8]>, DependencyError> {
    let output = client
        .get_secret_value()
        .secret_id(secret_id)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .map_err(|error| DependencyError::from_sdk(SERVICE, error))?;
    let secret: &[u8] = match (output.secret_string(), output.secret_binary()) {
        (Some(text), _) => text.as_bytes(),
        (None, Some(blob)) => blob.as_ref(),
        (None, None) => return Err(DependencyError::failed(SERVICE, "secret has no value")),
    };
    Ok(SecretBox::new(secret.into()))
}

/// An HMAC key held in a secret of its own (the login throttle's, the mail links').
pub trait HmacKey: Send + Sync + 'static {
    /// What the key is for, in errors and logs.
    const NAME: &'static str;
    fn from_secret(secret: &[u8]) -> Self;
}

impl HmacKey for ThrottleKey {
    const NAME: &'static str = "throttle key";
    fn from_secret(secret: &[u8]) -> Self {
        ThrottleKey::new(secret)
    }
}

impl HmacKey for MailKey {
    const NAME: &'static str = "mail key";
    fn from_secret(secret: &[u8]) -> Self {
        MailKey::new(secret)
    }
}

/// An HMAC key read from its own secret once per process (such secrets are never rotated
/// automatically; see SECURITY.md). Until a read succeeds, each request tries again (within the
/// SDK's retries), as for a signing key at cold start.
pub struct HmacKeys<K> {
    source: Option<(Client, String)>,
    key: Mutex<Option<Arc<K>>>,
}

/// The login throttle's key (also the parent of the refresh-token successor key).
pub type ThrottleKeys = HmacKeys<ThrottleKey>;
/// The key mail-link tokens are derived with.
pub type MailKeys = HmacKeys<MailKey>;

impl<K: HmacKey> HmacKeys<K> {
    pub fn from_secrets_manager(client: Client, secret_id: impl Into<String>) -> Self {
        Self { source: Some((client, secret_id.into())), key: Mutex::default() }
    }

    /// A key that never changes (pure unit tests).
    pub fn fixed(key: K) -> Self {
        Self { source: None, key: Mutex::new(Some(Arc::new(key))) }
    }

    /// Reads the key during init; a failure is only logged and retried by the first request.
    pub async fn prefetch(&self) {
        if let Err(error) = self.key().await {
            tracing::warn!(error = %crate::error::Chain(&error), "{} prefetch failed; will retry on first use", K::NAME);
        }
    }

    pub async fn key(&self) -> Result<Arc<K>, DependencyError> {
        let mut key = self.key.lock().await;
        if let Some(key) = key.as_ref() {
            return Ok(key.clone());
        }
        let Some((client, secret_id)) = &self.source else {
            return Err(DependencyError::failed(SERVICE, format!("no {}", K::NAME)));
        };
        let secret = read_current_secret(client, secret_id).await?;
        if secret.expose_secret().len() < MIN_KEY_BYTES {
            return Err(DependencyError::failed(
                SERVICE,
                format!("{} must be at least {MIN_KEY_BYTES} bytes", K::NAME),
            ));
        }
        let fresh = Arc::new(K::from_secret(secret.expose_secret()));
        *key = Some(fresh.clone());
        Ok(fresh)
    }
}
