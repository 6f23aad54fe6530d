//! `POST /login` `{"email","password"}` → `200` with an access token and a new refresh-token
//! family. Wrong password and unknown email get the same `401`, after the same work.
//!
//! Each attempt is counted before the password is checked (see `shared::throttle`): the
//! conditional write that reserves it runs while the credentials are read, so a login costs two
//! sequential DynamoDB round trips — reserve ‖ read, then the session's transaction, which also
//! clears the count — and a refused attempt costs no password hash at all.

use http::Method;
use lambda_http::{Body, Request, Response};
use shared::auth::{Checked, PasswordCheck};
use shared::aws::Clients;
use shared::config::{Config, ConfigError};
use shared::domain::{Email, SubmittedPassword};
use shared::http::{json_response, require_method, JsonFields};
use shared::keys::ThrottleKeys;
use shared::lambda::{Function, RequestLog};
use shared::services::TokenServices;
use shared::store::NewSession;
use shared::tokens::{token_pair, Family, RefreshToken};
use shared::{now_epoch_ms, ApiError};

/// What the handler needs; built once per cold start.
pub struct Deps {
    pub services: TokenServices,
    pub throttle: ThrottleKeys,
    pub require_verified_email: bool,
}

impl Function for Deps {
    fn build(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        let throttle = ThrottleKeys::from_secrets_manager(aws.secrets(), config.throttle_key_secret_id()?);
        Ok(Self {
            services: TokenServices::signing(config, aws)?,
            throttle,
            require_verified_email: config.require_verified_email,
        })
    }

    /// Reads both keys, opens the DynamoDB connection and reserves argon2's working memory
    /// during init.
    async fn warm(&self) {
        tokio::join!(
            self.services.tokens.keys().prefetch(),
            self.throttle.prefetch(),
            // Its requests read the credentials beside the attempt's reservation.
            self.services.store.connect(2),
            shared::password::reserve_memory()
        );
    }

    async fn handle(&self, req: &Request, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
        login(req, self, log).await
    }
}

/// Reads the body: a `400`/`413`/`415` for an unreadable one, one `422` for every invalid field.
/// Public for the fuzz targets.
pub fn parse(req: &Request) -> Result<(Email, SubmittedPassword), ApiError> {
    let mut fields = JsonFields::from_request(req, &["email", "password"])?;
    let email = fields.parse("email", |raw| Email::parse(&raw));
    let password = fields.parse("password", SubmittedPassword::parse);
    fields.finish()?;
    email.zip(password).ok_or_else(|| ApiError::Internal("a field parsed without error yet has no value".into()))
}

async fn login(req: &Request, deps: &Deps, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
    require_method(req, &Method::POST)?;
    let (email, password) = parse(req)?;
    let (store, tokens) = (&deps.services.store, &deps.services.tokens);

    let now_ms = now_epoch_ms();
    let now = now_ms.div_euclid(1000);
    let throttle = deps.throttle.key().await?;
    let check = PasswordCheck { store, throttle: &throttle, known_for: tokens.settings().refresh_ttl, now_ms };
    let Checked { credentials, attempt, rehashed } = check.check(req, &email, password, None, log).await?;
    // Only now, after the right password: a stranger learns nothing about the account. The
    // right password is not a failure, so the attempt is cleared as a login's would be.
    if deps.require_verified_email && !credentials.email_verified {
        store.clear_attempt(&attempt, now).await?;
        log.outcome("email_not_verified");
        return Err(ApiError::EmailNotVerified);
    }

    // Sign first: if the key cannot be had, nothing has been written yet.
    let access_token = tokens.issue(&tokens.issuer(req)?, credentials.user_id, credentials.email_verified, now).await?;
    let expires_at = now + tokens.settings().refresh_ttl.as_secs() as i64;
    let family = Family::new(credentials.user_id, credentials.session_epoch, credentials.email_verified, expires_at)?;
    let refresh = RefreshToken::generate(family)?;
    store.create_session(NewSession { family: refresh.family(), token_hash: &refresh.hash(), now }, &attempt).await?;
    if let Some(new_hash) = rehashed {
        // Best effort: the login already succeeded, and the next one will try again.
        if let Err(error) = store.upgrade_password_hash(&email, &credentials.password_hash, &new_hash).await {
            log.warn("password hash upgrade failed", &error);
        }
    }
    log.outcome("logged_in");
    json_response(http::StatusCode::OK, &token_pair(access_token, tokens.settings(), &refresh, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::keys::ThrottleKeys;
    use shared::lambda::Service;
    use shared::testing::{assert_problem, error_fields, event, event_json, offline_token_services, request_from};
    use shared::throttle::ThrottleKey;

    fn deps() -> Service<Deps> {
        Service::without_cors(Deps {
            services: offline_token_services(),
            throttle: ThrottleKeys::fixed(ThrottleKey::new(&[7; 32])),
            require_verified_email: true,
        })
    }

    #[tokio::test]
    async fn given_a_missing_password_when_logging_in_then_422() {
        let (_, problem) = assert_problem(deps().call(event("login.invalid.json")).await, 422);
        assert_eq!(error_fields(&problem), ["password"]);
    }

    #[tokio::test]
    async fn given_malformed_json_when_logging_in_then_400() {
        assert_problem(deps().call(event("login.malformed.json")).await, 400);
    }

    #[tokio::test]
    async fn given_an_invalid_email_when_logging_in_then_422_not_401() {
        let mut event = event_json("login.json");
        event["body"] = r#"{"email":"nope","password":"whatever it is"}"#.into();
        let (_, problem) = assert_problem(deps().call(request_from(&event)).await, 422);
        assert_eq!(error_fields(&problem), ["email"]);
    }

    #[tokio::test]
    async fn given_the_store_is_down_when_logging_in_then_503() {
        assert_problem(deps().call(event("login.json")).await, 503);
    }
}
