//! `GET /users/{id}` with `Authorization: Bearer <access token>` → `200` with the user. `{id}`
//! may be `me`; another user's id is `403`.

use http::Method;
use lambda_http::{Body, Request, RequestExt, Response};
use shared::auth::authenticate;
use shared::aws::Clients;
use shared::config::{Config, ConfigError};
use shared::domain::UserId;
use shared::http::{json_response, require_method};
use shared::lambda::{Function, RequestLog};
use shared::services::TokenServices;
use shared::{now_epoch, ApiError};

/// What the handler needs; built once per cold start.
pub struct Deps(pub TokenServices);

impl Function for Deps {
    fn build(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        TokenServices::verifying(config, aws).map(Self)
    }

    /// Reads the signing key and opens the DynamoDB connection during init.
    async fn warm(&self) {
        tokio::join!(self.0.tokens.keys().prefetch(), self.0.store.connect(1));
    }

    async fn handle(&self, req: &Request, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
        get_user(req, &self.0, log).await
    }
}

async fn get_user(req: &Request, deps: &TokenServices, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
    require_method(req, &Method::GET)?;
    let claims = authenticate(req, &deps.tokens, now_epoch(), log).await?;

    let requested = req.path_parameters_ref().and_then(|params| params.first("id")).ok_or(ApiError::NotFound)?;
    if requested != "me" && UserId::parse(requested).ok_or(ApiError::NotFound)? != claims.sub {
        return Err(ApiError::Forbidden);
    }
    // A valid token whose user is gone no longer authenticates anyone.
    let user = deps.store.user(claims.sub).await?.ok_or(ApiError::InvalidAccessToken("user no longer exists"))?;
    json_response(http::StatusCode::OK, &user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::lambda::Service;
    use shared::testing::{
        assert_problem, event, event_json, fill, fixed_tokens, offline_token_services, request_from, TEST_ISSUER,
    };

    const USER: &str = "0d9a4c1e-8f7b-4a6d-9c3e-2b1a0f9e8d7c";

    fn deps() -> Service<Deps> {
        Service::without_cors(Deps(offline_token_services()))
    }

    async fn token() -> String {
        fixed_tokens().issue(TEST_ISSUER, UserId::parse(USER).unwrap(), false, now_epoch()).await.unwrap()
    }

    #[tokio::test]
    async fn given_no_token_when_reading_then_401_with_a_bare_bearer_challenge() {
        let (headers, _) = assert_problem(deps().call(event("get-user.no-token.json")).await, 401);
        assert_eq!(headers["www-authenticate"], "Bearer");
    }

    #[tokio::test]
    async fn given_an_unsigned_token_when_reading_then_401_invalid_token() {
        let (headers, _) = assert_problem(deps().call(event("get-user.bad-token.json")).await, 401);
        assert_eq!(headers["www-authenticate"], r#"Bearer error="invalid_token""#);
    }

    #[tokio::test]
    async fn given_another_users_id_when_reading_then_403() {
        let event = fill(&event_json("get-user.other-user.json"), &[("access_token", &token().await)]);
        assert_problem(deps().call(request_from(&event)).await, 403);
    }

    #[tokio::test]
    async fn given_an_id_that_is_not_an_id_when_reading_then_404() {
        let event = fill(&event_json("get-user.json"), &[("access_token", &token().await), ("user_id", "../../etc")]);
        assert_problem(deps().call(request_from(&event)).await, 404);
    }

    #[tokio::test]
    async fn given_a_valid_token_and_the_store_down_when_reading_me_then_503() {
        let event = fill(&event_json("get-user.me.json"), &[("access_token", &token().await)]);
        assert_problem(deps().call(request_from(&event)).await, 503);
    }
}
