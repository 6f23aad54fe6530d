//! `DELETE /users/me` (or the caller's own id) with `Authorization: Bearer <access token>` and
//! `{"password"}` → `204`. One transaction removes the profile and the email item (from then on
//! no refresh token of the user works, and the address can register again); then every session,
//! mailed token and mail the user owns is deleted. Access tokens already issued stay valid until
//! they expire (minutes), but every route that reads the user answers `401`. The password is
//! checked as login checks it.

use http::Method;
use lambda_http::{Body, Request, RequestExt, Response};
use shared::auth::{authenticate, current_user, stored_email, PasswordCheck};
use shared::aws::Clients;
use shared::config::{Config, ConfigError};
use shared::domain::{SubmittedPassword, UserId};
use shared::http::{no_content, require_method, JsonFields};
use shared::keys::ThrottleKeys;
use shared::lambda::{Function, RequestLog};
use shared::services::TokenServices;
use shared::{now_epoch_ms, ApiError};

/// What the handler needs; built once per cold start.
pub struct Deps {
    pub services: TokenServices,
    pub throttle: ThrottleKeys,
}

impl Function for Deps {
    fn build(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        Ok(Self {
            services: TokenServices::verifying(config, aws)?,
            throttle: ThrottleKeys::from_secrets_manager(aws.secrets(), config.throttle_key_secret_id()?),
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
        delete(req, self, log).await
    }
}

/// Reads the body: a `400`/`413`/`415` for an unreadable one, a `422` for a missing, unknown or
/// empty field.
pub fn parse(req: &Request) -> Result<SubmittedPassword, ApiError> {
    let mut fields = JsonFields::from_request(req, &["password"])?;
    let password = fields.parse("password", SubmittedPassword::parse);
    fields.finish()?;
    password.ok_or_else(|| ApiError::Internal("a field parsed without error yet has no value".into()))
}

async fn delete(req: &Request, deps: &Deps, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
    require_method(req, &Method::DELETE)?;
    let (store, tokens) = (&deps.services.store, &deps.services.tokens);
    let now_ms = now_epoch_ms();
    let claims = authenticate(req, tokens, now_ms.div_euclid(1000), log).await?;
    let requested = req.path_parameters_ref().and_then(|params| params.first("id")).ok_or(ApiError::NotFound)?;
    if requested != "me" && UserId::parse(requested).ok_or(ApiError::NotFound)? != claims.sub {
        return Err(ApiError::Forbidden);
    }
    let password = parse(req)?;
    let user = current_user(store, &claims).await?;
    let email = stored_email(&user)?;
    let throttle = deps.throttle.key().await?;
    let check = PasswordCheck { store, throttle: &throttle, known_for: tokens.settings().refresh_ttl, now_ms };
    check.check(req, &email, password, Some(claims.sub), log).await?;
    if !store.delete_account(claims.sub, &email, &throttle.failure_key(&email)).await? {
        // The address changed meanwhile: the password given was checked against the old one.
        return Err(ApiError::InvalidCredentials);
    }
    log.outcome("account_deleted");
    no_content()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::lambda::Service;
    use shared::testing::{
        assert_problem, error_fields, event_json, fill, fixed_tokens, offline_token_services, request_from, TEST_ISSUER,
    };
    use shared::throttle::ThrottleKey;

    fn deps() -> Service<Deps> {
        Service::without_cors(Deps {
            services: offline_token_services(),
            throttle: ThrottleKeys::fixed(ThrottleKey::new(&[7; 32])),
        })
    }

    async fn with_token() -> serde_json::Value {
        let token = fixed_tokens().issue(TEST_ISSUER, UserId::generate(), true, shared::now_epoch()).await.unwrap();
        fill(&event_json("delete-user.json"), &[("access_token", &token), ("password", "correct horse battery staple")])
    }

    #[tokio::test]
    async fn given_another_users_id_when_deleting_then_403() {
        let mut event = with_token().await;
        event["pathParameters"]["id"] = UserId::generate().to_string().into();
        assert_problem(deps().call(request_from(&event)).await, 403);
    }

    #[tokio::test]
    async fn given_no_password_when_deleting_then_422() {
        let mut event = with_token().await;
        event["body"] = "{}".into();
        let (_, problem) = assert_problem(deps().call(request_from(&event)).await, 422);
        assert_eq!(error_fields(&problem), ["password"]);
    }

    #[tokio::test]
    async fn given_a_valid_token_and_the_store_down_when_deleting_then_503() {
        assert_problem(deps().call(request_from(&with_token().await)).await, 503);
    }

    #[tokio::test]
    async fn given_the_wrong_method_when_deleting_then_405() {
        let mut event = with_token().await;
        event["httpMethod"] = "POST".into();
        let (headers, _) = assert_problem(deps().call(request_from(&event)).await, 405);
        assert_eq!(headers["allow"], "DELETE");
    }
}
