//! The dependencies of the token-handling functions, built once at cold start and handed to
//! their handlers: the functions that sign read the private key ring, those that only verify
//! read the public JWKS (and their IAM statements allow nothing else).

use std::sync::Arc;

use crate::aws::Clients;
use crate::config::{Config, ConfigError};
use crate::store::Store;
use crate::token_keys::TokenKeys;
use crate::tokens::AccessTokens;

pub struct TokenServices {
    pub store: Store,
    pub tokens: AccessTokens,
}

impl TokenServices {
    /// For functions that issue access tokens (login, refresh, password change).
    pub fn signing(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        let ring = &config.key_ring;
        let keys = TokenKeys::signing(
            aws.secrets(),
            ring.key_ring_secret_id()?,
            config.key_cache_ttl,
            ring.signing_delay,
            ring.algorithm,
        );
        Self::with(config, aws, keys)
    }

    /// For functions that only verify access tokens.
    pub fn verifying(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        let ring = &config.key_ring;
        let keys = TokenKeys::verifying(aws.secrets(), ring.jwks_secret_id()?, config.key_cache_ttl, ring.algorithm);
        Self::with(config, aws, keys)
    }

    fn with(config: &Config, aws: &Clients, keys: TokenKeys) -> Result<Self, ConfigError> {
        Ok(Self {
            store: Store::new(aws.dynamodb(), &config.table_name),
            tokens: AccessTokens::new(Arc::new(keys), config.tokens.clone())?,
        })
    }
}
