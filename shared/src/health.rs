//! The health check behind `GET /health`: is the table there, is there a signing key.
//!
//! Neither check reads an item or anything secret: `DescribeTable`, and the public JWKS (which
//! holds a key once the ring's first rotation ran; until then signing answers `503`). The JWKS
//! must hold a key of the configured algorithm: after `SigningAlgorithm` changes, signers answer
//! `503` until a rotation made such a key, and so does this check. The result
//! is kept [`CACHE_FOR`] in the warm instance, so a flood of health checks costs at most one
//! pair of calls per instance every 30 s.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::TableStatus;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::{Chain, DependencyError};
use crate::keyring::SigningAlgorithm;

/// How long a result is reused, and the `Retry-After` of an unhealthy answer.
pub const CACHE_FOR: Duration = Duration::from_secs(30);

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Ok,
    /// The dependency did not answer, or answered that the resource is not usable.
    Unavailable,
}

/// Every check by name, as the response's `checks` member shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub checks: BTreeMap<&'static str, Check>,
}

impl Report {
    pub fn healthy(&self) -> bool {
        self.checks.values().all(|check| *check == Check::Ok)
    }
}

/// The checks and the cached result.
pub struct Health {
    dynamodb: aws_sdk_dynamodb::Client,
    secrets: aws_sdk_secretsmanager::Client,
    table: String,
    jwks_secret_id: String,
    algorithm: SigningAlgorithm,
    cached: Mutex<Option<(Instant, Report)>>,
}

fn outcome<T>(what: &str, result: Result<T, DependencyError>, usable: impl FnOnce(T) -> bool) -> Check {
    match result.map(usable) {
        Ok(true) => Check::Ok,
        Ok(false) => {
            tracing::warn!(check = what, "health check: the resource is not usable");
            Check::Unavailable
        }
        Err(error) => {
            tracing::warn!(check = what, error = %Chain(&error), "health check failed");
            Check::Unavailable
        }
    }
}

impl Health {
    pub fn new(
        dynamodb: aws_sdk_dynamodb::Client,
        secrets: aws_sdk_secretsmanager::Client,
        table: impl Into<String>,
        jwks_secret_id: impl Into<String>,
        algorithm: SigningAlgorithm,
    ) -> Self {
        let (table, jwks_secret_id) = (table.into(), jwks_secret_id.into());
        Self { dynamodb, secrets, table, jwks_secret_id, algorithm, cached: Mutex::default() }
    }

    /// The report of at most [`CACHE_FOR`] ago; concurrent callers wait for one set of checks.
    pub async fn report(&self) -> Report {
        let mut cached = self.cached.lock().await;
        if let Some((at, report)) = cached.as_ref() {
            if at.elapsed() < CACHE_FOR {
                return report.clone();
            }
        }
        let report = self.check().await;
        *cached = Some((Instant::now(), report.clone()));
        report
    }

    async fn check(&self) -> Report {
        let table = async {
            self.dynamodb
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| DependencyError::from_sdk("DynamoDB", e))
        };
        let secret = async {
            self.secrets
                .get_secret_value()
                .secret_id(&self.jwks_secret_id)
                .version_stage("AWSCURRENT")
                .send()
                .await
                .map_err(|e| DependencyError::from_sdk("Secrets Manager", e))
        };
        let (table, secret) = tokio::join!(table, secret);
        let table = outcome("table", table, |output| {
            let status = output.table.and_then(|t| t.table_status);
            matches!(status, Some(TableStatus::Active | TableStatus::Updating))
        });
        let signing_key = outcome("signing_key", secret, |output| {
            let published = output.secret_string().and_then(|text| serde_json::from_str::<JwkSet>(text).ok());
            let of_algorithm = |jwk: &Jwk| SigningAlgorithm::of_public_jwk(jwk) == Some(self.algorithm);
            published.is_some_and(|jwks| jwks.keys.iter().any(of_algorithm))
        });
        Report { checks: BTreeMap::from([("table", table), ("signing_key", signing_key)]) }
    }
}
