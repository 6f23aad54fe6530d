//! AWS SDK set-up shared by every function: one config load, deliberate retries and timeouts.
//!
//! Local endpoints need no code: `aws_config` honours `AWS_ENDPOINT_URL_DYNAMODB`,
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER` and `AWS_ENDPOINT_URL_SESV2`.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Retries and timeouts sized to fit well inside the functions' 10 s timeout: three attempts
/// with exponential backoff from 50 ms, 2 s per attempt, 6 s per operation. When they are
/// exhausted the client gets `503` with `Retry-After`.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .load()
        .await
}

/// Three attempts, exponential backoff from 50 ms up to 1 s.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_secs(1))
}

/// 1 s to connect, 2 s per attempt, 6 s per operation (all attempts and backoff).
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(6))
        .build()
}

/// The AWS clients a function may use, built once per cold start from one SDK configuration
/// (building a client opens no connection; the first call does).
#[derive(Clone, Debug)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    /// Only the mailer calls SES.
    pub ses: aws_sdk_sesv2::Client,
}

impl Clients {
    pub fn new(config: &SdkConfig) -> Self {
        Self { dynamodb: dynamodb(config), secrets: secrets_manager(config), ses: aws_sdk_sesv2::Client::new(config) }
    }
}

pub fn dynamodb(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

pub fn secrets_manager(config: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(config)
}
