//! `POST /logout/all` with `Authorization: Bearer <access token>` → `204`: every refresh-token
//! family of the user is revoked within this request, however many there are (one transaction
//! moves the user's session epoch; see `shared::store`). Access tokens already issued stay valid
//! until they expire.

use http::Method;
use lambda_http::{Body, Request, Response};
use shared::auth::authenticate;
use shared::aws::Clients;
use shared::config::{Config, ConfigError};
use shared::http::{no_content, require_method, JsonFields};
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
        logout_all(req, &self.0, log).await
    }
}

async fn logout_all(req: &Request, deps: &TokenServices, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
    require_method(req, &Method::POST)?;
    let claims = authenticate(req, &deps.tokens, now_epoch(), log).await?;
    // No body, or an empty JSON object: anything else is refused like any route's unknown members.
    if !matches!(req.body(), Body::Empty) && !req.body().is_empty() {
        JsonFields::from_request(req, &[])?.finish()?;
    }
    if !deps.store.revoke_all_sessions(claims.sub).await? {
        // A valid token whose user is gone no longer authenticates anyone.
        return Err(ApiError::InvalidAccessToken("user no longer exists"));
    }
    log.outcome("all_sessions_revoked");
    no_content()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::UserId;
    use shared::lambda::Service;
    use shared::testing::{
        assert_problem, event, event_json, fill, fixed_tokens, offline_token_services, request_from, TEST_ISSUER,
    };

    fn deps() -> Service<Deps> {
        Service::without_cors(Deps(offline_token_services()))
    }

    #[tokio::test]
    async fn given_no_token_when_logging_out_everywhere_then_401_with_a_bearer_challenge() {
        let (headers, _) = assert_problem(deps().call(event("logout-all.no-token.json")).await, 401);
        assert_eq!(headers["www-authenticate"], "Bearer");
    }

    #[tokio::test]
    async fn given_a_placeholder_token_when_logging_out_everywhere_then_401_invalid_token() {
        let (headers, _) = assert_problem(deps().call(event("logout-all.json")).await, 401);
        assert_eq!(headers["www-authenticate"], r#"Bearer error="invalid_token""#);
    }

    #[tokio::test]
    async fn given_a_valid_token_and_the_store_down_when_logging_out_everywhere_then_503() {
        let token = fixed_tokens().issue(TEST_ISSUER, UserId::generate(), true, now_epoch()).await.unwrap();
        let event = fill(&event_json("logout-all.json"), &[("access_token", &token)]);
        assert_problem(deps().call(request_from(&event)).await, 503);
    }

    #[tokio::test]
    async fn given_a_body_with_members_when_logging_out_everywhere_then_422_before_anything_is_revoked() {
        let token = fixed_tokens().issue(TEST_ISSUER, UserId::generate(), true, now_epoch()).await.unwrap();
        let mut event = fill(&event_json("logout-all.json"), &[("access_token", &token)]);
        event["headers"]["Content-Type"] = "application/json".into();
        event["multiValueHeaders"]["Content-Type"] = serde_json::json!(["application/json"]);
        event["body"] = r#"{"everywhere": false}"#.into();
        let (_, problem) = assert_problem(deps().call(request_from(&event)).await, 422);
        assert_eq!(problem["errors"][0]["field"], "everywhere");
        // An empty object asks for nothing: on to the store (down here).
        event["body"] = "{}".into();
        assert_problem(deps().call(request_from(&event)).await, 503);
    }

    #[tokio::test]
    async fn given_the_wrong_method_when_logging_out_everywhere_then_405() {
        let mut event = event_json("logout-all.json");
        event["httpMethod"] = "DELETE".into();
        let (headers, _) = assert_problem(deps().call(request_from(&event)).await, 405);
        assert_eq!(headers["allow"], "POST");
    }
}
