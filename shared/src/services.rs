//! The dependencies of the token-handling functions (login, refresh, get-user), built once at
//! cold start and handed to their handlers.

use std::sync::Arc;

use crate::aws::Clients;
use crate::config::{Config, ConfigError};
use crate::keys::SigningKeys;
use crate::store::Store;
use crate::tokens::AccessTokens;

pub struct TokenServices {
    pub store: Store,
    pub tokens: AccessTokens,
}

impl TokenServices {
    pub fn new(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        let keys = SigningKeys::from_secrets_manager(
            aws.secrets.clone(),
            config.signing_key_secret_id()?,
            config.key_cache_ttl,
        );
        Ok(Self {
            store: Store::new(aws.dynamodb.clone(), &config.table_name),
            tokens: AccessTokens::new(Arc::new(keys), config.tokens.clone()),
        })
    }
}
