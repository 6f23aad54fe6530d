//! `POST /password/reset` `{"token","password"}` → `204`. The token is a mailed reset link's.
//! One transaction uses it up, sets the password, marks the email verified (the link proved the
//! owner reads it), ends every session of the user, clears the email's login throttle record
//! and mails a notice. `401` for an unknown, expired, used or superseded token; `422` for a
//! password the policy refuses, and then the token still works.

use http::Method;
use lambda_http::{Body, Request, Response};
use shared::aws::Clients;
use shared::config::{Config, ConfigError};
use shared::domain::{DisplayName, Email, NewPassword, PasswordPolicy};
use shared::http::{no_content, require_method, JsonFields};
use shared::keys::ThrottleKeys;
use shared::lambda::{Function, RequestLog};
use shared::mail::{MailKind, MailToken, OutboxId, Purpose};
use shared::store::{NewMail, Store, TokenUse};
use shared::{now_epoch, password, ApiError};

/// What the handler needs; built once per cold start.
pub struct Deps {
    pub store: Store,
    pub throttle: ThrottleKeys,
    pub policy: PasswordPolicy,
}

impl Function for Deps {
    fn build(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        Ok(Self {
            store: Store::new(aws.dynamodb(), &config.table_name),
            throttle: ThrottleKeys::from_secrets_manager(aws.secrets(), config.throttle_key_secret_id()?),
            policy: config.password_policy,
        })
    }

    /// Reads the throttle key (the email's record is cleared), opens the DynamoDB connection and
    /// reserves argon2's working memory during init.
    async fn warm(&self) {
        tokio::join!(self.throttle.prefetch(), self.store.connect(1), shared::password::reserve_memory());
    }

    async fn handle(&self, req: &Request, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
        reset(req, self, log).await
    }
}

/// Reads the body: a `400`/`413`/`415` for an unreadable one, a `422` for missing, unknown or
/// non-string fields. The password is checked once the account is known (its rules compare it
/// with the email and name).
pub fn parse(req: &Request) -> Result<(Option<MailToken>, String), ApiError> {
    let mut fields = JsonFields::from_request(req, &["token", "password"])?;
    let token = fields.string("token");
    let password = fields.string("password");
    fields.finish()?;
    match (token, password) {
        (Some(token), Some(password)) => Ok((MailToken::parse(&token), password)),
        _ => Err(ApiError::Internal("a field parsed without error yet has no value".into())),
    }
}

async fn reset(req: &Request, deps: &Deps, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
    require_method(req, &Method::POST)?;
    let (token, raw_password) = parse(req)?;
    let token = token.ok_or(ApiError::InvalidMailToken("malformed"))?;
    let hash = token.hash();
    let now = now_epoch();
    let stored = deps.store.mail_token(&hash, now).await?.ok_or(ApiError::InvalidMailToken("unknown or expired"))?;
    if stored.purpose != Purpose::ResetPassword {
        return Err(ApiError::InvalidMailToken("not a reset token"));
    }
    log.user(stored.user_id);
    let user = deps.store.user(stored.user_id).await?.ok_or(ApiError::InvalidMailToken("user gone"))?;
    let email = Email::parse(&stored.email).map_err(|_| ApiError::InvalidMailToken("unreadable address"))?;
    let name = DisplayName::parse(&user.name).ok();
    let password = NewPassword::parse(raw_password, &deps.policy, Some(&email), name.as_ref())
        .map_err(|message| ApiError::invalid_field("password", message))?;
    let (new_hash, throttle) = tokio::join!(password::hash(password), deps.throttle.key());
    let (new_hash, throttle) = (new_hash?, throttle?);
    let notice = NewMail {
        id: OutboxId::generate(),
        kind: MailKind::PasswordChanged,
        to: &email,
        user_id: Some(stored.user_id),
        now,
    };
    match deps.store.reset_password(&hash, &stored, &new_hash, &throttle.failure_key(&email), &notice).await? {
        TokenUse::Done => {
            log.outcome("password_reset");
            no_content()
        }
        TokenUse::Stale | TokenUse::EmailTaken => Err(ApiError::InvalidMailToken("used or superseded")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::lambda::Service;
    use shared::testing::{assert_problem, error_fields, event, event_json, request_from, unreachable_aws};

    fn deps() -> Service<Deps> {
        let config = Config::from_lookup(|name| {
            ["TABLE_NAME", "THROTTLE_KEY_SECRET_ID"].contains(&name).then(|| "offline".to_owned())
        })
        .unwrap();
        Service::new(Deps::build(&config, &Clients::new(&unreachable_aws())).unwrap(), &config)
    }

    #[tokio::test]
    async fn given_a_placeholder_token_when_resetting_then_401_without_a_store_call() {
        assert_problem(deps().call(event("password-reset.json")).await, 401);
    }

    #[tokio::test]
    async fn given_a_well_formed_token_and_the_store_down_when_resetting_then_503() {
        assert_problem(deps().call(event("password-reset.unknown-token.json")).await, 503);
    }

    #[tokio::test]
    async fn given_missing_fields_when_resetting_then_422_names_each() {
        let mut event = event_json("password-reset.json");
        event["body"] = "{}".into();
        let (_, problem) = assert_problem(deps().call(request_from(&event)).await, 422);
        assert_eq!(error_fields(&problem), ["token", "password"]);
    }

    #[tokio::test]
    async fn given_the_wrong_method_when_resetting_then_405() {
        let mut event = event_json("password-reset.json");
        event["httpMethod"] = "PUT".into();
        let (headers, _) = assert_problem(deps().call(request_from(&event)).await, 405);
        assert_eq!(headers["allow"], "POST");
    }
}
