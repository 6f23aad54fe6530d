//! `POST /login` `{"email","password"}` → `200` with an access token and a new refresh-token
//! family. Wrong password and unknown email get the same `401`, after the same work.

use http::Method;
use lambda_http::{Body, Request, Response};
use shared::domain::{Email, SubmittedPassword};
use shared::http::{json_response, require_method, respond, source_ip, JsonFields, RequestMeta};
use shared::password::{self, Verification};
use shared::store::NewSession;
use shared::tokens::{token_pair, RefreshToken};
use shared::{now_epoch, ApiError};

/// What the handler needs; built once per cold start in `main.rs`.
pub type Deps = shared::services::TokenServices;

pub async fn handle(req: Request, deps: &Deps) -> Response<Body> {
    let meta = RequestMeta::new(&req, deps.cors_allowed_origin.as_deref());
    respond(&meta, login(&req, deps).await)
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

async fn login(req: &Request, deps: &Deps) -> Result<Response<Body>, ApiError> {
    require_method(req, &Method::POST)?;
    let (email, password) = parse(req)?;

    let now = now_epoch();
    let (credentials, failures) = deps.store.login_state(&email).await?;
    if let Some(seconds) = failures.retry_after(now) {
        tracing::info!(
            event = "login",
            outcome = "throttled",
            retry_after = seconds,
            source_ip = source_ip(req),
            "login refused: too many failures"
        );
        return Err(ApiError::TooManyAttempts(seconds));
    }
    let stored_hash = credentials.as_ref().map(|c| c.password_hash.clone());
    let (credentials, rehashed) = match (password::verify(password, stored_hash).await?, credentials) {
        (Verification::Match { rehashed }, Some(credentials)) => (credentials, rehashed),
        (_, credentials) => {
            // Unknown emails are counted too, so that both answers stay the same.
            deps.store.record_failed_login(&email, &failures, now).await?;
            let user_id = credentials.map(|c| c.user_id);
            tracing::info!(
                event = "login",
                outcome = "failure",
                source_ip = source_ip(req),
                user_id,
                failures = failures.current(now) + 1,
                "login refused: bad credentials"
            );
            return Err(ApiError::InvalidCredentials);
        }
    };

    // Sign first: if the key cannot be had, nothing has been written yet.
    let access_token = deps.tokens.issue(&credentials.user_id, now).await?;
    let refresh = RefreshToken::generate()?;
    let expires_at = now + deps.tokens.settings().refresh_ttl.as_secs() as i64;
    deps.store
        .create_session(
            NewSession {
                family_id: &refresh.family_id(),
                user_id: &credentials.user_id,
                token_hash: &refresh.hash(),
                now,
                expires_at,
            },
            (failures.current(now) > 0).then_some(&email),
        )
        .await?;
    if let Some(new_hash) = rehashed {
        // Best effort: the login already succeeded, and the next one will try again.
        if let Err(error) = deps.store.upgrade_password_hash(&email, &credentials.password_hash, &new_hash).await {
            tracing::warn!(error = %shared::error::Chain(&error), user_id = %credentials.user_id, "password hash upgrade failed");
        }
    }
    tracing::info!(event = "login", outcome = "success", user_id = %credentials.user_id, source_ip = source_ip(req), "user logged in");
    json_response(http::StatusCode::OK, &token_pair(access_token, deps.tokens.settings(), &refresh, expires_at, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::testing::{assert_problem, error_fields, event, event_json, offline_token_services, request_from};

    fn deps() -> Deps {
        offline_token_services()
    }

    #[tokio::test]
    async fn given_a_missing_password_when_logging_in_then_422() {
        let (_, problem) = assert_problem(handle(event("login.invalid.json"), &deps()).await, 422);
        assert_eq!(error_fields(&problem), ["password"]);
    }

    #[tokio::test]
    async fn given_malformed_json_when_logging_in_then_400() {
        assert_problem(handle(event("login.malformed.json"), &deps()).await, 400);
    }

    #[tokio::test]
    async fn given_an_invalid_email_when_logging_in_then_422_not_401() {
        let mut event = event_json("login.json");
        event["body"] = r#"{"email":"nope","password":"whatever it is"}"#.into();
        let (_, problem) = assert_problem(handle(request_from(&event), &deps()).await, 422);
        assert_eq!(error_fields(&problem), ["email"]);
    }

    #[tokio::test]
    async fn given_the_store_is_down_when_logging_in_then_503() {
        assert_problem(handle(event("login.json"), &deps()).await, 503);
    }
}
