//! AWS SDK set-up shared by every function: one config load, deliberate retries and timeouts.
//!
//! Local endpoints need no code: `aws_config` honours `AWS_ENDPOINT_URL_DYNAMODB`,
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER` and `AWS_ENDPOINT_URL_SESV2`.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Retries and timeouts sized to fit well inside the functions' 10 s timeout: three attempts
/// with exponential backoff from 50 ms, 2 s per attempt, 6 s per operation. When they are
/// exhausted the client gets `503` with `Retry-After`.
///
/// Credentials and region come from the environment, where Lambda puts the role's credentials and
/// the function's region: the default chains would also set up the profile files, SSO, web
/// identity, container and instance-metadata sources at every cold start, which Lambda never uses.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
        .region(aws_config::environment::EnvironmentVariableRegionProvider::new())
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .load()
        .await
}

/// Checks `SSL_CERT_FILE`, the one CA bundle the TLS client reads when it is set (the template
/// sets it to the runtime image's bundle, so init reads one file instead of probing for bundles
/// and reading every file of the certificate directories). A path that is not a PEM file would
/// leave the client trusting no certificate and every AWS call failing: init fails instead.
pub fn check_ca_bundle(lookup: impl Fn(&str) -> Option<String>) -> Result<(), crate::config::ConfigError> {
    let Some(path) = lookup("SSL_CERT_FILE") else { return Ok(()) };
    let invalid = |reason: &str| crate::config::ConfigError::Invalid {
        name: "SSL_CERT_FILE",
        reason: format!("{path} {reason} (the CA bundle the TLS client trusts)"),
    };
    if !Path::new(&path).is_file() {
        return Err(invalid("is not a file"));
    }
    // A bundle's first certificate starts within its first lines (after a comment at most).
    let mut head = Vec::new();
    let read = std::fs::File::open(&path).and_then(|file| file.take(16 * 1024).read_to_end(&mut head));
    if read.is_err() || !head.windows(PEM_CERTIFICATE.len()).any(|w| w == PEM_CERTIFICATE) {
        return Err(invalid("holds no PEM certificate"));
    }
    Ok(())
}

const PEM_CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_ssl_cert_file_when_checking_then_only_a_pem_file_passes() {
        let with = |value: String| move |name: &str| (name == "SSL_CERT_FILE").then(|| value.clone());
        let dir = std::env::temp_dir().join(format!("ca-bundle-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let bundle = dir.join("ca-bundle.crt");
        std::fs::write(&bundle, "# A root\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
            .expect("bundle");
        let text = dir.join("notes.txt");
        std::fs::write(&text, "no certificate here\n").expect("text");
        // GIVEN no SSL_CERT_FILE, THEN the platform's probe is left to find the bundle
        assert!(check_ca_bundle(|_| None).is_ok());
        // GIVEN a PEM bundle, THEN it is accepted
        assert!(check_ca_bundle(with(bundle.display().to_string())).is_ok());
        // GIVEN a directory, a missing path or a file without a certificate, THEN init fails naming
        // the variable and the path
        for path in [dir.display().to_string(), "/nowhere/ca-bundle.crt".to_owned(), text.display().to_string()] {
            let error = check_ca_bundle(with(path.clone())).expect_err("not a bundle").to_string();
            assert!(error.contains("SSL_CERT_FILE") && error.contains(&path), "{error}");
        }
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
