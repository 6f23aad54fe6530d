//! End-to-end: the real function processes under the Lambda runtime emulator (`cargo lambda
//! watch`), and the local API (`localdev gateway`) over HTTP. `make test` starts both (through
//! `dev/scripts/local.sh`) and runs these with `--ignored`, setting:
//!   E2E_LAMBDA_URL  the runtime emulator's invoke endpoint, e.g. http://127.0.0.1:9100
//!   E2E_API_URL     the local API, e.g. http://127.0.0.1:3100
//!   E2E_API_KEY     the API key the local API accepts
//!   E2E_STACK       the local stack's name (to rotate its key ring)
//!   E2E_PYTHON      a Python with PyJWT and `cryptography` (the tools' venv)
//! Run alone they fail with a message saying so, rather than passing without testing anything.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use shared::testing::{event_json, events_dir, fill};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the end-to-end tests through `make test`"))
}

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: Value,
}

async fn call(method: &str, url: &str, headers: &[(&str, &str)], body: Option<String>) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from(body.unwrap_or_default()))).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(120), client.request(request))
        .await
        .expect("timed out")
        .expect("request failed");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// The token of the newest mail to `to` with `subject`, from the local API's `/_local/outbox`
/// (the stream feeds the mailer within a second or so; a minute at most).
async fn mailed_token(to: &str, subject: &str) -> String {
    let api = env("E2E_API_URL");
    let url = format!("{}/_local/outbox", api.trim_end_matches('/'));
    let started = std::time::Instant::now();
    loop {
        let reply = call("GET", &url, &[], None).await;
        assert_eq!(reply.status, 200, "{url}: {}", reply.body);
        let found = reply.body.as_array().into_iter().flatten().find(|m| {
            m["subject"] == subject && m["to"].as_array().is_some_and(|to_list| to_list.iter().any(|t| t == to))
        });
        if let Some(message) = found {
            let text = message["text"].as_str().unwrap();
            let token = text.split_once("#token=").map(|(_, rest)| rest.split_whitespace().next().unwrap_or_default());
            return token.unwrap_or_else(|| panic!("no link in {message}")).to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no {subject:?} mail to {to}: {}", reply.body);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Invokes a function with an API Gateway event; returns the proxy response's status and body.
async fn invoke(event: &Value) -> (u16, Value) {
    let function = match event["resource"].as_str().unwrap() {
        "/register" => "register",
        "/login" => "login",
        "/refresh" => "refresh",
        "/users/{id}" => "get-user",
        "/health" => "health",
        "/.well-known/jwks.json" | "/.well-known/openid-configuration" => "jwks",
        "/logout" => "logout",
        "/logout/all" => "logout-all",
        "/email/verify" => "email-verify",
        "/email/verify/resend" => "email-verify-resend",
        "/password/forgot" => "password-forgot",
        "/password/reset" => "password-reset",
        "/password/change" => "password-change",
        "/email/change" => "email-change",
        other => panic!("no function for {other}"),
    };
    let function = if event["httpMethod"] == "DELETE" { "delete-user" } else { function };
    let url = format!("{}/2015-03-31/functions/{function}/invocations", env("E2E_LAMBDA_URL"));
    let reply = call("POST", &url, &[("content-type", "application/json")], Some(event.to_string())).await;
    assert_eq!(reply.status, 200, "invocation of {function} failed: {}", reply.body);
    let proxy = reply.body;
    let status = proxy["statusCode"].as_u64().unwrap_or_else(|| panic!("not a proxy response: {proxy}")) as u16;
    let body = proxy["body"].as_str().and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
#[ignore = "needs the local stack: run through `make test`"]
async fn every_event_fixture_returns_its_expected_status_under_the_lambda_runtime() {
    // In order: later fixtures need the account and tokens the earlier ones create.
    let expected: &[(&str, u16)] = &[
        ("register.json", 201),
        ("register.taken.json", 409),
        ("register.invalid-email.json", 422),
        ("register.weak-password.json", 422),
        ("register.invalid-name.json", 422),
        ("register.unknown-field.json", 422),
        ("register.malformed.json", 400),
        ("register.not-json.json", 415),
        ("register.too-large.json", 413),
        // The sign-up mail's link: the stream feeds the mailer, which sends it through SES.
        ("email-verify.json", 200),
        ("email-verify.unknown-token.json", 401),
        ("email-verify.invalid.json", 422),
        ("login.json", 200),
        ("login.wrong-password.json", 401),
        ("login.unknown-email.json", 401),
        ("login.invalid.json", 422),
        ("login.malformed.json", 400),
        ("refresh.json", 200),
        ("refresh.unknown-token.json", 401),
        ("refresh.invalid.json", 422),
        ("get-user.json", 200),
        ("get-user.me.json", 200),
        ("get-user.other-user.json", 403),
        ("get-user.no-token.json", 401),
        ("get-user.bad-token.json", 401),
        ("health.json", 200),
        ("jwks.json", 200),
        ("openid-configuration.json", 200),
        // The login's family, rotated by refresh.json: its first token is within the grace window.
        ("logout.json", 204),
        ("logout.invalid.json", 422),
        ("logout.not-ours.json", 204),
        ("logout-all.json", 204),
        ("logout-all.no-token.json", 401),
        // login.json's access token still holds (access tokens live until they expire).
        ("password-change.wrong-password.json", 401),
        ("password-change.json", 200),
        ("email-change.no-token.json", 401),
        ("email-change.json", 202),
        ("email-verify-resend.json", 202),
        ("email-verify-resend.invalid.json", 422),
        ("password-forgot.json", 202),
        ("password-forgot.invalid.json", 422),
        ("password-reset.weak-password.json", 422),
        ("password-reset.json", 204),
        ("password-reset.unknown-token.json", 401),
        ("delete-user.wrong-password.json", 401),
        ("delete-user.json", 204),
        // Not an API event: a stream batch for the mailer (checked apart, below).
        ("mailer.json", 0),
        // Secrets Manager's rotation steps, run in order on a stack's ring by rotation.rs.
        ("rotate-signing-key.createSecret.json", 0),
        ("rotate-signing-key.setSecret.json", 0),
        ("rotate-signing-key.testSecret.json", 0),
        ("rotate-signing-key.finishSecret.json", 0),
    ];
    let mut fixtures: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    fixtures.sort();
    let mut listed: Vec<String> = expected.iter().map(|(name, _)| name.to_string()).collect();
    listed.sort();
    assert_eq!(fixtures, listed, "every fixture in events/ must have an expected status here");

    let mut values: BTreeMap<&str, String> = BTreeMap::new();
    values.insert("password", "correct horse battery staple".to_owned());
    for (fixture, status) in expected {
        if fixture.starts_with("rotate-signing-key.") {
            continue;
        }
        match *fixture {
            "email-verify.json" => {
                values.insert("verify_token", mailed_token("ada@example.com", "Verify your email address").await);
            }
            "password-reset.weak-password.json" => {
                values.insert("reset_token", mailed_token("ada@example.com", "Reset your password").await);
            }
            _ => {}
        }
        let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let event = fill(&event_json(fixture), &pairs);
        if *fixture == "mailer.json" {
            // A stream record of a mail that is not in the table: skipped, not retried.
            let url = format!("{}/2015-03-31/functions/mailer/invocations", env("E2E_LAMBDA_URL"));
            let reply = call("POST", &url, &[("content-type", "application/json")], Some(event.to_string())).await;
            assert_eq!((reply.status, &reply.body), (200, &json!({"batchItemFailures": []})), "{fixture}");
            continue;
        }
        let (actual, body) = invoke(&event).await;
        assert_eq!(actual, *status, "{fixture}: {body}");
        match *fixture {
            "register.json" => {
                values.insert("user_id", body["id"].as_str().unwrap().to_owned());
            }
            "login.json" | "password-change.json" => {
                values.insert("access_token", body["access_token"].as_str().unwrap().to_owned());
                values.insert("refresh_token", body["refresh_token"].as_str().unwrap().to_owned());
                if *fixture == "password-change.json" {
                    values.insert("password", "another long passphrase of mine".to_owned());
                }
            }
            "password-reset.json" => {
                values.insert("password", "a new passphrase nobody guesses".to_owned());
            }
            _ => {}
        }
    }
}

#[tokio::test]
#[ignore = "needs the local stack: run through `make test`"]
async fn the_local_api_serves_register_login_get_user_refresh_over_http() {
    let (api, key) = (env("E2E_API_URL"), env("E2E_API_KEY"));
    let headers = [("x-api-key", key.as_str()), ("content-type", "application/json")];
    let email = format!("e2e-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = "a long and unusual passphrase";

    let register = call(
        "POST",
        &format!("{api}/register"),
        &headers,
        Some(json!({"email": email, "password": password, "name": "E2E"}).to_string()),
    )
    .await;
    assert_eq!(register.status, 201, "{}", register.body);
    let id = register.body["id"].as_str().unwrap().to_owned();
    assert_eq!(register.headers["location"], format!("/users/{id}"));
    assert!(register.headers.contains_key("x-request-id"));
    assert_eq!(register.body["email_verified"], false);

    // The link in the mail, as the app would post it.
    let unverified = json!({"email": email, "password": password}).to_string();
    let refused = call("POST", &format!("{api}/login"), &headers, Some(unverified)).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let token = mailed_token(&email, "Verify your email address").await;
    let verified =
        call("POST", &format!("{api}/email/verify"), &headers, Some(json!({"token": token}).to_string())).await;
    assert_eq!((verified.status, &verified.body["email_verified"]), (200, &json!(true)), "{}", verified.body);

    let login = call(
        "POST",
        &format!("{api}/login"),
        &headers,
        Some(json!({"email": email, "password": password}).to_string()),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(login.headers["cache-control"], "no-store");
    let bearer = format!("Bearer {}", login.body["access_token"].as_str().unwrap());

    let me = call("GET", &format!("{api}/users/me"), &[("x-api-key", &key), ("authorization", &bearer)], None).await;
    assert_eq!((me.status, me.body["id"].as_str()), (200, Some(id.as_str())), "{}", me.body);
    let by_id =
        call("GET", &format!("{api}/users/{id}"), &[("x-api-key", &key), ("authorization", &bearer)], None).await;
    assert_eq!(by_id.status, 200);

    let refresh_body = json!({"refresh_token": login.body["refresh_token"]}).to_string();
    let refreshed = call("POST", &format!("{api}/refresh"), &headers, Some(refresh_body.clone())).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_ne!(refreshed.body["refresh_token"], login.body["refresh_token"]);
    // Presented again within the reuse grace window: the family's current token, not a new one.
    let again = call("POST", &format!("{api}/refresh"), &headers, Some(refresh_body)).await;
    assert_eq!((again.status, &again.body["refresh_token"]), (200, &refreshed.body["refresh_token"]));
    let garbage = call("POST", &format!("{api}/refresh"), &headers, Some(r#"{"refresh_token":"x"}"#.into())).await;
    assert_eq!((garbage.status, garbage.headers["content-type"].to_str().unwrap()), (401, "application/problem+json"));

    let health = call("GET", &format!("{api}/health"), &[("x-api-key", &key)], None).await;
    let expected = json!({"status": "ok", "checks": {"table": "ok", "signing_key": "ok"}});
    assert_eq!((health.status, health.body), (200, expected));
    assert_eq!(call("GET", &format!("{api}/health"), &[], None).await.status, 403, "the API key is required");

    // The same resource, another method and another function: the account goes.
    let bearer = format!("Bearer {}", refreshed.body["access_token"].as_str().unwrap());
    let auth = [("x-api-key", key.as_str()), ("authorization", bearer.as_str()), ("content-type", "application/json")];
    let deleted =
        call("DELETE", &format!("{api}/users/me"), &auth, Some(json!({"password": password}).to_string())).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let gone = call("GET", &format!("{api}/users/me"), &auth[..2], None).await;
    assert_eq!(gone.status, 401, "{}", gone.body);
}

#[tokio::test]
#[ignore = "needs the local stack: run through `make test`"]
async fn the_local_api_checks_api_keys_and_unknown_routes_like_api_gateway() {
    let (api, key) = (env("E2E_API_URL"), env("E2E_API_KEY"));
    for headers in [vec![], vec![("x-api-key", "wrong-key")]] {
        let reply = call("GET", &format!("{api}/users/me"), &headers, None).await;
        assert_eq!(reply.status, 403, "{}", reply.body);
        assert_eq!(reply.headers["content-type"], "application/problem+json");
    }
    let unknown = call("GET", &format!("{api}/nowhere"), &[("x-api-key", &key)], None).await;
    assert_eq!(unknown.status, 404);
    let wrong_method = call("DELETE", &format!("{api}/login"), &[("x-api-key", &key)], None).await;
    assert_eq!(wrong_method.status, 404);
}

#[tokio::test]
#[ignore = "needs the local stack: run through `make test`"]
async fn the_local_api_throttles_a_route_beyond_its_burst_with_429_problems() {
    // `make test` starts the stack with RefreshRateLimit=1 and RefreshBurstLimit=3.
    let (api, key) = (env("E2E_API_URL"), env("E2E_API_KEY"));
    let headers = [("x-api-key", key.as_str()), ("content-type", "application/json")];
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let reply = call("POST", &format!("{api}/refresh"), &headers, Some(r#"{"refresh_token":"x"}"#.into())).await;
        if reply.status == 429 {
            assert_eq!(reply.headers["content-type"], "application/problem+json");
            assert!(reply.headers.contains_key("retry-after"));
        }
        statuses.push(reply.status);
    }
    assert!(statuses.iter().filter(|s| **s == 429).count() >= 5, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
    // Let the bucket refill for whatever runs next.
    tokio::time::sleep(Duration::from_secs(4)).await;
}

/// What a third party's verifier (`tests/third_party/verify_with_pyjwt.py`: PyJWT, given only the
/// issuer URL and the audience) makes of each token: `{"sub": …}` or `{"error": …}`.
async fn verify_with_pyjwt(issuer: &str, tokens: &[&str]) -> Vec<Value> {
    use tokio::io::AsyncWriteExt;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("third_party/verify_with_pyjwt.py");
    let mut child = tokio::process::Command::new(env("E2E_PYTHON"))
        .arg(script)
        .args([issuer, "serverless-auth"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the tools' Python");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(json!(tokens).to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the PyJWT verifier failed: {stderr}");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

/// `localdev rotate`: the key ring's rotation now, as Secrets Manager runs it.
async fn rotate_key_ring() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = tokio::process::Command::new(root.join("target/debug/localdev"))
        .current_dir(&root)
        .args(["rotate", "--stack", &env("E2E_STACK"), "--invoke-url", &env("E2E_LAMBDA_URL")])
        .status()
        .await
        .expect("localdev");
    assert!(status.success(), "localdev rotate failed");
}

#[tokio::test]
#[ignore = "needs the local stack: run through `make test`"]
async fn a_third_party_verifies_tokens_from_the_published_keys_alone_before_and_after_a_rotation() {
    // GIVEN the discovery document and the JWKS, fetched as a verifier does: no API key
    let api = env("E2E_API_URL");
    let discovery = call("GET", &format!("{api}/.well-known/openid-configuration"), &[], None).await;
    assert_eq!(discovery.status, 200, "{}", discovery.body);
    let expected = json!({
        "issuer": api,
        "jwks_uri": format!("{api}/.well-known/jwks.json"),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    });
    assert_eq!(discovery.body, expected);
    let jwks = call("GET", &format!("{api}/.well-known/jwks.json"), &[], None).await;
    assert_eq!(jwks.status, 200, "{}", jwks.body);
    assert_eq!(jwks.headers["cache-control"], "public, max-age=3600");
    assert_eq!(jwks.headers["access-control-allow-origin"], "*");
    let published = jwks.body["keys"].as_array().unwrap().len();
    assert!(published >= 1 && jwks.body["keys"].as_array().unwrap().iter().all(|k| k.get("d").is_none()));

    // AND a user's access token, and the same token with one signature byte changed
    let key = env("E2E_API_KEY");
    let headers = [("x-api-key", key.as_str()), ("content-type", "application/json")];
    let email = format!("pyjwt-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = "a long and unusual passphrase";
    let credentials = json!({"email": email, "password": password});
    let mut signup = credentials.clone();
    signup["name"] = "PyJWT".into();
    let register = call("POST", &format!("{api}/register"), &headers, Some(signup.to_string())).await;
    assert_eq!(register.status, 201, "{}", register.body);
    let token = mailed_token(&email, "Verify your email address").await;
    let verify = json!({"token": token}).to_string();
    assert_eq!(call("POST", &format!("{api}/email/verify"), &headers, Some(verify)).await.status, 200);
    let login = call("POST", &format!("{api}/login"), &headers, Some(credentials.to_string())).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    let tampered = {
        let (signed, signature) = access.rsplit_once('.').unwrap();
        let flipped = if signature.starts_with('A') { "B" } else { "A" };
        format!("{signed}.{flipped}{}", &signature[1..])
    };
    let sub = register.body["id"].clone();

    // WHEN PyJWT verifies them; THEN the genuine token passes and the altered one does not
    let results = verify_with_pyjwt(&api, &[&access, &tampered]).await;
    assert_eq!(results, [json!({"sub": sub}), json!({"error": "InvalidSignatureError"})]);

    // WHEN the key ring rotates; THEN tokens signed before and after verify, and new tokens
    // still use the key published for JwksMaxAge (the new one waits that long, plus the JWKS
    // route's own cache lifetime, before it signs)
    rotate_key_ring().await;
    let again = call("POST", &format!("{api}/login"), &headers, Some(credentials.to_string())).await;
    assert_eq!(again.status, 200, "{}", again.body);
    let after = again.body["access_token"].as_str().unwrap().to_owned();
    let kid = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    assert_eq!(kid(&after), kid(&access), "a key signs only once published for JwksMaxAge");
    let results = verify_with_pyjwt(&api, &[&access, &after]).await;
    assert_eq!(results, [json!({"sub": sub}), json!({"sub": sub})]);
}
