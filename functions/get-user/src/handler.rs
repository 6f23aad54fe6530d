//! `GET /users/{id}` with `Authorization: Bearer <access token>` → `200` with the user. `{id}`
//! may be `me`; another user's id is `403`.

use std::sync::Arc;

use http::Method;
use lambda_http::{Body, Request, RequestExt, Response};
use shared::config::ConfigError;
use shared::http::{json_response, require_method, respond, single_header, RequestMeta};
use shared::keys::SigningKeys;
use shared::store::Store;
use shared::tokens::AccessTokens;
use shared::{now_epoch, ApiError, Config};

pub struct Deps {
    pub store: Store,
    pub tokens: AccessTokens,
    pub cors_allowed_origin: Option<String>,
}

impl Deps {
    pub fn new(
        config: &Config,
        dynamodb: aws_sdk_dynamodb::Client,
        secrets: aws_sdk_secretsmanager::Client,
    ) -> Result<Self, ConfigError> {
        let keys = SigningKeys::from_secrets_manager(secrets, config.signing_key_secret_id()?, config.key_cache_ttl);
        Ok(Self {
            store: Store::new(dynamodb, &config.table_name),
            tokens: AccessTokens::new(Arc::new(keys), config.tokens.clone()),
            cors_allowed_origin: config.cors_allowed_origin.clone(),
        })
    }
}

pub async fn handle(req: Request, deps: &Deps) -> Response<Body> {
    let meta = RequestMeta::new(&req, deps.cors_allowed_origin.as_deref());
    respond(&meta, get_user(&req, deps).await)
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(req: &Request) -> Result<&str, ApiError> {
    let header = single_header(req.headers(), &http::header::AUTHORIZATION)
        .map_err(|_| ApiError::InvalidAccessToken("duplicate authorization header"))?
        .ok_or(ApiError::MissingAccessToken)?;
    let value = header.to_str().map_err(|_| ApiError::InvalidAccessToken("non-ASCII authorization header"))?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::MissingAccessToken);
    }
    let token = token.trim();
    if token.is_empty() || token.contains(' ') {
        return Err(ApiError::InvalidAccessToken("malformed bearer credentials"));
    }
    Ok(token)
}

async fn get_user(req: &Request, deps: &Deps) -> Result<Response<Body>, ApiError> {
    require_method(req, &Method::GET)?;
    let token = bearer_token(req)?;
    let claims = deps.tokens.verify(token, now_epoch()).await?;

    let requested = req.path_parameters_ref().and_then(|params| params.first("id")).ok_or(ApiError::NotFound)?;
    if requested != "me" {
        let requested = uuid::Uuid::parse_str(requested).map_err(|_| ApiError::NotFound)?;
        if requested.to_string() != claims.sub {
            return Err(ApiError::Forbidden);
        }
    }
    // A valid token whose user is gone no longer authenticates anyone.
    let user = deps.store.user(&claims.sub).await?.ok_or(ApiError::InvalidAccessToken("user no longer exists"))?;
    json_response(http::StatusCode::OK, &user)
}
