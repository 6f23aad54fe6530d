//! `POST /refresh` `{"refresh_token"}` → `200` with a new access token and the family's next
//! refresh token. Each refresh token works once; presenting a used one revokes its family.

use http::Method;
use lambda_http::{Body, Request, Response};
use shared::http::{json_response, require_method, respond, JsonFields, RequestMeta};
use shared::store::Rotation;
use shared::tokens::{token_pair, RefreshToken};
use shared::{now_epoch, ApiError};

/// What the handler needs; built once per cold start in `main.rs`.
pub type Deps = shared::services::TokenServices;

pub async fn handle(req: Request, deps: &Deps) -> Response<Body> {
    let meta = RequestMeta::new(&req, deps.cors_allowed_origin.as_deref());
    respond(&meta, refresh(&req, deps).await)
}

/// Reads the body: a `400`/`413`/`415` for an unreadable one, a `422` for missing or unknown
/// fields, a `401` for a token that is not one of ours in shape. Public for the fuzz targets.
pub fn parse(req: &Request) -> Result<RefreshToken, ApiError> {
    let mut fields = JsonFields::from_request(req, &["refresh_token"])?;
    let presented = fields.string("refresh_token");
    fields.finish()?;
    presented.as_deref().and_then(RefreshToken::parse).ok_or(ApiError::InvalidRefreshToken("malformed"))
}

async fn refresh(req: &Request, deps: &Deps) -> Result<Response<Body>, ApiError> {
    require_method(req, &Method::POST)?;
    let presented = parse(req)?;

    // Make sure a token can be signed before the presented one is spent: a rotation followed by
    // a failed signature would leave the client holding a used token.
    deps.tokens.keys().current().await?;

    let now = now_epoch();
    let next = presented.rotate()?;
    let family_id = presented.family_id();
    match deps.store.rotate_session(&family_id, &presented.hash(), &next.hash(), now).await? {
        Rotation::Rotated { user_id, expires_at } => {
            let access_token = deps.tokens.issue(&user_id, now).await?;
            tracing::info!(event = "refresh", outcome = "success", user_id = %user_id, "tokens refreshed");
            json_response(
                http::StatusCode::OK,
                &token_pair(access_token, deps.tokens.settings(), &next, expires_at, now),
            )
        }
        Rotation::Reused => {
            deps.store.revoke_session(&family_id, now).await?;
            tracing::warn!(
                event = "refresh",
                outcome = "reuse_detected",
                "used refresh token presented; family revoked"
            );
            Err(ApiError::InvalidRefreshToken("reused"))
        }
        Rotation::Unknown => Err(ApiError::InvalidRefreshToken("unknown")),
        Rotation::Expired => Err(ApiError::InvalidRefreshToken("expired")),
        Rotation::Revoked => Err(ApiError::InvalidRefreshToken("revoked")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::testing::{assert_problem, error_fields, event, offline_token_services};

    fn deps() -> Deps {
        offline_token_services()
    }

    #[tokio::test]
    async fn given_the_wrong_field_when_refreshing_then_422() {
        let (_, problem) = assert_problem(handle(event("refresh.invalid.json"), &deps()).await, 422);
        assert_eq!(error_fields(&problem), ["token", "refresh_token"]);
    }

    #[tokio::test]
    async fn given_a_token_that_is_not_ours_when_refreshing_then_401_without_a_store_call() {
        // `refresh.json` holds a `{{refresh_token}}` placeholder, which no store would accept.
        assert_problem(handle(event("refresh.json"), &deps()).await, 401);
    }

    #[tokio::test]
    async fn given_a_well_formed_token_and_the_store_down_when_refreshing_then_503() {
        assert_problem(handle(event("refresh.unknown-token.json"), &deps()).await, 503);
    }
}
