//! The dependencies of the token-handling functions (login, refresh, get-user), built once at
//! cold start and handed to their handlers.

use std::sync::Arc;

use crate::config::{Config, ConfigError};
use crate::keys::SigningKeys;
use crate::store::Store;
use crate::tokens::AccessTokens;

pub struct TokenServices {
    pub store: Store,
    pub tokens: AccessTokens,
    pub cors_allowed_origin: Option<String>,
}

impl TokenServices {
    pub fn new(
        config: &Config,
        dynamodb: aws_sdk_dynamodb::Client,
        secrets: aws_sdk_secretsmanager::Client,
    ) -> Result<Self, ConfigError> {
        let keys = SigningKeys::from_secrets_manager(secrets, config.signing_key_secret_id()?, config.key_cache_ttl);
        Ok(Self {
            store: Store::new(dynamodb, &config.table_name),
            tokens: AccessTokens::new(Arc::new(keys), config.tokens.clone()),
            cors_allowed_origin: config.cors_allowed_origin.clone(),
        })
    }
}
