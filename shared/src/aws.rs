//! AWS SDK set-up shared by every function: one config load, deliberate retries and timeouts.
//!
//! Local endpoints need no code: `aws_config` honours `AWS_ENDPOINT_URL_DYNAMODB`,
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER` and `AWS_ENDPOINT_URL_SESV2`.

use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_http_client::ConnectorBuilder;

/// Retries and timeouts sized to fit well inside the functions' 10 s timeout: three attempts
/// with exponential backoff from 50 ms, 2 s per attempt, 6 s per operation. When they are
/// exhausted the client gets `503` with `Retry-After`.
///
/// Credentials and region come from the environment, where Lambda puts the role's credentials and
/// the function's region: the default chains would also set up the profile files, SSO, web
/// identity, container and instance-metadata sources at every cold start, which Lambda never uses.
///
/// TLS trusts the roots AWS endpoints chain to ([`amazon_roots_client`]) unless `SSL_CERT_FILE`
/// names a bundle (the template's `CaBundlePath`), which the SDK's default client then reads.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_with(std::env::var_os("SSL_CERT_FILE").is_some()).await
}

async fn sdk_config_with(ca_bundle_set: bool) -> SdkConfig {
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
        .region(aws_config::environment::EnvironmentVariableRegionProvider::new())
        .retry_config(retry_config())
        .timeout_config(timeout_config());
    let loader = if ca_bundle_set { loader } else { loader.http_client(amazon_roots_client()) };
    loader.load().await
}

/// The five roots Amazon Trust Services publishes for custom trust stores (Amazon Root CA 1 to 4,
/// Starfield Services Root Certificate Authority - G2; provenance in `shared/data/README.md`).
const AMAZON_ROOTS: &[u8] = include_bytes!("../data/amazon-trust-services.pem");

/// The SDK's default HTTPS client (rustls on aws-lc-rs, proxy settings from the environment, the
/// SDK's timeouts and sleep), trusting [`AMAZON_ROOTS`] alone. A full CA bundle (this host's: 144
/// certificates) is parsed when the first connection is made: trusting five roots instead saved
/// 1.2 ms of get-user's 3.8 ms of init CPU (docs/performance.md, "Init's CPU"). An `https://`
/// proxy's certificate is checked against the same roots: with such a proxy, set `CaBundlePath`.
fn amazon_roots_client() -> SharedHttpClient {
    let trust = TrustStore::empty().with_native_roots(false).with_pem_certificate(AMAZON_ROOTS);
    let tls = TlsContext::builder().with_trust_store(trust).build().expect("a TLS context only holds its parts");
    aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        let mut builder = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
        builder.set_connector_settings(settings.cloned());
        builder.set_sleep_impl(components.and_then(|c| c.sleep_impl()));
        builder.set_proxy_config(Some(ProxyConfig::from_env()));
        builder.tls_context(tls.clone()).build()
    })
}

/// Checks `SSL_CERT_FILE`, the one CA bundle the TLS client trusts when it is set (the template's
/// `CaBundlePath`; unset, the bundled Amazon roots are trusted). A path that is not a PEM file
/// would leave the client trusting no certificate and every AWS call failing: init fails instead.
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

/// The AWS clients a function may use, from one SDK configuration, each built when a function's
/// dependencies first ask for it (during init: [`crate::lambda::Function::build`]). Building a
/// client opens no connection, but it costs init 0.1 to 0.2 ms of CPU (get-user, no quota), so
/// a function builds only those it calls: SES only in the mailer, Secrets Manager only where
/// a key is read.
#[derive(Clone, Debug)]
pub struct Clients {
    config: SdkConfig,
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    secrets: OnceLock<aws_sdk_secretsmanager::Client>,
    ses: OnceLock<aws_sdk_sesv2::Client>,
}

impl Clients {
    pub fn new(config: &SdkConfig) -> Self {
        Self { config: config.clone(), dynamodb: OnceLock::new(), secrets: OnceLock::new(), ses: OnceLock::new() }
    }

    /// These clients, with `dynamodb`, `secrets` and `ses` built already (tests point them at
    /// emulators and count their calls).
    pub fn with(
        config: &SdkConfig,
        dynamodb: aws_sdk_dynamodb::Client,
        secrets: aws_sdk_secretsmanager::Client,
        ses: aws_sdk_sesv2::Client,
    ) -> Self {
        Self { config: config.clone(), dynamodb: dynamodb.into(), secrets: secrets.into(), ses: ses.into() }
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        self.dynamodb.get_or_init(|| dynamodb(&self.config)).clone()
    }

    pub fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        self.secrets.get_or_init(|| secrets_manager(&self.config)).clone()
    }

    pub fn ses(&self) -> aws_sdk_sesv2::Client {
        self.ses.get_or_init(|| aws_sdk_sesv2::Client::new(&self.config)).clone()
    }

    /// Which clients have been built, in the order dynamodb, secrets, ses.
    pub fn built(&self) -> [bool; 3] {
        [self.dynamodb.get().is_some(), self.secrets.get().is_some(), self.ses.get().is_some()]
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
    fn given_new_clients_when_one_is_asked_for_then_only_it_is_built() {
        // GIVEN the clients of a cold start
        let clients = Clients::new(&crate::testing::unreachable_aws());
        // THEN none is built before a function asks
        assert_eq!(clients.built(), [false, false, false]);
        // WHEN Secrets Manager's is asked for
        let _secrets = clients.secrets();
        // THEN it alone is built
        assert_eq!(clients.built(), [false, true, false]);
    }

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
        // GIVEN no SSL_CERT_FILE, THEN there is nothing to check (the bundled roots are trusted)
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

    /// SHA-256 of each certificate's DER, as `shared/data/README.md` lists them (and
    /// amazontrust.com publishes them).
    const AMAZON_ROOT_FINGERPRINTS: [&str; 5] = [
        "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e",
        "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4",
        "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4",
        "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092",
        "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5",
    ];

    #[test]
    fn given_the_bundled_roots_then_they_are_the_five_amazon_trust_services_roots() {
        use base64::Engine as _;
        use sha2::Digest as _;
        // GIVEN the PEM file built into the functions
        let text = std::str::from_utf8(AMAZON_ROOTS).expect("PEM is ASCII");
        // WHEN each certificate is decoded
        let fingerprints: Vec<String> = text
            .split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|block| {
                let body = block.split("-----END CERTIFICATE-----").next().expect("an end marker");
                let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
                let der = base64::engine::general_purpose::STANDARD.decode(b64).expect("valid base64");
                sha2::Sha256::digest(&der).iter().map(|b| format!("{b:02x}")).collect()
            })
            .collect();
        // THEN they are the five roots, in order, and nothing else
        assert_eq!(fingerprints, AMAZON_ROOT_FINGERPRINTS);
    }

    #[tokio::test]
    async fn given_no_ca_bundle_when_loading_then_the_sdk_uses_the_amazon_roots_client() {
        // GIVEN no SSL_CERT_FILE, WHEN the configuration loads, THEN it carries a client of ours
        assert!(sdk_config_with(false).await.http_client().is_some());
        // GIVEN one, THEN the SDK's default client, which reads that file, is left in place
        assert!(sdk_config_with(true).await.http_client().is_none());
    }
}
