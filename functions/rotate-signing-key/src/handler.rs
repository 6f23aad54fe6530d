//! Secrets Manager's four rotation steps for the signing key ring, each safe to repeat:
//!
//! - `createSecret`: the current ring with a new key added (older keys marked to stop signing once
//!   it may, keys no longer needed dropped), stored as the `AWSPENDING` version under the
//!   rotation's token; nothing if that version exists. A ring that cannot be read stops the
//!   rotation rather than lose keys.
//! - `setSecret`: the pending ring's public keys written to the JWKS secret (under the same
//!   token, so a repeat is ignored); refused more than 5 minutes after `createSecret` stamped the
//!   key's publication time.
//! - `testSecret`: every pending key signs, and the published JWKS verifies what it signed.
//! - `finishSecret`: `AWSCURRENT` moved to the new version and `AWSPENDING` removed, so that it
//!   exists only during a rotation.
//!
//! A key is published when it is added: signers wait `JwksMaxAge` + `KeyCacheTtlSeconds` before
//! using it ([`shared::keyring`]).

use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;
use aws_sdk_secretsmanager::Client;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Header, Validation};
use shared::aws::Clients;
use shared::config::{ConfigError, KeyRingSettings};
use shared::keyring::{KeyRing, RingKey};
use shared::Config;
use std::collections::HashMap;
use std::time::Duration;

const CURRENT: &str = "AWSCURRENT";
const PENDING: &str = "AWSPENDING";

type Error = lambda_runtime::Error;

/// The longest setSecret may come after createSecret (Secrets Manager runs them back to back).
const MAX_STEP_GAP_SECONDS: i64 = 300;

pub struct Deps {
    secrets: Client,
    key_ring_secret_id: String,
    jwks_secret_id: String,
    access_ttl: Duration,
    settings: KeyRingSettings,
}

impl shared::lambda::EventFunction for Deps {
    type Event = SecretsManagerSecretRotationEvent;
    type Output = ();

    fn build(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        Ok(Self {
            secrets: aws.secrets(),
            key_ring_secret_id: config.key_ring.key_ring_secret_id()?.to_owned(),
            jwks_secret_id: config.key_ring.jwks_secret_id()?.to_owned(),
            access_ttl: config.tokens.access_ttl,
            settings: config.key_ring.clone(),
        })
    }

    async fn handle(&self, event: Self::Event) -> Result<(), Error> {
        let result = self.step(&event, shared::now_epoch()).await;
        match &result {
            Ok(()) => tracing::info!(step = %event.step, version = %event.client_request_token, "rotation step done"),
            Err(error) => tracing::error!(
                step = %event.step,
                version = %event.client_request_token,
                error = %shared::error::Chain(error.as_ref()),
                "rotation step failed"
            ),
        }
        result
    }
}

impl Deps {
    /// Runs one step of the rotation `event` describes, at `now`.
    pub async fn step(&self, event: &SecretsManagerSecretRotationEvent, now: i64) -> Result<(), Error> {
        if event.secret_id != self.key_ring_secret_id {
            return Err(
                format!("this function rotates only {}, not {}", self.key_ring_secret_id, event.secret_id).into()
            );
        }
        let token = event.client_request_token.as_str();
        let versions = self.versions().await?;
        match event.step.as_str() {
            "createSecret" if versions.contains_key(token) => Ok(()),
            "createSecret" => self.create(token, now).await,
            step if !versions.contains_key(token) => {
                Err(format!("{step}: no version {token} (createSecret comes first)").into())
            }
            "setSecret" => self.publish(token, now).await,
            "testSecret" => self.test(token).await,
            "finishSecret" => self.finish(token, &versions).await,
            other => Err(format!("unknown rotation step {other:?}").into()),
        }
    }

    /// Every version of the ring and its staging labels.
    async fn versions(&self) -> Result<HashMap<String, Vec<String>>, Error> {
        let secret = self.secrets.describe_secret().secret_id(&self.key_ring_secret_id).send().await?;
        Ok(secret.version_ids_to_stages().cloned().unwrap_or_default())
    }

    async fn ring(&self, secret_id: &str, version: Option<&str>, stage: &str) -> Result<String, Error> {
        let value = self
            .secrets
            .get_secret_value()
            .secret_id(secret_id)
            .set_version_id(version.map(str::to_owned))
            .version_stage(stage)
            .send()
            .await?;
        Ok(value.secret_string().ok_or("the secret holds no string")?.to_owned())
    }

    async fn create(&self, token: &str, now: i64) -> Result<(), Error> {
        let current = KeyRing::parse(&self.ring(&self.key_ring_secret_id, None, CURRENT).await?)?;
        let ring = current.rotated(
            RingKey::generate(self.settings.algorithm, now),
            now,
            self.access_ttl,
            self.settings.signing_delay,
        );
        self.secrets
            .put_secret_value()
            .secret_id(&self.key_ring_secret_id)
            .client_request_token(token)
            .secret_string(ring.to_json())
            .version_stages(PENDING)
            .send()
            .await?;
        Ok(())
    }

    async fn pending(&self, token: &str) -> Result<KeyRing, Error> {
        Ok(KeyRing::parse(&self.ring(&self.key_ring_secret_id, Some(token), PENDING).await?)?)
    }

    async fn publish(&self, token: &str, now: i64) -> Result<(), Error> {
        let ring = self.pending(token).await?;
        // The new key may sign `signing_delay` after its `published_at`, stamped by createSecret:
        // published much later (a retried step), it would sign before verifiers can hold it.
        let made_at = ring.keys.iter().map(|key| key.published_at).max().unwrap_or(now);
        if now - made_at > MAX_STEP_GAP_SECONDS {
            return Err(format!(
                "setSecret: the pending key was made {} s ago (more than {MAX_STEP_GAP_SECONDS} s): remove AWSPENDING \
                 from version {token} and rotate again (README, \"Signing keys and their rotation\")",
                now - made_at
            )
            .into());
        }
        let jwks = serde_json::to_string(&ring.jwks())?;
        self.secrets
            .put_secret_value()
            .secret_id(&self.jwks_secret_id)
            .client_request_token(token)
            .secret_string(jwks)
            .send()
            .await?;
        Ok(())
    }

    async fn test(&self, token: &str) -> Result<(), Error> {
        let ring = self.pending(token).await?;
        let jwks: JwkSet = serde_json::from_str(&self.ring(&self.jwks_secret_id, None, CURRENT).await?)?;
        for key in &ring.keys {
            let algorithm = key.algorithm().jose();
            let mut validation = Validation::new(algorithm);
            validation.required_spec_claims.clear();
            validation.validate_exp = false;
            let signer = key.signer()?;
            let mut header = Header::new(algorithm);
            header.kid = Some(signer.kid.clone());
            let probe = jsonwebtoken::encode(&header, &serde_json::json!({"probe": token}), &signer.encoding)?;
            let published = jwks.find(&key.kid).ok_or_else(|| format!("key {} is not in the JWKS", key.kid))?;
            jsonwebtoken::decode::<serde_json::Value>(&probe, &DecodingKey::from_jwk(published)?, &validation)
                .map_err(|e| format!("the JWKS does not verify key {}: {e}", key.kid))?;
        }
        Ok(())
    }

    async fn finish(&self, token: &str, versions: &HashMap<String, Vec<String>>) -> Result<(), Error> {
        let current = versions.iter().find(|(_, stages)| stages.iter().any(|s| s == CURRENT)).map(|(v, _)| v.clone());
        if current.as_deref() != Some(token) {
            self.secrets
                .update_secret_version_stage()
                .secret_id(&self.key_ring_secret_id)
                .version_stage(CURRENT)
                .move_to_version_id(token)
                .set_remove_from_version_id(current)
                .send()
                .await?;
        }
        if versions.get(token).is_some_and(|stages| stages.iter().any(|s| s == PENDING)) {
            self.secrets
                .update_secret_version_stage()
                .secret_id(&self.key_ring_secret_id)
                .version_stage(PENDING)
                .remove_from_version_id(token)
                .send()
                .await?;
        }
        Ok(())
    }
}
