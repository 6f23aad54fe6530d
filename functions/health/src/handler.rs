//! `GET /health` → `200 {"status":"ok","checks":{...}}` when the table is usable and a
//! signing key is published, else `503` problem+json with `Retry-After: 30` and the failing check
//! marked in `checks`. The result is cached 30 s per warm instance (see `shared::health`).

use http::Method;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shared::aws::Clients;
use shared::config::{Config, ConfigError};
use shared::health::{Health, Report};
use shared::http::{json_response, require_method};
use shared::lambda::{Function, RequestLog};
use shared::ApiError;

/// What the handler needs; built once per cold start.
pub struct Deps {
    pub health: Health,
}

impl Function for Deps {
    fn build(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        let jwks = config.key_ring.jwks_secret_id()?;
        let algorithm = config.key_ring.algorithm;
        let health = Health::new(aws.dynamodb(), aws.secrets(), &config.table_name, jwks, algorithm);
        Ok(Self { health })
    }

    /// The first check runs in init, which Lambda runs unthrottled, so that a new instance's first
    /// request gets the cached report instead of waiting for both round trips.
    async fn warm(&self) {
        self.health.report().await;
    }

    async fn handle(&self, req: &Request, _log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
        health(req, self).await
    }
}

#[derive(Serialize)]
struct Healthy {
    status: &'static str,
    #[serde(flatten)]
    report: Report,
}

async fn health(req: &Request, deps: &Deps) -> Result<Response<Body>, ApiError> {
    require_method(req, &Method::GET)?;
    let report = deps.health.report().await;
    if !report.healthy() {
        return Err(ApiError::Unhealthy(report));
    }
    json_response(http::StatusCode::OK, &Healthy { status: "ok", report })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::lambda::Service;
    use shared::testing::{assert_problem, event, event_json, request_from, unreachable_aws};

    fn deps() -> Service<Deps> {
        let aws = unreachable_aws();
        let config = Config::from_lookup(|name| match name {
            "TABLE_NAME" => Some("offline".into()),
            "JWKS_SECRET_ID" => Some("offline".into()),
            _ => None,
        })
        .unwrap();
        Service::new(Deps::build(&config, &Clients::new(&aws)).unwrap(), &config)
    }

    #[tokio::test]
    async fn given_unreachable_dependencies_when_checking_then_503_marks_both_and_says_when_to_retry() {
        let (headers, problem) = assert_problem(deps().call(event("health.json")).await, 503);
        assert_eq!(headers["retry-after"], "30");
        assert_eq!(problem["checks"], serde_json::json!({"signing_key": "unavailable", "table": "unavailable"}));
        assert!(!problem.to_string().contains("127.0.0.1"), "{problem}");
    }

    #[tokio::test]
    async fn given_the_wrong_method_when_checking_then_405() {
        let mut event = event_json("health.json");
        event["httpMethod"] = "POST".into();
        let (headers, _) = assert_problem(deps().call(request_from(&event)).await, 405);
        assert_eq!(headers["allow"], "GET");
    }
}
