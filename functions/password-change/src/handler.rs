//! `POST /password/change` with `Authorization: Bearer <access token>` and
//! `{"current_password","new_password"}` → `200` with a token pair (login's shape) from a new
//! refresh-token family. Every earlier family of the user, the caller's included, is revoked in
//! the same transaction that sets the password, and a notice is mailed. The current password is
//! checked as login checks it (the same throttle, the same `401` after the same work).

use http::Method;
use lambda_http::{Body, Request, Response};
use shared::auth::{authenticate, current_user, stored_email, Checked, PasswordCheck};
use shared::aws::Clients;
use shared::config::{Config, ConfigError};
use shared::domain::{DisplayName, NewPassword, PasswordPolicy, SubmittedPassword};
use shared::http::{json_response, require_method, JsonFields};
use shared::keys::ThrottleKeys;
use shared::lambda::{Function, RequestLog};
use shared::mail::{MailKind, OutboxId};
use shared::services::TokenServices;
use shared::store::{NewMail, NewSession, PasswordChange};
use shared::tokens::{token_pair, Family, RefreshToken};
use shared::{now_epoch_ms, password, ApiError};

/// What the handler needs; built once per cold start.
pub struct Deps {
    pub services: TokenServices,
    pub throttle: ThrottleKeys,
    pub policy: PasswordPolicy,
}

impl Function for Deps {
    fn build(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        Ok(Self {
            services: TokenServices::signing(config, aws)?,
            throttle: ThrottleKeys::from_secrets_manager(aws.secrets(), config.throttle_key_secret_id()?),
            policy: config.password_policy,
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
        change(req, self, log).await
    }
}

/// Reads the body: a `400`/`413`/`415` for an unreadable one, a `422` for missing, unknown or
/// empty fields. The new password's rules are checked once the account is known.
pub fn parse(req: &Request) -> Result<(SubmittedPassword, String), ApiError> {
    let mut fields = JsonFields::from_request(req, &["current_password", "new_password"])?;
    let current = fields.parse("current_password", SubmittedPassword::parse);
    let new = fields.string("new_password");
    fields.finish()?;
    current.zip(new).ok_or_else(|| ApiError::Internal("a field parsed without error yet has no value".into()))
}

async fn change(req: &Request, deps: &Deps, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
    require_method(req, &Method::POST)?;
    let (store, tokens) = (&deps.services.store, &deps.services.tokens);
    let now_ms = now_epoch_ms();
    let now = now_ms.div_euclid(1000);
    let claims = authenticate(req, tokens, now, log).await?;
    let (current, new) = parse(req)?;
    let user = current_user(store, &claims).await?;
    let email = stored_email(&user)?;
    // The new password first: refusing it costs no attempt and no hash.
    let name = DisplayName::parse(&user.name).ok();
    let new = NewPassword::parse(new, &deps.policy, Some(&email), name.as_ref())
        .map_err(|message| ApiError::invalid_field("new_password", message))?;

    let throttle = deps.throttle.key().await?;
    let check = PasswordCheck { store, throttle: &throttle, known_for: tokens.settings().refresh_ttl, now_ms };
    let Checked { credentials, attempt, .. } = check.check(req, &email, current, Some(claims.sub), log).await?;
    let new_hash = password::hash(new).await?;

    // The new family begins in the epoch this change moves to.
    let epoch = credentials.session_epoch + 1;
    let expires_at = now + tokens.settings().refresh_ttl.as_secs() as i64;
    let access_token = tokens.issue(&tokens.issuer(req)?, claims.sub, credentials.email_verified, now).await?;
    let refresh = RefreshToken::generate(Family::new(claims.sub, epoch, credentials.email_verified, expires_at)?)?;
    let change = PasswordChange {
        user_id: claims.sub,
        email: &email,
        old_hash: &credentials.password_hash,
        new_hash: &new_hash,
        session_epoch: credentials.session_epoch,
        attempt: &attempt,
    };
    let session = NewSession { family: refresh.family(), token_hash: &refresh.hash(), now };
    let notice = NewMail {
        id: OutboxId::generate(),
        kind: MailKind::PasswordChanged,
        to: &email,
        user_id: Some(claims.sub),
        now,
    };
    if !store.change_password(change, session, &notice).await? {
        // The password or the sessions changed meanwhile: the one given may no longer be it.
        log.outcome("changed_meanwhile");
        return Err(ApiError::InvalidCredentials);
    }
    log.outcome("password_changed");
    json_response(http::StatusCode::OK, &token_pair(access_token, tokens.settings(), &refresh, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::UserId;
    use shared::keys::ThrottleKeys;
    use shared::lambda::Service;
    use shared::testing::{
        assert_problem, error_fields, event, event_json, fill, fixed_tokens, offline_token_services, request_from,
        TEST_ISSUER,
    };
    use shared::throttle::ThrottleKey;

    fn deps() -> Service<Deps> {
        Service::without_cors(Deps {
            services: offline_token_services(),
            throttle: ThrottleKeys::fixed(ThrottleKey::new(&[7; 32])),
            policy: PasswordPolicy::default(),
        })
    }

    async fn with_token(fixture: &str) -> serde_json::Value {
        let token = fixed_tokens().issue(TEST_ISSUER, UserId::generate(), true, shared::now_epoch()).await.unwrap();
        fill(&event_json(fixture), &[("access_token", &token)])
    }

    #[tokio::test]
    async fn given_no_valid_token_when_changing_then_401_before_the_body_is_read() {
        let (headers, _) = assert_problem(deps().call(event("password-change.json")).await, 401);
        assert_eq!(headers["www-authenticate"], r#"Bearer error="invalid_token""#);
    }

    #[tokio::test]
    async fn given_missing_fields_when_changing_then_422_names_each() {
        let mut event = with_token("password-change.json").await;
        event["body"] = "{}".into();
        let (_, problem) = assert_problem(deps().call(request_from(&event)).await, 422);
        assert_eq!(error_fields(&problem), ["current_password", "new_password"]);
    }

    #[tokio::test]
    async fn given_a_valid_token_and_the_store_down_when_changing_then_503() {
        assert_problem(deps().call(request_from(&with_token("password-change.json").await)).await, 503);
    }

    #[tokio::test]
    async fn given_the_wrong_method_when_changing_then_405() {
        let mut event = event_json("password-change.json");
        event["httpMethod"] = "GET".into();
        let (headers, _) = assert_problem(deps().call(request_from(&event)).await, 405);
        assert_eq!(headers["allow"], "POST");
    }
}
