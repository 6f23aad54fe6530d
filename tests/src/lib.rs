//! The integration tests' stack: real DynamoDB Local and moto (Secrets Manager) reached over
//! HTTP on 127.0.0.1, a fresh table and secret per test, both created from `template.yaml`, and
//! the four handlers wired exactly as their `main.rs` wires them.
//!
//! Endpoints come from `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SECRETS_MANAGER`, set by
//! `make test` (which starts the emulators), defaulting to 127.0.0.1:8000 and :5000.
//!
//! [`Stack::with_proxies`] puts a [`faults::FaultProxy`] between the functions' clients and each
//! emulator, to test behaviour under AWS faults.

pub mod faults;

use std::path::PathBuf;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use lambda_http::{Body, Response};
use serde_json::Value;
use shared::services::TokenServices;
use shared::store::Store;
use shared::testing::{fill, request_from};
use shared::Config;

use crate::faults::FaultProxy;

pub use shared::testing::{assert_problem, error_fields, event_json, parts};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn endpoint(var: &str, default: &str) -> String {
    std::env::var(var).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

/// SDK config for the emulators: static dummy credentials, no credential-chain look-ups.
pub fn sdk_config() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new("local", "local", None, None, "tests")))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder().operation_timeout(Duration::from_secs(10)).build(),
        )
        .build()
}

/// Counts the operations (not the retry attempts) a client sends.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<AtomicUsize>);

impl CallCounter {
    /// The calls counted since the last `take`.
    pub fn take(&self) -> usize {
        self.0.swap(0, Ordering::SeqCst)
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// [`sdk_config`] with the functions' own retries and timeouts (`shared::aws`), for clients
/// whose behaviour under faults is tested.
pub fn production_sdk_config() -> SdkConfig {
    sdk_config()
        .into_builder()
        .retry_config(shared::aws::retry_config())
        .timeout_config(shared::aws::timeout_config())
        .build()
}

pub fn dynamodb_at(endpoint_url: &str, counter: Option<CallCounter>) -> aws_sdk_dynamodb::Client {
    dynamodb_with(&sdk_config(), endpoint_url, counter)
}

fn dynamodb_with(sdk: &SdkConfig, endpoint_url: &str, counter: Option<CallCounter>) -> aws_sdk_dynamodb::Client {
    let mut config = aws_sdk_dynamodb::config::Builder::from(sdk).endpoint_url(endpoint_url);
    if let Some(counter) = counter {
        config = config.interceptor(counter);
    }
    aws_sdk_dynamodb::Client::from_conf(config.build())
}

fn dynamodb_url() -> String {
    endpoint("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000")
}

fn secrets_manager_url() -> String {
    endpoint("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:5000")
}

pub fn dynamodb() -> aws_sdk_dynamodb::Client {
    dynamodb_at(&dynamodb_url(), None)
}

pub fn secrets_manager_with(counter: Option<CallCounter>) -> aws_sdk_secretsmanager::Client {
    secrets_manager_at(&sdk_config(), &secrets_manager_url(), counter)
}

fn secrets_manager_at(
    sdk: &SdkConfig,
    endpoint_url: &str,
    counter: Option<CallCounter>,
) -> aws_sdk_secretsmanager::Client {
    let mut config = aws_sdk_secretsmanager::config::Builder::from(sdk).endpoint_url(endpoint_url);
    if let Some(counter) = counter {
        config = config.interceptor(counter);
    }
    aws_sdk_secretsmanager::Client::from_conf(config.build())
}

pub fn secrets_manager() -> aws_sdk_secretsmanager::Client {
    secrets_manager_with(None)
}

pub fn template() -> localdev::Template {
    localdev::Template::load(repo_root().join("template.yaml")).expect("template.yaml parses")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// One test's isolated stack.
pub struct Stack {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub table: String,
    pub secret_id: String,
    pub config: Config,
    /// DynamoDB and Secrets Manager calls made by the functions (not by the test's own clients).
    pub dynamodb_calls: CallCounter,
    pub secrets_calls: CallCounter,
    pub register: register::Deps,
    pub login: login::Deps,
    pub refresh: refresh::Deps,
    pub get_user: get_user::Deps,
    /// The clients the functions use (through the proxies, if any).
    functions_dynamodb: aws_sdk_dynamodb::Client,
    functions_secrets: aws_sdk_secretsmanager::Client,
    proxies: Option<Proxies>,
}

/// The proxies of a [`Stack::with_proxies`] stack, one per emulator.
pub struct Proxies {
    pub dynamodb: FaultProxy,
    pub secrets: FaultProxy,
}

impl Stack {
    pub async fn new() -> Self {
        Self::with_env(&[]).await
    }

    /// A stack whose functions see these extra environment variables (as the template would set them).
    pub async fn with_env(vars: &[(&str, &str)]) -> Self {
        Self::build(vars, None).await
    }

    /// A stack whose functions reach DynamoDB and Secrets Manager through fault-injecting proxies,
    /// with the retries and timeouts they have in production. The test's own clients
    /// (`dynamodb`, `secrets`) still talk to the emulators directly.
    pub async fn with_proxies(vars: &[(&str, &str)]) -> Self {
        let proxies = Proxies {
            dynamodb: FaultProxy::start(&dynamodb_url()).await,
            secrets: FaultProxy::start(&secrets_manager_url()).await,
        };
        Self::build(vars, Some(proxies)).await
    }

    async fn build(vars: &[(&str, &str)], proxies: Option<Proxies>) -> Self {
        let dynamodb = dynamodb();
        let secrets = secrets_manager();
        let table = unique("auth-test");
        let secret_id = unique("signing-key");
        let template = template();
        template.create_table(&dynamodb, &table).await.unwrap_or_else(|e| {
            panic!("creating table {table} on DynamoDB Local failed ({e}); run the suite with `make test`, which starts the emulators")
        });
        let spec = template.secret_spec().expect("template declares the signing-key secret");
        spec.ensure(&secrets, &secret_id)
            .await
            .unwrap_or_else(|e| panic!("creating secret on moto failed ({e}); run `make test`"));

        let mut env: Vec<(String, String)> =
            vec![("TABLE_NAME".into(), table.clone()), ("SIGNING_KEY_SECRET_ID".into(), secret_id.clone())];
        env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = Config::from_lookup(|name| env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .expect("valid test config");

        let (dynamodb_calls, secrets_calls) = (CallCounter::default(), CallCounter::default());
        let (functions_dynamodb, functions_secrets) = match &proxies {
            None => (
                dynamodb_at(&dynamodb_url(), Some(dynamodb_calls.clone())),
                secrets_manager_with(Some(secrets_calls.clone())),
            ),
            Some(proxies) => {
                let sdk = production_sdk_config();
                (
                    dynamodb_with(&sdk, &proxies.dynamodb.url(), Some(dynamodb_calls.clone())),
                    secrets_manager_at(&sdk, &proxies.secrets.url(), Some(secrets_calls.clone())),
                )
            }
        };
        let services = || {
            TokenServices::new(&config, functions_dynamodb.clone(), functions_secrets.clone())
                .expect("the test config names a secret")
        };
        Self {
            register: register::Deps {
                store: Store::new(functions_dynamodb.clone(), &table),
                policy: config.password_policy,
                cors_allowed_origin: config.cors_allowed_origin.clone(),
            },
            login: services(),
            refresh: services(),
            get_user: services(),
            dynamodb,
            secrets,
            dynamodb_calls,
            secrets_calls,
            table,
            secret_id,
            config,
            functions_dynamodb,
            functions_secrets,
            proxies,
        }
    }

    /// The proxy in front of DynamoDB (panics unless built by [`Stack::with_proxies`]).
    pub fn dynamodb_proxy(&self) -> &FaultProxy {
        &self.proxies.as_ref().expect("a stack built with Stack::with_proxies").dynamodb
    }

    /// The proxy in front of Secrets Manager (panics unless built by [`Stack::with_proxies`]).
    pub fn secrets_proxy(&self) -> &FaultProxy {
        &self.proxies.as_ref().expect("a stack built with Stack::with_proxies").secrets
    }

    /// Fresh dependencies for login, refresh or get-user, as a cold start builds them (before
    /// `main.rs` prefetches the signing key), on the same clients as the stack's functions.
    pub fn token_services(&self) -> TokenServices {
        TokenServices::new(&self.config, self.functions_dynamodb.clone(), self.functions_secrets.clone())
            .expect("the test config names a secret")
    }

    /// Sends an API Gateway event to the function that serves its route.
    pub async fn send(&self, event: &Value) -> Response<Body> {
        let request = request_from(event);
        match event["resource"].as_str() {
            Some("/register") => register::handle(request, &self.register).await,
            Some("/login") => login::handle(request, &self.login).await,
            Some("/refresh") => refresh::handle(request, &self.refresh).await,
            Some("/users/{id}") => get_user::handle(request, &self.get_user).await,
            other => panic!("no function serves {other:?}"),
        }
    }

    /// POSTs `body` to a route, using that route's success fixture as the envelope.
    pub async fn post(&self, route: &str, body: &Value) -> Response<Body> {
        let mut event = event_json(&format!("{route}.json"));
        event["body"] = body.to_string().into();
        self.send(&event).await
    }

    /// `GET /users/{id}` with this bearer token (none when `None`).
    pub async fn get_user(&self, id: &str, token: Option<&str>) -> Response<Body> {
        let mut event = fill(&event_json("get-user.json"), &[("user_id", id)]);
        event["pathParameters"]["id"] = id.into();
        match token {
            Some(token) => {
                let value = format!("Bearer {token}");
                event["headers"]["Authorization"] = value.clone().into();
                event["multiValueHeaders"]["Authorization"] = serde_json::json!([value]);
            }
            None => {
                event["headers"].as_object_mut().unwrap().remove("Authorization");
                event["multiValueHeaders"].as_object_mut().unwrap().remove("Authorization");
            }
        }
        self.send(&event).await
    }

    /// Registers a user; returns the `201` body.
    pub async fn register_user(&self, email: &str, password: &str, name: &str) -> Value {
        let (status, _, body) = parts(
            self.post("register", &serde_json::json!({"email": email, "password": password, "name": name})).await,
        );
        assert_eq!(status, 201, "registration failed: {body}");
        body
    }

    /// Logs in; returns the `200` body.
    pub async fn login_user(&self, email: &str, password: &str) -> Value {
        let (status, _, body) =
            parts(self.post("login", &serde_json::json!({"email": email, "password": password})).await);
        assert_eq!(status, 200, "login failed: {body}");
        body
    }

    pub async fn refresh_with(&self, refresh_token: &str) -> Response<Body> {
        self.post("refresh", &serde_json::json!({"refresh_token": refresh_token})).await
    }

    /// Every item in the table (tests use small tables).
    pub async fn items(&self) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let output = self.dynamodb.scan().table_name(&self.table).consistent_read(true).send().await.expect("scan");
        output.items.unwrap_or_default()
    }

    /// The `pk`s in the table, sorted.
    pub async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> =
            self.items().await.iter().filter_map(|item| item.get("pk")?.as_s().ok().cloned()).collect();
        keys.sort();
        keys
    }
}

pub const PASSWORD: &str = "correct horse battery staple";
