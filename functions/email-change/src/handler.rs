//! `POST /email/change` with `Authorization: Bearer <access token>` and `{"new_email","password"}`
//! → `202`: a link to confirm the new address is mailed to it, and a notice to the current one.
//! The change itself happens when the link is used (`POST /email/verify`), where the new
//! address's uniqueness is checked again, atomically. `409` when the new address is taken now;
//! the password is checked as login checks it.

use std::time::Duration;

use http::Method;
use lambda_http::{Body, Request, Response};
use shared::auth::{authenticate, current_user, stored_email, Checked, PasswordCheck};
use shared::aws::Clients;
use shared::config::{Config, ConfigError};
use shared::domain::{Email, SubmittedPassword};
use shared::http::{accepted, require_method, JsonFields};
use shared::keys::{MailKeys, ThrottleKeys};
use shared::lambda::{Function, RequestLog};
use shared::mail::{MailKind, OutboxId, Purpose};
use shared::services::TokenServices;
use shared::store::{NewMail, NewMailToken};
use shared::{now_epoch_ms, ApiError};

/// What the handler needs; built once per cold start.
pub struct Deps {
    pub services: TokenServices,
    pub throttle: ThrottleKeys,
    pub mail_keys: MailKeys,
    /// How long the confirmation link works.
    pub change_ttl: Duration,
}

impl Function for Deps {
    fn build(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        Ok(Self {
            services: TokenServices::verifying(config, aws)?,
            throttle: ThrottleKeys::from_secrets_manager(aws.secrets(), config.throttle_key_secret_id()?),
            mail_keys: MailKeys::from_secrets_manager(aws.secrets(), config.mail.key_secret_id()?),
            change_ttl: config.mail.change_email_ttl,
        })
    }

    /// Reads the three keys, opens the DynamoDB connection and reserves argon2's working memory
    /// during init.
    async fn warm(&self) {
        tokio::join!(
            self.services.tokens.keys().prefetch(),
            // Its requests make two calls at once (the credentials beside the attempt's
            // reservation, then the new address beside the mail generations).
            self.services.store.connect(2),
            self.throttle.prefetch(),
            self.mail_keys.prefetch(),
            shared::password::reserve_memory()
        );
    }

    async fn handle(&self, req: &Request, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
        change(req, self, log).await
    }
}

/// Reads the body: a `400`/`413`/`415` for an unreadable one, one `422` for every invalid field.
pub fn parse(req: &Request) -> Result<(Email, SubmittedPassword), ApiError> {
    let mut fields = JsonFields::from_request(req, &["new_email", "password"])?;
    let email = fields.parse("new_email", |raw| Email::parse(&raw));
    let password = fields.parse("password", SubmittedPassword::parse);
    fields.finish()?;
    email.zip(password).ok_or_else(|| ApiError::Internal("a field parsed without error yet has no value".into()))
}

async fn change(req: &Request, deps: &Deps, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
    require_method(req, &Method::POST)?;
    let (store, tokens) = (&deps.services.store, &deps.services.tokens);
    let now_ms = now_epoch_ms();
    let now = now_ms.div_euclid(1000);
    let claims = authenticate(req, tokens, now, log).await?;
    let (new_email, password) = parse(req)?;
    let user = current_user(store, &claims).await?;
    let current = stored_email(&user)?;
    if new_email == current {
        return Err(ApiError::invalid_field("new_email", "must differ from the current address"));
    }

    let throttle = deps.throttle.key().await?;
    let check = PasswordCheck { store, throttle: &throttle, known_for: tokens.settings().refresh_ttl, now_ms };
    let Checked { attempt, .. } = check.check(req, &current, password, Some(claims.sub), log).await?;
    // Only after the password: a stolen access token alone cannot probe which addresses exist.
    // The generations are read in the same round trip (wasted only when the address is taken).
    let (taken, generations, key) =
        tokio::join!(store.email_taken(&new_email), store.generations(claims.sub), deps.mail_keys.key());
    if taken? {
        // The password was right, so the attempt is cleared, as login clears it.
        store.clear_attempt(&attempt, now).await?;
        log.outcome("email_taken");
        return Err(ApiError::EmailTaken);
    }
    let (key, generations) = (key?, generations?.ok_or(ApiError::InvalidAccessToken("user no longer exists"))?);
    let confirm = NewMail {
        id: OutboxId::generate(),
        kind: MailKind::VerifyNewEmail,
        to: &new_email,
        user_id: Some(claims.sub),
        now,
    };
    let notice = NewMail {
        id: OutboxId::generate(),
        kind: MailKind::EmailChangeRequested,
        to: &current,
        user_id: Some(claims.sub),
        now,
    };
    let hash = key.token(confirm.id).hash();
    let token = NewMailToken {
        hash: &hash,
        purpose: Purpose::ChangeEmail,
        user_id: claims.sub,
        email: &new_email,
        previous_email: Some(&current),
        generation: generations.of(Purpose::ChangeEmail),
        expires_at: now + deps.change_ttl.as_secs() as i64,
    };
    if !store.request_email_change(&current, &token, [&confirm, &notice], &attempt, now).await? {
        return Err(ApiError::InvalidCredentials);
    }
    log.outcome("email_change_requested");
    accepted()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::UserId;
    use shared::lambda::Service;
    use shared::mail::MailKey;
    use shared::testing::{
        assert_problem, error_fields, event, event_json, fill, fixed_tokens, offline_token_services, request_from,
        TEST_ISSUER,
    };
    use shared::throttle::ThrottleKey;

    fn deps() -> Service<Deps> {
        Service::without_cors(Deps {
            services: offline_token_services(),
            throttle: ThrottleKeys::fixed(ThrottleKey::new(&[7; 32])),
            mail_keys: MailKeys::fixed(MailKey::new(&[5; 32])),
            change_ttl: Duration::from_secs(86_400),
        })
    }

    async fn with_token(fixture: &str) -> serde_json::Value {
        let token = fixed_tokens().issue(TEST_ISSUER, UserId::generate(), true, shared::now_epoch()).await.unwrap();
        fill(&event_json(fixture), &[("access_token", &token), ("password", "correct horse battery staple")])
    }

    #[tokio::test]
    async fn given_no_token_when_changing_the_email_then_401_with_a_bare_challenge() {
        let (headers, _) = assert_problem(deps().call(event("email-change.no-token.json")).await, 401);
        assert_eq!(headers["www-authenticate"], "Bearer");
    }

    #[tokio::test]
    async fn given_an_invalid_address_when_changing_the_email_then_422_names_it() {
        let mut event = with_token("email-change.json").await;
        event["body"] = r#"{"new_email":"not an address","password":"x"}"#.into();
        let (_, problem) = assert_problem(deps().call(request_from(&event)).await, 422);
        assert_eq!(error_fields(&problem), ["new_email"]);
    }

    #[tokio::test]
    async fn given_a_valid_token_and_the_store_down_when_changing_the_email_then_503() {
        assert_problem(deps().call(request_from(&with_token("email-change.json").await)).await, 503);
    }
}
