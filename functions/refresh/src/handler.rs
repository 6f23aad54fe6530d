//! `POST /refresh` `{"refresh_token"}` → `200` with a new access token and the family's next
//! refresh token. Each refresh token works once; presenting a used one revokes its family,
//! except the one just replaced, within `REFRESH_REUSE_GRACE_SECONDS`, which gets the family's
//! current token again (see `shared::tokens::RefreshToken`).

use std::time::Duration;

use http::Method;
use lambda_http::{Body, Request, Response};
use shared::aws::Clients;
use shared::config::{Config, ConfigError};
use shared::http::{json_response, require_method, JsonFields};
use shared::keys::ThrottleKeys;
use shared::lambda::{Function, RequestLog};
use shared::services::TokenServices;
use shared::store::{PresentedToken, Rotation};
use shared::tokens::{token_pair, RefreshToken};
use shared::{now_epoch, ApiError};

/// The label of the successor key derived from the throttle key.
const SUCCESSOR_KEY: &str = "refresh-token-successor";

/// What the handler needs; built once per cold start.
pub struct Deps {
    pub services: TokenServices,
    /// The key successors are derived with is a subkey of the throttle key.
    pub keys: ThrottleKeys,
    pub grace: Duration,
}

impl Function for Deps {
    fn build(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        let keys = ThrottleKeys::from_secrets_manager(aws.secrets(), config.throttle_key_secret_id()?);
        Ok(Self { services: TokenServices::signing(config, aws)?, keys, grace: config.refresh_reuse_grace })
    }

    /// Reads both keys and opens the DynamoDB connection during init.
    async fn warm(&self) {
        tokio::join!(self.services.tokens.keys().prefetch(), self.keys.prefetch(), self.services.store.connect(1));
    }

    async fn handle(&self, req: &Request, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
        refresh(req, self, log).await
    }
}

/// Reads the body: a `400`/`413`/`415` for an unreadable one, a `422` for missing or unknown
/// fields, a `401` for a token that is not one of ours in shape. Public for the fuzz targets.
pub fn parse(req: &Request) -> Result<RefreshToken, ApiError> {
    let mut fields = JsonFields::from_request(req, &["refresh_token"])?;
    let presented = fields.string("refresh_token");
    fields.finish()?;
    presented.as_deref().and_then(RefreshToken::parse).ok_or(ApiError::InvalidRefreshToken("malformed"))
}

async fn refresh(req: &Request, deps: &Deps, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
    require_method(req, &Method::POST)?;
    let presented = parse(req)?;
    let (store, tokens) = (&deps.services.store, &deps.services.tokens);

    // Make sure a token can be signed before the presented one is spent: a rotation followed by
    // a failed signature would leave the client holding a used token.
    let now = now_epoch();
    let (signing, successor_key) = tokio::join!(tokens.keys().signer(now), deps.keys.key());
    signing?;
    let next = presented.successor(&successor_key?.subkey(SUCCESSOR_KEY));

    let family = presented.family();
    log.user(family.user_id);
    let token = PresentedToken { family, hash: &presented.hash(), successor_hash: &next.hash() };
    match store.rotate_session(token, deps.grace.as_secs() as i64, now).await? {
        Rotation::Rotated | Rotation::Repeated => {
            let access_token = tokens.issue(&tokens.issuer(req)?, family.user_id, family.email_verified, now).await?;
            log.outcome("refreshed");
            json_response(http::StatusCode::OK, &token_pair(access_token, tokens.settings(), &next, now))
        }
        Rotation::Reused => {
            log.outcome("reuse_detected");
            log.detail("family", family.id());
            store.revoke_session(family, now).await?;
            log.alert("used refresh token presented; family revoked");
            Err(ApiError::InvalidRefreshToken("reused"))
        }
        Rotation::Unknown => Err(ApiError::InvalidRefreshToken("unknown")),
        Rotation::Expired => Err(ApiError::InvalidRefreshToken("expired")),
        Rotation::Revoked => Err(ApiError::InvalidRefreshToken("revoked")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::lambda::Service;
    use shared::testing::{assert_problem, error_fields, event, offline_token_services};
    use shared::throttle::ThrottleKey;

    fn deps() -> Service<Deps> {
        Service::without_cors(Deps {
            services: offline_token_services(),
            keys: ThrottleKeys::fixed(ThrottleKey::new(&[7; 32])),
            grace: Duration::from_secs(10),
        })
    }

    #[tokio::test]
    async fn given_the_wrong_field_when_refreshing_then_422() {
        let (_, problem) = assert_problem(deps().call(event("refresh.invalid.json")).await, 422);
        assert_eq!(error_fields(&problem), ["token", "refresh_token"]);
    }

    #[tokio::test]
    async fn given_a_token_that_is_not_ours_when_refreshing_then_401_without_a_store_call() {
        // `refresh.json` holds a `{{refresh_token}}` placeholder, which no store would accept.
        assert_problem(deps().call(event("refresh.json")).await, 401);
    }

    #[tokio::test]
    async fn given_a_well_formed_token_and_the_store_down_when_refreshing_then_503() {
        assert_problem(deps().call(event("refresh.unknown-token.json")).await, 503);
    }
}
