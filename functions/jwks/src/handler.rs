//! What a verifier needs, public and cacheable (no API key):
//!
//! - `GET /.well-known/jwks.json` → `200` with the public JWKS: every key that may have signed a
//!   live token, and the next one. `Cache-Control: public, max-age=<JwksMaxAge>`: a new key is
//!   published at least that long (plus `KeyCacheTtlSeconds`, this function's own cache) before
//!   it signs, so a cached copy is never missing a signer.
//!   While Secrets Manager fails, a warm instance answers the set it read last, but cacheable
//!   for [`STALE_MAX_AGE`] only: that copy may lack a key published since, which signs once its
//!   publication is `JwksMaxAge` + `KeyCacheTtlSeconds` old whatever this instance could read.
//!   Before the key ring's first rotation there is no key: `503` with `Retry-After` (an empty
//!   set must not be cached for an hour by a verifier that the first key then fails).
//! - `GET /.well-known/openid-configuration` → `200` with exactly `issuer`, `jwks_uri`,
//!   `subject_types_supported` and `id_token_signing_alg_values_supported`: what API Gateway's
//!   JWT authorizers and JOSE libraries read to find the keys. The service is not an OpenID
//!   Provider (no ID tokens, no authorization endpoint); see the README.
//!
//! Both allow every origin (`Access-Control-Allow-Origin: *`): the documents are public, and a
//! browser app may verify tokens too.

use std::time::Duration;

use http::{header, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shared::aws::Clients;
use shared::config::{Config, ConfigError, Issuer};
use shared::http::{json_response, require_method};
use shared::keyring::SigningAlgorithm;
use shared::lambda::{Function, RequestLog};
use shared::token_keys::TokenKeys;
use shared::{ApiError, DependencyError};

pub const JWKS_PATH: &str = "/.well-known/jwks.json";
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// The `max-age` of a key set this instance could not re-read in time: short, so that verifiers
/// and shared caches come back for the next key soon, and long enough not to flood the route.
pub const STALE_MAX_AGE: Duration = Duration::from_secs(60);

/// What the handler needs; built once per cold start.
pub struct Deps {
    pub keys: TokenKeys,
    pub issuer: Issuer,
    pub max_age: Duration,
}

impl Function for Deps {
    fn build(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        let jwks = config.key_ring.jwks_secret_id()?;
        Ok(Self {
            keys: TokenKeys::verifying(aws.secrets(), jwks, config.key_cache_ttl, config.key_ring.algorithm),
            issuer: config.tokens.issuer()?.clone(),
            max_age: config.key_ring.jwks_max_age,
        })
    }

    /// Reads the JWKS during init.
    async fn warm(&self) {
        self.keys.prefetch().await;
    }

    async fn handle(&self, req: &Request, _log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
        require_method(req, &Method::GET)?;
        let path = req.uri().path();
        let (response, max_age) = if path.ends_with(JWKS_PATH) {
            let published = self.keys.jwks().await?;
            if published.jwks.keys.is_empty() {
                return Err(ApiError::Dependency(DependencyError::Unavailable {
                    service: "Secrets Manager",
                    source: "no signing key is published yet (the key ring's first rotation has not run)".into(),
                }));
            }
            let max_age = if published.stale { STALE_MAX_AGE.min(self.max_age) } else { self.max_age };
            (json_response(StatusCode::OK, &*published.jwks)?, max_age)
        } else if path.ends_with(DISCOVERY_PATH) {
            let discovery = Discovery::of(self.issuer.of(req)?, self.keys.algorithm());
            (json_response(StatusCode::OK, &discovery)?, self.max_age)
        } else {
            return Err(ApiError::NotFound);
        };
        Ok(public(response, max_age))
    }
}

/// The discovery document: the four members a JWT verifier reads, and nothing it could take
/// for an OpenID Provider's.
#[derive(Debug, Serialize)]
pub struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
    pub subject_types_supported: [&'static str; 1],
    pub id_token_signing_alg_values_supported: [&'static str; 1],
}

impl Discovery {
    pub fn of(issuer: String, algorithm: SigningAlgorithm) -> Self {
        Self {
            jwks_uri: format!("{issuer}{JWKS_PATH}"),
            issuer,
            subject_types_supported: ["public"],
            id_token_signing_alg_values_supported: [algorithm.name()],
        }
    }
}

/// Cacheable by anyone for `max_age`, from any origin.
fn public(mut response: Response<Body>, max_age: Duration) -> Response<Body> {
    let headers = response.headers_mut();
    let cache = format!("public, max-age={}", max_age.as_secs());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_str(&cache).expect("an ASCII header"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::keyring::KeyRing;
    use shared::lambda::Service;
    use shared::testing::{assert_problem, event, event_json, parts, request_from, TEST_ISSUER, TEST_KEY};

    fn deps(ring: KeyRing) -> Service<Deps> {
        let issuer = Issuer::ExecuteApi { region: "us-east-1".into(), url_suffix: "amazonaws.com".into() };
        let keys = TokenKeys::fixed(ring, Duration::from_secs(3600));
        Service::without_cors(Deps { keys, issuer, max_age: Duration::from_secs(3600) })
    }

    fn ring() -> KeyRing {
        KeyRing { keys: vec![TEST_KEY.clone()] }
    }

    #[tokio::test]
    async fn given_a_published_key_when_fetching_the_jwks_then_it_is_public_cacheable_and_has_no_private_part() {
        let (status, headers, body) = parts(deps(ring()).call(event("jwks.json")).await);
        assert_eq!(status, 200);
        assert_eq!(headers["cache-control"], "public, max-age=3600");
        assert_eq!(headers["access-control-allow-origin"], "*");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(body["keys"][0]["kid"], TEST_KEY.kid.as_str());
        assert_eq!((&body["keys"][0]["alg"], &body["keys"][0]["use"]), (&"ES256".into(), &"sig".into()));
        assert!(body["keys"][0].get("d").is_none(), "{body}");
    }

    #[tokio::test]
    async fn given_the_discovery_route_then_exactly_four_members_name_the_issuer_and_the_jwks() {
        let (status, headers, body) = parts(deps(ring()).call(event("openid-configuration.json")).await);
        assert_eq!(status, 200);
        assert_eq!(headers["cache-control"], "public, max-age=3600");
        assert_eq!(headers["access-control-allow-origin"], "*");
        let expected = serde_json::json!({
            "issuer": TEST_ISSUER,
            "jwks_uri": format!("{TEST_ISSUER}/.well-known/jwks.json"),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        });
        assert_eq!(body, expected);
    }

    #[tokio::test]
    async fn given_no_key_yet_when_fetching_the_jwks_then_503_that_no_cache_keeps() {
        let (headers, _) = assert_problem(deps(KeyRing::default()).call(event("jwks.json")).await, 503);
        assert_eq!(headers["retry-after"], "2");
        assert_eq!(headers["cache-control"], "no-store");
    }

    #[tokio::test]
    async fn given_another_method_when_fetching_then_405() {
        let mut post = event_json("jwks.json");
        post["httpMethod"] = "POST".into();
        post["requestContext"]["httpMethod"] = "POST".into();
        assert_problem(deps(ring()).call(request_from(&post)).await, 405);
    }
}
