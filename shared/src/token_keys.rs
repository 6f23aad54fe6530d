//! The keys of access tokens, read from Secrets Manager and cached in the process.
//!
//! Functions that sign (login, refresh, password change) read the private key ring
//! ([`crate::keyring`]); functions that only verify read the public JWKS the rotation publishes
//! to a secret of its own, and may read nothing else. Both verify with every key of the set they
//! read, so a token keeps verifying across rotations for as long as its key is published.
//!
//! Entries live for the configured TTL; after that a fresh read picks up rotations and removals
//! (a compromised key removed from the ring stops verifying within the TTL). An unknown `kid`
//! triggers one early read, at most every few seconds, so a verifier learns a new key at once.
//! When Secrets Manager is down, a warm function keeps using the keys it has. An empty ring (the
//! stack before its first rotation) is not cached for the TTL: signers answer `503` until a key
//! exists, and notice it within seconds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::DecodingKey;
use secrecy::ExposeSecret;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::DependencyError;
use crate::keyring::{KeyRing, KeyRingError, Signer, SigningAlgorithm};
use crate::keys::read_current_secret;

const SERVICE: &str = "Secrets Manager";
/// How long to wait before asking Secrets Manager again after a failure, an unknown `kid` or an
/// empty ring, so that neither an outage nor forged `kid`s turn into a flood of calls.
const RETRY_INTERVAL: Duration = Duration::from_secs(5);

enum Source {
    /// The private ring: sign, and verify with its public halves.
    Ring { client: Client, secret_id: String },
    /// The public JWKS: verify only.
    Jwks { client: Client, secret_id: String },
    /// Never re-read (unit tests and benchmarks).
    Fixed,
}

/// One read of the secret, ready to use.
struct Loaded {
    /// The ring and a signer per key (signing functions only).
    ring: Option<(KeyRing, HashMap<String, Arc<Signer>>)>,
    verifiers: HashMap<String, (SigningAlgorithm, Arc<DecodingKey>)>,
    /// The public keys as published.
    jwks: Arc<JwkSet>,
}

#[derive(Default)]
struct Cache {
    loaded: Option<Arc<Loaded>>,
    fresh_until: Option<Instant>,
    /// Earliest time an unknown `kid` may trigger another read.
    next_unknown_kid_refresh: Option<Instant>,
    /// Whether that read failed: until the next one, an unknown `kid` may be a key we could not
    /// learn, so it is a `503`, not a `401` that would log the user out.
    unknown_kid_refresh_failed: bool,
    /// Whether the last read failed and the keys are older than the TTL.
    stale: bool,
}

/// The public keys as published, and whether they are older than the cache's TTL (Secrets
/// Manager failed): a stale set may lack a key published since, so it must not be cached long.
pub struct PublishedKeys {
    pub jwks: Arc<JwkSet>,
    pub stale: bool,
}

pub struct TokenKeys {
    source: Source,
    ttl: Duration,
    /// How long a key must have been published before it signs.
    signing_delay: Duration,
    /// The one algorithm keys sign and verify with.
    algorithm: SigningAlgorithm,
    cache: Mutex<Cache>,
}

impl TokenKeys {
    /// Keys of a signing function: the private ring in `secret_id`.
    pub fn signing(
        client: Client,
        secret_id: impl Into<String>,
        ttl: Duration,
        signing_delay: Duration,
        algorithm: SigningAlgorithm,
    ) -> Self {
        let source = Source::Ring { client, secret_id: secret_id.into() };
        Self { source, ttl, signing_delay, algorithm, cache: Mutex::default() }
    }

    /// Keys of a verify-only function: the public JWKS in `secret_id`.
    pub fn verifying(client: Client, secret_id: impl Into<String>, ttl: Duration, algorithm: SigningAlgorithm) -> Self {
        let source = Source::Jwks { client, secret_id: secret_id.into() };
        Self { source, ttl, signing_delay: Duration::ZERO, algorithm, cache: Mutex::default() }
    }

    /// A ring that never changes (unit tests and benchmarks), of its first key's algorithm.
    pub fn fixed(ring: KeyRing, signing_delay: Duration) -> Self {
        let algorithm = ring.keys.first().map_or(SigningAlgorithm::Es256, |key| key.algorithm());
        let loaded = Loaded::from_ring(ring).expect("a fixed ring of valid keys");
        let cache = Cache { loaded: Some(Arc::new(loaded)), ..Cache::default() };
        Self { source: Source::Fixed, ttl: Duration::MAX, signing_delay, algorithm, cache: Mutex::new(cache) }
    }

    /// The algorithm tokens are signed and verified with.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    /// Loads the keys ahead of the first request. A failure is only logged: the first request
    /// retries, so an outage at cold start is a `503`, not a crash loop.
    pub async fn prefetch(&self) {
        let mut cache = self.cache.lock().await;
        if let Err(error) = self.ensure_fresh(&mut cache).await {
            tracing::warn!(error = %crate::error::Chain(&error), "token key prefetch failed; will retry on first use");
        }
    }

    /// The key new tokens are signed with at `now` (see [`KeyRing::signing_key`]); `503` while
    /// the ring is empty.
    pub async fn signer(&self, now: i64) -> Result<Arc<Signer>, DependencyError> {
        let loaded = {
            let mut cache = self.cache.lock().await;
            self.ensure_fresh(&mut cache).await?;
            cache.loaded.clone().expect("fresh keys are loaded")
        };
        let Some((ring, signers)) = &loaded.ring else {
            return Err(DependencyError::failed(SERVICE, "a verify-only function has no signing key"));
        };
        match ring.signing_key(now, self.signing_delay, self.algorithm) {
            Ok(key) => Ok(signers[&key.kid].clone()),
            Err(KeyRingError::Empty) => Err(DependencyError::Unavailable {
                service: SERVICE,
                source: "the signing key ring has no key yet (the first rotation has not run)".into(),
            }),
            Err(error) => Err(DependencyError::failed(SERVICE, error)),
        }
    }

    /// Every public key, as published (what `/.well-known/jwks.json` answers).
    pub async fn jwks(&self) -> Result<PublishedKeys, DependencyError> {
        let mut cache = self.cache.lock().await;
        self.ensure_fresh(&mut cache).await?;
        let jwks = cache.loaded.as_ref().expect("fresh keys are loaded").jwks.clone();
        Ok(PublishedKeys { jwks, stale: cache.stale })
    }

    /// The public key with this `kid`, if the ring or JWKS holds it for the configured algorithm.
    pub async fn verifier(&self, kid: &str) -> Result<Option<Arc<DecodingKey>>, DependencyError> {
        let mut cache = self.cache.lock().await;
        self.ensure_fresh(&mut cache).await?;
        let find = |cache: &Cache| {
            let (algorithm, key) = cache.loaded.as_ref()?.verifiers.get(kid)?;
            (*algorithm == self.algorithm).then(|| key.clone())
        };
        if let Some(key) = find(&cache) {
            return Ok(Some(key));
        }
        // Perhaps a rotation published it since the last read: look again, but not too often.
        let now = Instant::now();
        if matches!(self.source, Source::Fixed) {
            return Ok(None);
        }
        if cache.next_unknown_kid_refresh.is_none_or(|at| now >= at) {
            cache.next_unknown_kid_refresh = Some(now + RETRY_INTERVAL);
            let refreshed = self.refresh(&mut cache).await;
            cache.unknown_kid_refresh_failed = refreshed.is_err();
            refreshed?;
            return Ok(find(&cache));
        }
        if cache.unknown_kid_refresh_failed {
            return Err(DependencyError::Unavailable {
                service: SERVICE,
                source: "an unknown kid, and the last read of the keys failed".into(),
            });
        }
        Ok(None)
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
            Err(error) if cache.loaded.is_some() => {
                // Keep serving with the keys we have; try again shortly.
                tracing::warn!(error = %crate::error::Chain(&error), "token key refresh failed; using cached keys");
                cache.fresh_until = Some(Instant::now() + RETRY_INTERVAL);
                cache.stale = true;
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    async fn refresh(&self, cache: &mut Cache) -> Result<(), DependencyError> {
        let (client, secret_id) = match &self.source {
            Source::Ring { client, secret_id } | Source::Jwks { client, secret_id } => (client, secret_id),
            Source::Fixed => return Ok(()),
        };
        let value = read_current_secret(client, secret_id).await?;
        let text = std::str::from_utf8(value.expose_secret())
            .map_err(|_| DependencyError::failed(SERVICE, "the key secret is not UTF-8"))?;
        let loaded = match &self.source {
            Source::Ring { .. } => KeyRing::parse(text).and_then(Loaded::from_ring),
            _ => Loaded::from_jwks(text),
        }
        .map_err(|e| DependencyError::failed(SERVICE, e))?;
        let ttl = if loaded.verifiers.is_empty() { RETRY_INTERVAL.min(self.ttl) } else { self.ttl };
        cache.loaded = Some(Arc::new(loaded));
        cache.fresh_until = Some(Instant::now() + ttl);
        cache.stale = false;
        Ok(())
    }
}

impl Loaded {
    fn from_ring(ring: KeyRing) -> Result<Self, KeyRingError> {
        let signers = ring
            .keys
            .iter()
            .map(|key| key.signer().map(|signer| (key.kid.clone(), Arc::new(signer))))
            .collect::<Result<HashMap<_, _>, _>>()?;
        let verifiers = ring
            .keys
            .iter()
            .map(|key| {
                let jwk = key.public_jwk();
                DecodingKey::from_jwk(&jwk)
                    .map(|decoding| (key.kid.clone(), (key.algorithm(), Arc::new(decoding))))
                    .map_err(|_| KeyRingError::InvalidKey { kid: key.kid.clone(), reason: "no public key" })
            })
            .collect::<Result<HashMap<_, _>, _>>()?;
        Ok(Self { jwks: Arc::new(ring.jwks()), ring: Some((ring, signers)), verifiers })
    }

    /// The published keys: each an ES256 (P-256) or RS256 (RSA) key with a `kid`.
    fn from_jwks(text: &str) -> Result<Self, KeyRingError> {
        let set: JwkSet = serde_json::from_str(text).map_err(|e| KeyRingError::Malformed(e.to_string()))?;
        let mut verifiers = HashMap::new();
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            let invalid = |reason| KeyRingError::InvalidKey { kid: kid.clone(), reason };
            let algorithm = SigningAlgorithm::of_public_jwk(jwk).ok_or_else(|| invalid("not an ES256 or RS256 key"))?;
            if kid.is_empty() {
                return Err(invalid("no kid"));
            }
            let decoding = DecodingKey::from_jwk(jwk).map_err(|_| invalid("not a usable public key"))?;
            verifiers.insert(kid, (algorithm, Arc::new(decoding)));
        }
        Ok(Self { ring: None, verifiers, jwks: Arc::new(set) })
    }
}
