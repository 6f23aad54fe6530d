//! `POST /logout` `{"refresh_token"}` → `204`. The family's current token, or the one it just
//! replaced within the reuse grace window (as refresh would repeat it), revokes the family; any
//! other token, ours or not, changes nothing and gets the same `204` (RFC 7009 §2.2: an invalid
//! token is not an error, so the answer tells nothing about it). No access token is needed: the
//! refresh token is the credential.

use std::time::Duration;

use http::Method;
use lambda_http::{Body, Request, Response};
use shared::aws::Clients;
use shared::config::{Config, ConfigError};
use shared::http::{no_content, require_method, JsonFields};
use shared::lambda::{Function, RequestLog};
use shared::store::{LoggingOut, Store};
use shared::tokens::RefreshToken;
use shared::{now_epoch, ApiError};

/// What the handler needs; built once per cold start.
pub struct Deps {
    pub store: Store,
    pub grace: Duration,
}

impl Function for Deps {
    fn build(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        Ok(Self { store: Store::new(aws.dynamodb(), &config.table_name), grace: config.refresh_reuse_grace })
    }

    /// Opens the DynamoDB connection during init.
    async fn warm(&self) {
        self.store.connect(1).await;
    }

    async fn handle(&self, req: &Request, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
        logout(req, self, log).await
    }
}

/// Reads the body: a `400`/`413`/`415` for an unreadable one, a `422` for a missing, unknown or
/// non-string field. A string that is not one of our tokens is `None`: nothing to revoke.
pub fn parse(req: &Request) -> Result<Option<RefreshToken>, ApiError> {
    let mut fields = JsonFields::from_request(req, &["refresh_token"])?;
    let presented = fields.string("refresh_token");
    fields.finish()?;
    Ok(presented.as_deref().and_then(RefreshToken::parse))
}

async fn logout(req: &Request, deps: &Deps, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
    require_method(req, &Method::POST)?;
    let outcome = match parse(req)? {
        Some(token) => {
            log.user(token.family().user_id);
            let presented = LoggingOut { family: token.family(), hash: &token.hash() };
            match deps.store.end_session(presented, deps.grace.as_secs() as i64, now_epoch()).await? {
                true => "revoked",
                false => "nothing_to_revoke",
            }
        }
        None => "not_a_token",
    };
    log.outcome(outcome);
    no_content()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::lambda::Service;
    use shared::testing::{assert_problem, error_fields, event, event_json, request_from, unreachable_aws};

    fn deps() -> Service<Deps> {
        let config = Config::from_lookup(|name| (name == "TABLE_NAME").then(|| "offline".to_owned())).unwrap();
        Service::new(Deps::build(&config, &Clients::new(&unreachable_aws())).unwrap(), &config)
    }

    #[test]
    fn given_the_config_when_building_then_only_the_dynamodb_client_is_built() {
        // GIVEN the clients of a cold start
        let config = Config::from_lookup(|name| (name == "TABLE_NAME").then(|| "offline".to_owned())).unwrap();
        let clients = Clients::new(&unreachable_aws());
        // WHEN logout builds its dependencies
        Deps::build(&config, &clients).unwrap();
        // THEN it has built the one client it calls (each costs init 0.1 to 0.2 ms)
        assert_eq!(clients.built(), [true, false, false]);
    }

    #[tokio::test]
    async fn given_a_string_that_is_not_a_token_when_logging_out_then_204_without_a_store_call() {
        // GIVEN a store no call can reach: a call would be a 503
        let response = deps().call(event("logout.not-ours.json")).await;
        assert_eq!(response.status(), 204);
        assert_eq!(response.body(), &Body::Empty);
        assert_eq!(response.headers()["cache-control"], "no-store");
    }

    #[tokio::test]
    async fn given_the_wrong_field_when_logging_out_then_422_names_both() {
        let (_, problem) = assert_problem(deps().call(event("logout.invalid.json")).await, 422);
        assert_eq!(error_fields(&problem), ["token", "refresh_token"]);
    }

    #[tokio::test]
    async fn given_unreadable_bodies_when_logging_out_then_400_and_415() {
        let mut malformed = event_json("logout.json");
        malformed["body"] = "{".into();
        assert_problem(deps().call(request_from(&malformed)).await, 400);
        let mut not_json = event_json("logout.json");
        not_json["headers"]["Content-Type"] = "text/plain".into();
        not_json["multiValueHeaders"]["Content-Type"] = serde_json::json!(["text/plain"]);
        assert_problem(deps().call(request_from(&not_json)).await, 415);
    }

    #[tokio::test]
    async fn given_a_token_of_ours_and_the_store_down_when_logging_out_then_503_not_a_false_204() {
        let mut ours = event_json("logout.json");
        let token = RefreshToken::generate(
            shared::tokens::Family::new(shared::domain::UserId::generate(), 0, false, now_epoch() + 60).unwrap(),
        )
        .unwrap();
        use secrecy::ExposeSecret;
        ours["body"] = serde_json::json!({"refresh_token": token.expose().expose_secret()}).to_string().into();
        let (headers, _) = assert_problem(deps().call(request_from(&ours)).await, 503);
        assert_eq!(headers["retry-after"], "2");
    }

    #[tokio::test]
    async fn given_the_wrong_method_when_logging_out_then_405() {
        let mut event = event_json("logout.json");
        event["httpMethod"] = "GET".into();
        let (headers, _) = assert_problem(deps().call(request_from(&event)).await, 405);
        assert_eq!(headers["allow"], "POST");
    }
}
