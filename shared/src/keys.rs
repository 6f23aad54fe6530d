//! The JWT signing key, read from a Secrets Manager secret and cached in the process.
//!
//! The secret's string is the HS256 key and its version id is the token's `kid`. The current
//! key (`AWSCURRENT`) signs; verification also accepts `AWSPREVIOUS`, looked up lazily by `kid`,
//! so the secret can be rotated without logging anyone out. Entries live for the configured TTL;
//! after that a fresh read picks up rotations, and a key rotated out beyond `AWSPREVIOUS` (or
//! whose `AWSPREVIOUS` label was removed) stops verifying. When Secrets Manager is down, a warm function keeps using the keys it has.
//!
//! [`HmacKeys`] holds an HMAC key from a secret of its own: the login throttle's, the mail links'.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use jsonwebtoken::{DecodingKey, EncodingKey};
use secrecy::{ExposeSecret, SecretBox};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::DependencyError;
use crate::mail::MailKey;
use crate::throttle::ThrottleKey;

const SERVICE: &str = "Secrets Manager";
/// Shortest HS256 key accepted: RFC 7518 §3.2 asks for at least the hash output size.
pub const MIN_KEY_BYTES: usize = 32;
/// How long to wait before asking Secrets Manager again after a failure or an unknown `kid`,
/// so that neither an outage nor forged `kid`s turn into a flood of calls.
const RETRY_INTERVAL: Duration = Duration::from_secs(5);

pub struct SigningKey {
    pub kid: String,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
}

impl SigningKey {
    pub fn new(kid: impl Into<String>, secret: &[u8]) -> Result<Self, DependencyError> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(DependencyError::failed(
                SERVICE,
                format!("signing key must be at least {MIN_KEY_BYTES} bytes"),
            ));
        }
        Ok(Self {
            kid: kid.into(),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        })
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

enum Source {
    SecretsManager { client: Client, secret_id: String },
    Fixed,
}

#[derive(Default)]
struct Cache {
    current: Option<Arc<SigningKey>>,
    /// `None`: not looked up since the last refresh; `Some(None)`: there is no previous version.
    previous: Option<Option<Arc<SigningKey>>>,
    fresh_until: Option<Instant>,
    /// Earliest time an unknown `kid` may trigger another read.
    next_unknown_kid_refresh: Option<Instant>,
}

pub struct SigningKeys {
    source: Source,
    ttl: Duration,
    cache: Mutex<Cache>,
}

impl SigningKeys {
    pub fn from_secrets_manager(client: Client, secret_id: impl Into<String>, ttl: Duration) -> Self {
        Self { source: Source::SecretsManager { client, secret_id: secret_id.into() }, ttl, cache: Mutex::default() }
    }

    /// Keys that never change (benchmarks and pure unit tests).
    pub fn fixed(current: SigningKey, previous: Option<SigningKey>) -> Self {
        let cache = Cache {
            current: Some(Arc::new(current)),
            previous: Some(previous.map(Arc::new)),
            fresh_until: None,
            next_unknown_kid_refresh: None,
        };
        Self { source: Source::Fixed, ttl: Duration::MAX, cache: Mutex::new(cache) }
    }

    /// Loads the current key ahead of the first request. A failure is only logged: the first
    /// request retries, so an outage at cold start is a `503`, not a crash loop.
    pub async fn prefetch(&self) {
        if let Err(error) = self.current().await {
            tracing::warn!(error = %crate::error::Chain(&error), "signing key prefetch failed; will retry on first use");
        }
    }

    /// The key new tokens are signed with.
    pub async fn current(&self) -> Result<Arc<SigningKey>, DependencyError> {
        let mut cache = self.cache.lock().await;
        self.ensure_fresh(&mut cache).await?;
        cache.current.clone().ok_or_else(|| DependencyError::failed(SERVICE, "no current signing key"))
    }

    /// The key with this `kid` if it is the current or the previous version, else `None`.
    pub async fn for_kid(&self, kid: &str) -> Result<Option<Arc<SigningKey>>, DependencyError> {
        let mut cache = self.cache.lock().await;
        self.ensure_fresh(&mut cache).await?;
        if let Some(key) = self.lookup(&mut cache, kid).await? {
            return Ok(Some(key));
        }
        // Perhaps the secret was rotated since the last read: look again, but not too often.
        let now = Instant::now();
        if matches!(self.source, Source::SecretsManager { .. })
            && cache.next_unknown_kid_refresh.is_none_or(|at| now >= at)
        {
            cache.next_unknown_kid_refresh = Some(now + RETRY_INTERVAL);
            self.refresh(&mut cache).await?;
            return self.lookup(&mut cache, kid).await;
        }
        Ok(None)
    }

    async fn lookup(&self, cache: &mut Cache, kid: &str) -> Result<Option<Arc<SigningKey>>, DependencyError> {
        if let Some(current) = cache.current.as_ref().filter(|key| key.kid == kid) {
            return Ok(Some(current.clone()));
        }
        if cache.previous.is_none() {
            cache.previous = Some(self.fetch("AWSPREVIOUS").await?.map(Arc::new));
        }
        Ok(cache.previous.clone().flatten().filter(|key| key.kid == kid))
    }

    async fn ensure_fresh(&self, cache: &mut Cache) -> Result<(), DependencyError> {
        let stale = match (&self.source, cache.fresh_until) {
            (Source::Fixed, _) => false,
            (_, None) => true,
            (_, Some(until)) => Instant::now() >= until,
        };
        if !stale {
            return Ok(());
        }
        match self.refresh(cache).await {
            Ok(()) => Ok(()),
            Err(error) if cache.current.is_some() => {
                // Keep serving with the keys we have; try again shortly.
                tracing::warn!(error = %crate::error::Chain(&error), "signing key refresh failed; using cached keys");
                cache.fresh_until = Some(Instant::now() + RETRY_INTERVAL);
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    async fn refresh(&self, cache: &mut Cache) -> Result<(), DependencyError> {
        let current = self
            .fetch("AWSCURRENT")
            .await?
            .ok_or_else(|| DependencyError::failed(SERVICE, "secret has no AWSCURRENT version"))?;
        // Forget the previous version too, whether or not the current one changed: taking the
        // AWSPREVIOUS label off a compromised key must stop it verifying within the TTL.
        cache.previous = None;
        cache.current = Some(Arc::new(current));
        cache.fresh_until = Some(Instant::now() + self.ttl);
        Ok(())
    }

    async fn fetch(&self, stage: &str) -> Result<Option<SigningKey>, DependencyError> {
        let Source::SecretsManager { client, secret_id } = &self.source else {
            return Ok(None);
        };
        match read_secret(client, secret_id, stage).await? {
            Some((kid, secret)) => SigningKey::new(kid, secret.expose_secret()).map(Some),
            None => Ok(None),
        }
    }
}

/// One version of a secret: its version id and value, `None` when no version has `stage`
/// (other than `AWSCURRENT`, which every secret has).
pub(crate) async fn read_secret(
    client: &Client,
    secret_id: &str,
    stage: &str,
) -> Result<Option<(String, SecretBox<[u8]>)>, DependencyError> {
    let output = match client.get_secret_value().secret_id(secret_id).version_stage(stage).send().await {
        Ok(output) => output,
        Err(error) => {
            let not_found = error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception());
            if not_found && stage != "AWSCURRENT" {
                return Ok(None);
            }
            return Err(DependencyError::from_sdk(SERVICE, error));
        }
    };
    let version = output.version_id().ok_or_else(|| DependencyError::failed(SERVICE, "secret version has no id"))?;
    let secret: &[u8] = match (output.secret_string(), output.secret_binary()) {
        (Some(text), _) => text.as_bytes(),
        (None, Some(blob)) => blob.as_ref(),
        (None, None) => return Err(DependencyError::failed(SERVICE, "secret has no value")),
    };
    Ok(Some((version.to_owned(), SecretBox::new(secret.into()))))
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
        match read_secret(client, secret_id, "AWSCURRENT").await? {
            Some((_, secret)) if secret.expose_secret().len() >= MIN_KEY_BYTES => {
                let fresh = Arc::new(K::from_secret(secret.expose_secret()));
                *key = Some(fresh.clone());
                Ok(fresh)
            }
            _ => Err(DependencyError::failed(SERVICE, format!("{} must be at least {MIN_KEY_BYTES} bytes", K::NAME))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_signing_key_when_debug_printed_then_the_kid_shows_and_the_secret_does_not() {
        let key = SigningKey::new("v1", b"a-signing-secret-of-at-least-32-bytes").unwrap();

        let printed = format!("{key:?}");

        assert_eq!(printed, r#"SigningKey { kid: "v1", .. }"#);
    }
}
