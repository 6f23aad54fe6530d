//! `POST /email/verify` `{"token"}` → `200` with the user (`email_verified: true`). The token is
//! a mailed link's: a sign-up verification (or one sent again), or an email change's, which moves
//! the account to the new address. Single use: one conditional transaction deletes the token and
//! moves the user's generation for its purpose, so every other token of that purpose stops
//! working. `401` for an unknown, expired, used or superseded token; `409` when an email change's
//! new address was registered meanwhile.

use http::Method;
use lambda_http::{Body, Request, Response};
use shared::aws::Clients;
use shared::config::{Config, ConfigError};
use shared::http::{json_response, require_method, JsonFields};
use shared::lambda::{Function, RequestLog};
use shared::mail::{MailToken, Purpose};
use shared::store::{verifies_email, Store, TokenUse};
use shared::{now_epoch, ApiError};

/// What the handler needs; built once per cold start.
pub struct Deps {
    pub store: Store,
}

impl Function for Deps {
    fn build(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        Ok(Self { store: Store::new(aws.dynamodb(), &config.table_name) })
    }

    /// Opens the DynamoDB connection during init.
    async fn warm(&self) {
        self.store.connect(1).await;
    }

    async fn handle(&self, req: &Request, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
        verify(req, self, log).await
    }
}

/// Reads the body: a `400`/`413`/`415` for an unreadable one, a `422` for a missing, unknown or
/// non-string field, a `401` for a token that is not one of ours in shape.
pub fn parse(req: &Request) -> Result<MailToken, ApiError> {
    let mut fields = JsonFields::from_request(req, &["token"])?;
    let token = fields.string("token");
    fields.finish()?;
    token.as_deref().and_then(MailToken::parse).ok_or(ApiError::InvalidMailToken("malformed"))
}

async fn verify(req: &Request, deps: &Deps, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
    require_method(req, &Method::POST)?;
    let hash = parse(req)?.hash();
    let now = now_epoch();
    let token = deps.store.mail_token(&hash, now).await?.ok_or(ApiError::InvalidMailToken("unknown or expired"))?;
    if !verifies_email(token.purpose) {
        return Err(ApiError::InvalidMailToken("not a verification token"));
    }
    log.user(token.user_id);
    let used = match token.purpose {
        Purpose::ChangeEmail => deps.store.change_email(&hash, &token).await?,
        _ => deps.store.verify_email(&hash, &token).await?,
    };
    match used {
        TokenUse::Done => {}
        TokenUse::Stale => return Err(ApiError::InvalidMailToken("used or superseded")),
        TokenUse::EmailTaken => {
            log.outcome("new_email_taken");
            return Err(ApiError::EmailTaken);
        }
    }
    log.outcome(if token.purpose == Purpose::ChangeEmail { "email_changed" } else { "email_verified" });
    let user = deps.store.user(token.user_id).await?.ok_or(ApiError::InvalidMailToken("user gone"))?;
    json_response(http::StatusCode::OK, &user)
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

    #[tokio::test]
    async fn given_a_token_that_is_not_ours_in_shape_when_verifying_then_401_without_a_store_call() {
        // `email-verify.json` holds a `{{verify_token}}` placeholder: no token of ours.
        assert_problem(deps().call(event("email-verify.json")).await, 401);
    }

    #[tokio::test]
    async fn given_a_well_formed_token_and_the_store_down_when_verifying_then_503() {
        assert_problem(deps().call(event("email-verify.unknown-token.json")).await, 503);
    }

    #[tokio::test]
    async fn given_the_wrong_field_when_verifying_then_422_names_both() {
        let (_, problem) = assert_problem(deps().call(event("email-verify.invalid.json")).await, 422);
        assert_eq!(error_fields(&problem), ["code", "token"]);
    }

    #[tokio::test]
    async fn given_the_wrong_method_when_verifying_then_405() {
        let mut event = event_json("email-verify.json");
        event["httpMethod"] = "GET".into();
        let (headers, _) = assert_problem(deps().call(request_from(&event)).await, 405);
        assert_eq!(headers["allow"], "POST");
    }
}
