//! The function binaries as Lambda runs them, at `LogLevel=TRACE`: each process under a Lambda
//! Runtime API (`localdev::runtime`) with the environment Lambda gives it, its AWS calls through
//! the IAM check. Whatever reaches its stdout and stderr (the runtime's own output included)
//! must hold no password, token, hash, key or API key; every line logged for a request carries
//! the client's address; SIGTERM ends the process with one log line.
//!
//! Needs the binaries built (`make test` builds them for the end-to-end tests) and the emulators.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use localdev::runtime::{Outcome, RuntimeApi, Signal};
use serde_json::{json, Value};
use tests::{event_json, repo_root, Stack, PASSWORD};
use tokio::process::{Child, Command};

const PATIENCE: Duration = Duration::from_secs(30);
const SOURCE_IP: &str = "198.51.100.23";

/// One function process under its own runtime API.
struct Function {
    api: RuntimeApi,
    child: Child,
    log: PathBuf,
}

impl Function {
    async fn start(stack: &Stack, logical_id: &str, dir: &std::path::Path) -> Self {
        let binary =
            localdev::Template::load(repo_root().join("template.yaml")).unwrap().function(logical_id).unwrap().binary;
        let api = RuntimeApi::start(&binary, Duration::from_secs(10)).await.unwrap();
        let log = std::env::temp_dir().join(format!("{logical_id}-{}.log", uuid::Uuid::new_v4().simple()));
        let out = std::fs::File::create(&log).unwrap();
        let mut env = stack.function(logical_id).env.clone();
        env.insert("AWS_LAMBDA_RUNTIME_API".into(), api.host_port());
        env.insert("AWS_LAMBDA_LOG_LEVEL".into(), "TRACE".into());
        let child = Command::new(dir.join(&binary))
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (build the functions first: `make test` does)", binary));
        let mut function = Self { api, child, log };
        function.until_idle().await;
        function
    }

    async fn until_idle(&mut self) {
        match self.api.signal(PATIENCE).await {
            Some(Signal::Poll(_)) => {}
            other => panic!("expected the process to ask for an event, got {other:?}; log:\n{}", self.output()),
        }
    }

    /// Sends one API Gateway event and returns (status, body).
    async fn invoke(&mut self, event: &Value) -> (u16, Value) {
        let mut event = event.clone();
        event["requestContext"]["identity"]["sourceIp"] = SOURCE_IP.into();
        let response = self.invoke_raw(&event).await;
        let body = response["body"].as_str().and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
        (response["statusCode"].as_u64().unwrap() as u16, body)
    }

    /// Sends one event of any kind and returns the function's answer.
    async fn invoke_raw(&mut self, event: &Value) -> Value {
        self.api.submit(Bytes::from(event.to_string()));
        let response = match self.api.signal(PATIENCE).await {
            Some(Signal::Done { outcome: Outcome::Response(body), .. }) => body,
            other => panic!("no response: {other:?}; log:\n{}", self.output()),
        };
        self.until_idle().await;
        serde_json::from_slice(&response).unwrap()
    }

    /// SIGTERM, as Lambda stops an instance; the process must exit by itself.
    async fn terminate(mut self) -> String {
        let pid = self.child.id().unwrap();
        // SAFETY: kill(2) on our own, still unreaped child.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        let status = tokio::time::timeout(Duration::from_millis(500), self.child.wait()).await;
        assert!(status.is_ok_and(|s| s.is_ok()), "did not exit within Lambda's 500 ms after SIGTERM");
        self.output()
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A failing assertion has printed the log by then.
impl Drop for Function {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
    }
}

fn post(fixture: &str, body: Value) -> Value {
    let mut event = event_json(fixture);
    event["body"] = body.to_string().into();
    event
}

#[tokio::test]
#[ignore = "needs the function binaries: run through `make test`"]
async fn given_every_flow_at_trace_level_under_the_runtime_then_no_secret_is_logged_and_sigterm_is() {
    let dir = std::env::var("LOCAL_FUNCTIONS_DIR").map_or_else(|_| repo_root().join("target/debug"), PathBuf::from);
    let stack = Stack::new().await;
    let wrong = "a wrong password that is long";
    let api_key = event_json("register.json")["headers"]["x-api-key"].as_str().unwrap().to_owned();

    let mut register = Function::start(&stack, "RegisterFunction", &dir).await;
    let registered = register
        .invoke(&post("register.json", json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada"})))
        .await;
    assert_eq!(registered.0, 201, "{registered:?}");
    // As if the mailed link had been followed (the account flows are the next test's).
    stack.mark_verified(&registered.1).await;
    register
        .invoke(&post("register.json", json!({"email": "ada@example.com", "password": PASSWORD, "name": "Again"})))
        .await;

    let mut login = Function::start(&stack, "LoginFunction", &dir).await;
    assert_eq!(login.invoke(&post("login.json", json!({"email": "ada@example.com", "password": wrong}))).await.0, 401);
    assert_eq!(
        login.invoke(&post("login.json", json!({"email": "ghost@example.com", "password": wrong}))).await.0,
        401
    );
    let (status, tokens) =
        login.invoke(&post("login.json", json!({"email": "ada@example.com", "password": PASSWORD}))).await;
    assert_eq!(status, 200, "{tokens}");

    let mut refresh = Function::start(&stack, "RefreshFunction", &dir).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let second = refresh.invoke(&post("refresh.json", json!({"refresh_token": first}))).await.1;
    let third = refresh.invoke(&post("refresh.json", json!({"refresh_token": second["refresh_token"]}))).await.1;
    // An older token: reuse, which revokes the family.
    assert_eq!(refresh.invoke(&post("refresh.json", json!({"refresh_token": first}))).await.0, 401);

    let mut get_user = Function::start(&stack, "GetUserFunction", &dir).await;
    let me =
        tests::fill(&event_json("get-user.me.json"), &[("access_token", tokens["access_token"].as_str().unwrap())]);
    assert_eq!(get_user.invoke(&me).await.0, 200);
    let mut health = Function::start(&stack, "HealthFunction", &dir).await;
    assert_eq!(health.invoke(&event_json("health.json")).await.0, 200);

    let mut logs = String::new();
    for function in [register, login, refresh, get_user, health] {
        let output = function.terminate().await;
        assert!(output.contains("SIGTERM received"), "no shutdown line:\n{output}");
        logs.push_str(&output);
    }

    // The capture covers the flows, at TRACE: their events are there, and the functions' debug lines.
    let configured = logs.lines().filter(|l| l.contains("logging configured") && l.contains(r#""level":"DEBUG""#));
    assert_eq!(configured.count(), 5, "every process logs at TRACE:\n{logs}");
    for expected in ["created", "email_taken", "bad_credentials", "logged_in", "refreshed", "reuse_detected"] {
        let outcome = format!(r#""outcome":"{expected}""#);
        assert!(logs.contains(&outcome), "missing {outcome} in logs:\n{logs}");
    }
    // Exactly one line per request at INFO and above, whatever happened: it names the route,
    // the status, the latency and the client, and the user once known.
    let mut per_request = BTreeMap::<String, Vec<Value>>::new();
    for line in logs.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
        let id = line["spans"].as_array().into_iter().flatten().find_map(|span| span["requestId"].as_str());
        let (Some(id), Some(level)) = (id, line["level"].as_str()) else { continue };
        if level != "DEBUG" && level != "TRACE" {
            per_request.entry(id.to_owned()).or_default().push(line.clone());
        }
    }
    assert_eq!(per_request.len(), 10, "one entry per invocation:\n{logs}");
    for (id, lines) in &per_request {
        assert_eq!(lines.len(), 1, "request {id} logged {} lines at INFO or above: {lines:#?}", lines.len());
        let fields = &lines[0]["fields"];
        for field in ["request_id", "route", "method", "status", "latency_ms", "source_ip"] {
            assert!(!fields[field].is_null(), "no {field} in {fields}");
        }
        assert_eq!(fields["source_ip"], SOURCE_IP);
    }
    let logged_in = per_request.values().flatten().find(|l| l["fields"]["outcome"] == "logged_in").unwrap();
    assert_eq!(logged_in["fields"]["route"], "/login");
    assert_eq!(logged_in["fields"]["status"], 200);
    assert!(logged_in["fields"]["user_id"].as_str().is_some_and(|id| id.len() == 36), "{logged_in}");
    // Every line logged during an invocation (the runtime's span names its request id) names
    // the client, through the request's span.
    let requests: Vec<_> = logs.lines().filter(|l| l.contains(r#""requestId""#)).collect();
    assert!(requests.len() >= 10, "{logs}");
    for line in requests {
        assert!(line.contains(SOURCE_IP), "no source IP: {line}");
    }
    let items = stack.items().await;
    let hash = items.iter().find_map(|i| i.get("password_hash")?.as_s().ok().cloned()).unwrap();
    let token_hashes = items.iter().filter_map(|i| i.get("token_hash")?.as_s().ok().cloned());
    let secret = |id: &str| {
        let id = stack.resources.reference(id).unwrap().to_owned();
        let secrets = stack.secrets.clone();
        async move { secrets.get_secret_value().secret_id(id).send().await.unwrap().secret_string().unwrap().to_owned() }
    };
    let mut forbidden = vec![
        ("password", PASSWORD.to_owned()),
        ("wrong password", wrong.to_owned()),
        ("password hash", hash.clone()),
        ("argon2 digest", hash.rsplit('$').next().unwrap().to_owned()),
        ("access token signature", tokens["access_token"].as_str().unwrap().rsplit('.').next().unwrap().to_owned()),
        ("refresh token", first.clone()),
        ("rotated refresh token", second["refresh_token"].as_str().unwrap().to_owned()),
        ("current refresh token", third["refresh_token"].as_str().unwrap().to_owned()),
        ("signing key (private scalar)", stack.signing_key().await.private_jwk.d().to_owned()),
        ("throttle key", secret("ThrottleKeySecret").await),
        ("API key", api_key),
        ("email of a failed login", "ghost@example.com".to_owned()),
    ];
    forbidden.extend(token_hashes.map(|h| ("refresh token hash", h)));
    for (what, value) in forbidden {
        assert!(!logs.contains(&value), "{what} appears in the logs");
    }
}

fn bearer(fixture: &str, token: &str, body: Option<Value>) -> Value {
    let mut event = event_json(fixture);
    let value = format!("Bearer {token}");
    event["headers"]["Authorization"] = value.clone().into();
    event["multiValueHeaders"]["Authorization"] = json!([value]);
    if let Some(body) = body {
        event["body"] = body.to_string().into();
    }
    event
}

#[tokio::test]
#[ignore = "needs the function binaries: run through `make test`"]
async fn given_the_account_flows_at_trace_level_under_the_runtime_then_no_secret_is_logged() {
    let dir =
        std::env::var("LOCAL_FUNCTIONS_DIR").map(PathBuf::from).expect("LOCAL_FUNCTIONS_DIR (set by `make test`)");
    let stack = Stack::new().await;
    let email = tests::unique_email("ada");
    let new_password = "another long passphrase of mine";
    let reset_password = "a new passphrase nobody guesses";
    stack.register_unverified_user(&email, PASSWORD, "Ada").await;

    // The mailer binary, fed the table's stream as the event source mapping would feed it.
    let mut mailer = Function::start(&stack, "MailerFunction", &dir).await;
    let mut feed =
        localdev::stream::StreamFeed::new(&tests::template(), &stack.stack, "MailerFunction", &tests::dynamodb_url())
            .await
            .unwrap();
    let mut tokens = Vec::new();
    let mut deliver = async |mailer: &mut Function, subject: &str| -> String {
        let started = std::time::Instant::now();
        loop {
            for event in feed.next_batches().await.unwrap() {
                let answer = mailer.invoke_raw(&event).await;
                assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
            }
            let mail = localdev::outbox::fetch(&tests::iam_endpoint()).await.unwrap();
            if let Some(message) = mail.iter().find(|m| m.to == [email.clone()] && m.subject == subject) {
                return tests::token_of(message);
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no {subject:?} mail");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };

    let mut resend = Function::start(&stack, "EmailVerifyResendFunction", &dir).await;
    assert_eq!(resend.invoke(&post("email-verify-resend.json", json!({"email": email}))).await.0, 202);
    let verify_token = deliver(&mut mailer, "Verify your email address").await;
    tokens.push(("verification token", verify_token.clone()));
    let mut verify = Function::start(&stack, "EmailVerifyFunction", &dir).await;
    assert_eq!(verify.invoke(&post("email-verify.json", json!({"token": verify_token}))).await.0, 200);

    let mut forgot = Function::start(&stack, "PasswordForgotFunction", &dir).await;
    assert_eq!(forgot.invoke(&post("password-forgot.json", json!({"email": email}))).await.0, 202);
    let reset_token = deliver(&mut mailer, "Reset your password").await;
    tokens.push(("reset token", reset_token.clone()));
    let mut reset = Function::start(&stack, "PasswordResetFunction", &dir).await;
    let body = json!({"token": reset_token, "password": reset_password});
    assert_eq!(reset.invoke(&post("password-reset.json", body)).await.0, 204);

    let session = stack.login_user(&email, reset_password).await;
    let access = session["access_token"].as_str().unwrap().to_owned();
    let mut change = Function::start(&stack, "PasswordChangeFunction", &dir).await;
    let body = json!({"current_password": reset_password, "new_password": new_password});
    let (status, changed) = change.invoke(&bearer("password-change.json", &access, Some(body))).await;
    assert_eq!(status, 200, "{changed}");
    let mut email_change = Function::start(&stack, "EmailChangeFunction", &dir).await;
    let body = json!({"new_email": tests::unique_email("lovelace"), "password": new_password});
    assert_eq!(email_change.invoke(&bearer("email-change.json", &access, Some(body))).await.0, 202);
    let mut logout = Function::start(&stack, "LogoutFunction", &dir).await;
    let refresh_token = changed["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(logout.invoke(&post("logout.json", json!({"refresh_token": refresh_token}))).await.0, 204);
    let mut logout_all = Function::start(&stack, "LogoutAllFunction", &dir).await;
    assert_eq!(logout_all.invoke(&bearer("logout-all.json", &access, None)).await.0, 204);
    let mut delete = Function::start(&stack, "DeleteUserFunction", &dir).await;
    let body = json!({"password": new_password});
    assert_eq!(delete.invoke(&bearer("delete-user.json", &access, Some(body))).await.0, 204);

    let mut logs = String::new();
    for function in [mailer, resend, verify, forgot, reset, change, email_change, logout, logout_all, delete] {
        logs.push_str(&function.terminate().await);
    }
    for outcome in [
        "requested",
        "email_verified",
        "password_reset",
        "password_changed",
        "email_change_requested",
        "revoked",
        "all_sessions_revoked",
        "account_deleted",
    ] {
        assert!(logs.contains(&format!(r#""outcome":"{outcome}""#)), "missing outcome {outcome}:\n{logs}");
    }
    assert!(logs.contains(r#""outcome":"sent""#), "the mailer logs each mail it sends:\n{logs}");
    let mut forbidden = tokens;
    forbidden.extend([
        ("password", PASSWORD.to_owned()),
        ("new password", new_password.to_owned()),
        ("reset password", reset_password.to_owned()),
        ("access token signature", access.rsplit('.').next().unwrap().to_owned()),
        ("refresh token", refresh_token),
    ]);
    forbidden.extend(
        stack
            .items()
            .await
            .iter()
            .filter_map(|i| i.get("password_hash")?.as_s().ok().cloned())
            .map(|h| ("password hash", h)),
    );
    for (what, value) in forbidden {
        assert!(!logs.contains(&value), "{what} appears in the logs");
    }
}

#[tokio::test]
#[ignore = "needs the function binaries: run through `make test`"]
async fn given_a_rotation_at_trace_level_under_the_runtime_then_no_private_key_is_logged() {
    // GIVEN the rotation binary under the runtime, at TRACE
    let dir = std::env::var("LOCAL_FUNCTIONS_DIR").map_or_else(|_| repo_root().join("target/debug"), PathBuf::from);
    let stack = Stack::unrotated().await;
    let mut rotation = Function::start(&stack, "RotateSigningKeyFunction", &dir).await;

    // WHEN Secrets Manager's four steps come, in order, twice (two keys)
    for _ in 0..2 {
        let token = uuid::Uuid::new_v4().to_string();
        for step in localdev::rotation::STEPS {
            let mut event = event_json(&format!("rotate-signing-key.{step}.json"));
            event["SecretId"] = stack.resources.reference("KeyRingSecret").unwrap().into();
            event["ClientRequestToken"] = token.as_str().into();
            assert_eq!(rotation.invoke_raw(&event).await, Value::Null, "{step}");
        }
    }
    let logs = rotation.terminate().await;

    // THEN each step is logged, and no private scalar of the ring is
    assert_eq!(logs.matches("rotation step done").count(), 8, "{logs}");
    let id = stack.resources.reference("KeyRingSecret").unwrap();
    let ring = stack.secrets.get_secret_value().secret_id(id).version_stage("AWSCURRENT").send().await.unwrap();
    let ring = shared::keyring::KeyRing::parse(ring.secret_string().unwrap()).unwrap();
    assert_eq!(ring.keys.len(), 2);
    for key in &ring.keys {
        assert!(!logs.contains(key.private_jwk.d()), "a private key appears in the logs");
    }
}
