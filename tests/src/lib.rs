//! The integration tests' stack: real DynamoDB Local and moto (Secrets Manager) reached over
//! HTTP on 127.0.0.1, a fresh local stack per test (its table and secrets created from
//! `template.yaml`), and the four handlers wired exactly as their `main.rs` wires them, each with
//! the environment Lambda would give it.
//!
//! The test's own clients (`dynamodb`, `secrets`) talk to the emulators directly, as an operator
//! would; every call a function makes goes through the local IAM check and is held to that
//! function's statements in the template. `make test` runs one check for the whole suite
//! (`LOCAL_IAM_ENDPOINT`) and records its decisions; without it, the tests start one of their own.
//! Emulator endpoints come from `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SECRETS_MANAGER`
//! (default 127.0.0.1:8000 and :5000).
//!
//! [`Stack::with_proxies`] puts a [`faults::FaultProxy`] between the functions' clients and the
//! IAM check, to test behaviour under AWS faults.

pub mod faults;
pub mod verifier;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_smithy_types::config_bag::{Storable, StoreReplace};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use lambda_http::{Body, Response};
use serde_json::Value;
use shared::aws::Clients;
use shared::lambda::{Function, Service};
use shared::testing::request_from;
use shared::Config;

use crate::faults::FaultProxy;

pub use shared::testing::{assert_problem, error_fields, event_json, fill, parts};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn endpoint(var: &str, default: &str) -> String {
    std::env::var(var).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

/// SDK config for the emulators: static dummy credentials, no credential-chain look-ups.
pub fn sdk_config() -> SdkConfig {
    sdk_config_as("local")
}

/// [`sdk_config`] signing with this access key id.
fn sdk_config_as(access_key_id: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            access_key_id,
            "local",
            None,
            None,
            "tests",
        )))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder().operation_timeout(Duration::from_secs(10)).build(),
        )
        .build()
}
/// Counts the operations (not the retry attempts) a client sends, and how many sequential round
/// trips they took: operations in flight at the same time count as one round trip.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Mutex<Vec<Call>>>);

/// When an operation started and, once it did, ended.
type Call = (Instant, Option<Instant>);

/// The index of an operation in its [`CallCounter`], kept in the operation's config bag.
#[derive(Debug, Clone)]
struct CallIndex(usize);

impl Storable for CallIndex {
    type Storer = StoreReplace<Self>;
}

impl CallCounter {
    fn calls(&self) -> std::sync::MutexGuard<'_, Vec<Call>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The operations counted since the last `take`.
    pub fn take(&self) -> usize {
        std::mem::take(&mut *self.calls()).len()
    }

    /// (operations, round trips) since the last `take`.
    pub fn take_round_trips(&self) -> (usize, usize) {
        let mut calls = std::mem::take(&mut *self.calls());
        calls.sort_by_key(|(start, _)| *start);
        let mut round_trips = 0;
        let mut busy_until: Option<Instant> = None;
        for (start, end) in &calls {
            let end = end.unwrap_or(*start);
            match busy_until {
                Some(until) if *start < until => busy_until = Some(until.max(end)),
                _ => {
                    round_trips += 1;
                    busy_until = Some(end);
                }
            }
        }
        (calls.len(), round_trips)
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let mut calls = self.calls();
        cfg.interceptor_state().store_put(CallIndex(calls.len()));
        calls.push((Instant::now(), None));
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(CallIndex(index)) = cfg.load::<CallIndex>() {
            if let Some(call) = self.calls().get_mut(*index) {
                call.1 = Some(Instant::now());
            }
        }
        Ok(())
    }
}

/// The functions' SDK config as `shared::aws` sets it up (retries and timeouts), signing with
/// the function's own access key id from its environment.
fn function_sdk_config(env: &BTreeMap<String, String>) -> SdkConfig {
    sdk_config_as(&env["AWS_ACCESS_KEY_ID"])
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

pub fn dynamodb_url() -> String {
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

/// An SES client signing as the function's `sdk` identity, against `endpoint_url` (the IAM check).
fn ses_at(sdk: &SdkConfig, endpoint_url: &str) -> aws_sdk_sesv2::Client {
    aws_sdk_sesv2::Client::from_conf(aws_sdk_sesv2::config::Builder::from(sdk).endpoint_url(endpoint_url).build())
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

/// An IAM check of the test's own for `template` (a SAM template or a transformed one), recording
/// nothing: for tests that expect denials, which the suite's record must not contain.
pub async fn private_iam_check(template: &std::path::Path) -> localdev::iam::IamProxy {
    let options = localdev::iam::IamProxyOptions {
        template: template.to_owned(),
        parameter_overrides: String::new(),
        region: "us-east-1".into(),
        dynamodb: dynamodb_url(),
        secrets_manager: secrets_manager_url(),
        record: None,
        log_denials: false,
    };
    localdev::iam::IamProxy::start(options, "127.0.0.1:0".parse().expect("an address")).await.expect("an IAM check")
}

/// A client signing as `function` of `stack`, against `endpoint`.
pub fn dynamodb_as(stack: &Stack, function: &str, endpoint: &str) -> aws_sdk_dynamodb::Client {
    dynamodb_with(&function_sdk_config(&stack.function(function).env), endpoint, None)
}

/// The local IAM check every function call goes through: `make test`'s (`LOCAL_IAM_ENDPOINT`),
/// else one started for this test process on a thread of its own (each test's runtime ends
/// with the test).
pub fn iam_endpoint() -> String {
    static OWN: OnceLock<String> = OnceLock::new();
    if let Ok(url) = std::env::var("LOCAL_IAM_ENDPOINT") {
        if !url.is_empty() {
            return url;
        }
    }
    OWN.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async move {
                let options = localdev::iam::IamProxyOptions {
                    template: repo_root().join("template.yaml"),
                    parameter_overrides: String::new(),
                    region: "us-east-1".into(),
                    dynamodb: dynamodb_url(),
                    secrets_manager: secrets_manager_url(),
                    record: None,
                    log_denials: true,
                };
                match localdev::iam::IamProxy::start(options, "127.0.0.1:0".parse().expect("an address")).await {
                    Ok(proxy) => {
                        let _ = sender.send(Ok(proxy.url()));
                        std::future::pending::<()>().await;
                    }
                    Err(error) => {
                        let _ = sender.send(Err(error.to_string()));
                    }
                }
            });
        });
        match receiver.recv() {
            Ok(Ok(url)) => url,
            Ok(Err(error)) => panic!("starting the local IAM check failed: {error}"),
            Err(_) => panic!("the local IAM check's thread ended"),
        }
    })
    .clone()
}

/// One of the template's functions, as a test wires it: its environment, its configuration and
/// the clients it signs with.
pub struct FunctionEnv {
    pub env: BTreeMap<String, String>,
    pub config: Config,
    pub clients: Clients,
}

impl FunctionEnv {
    /// The function `F` as a cold start builds it (before [`Function::warm`]).
    fn service<F: Function>(&self) -> Service<F> {
        let function = F::build(&self.config, &self.clients)
            .unwrap_or_else(|e| panic!("the template gives the function what it needs: {e}"));
        Service::new(function, &self.config)
    }
}

/// The token of a message's link (`#token=<token>`).
pub fn token_of(message: &localdev::outbox::Message) -> String {
    let link = message
        .links()
        .into_iter()
        .find(|l| l.contains("#token="))
        .unwrap_or_else(|| panic!("no link in {message:#?}"));
    link.rsplit_once("#token=").expect("a token").1.to_owned()
}

/// An address no other test uses (the IAM check's outbox is shared by the whole suite).
pub fn unique_email(name: &str) -> String {
    format!("{name}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// One test's isolated stack.
pub struct Stack {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub stack: localdev::LocalStack,
    pub resources: localdev::StackResources,
    pub table: String,
    /// The signing key ring's secret, as the functions name it (its ARN).
    pub secret_id: String,
    /// DynamoDB and Secrets Manager calls made by the functions (not by the test's own clients).
    pub dynamodb_calls: CallCounter,
    pub secrets_calls: CallCounter,
    pub register: Service<register::Deps>,
    pub login: Service<login::Deps>,
    pub refresh: Service<refresh::Deps>,
    pub get_user: Service<get_user::Deps>,
    pub health: Service<health::Deps>,
    pub jwks: Service<jwks::Deps>,
    pub logout: Service<logout::Deps>,
    pub logout_all: Service<logout_all::Deps>,
    pub email_verify: Service<email_verify::Deps>,
    pub email_verify_resend: Service<email_verify_resend::Deps>,
    pub password_forgot: Service<password_forgot::Deps>,
    pub password_reset: Service<password_reset::Deps>,
    pub password_change: Service<password_change::Deps>,
    pub email_change: Service<email_change::Deps>,
    pub delete_user: Service<delete_user::Deps>,
    /// The stream consumer, called by [`Stack::deliver_mail`].
    pub mailer: mailer::Deps,
    pub rotate_signing_key: rotate_signing_key::Deps,
    /// The table's stream, as the mailer's event source mapping reads it.
    mail_feed: tokio::sync::Mutex<Option<localdev::stream::StreamFeed>>,
    /// The IAM check the functions' calls go through (its outbox holds the mail SES accepted).
    iam: String,
    functions: BTreeMap<String, FunctionEnv>,
    proxies: Option<Proxies>,
}

/// The proxies of a [`Stack::with_proxies`] stack, one per service.
pub struct Proxies {
    pub dynamodb: FaultProxy,
    pub secrets: FaultProxy,
}

impl Stack {
    /// A stack as a deployment leaves it: the key ring's first rotation has run.
    pub async fn new() -> Self {
        Self::with_env(&[]).await
    }

    /// A stack before the first rotation of its key ring (empty ring, empty JWKS).
    pub async fn unrotated() -> Self {
        Self::unrotated_with_env(&[]).await
    }

    /// [`Stack::unrotated`], with extra environment variables.
    pub async fn unrotated_with_env(vars: &[(&str, &str)]) -> Self {
        Self::build_with(vars, None, iam_endpoint(), false).await
    }

    /// A stack whose functions see these extra environment variables (as the template would set them).
    pub async fn with_env(vars: &[(&str, &str)]) -> Self {
        Self::build(vars, None).await
    }

    /// A stack whose functions' calls go through the IAM check at `iam` instead of the suite's
    /// (a [`private_iam_check`], for tests that expect denials), with extra environment variables.
    pub async fn with_iam_endpoint(iam: &str, vars: &[(&str, &str)]) -> Self {
        Self::build_with(vars, None, iam.to_owned(), true).await
    }

    /// A stack whose functions reach AWS through fault-injecting proxies (in front of the IAM
    /// check), with the retries and timeouts they have in production. The test's own clients
    /// (`dynamodb`, `secrets`) still talk to the emulators directly.
    pub async fn with_proxies(vars: &[(&str, &str)]) -> Self {
        let iam = iam_endpoint();
        let proxies = Proxies { dynamodb: FaultProxy::start(&iam).await, secrets: FaultProxy::start(&iam).await };
        Self::build(vars, Some(proxies)).await
    }

    async fn build(vars: &[(&str, &str)], proxies: Option<Proxies>) -> Self {
        Self::build_with(vars, proxies, iam_endpoint(), true).await
    }

    async fn build_with(vars: &[(&str, &str)], proxies: Option<Proxies>, iam: String, rotated: bool) -> Self {
        let dynamodb = dynamodb();
        let secrets = secrets_manager();
        let template = template();
        let stack = localdev::LocalStack::new(&unique("auth-test")).expect("a valid stack name");
        let resources = localdev::StackResources::create(&template, stack.clone(), &dynamodb, &secrets)
            .await
            .unwrap_or_else(|e| {
                panic!("creating the stack on the emulators failed ({e}); run the suite with `make test`, which starts them")
            });
        let (dynamodb_calls, secrets_calls) = (CallCounter::default(), CallCounter::default());
        let mut functions = BTreeMap::new();
        for function in template.functions().expect("template functions") {
            let mut env = template
                .lambda_environment(&function.logical_id, &resources, &iam)
                .expect("the template resolves for a local stack");
            env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            let config = Config::from_lookup(|name| env.get(name).cloned()).expect("valid test config");
            let sdk = function_sdk_config(&env);
            let (dynamodb_url, secrets_url) = match &proxies {
                None => (iam.clone(), iam.clone()),
                Some(proxies) => (proxies.dynamodb.url(), proxies.secrets.url()),
            };
            let clients = Clients::with(
                &sdk,
                dynamodb_with(&sdk, &dynamodb_url, Some(dynamodb_calls.clone())),
                secrets_manager_at(&sdk, &secrets_url, Some(secrets_calls.clone())),
                ses_at(&sdk, &iam),
            );
            let function_env = FunctionEnv { config, clients, env };
            functions.insert(function.logical_id, function_env);
        }
        let table = resources.reference("AuthTable").expect("the template declares AuthTable").to_owned();
        let secret_id = resources.reference("KeyRingSecret").expect("the template declares KeyRingSecret").to_owned();
        let stack = Self {
            register: functions["RegisterFunction"].service(),
            login: functions["LoginFunction"].service(),
            refresh: functions["RefreshFunction"].service(),
            get_user: functions["GetUserFunction"].service(),
            health: functions["HealthFunction"].service(),
            jwks: functions["JwksFunction"].service(),
            logout: functions["LogoutFunction"].service(),
            logout_all: functions["LogoutAllFunction"].service(),
            email_verify: functions["EmailVerifyFunction"].service(),
            email_verify_resend: functions["EmailVerifyResendFunction"].service(),
            password_forgot: functions["PasswordForgotFunction"].service(),
            password_reset: functions["PasswordResetFunction"].service(),
            password_change: functions["PasswordChangeFunction"].service(),
            email_change: functions["EmailChangeFunction"].service(),
            delete_user: functions["DeleteUserFunction"].service(),
            mailer: {
                let function = &functions["MailerFunction"];
                <mailer::Deps as shared::lambda::EventFunction>::build(&function.config, &function.clients)
                    .expect("the template gives the mailer what it needs")
            },
            rotate_signing_key: {
                let function = &functions["RotateSigningKeyFunction"];
                <rotate_signing_key::Deps as shared::lambda::EventFunction>::build(&function.config, &function.clients)
                    .expect("the template gives the rotation function what it needs")
            },
            mail_feed: tokio::sync::Mutex::new(None),
            iam: iam.clone(),
            dynamodb,
            secrets,
            stack,
            resources,
            dynamodb_calls,
            secrets_calls,
            table,
            secret_id,
            functions,
            proxies,
        };
        if rotated {
            // As the template's rotation schedule does right after the stack is created.
            stack.rotate(shared::now_epoch()).await;
            stack.dynamodb_calls.take();
            stack.secrets_calls.take();
        }
        stack
    }

    /// The `AWSCURRENT` value of one of the stack's secrets (named: moto answers a request
    /// without a stage with the version current before the last rotation).
    pub async fn current_secret(&self, logical_id: &str) -> String {
        let id = self.resources.reference(logical_id).expect("a secret of the template");
        let value = self.secrets.get_secret_value().secret_id(id).version_stage("AWSCURRENT").send().await;
        value.expect("the secret's current value").secret_string().expect("a string secret").to_owned()
    }

    /// The key the signers use now, read from the private ring (what a thief of the ring would
    /// hold): for tokens with chosen claims.
    pub async fn signing_key(&self) -> shared::keyring::RingKey {
        let ring = shared::keyring::KeyRing::parse(&self.current_secret("KeyRingSecret").await).expect("a valid ring");
        let delay = self.function("LoginFunction").config.key_ring.signing_delay;
        let algorithm = self.function("LoginFunction").config.key_ring.algorithm;
        ring.signing_key(shared::now_epoch(), delay, algorithm).expect("a rotated stack has a key").clone()
    }

    /// An access token with these claims, signed as the signers sign (`ES256`, `at+jwt`, `kid`).
    pub async fn sign(&self, claims: &Value) -> String {
        let key = self.signing_key().await;
        let mut header = jsonwebtoken::Header::new(key.algorithm().jose());
        header.typ = Some(shared::tokens::ACCESS_TOKEN_TYPE.into());
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.signer().expect("a valid key").encoding).expect("a signed token")
    }

    /// Puts a new `AWSCURRENT` value into one of the stack's secrets, as an operator's
    /// PutSecretValue does. moto (5.x) also leaves `AWSCURRENT` on the version a rotation
    /// promoted with UpdateSecretVersionStage; the label is taken off it here, as AWS would have.
    pub async fn put_secret(&self, logical_id: &str, value: &str) {
        let id = self.resources.reference(logical_id).expect("a secret of the template");
        let current = |secret: aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput| {
            let stages = secret.version_ids_to_stages.unwrap_or_default();
            stages.into_iter().filter(|(_, s)| s.iter().any(|s| s == "AWSCURRENT")).map(|(v, _)| v).collect::<Vec<_>>()
        };
        let before = current(self.secrets.describe_secret().secret_id(id).send().await.expect("the secret"));
        let put =
            self.secrets.put_secret_value().secret_id(id).secret_string(value).send().await.expect("a new version");
        let new = put.version_id().expect("a version id");
        let after = current(self.secrets.describe_secret().secret_id(id).send().await.expect("the secret"));
        for stale in after.iter().filter(|v| *v != new && before.contains(v)) {
            let stage = self.secrets.update_secret_version_stage().secret_id(id).version_stage("AWSCURRENT");
            stage.move_to_version_id(new).remove_from_version_id(stale).send().await.expect("moving AWSCURRENT");
        }
    }

    /// The fixture of rotation step `step` for this stack's ring and the rotation's `token`.
    pub fn rotation_step(&self, step: &str, token: &str) -> SecretsManagerSecretRotationEvent {
        let mut event = event_json(&format!("rotate-signing-key.{step}.json"));
        event["SecretId"] = self.secret_id.clone().into();
        event["ClientRequestToken"] = token.into();
        serde_json::from_value(event).expect("a rotation event")
    }

    /// One rotation of the key ring at `now`, as Secrets Manager runs it: the four steps in
    /// order, under one token (returned).
    pub async fn rotate(&self, now: i64) -> String {
        let token = uuid::Uuid::new_v4().to_string();
        for step in localdev::rotation::STEPS {
            let event = self.rotation_step(step, &token);
            self.rotate_signing_key.step(&event, now).await.unwrap_or_else(|e| panic!("rotation, {step}: {e}"));
        }
        token
    }

    /// A function's environment, configuration and clients, by logical id.
    pub fn function(&self, logical_id: &str) -> &FunctionEnv {
        self.functions.get(logical_id).unwrap_or_else(|| panic!("no function {logical_id} in the template"))
    }

    /// The proxy in front of DynamoDB (panics unless built by [`Stack::with_proxies`]).
    pub fn dynamodb_proxy(&self) -> &FaultProxy {
        &self.proxies.as_ref().expect("a stack built with Stack::with_proxies").dynamodb
    }

    /// The proxy in front of Secrets Manager (panics unless built by [`Stack::with_proxies`]).
    pub fn secrets_proxy(&self) -> &FaultProxy {
        &self.proxies.as_ref().expect("a stack built with Stack::with_proxies").secrets
    }

    /// A function (by logical id) as a cold start builds it, before [`Function::warm`] (empty
    /// caches), on the same clients as the stack's.
    pub fn fresh<F: Function>(&self, logical_id: &str) -> Service<F> {
        self.function(logical_id).service()
    }

    /// Sends an API Gateway event to the function that serves its route.
    pub async fn send(&self, event: &Value) -> Response<Body> {
        // Each handler's future is boxed: one `match` over fifteen of them inline would be one
        // enormous future in every test.
        type Answer<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send + 'a>>;
        let request = request_from(event);
        let answer: Answer<'_> = match event["resource"].as_str() {
            Some("/users/{id}") if event["httpMethod"] == "DELETE" => Box::pin(self.delete_user.call(request)),
            Some("/email/verify") => Box::pin(self.email_verify.call(request)),
            Some("/email/verify/resend") => Box::pin(self.email_verify_resend.call(request)),
            Some("/password/forgot") => Box::pin(self.password_forgot.call(request)),
            Some("/password/reset") => Box::pin(self.password_reset.call(request)),
            Some("/password/change") => Box::pin(self.password_change.call(request)),
            Some("/email/change") => Box::pin(self.email_change.call(request)),
            Some("/register") => Box::pin(self.register.call(request)),
            Some("/login") => Box::pin(self.login.call(request)),
            Some("/refresh") => Box::pin(self.refresh.call(request)),
            Some("/users/{id}") => Box::pin(self.get_user.call(request)),
            Some("/health") => Box::pin(self.health.call(request)),
            Some("/.well-known/jwks.json" | "/.well-known/openid-configuration") => Box::pin(self.jwks.call(request)),
            Some("/logout") => Box::pin(self.logout.call(request)),
            Some("/logout/all") => Box::pin(self.logout_all.call(request)),
            other => panic!("no function serves {other:?}"),
        };
        answer.await
    }

    /// Hands the mailer what the table's stream holds since the last call, as Lambda's event
    /// source mapping would (filtered to inserted `OUTBOX#` items, in batches); returns the
    /// number of records delivered.
    pub async fn deliver_mail(&self) -> usize {
        let mut feed = self.mail_feed.lock().await;
        if feed.is_none() {
            let (template, endpoint) = (template(), dynamodb_url());
            let created = localdev::stream::StreamFeed::new(&template, &self.stack, "MailerFunction", &endpoint).await;
            *feed = Some(created.expect("the table's stream"));
        }
        let feed = feed.as_mut().expect("just set");
        let mut delivered = 0;
        for event in feed.next_batches().await.expect("reading the stream") {
            let event: aws_lambda_events::event::dynamodb::Event =
                serde_json::from_value(event).expect("a DynamoDB stream event");
            delivered += event.records.len();
            let response = mailer::handle(&self.mailer, event).await;
            assert!(response.batch_item_failures.is_empty(), "the mailer failed records: {response:?}");
        }
        delivered
    }

    /// The mail SES accepted for `address` (through the IAM check), newest first, after
    /// delivering the stream to the mailer until `count` messages are there (10 s at most).
    pub async fn mail_to(&self, address: &str, count: usize) -> Vec<localdev::outbox::Message> {
        let started = Instant::now();
        loop {
            self.deliver_mail().await;
            let all = localdev::outbox::fetch(&self.iam).await.expect("the IAM check's outbox");
            let mine: Vec<_> = all.into_iter().filter(|m| m.to.iter().any(|to| to == address)).collect();
            if mine.len() >= count || started.elapsed() > Duration::from_secs(10) {
                return mine;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The token in the newest mail to `address`'s link (`#token=...`), once `count` mails came.
    pub async fn link_token(&self, address: &str, count: usize) -> String {
        let mail = self.mail_to(address, count).await;
        assert!(mail.len() >= count, "expected {count} mail(s) to {address}, got {mail:#?}");
        token_of(&mail[0])
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
    /// Registers, then marks the email verified as following the mailed link would (directly in
    /// the table: most tests are not about verification; the lifecycle tests follow the link).
    pub async fn register_user(&self, email: &str, password: &str, name: &str) -> Value {
        let mut body = self.register_unverified_user(email, password, name).await;
        self.mark_verified(&body).await;
        body["email_verified"] = true.into();
        body
    }

    /// Marks a registered user's (a `201` body's) email verified, directly in the table.
    pub async fn mark_verified(&self, body: &Value) {
        let email = body["email"].as_str().expect("the user's email").to_owned();
        for pk in [format!("USER#{}", body["id"].as_str().expect("the user's id")), format!("EMAIL#{email}")] {
            self.dynamodb
                .update_item()
                .table_name(&self.table)
                .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
                .update_expression("SET email_verified = :yes")
                .expression_attribute_values(":yes", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
                .send()
                .await
                .expect("marking the email verified");
        }
    }

    /// Registers; returns the `201` body (`email_verified: false`).
    pub async fn register_unverified_user(&self, email: &str, password: &str, name: &str) -> Value {
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

    pub async fn logout_with(&self, refresh_token: &str) -> Response<Body> {
        self.post("logout", &serde_json::json!({"refresh_token": refresh_token})).await
    }

    /// Sends the fixture `route.json` with `Authorization: Bearer <token>` and, if given, `body`.
    pub async fn bearer(&self, route: &str, token: &str, body: Option<&Value>) -> Response<Body> {
        let mut event = event_json(&format!("{route}.json"));
        let value = format!("Bearer {token}");
        event["headers"]["Authorization"] = value.clone().into();
        event["multiValueHeaders"]["Authorization"] = serde_json::json!([value]);
        if let Some(body) = body {
            event["body"] = body.to_string().into();
        }
        self.send(&event).await
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
