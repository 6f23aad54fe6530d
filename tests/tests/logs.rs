//! No password, token, hash or secret ever reaches the logs, even at TRACE level.
//! (Its own test binary: it installs the process-wide subscriber.)

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tests::{parts, Stack, PASSWORD};
use tracing_subscriber::filter::LevelFilter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn tokens_user(stack: &Stack) -> String {
    let items = stack.items().await;
    items.iter().find_map(|i| i.get("user_id")?.as_s().ok().cloned()).unwrap()
}

#[tokio::test]
async fn given_every_flow_at_trace_level_when_logging_then_no_secret_appears() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = shared::telemetry::subscriber(move || writer.clone(), LevelFilter::TRACE, true);
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let stack = Stack::new().await;
    let wrong_password = "a wrong password that is long";
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    parts(stack.post("register", &json!({"email": "ada@example.com", "password": PASSWORD, "name": "Again"})).await);
    parts(stack.post("login", &json!({"email": "ada@example.com", "password": wrong_password})).await);
    parts(stack.post("login", &json!({"email": "ghost@example.com", "password": wrong_password})).await);
    let tokens = stack.login_user("ada@example.com", PASSWORD).await;
    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let second = parts(stack.refresh_with(&first_refresh).await).2;
    let third = parts(stack.refresh_with(second["refresh_token"].as_str().unwrap()).await).2;
    parts(stack.refresh_with(&first_refresh).await); // reuse of an older token: revokes the family
    parts(stack.get_user("me", tokens["access_token"].as_str()).await);
    parts(stack.get_user("me", Some("forged.token.value")).await);

    let hash = stack.items().await.iter().find_map(|i| i.get("password_hash")?.as_s().ok().cloned()).unwrap();
    let token_hashes: Vec<String> =
        stack.items().await.iter().filter_map(|i| i.get("token_hash")?.as_s().ok().cloned()).collect();
    let secret = stack.secrets.get_secret_value().secret_id(&stack.secret_id).send().await.unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The capture works and covers the flows: their events are there.
    for expected in ["user registered", "login refused", "user logged in", "tokens refreshed", "family revoked"] {
        assert!(logs.contains(expected), "missing {expected:?} in logs:\n{logs}");
    }
    // The reuse line names the user and the family, for whoever investigates it.
    let reuse = logs.lines().find(|line| line.contains("family revoked")).unwrap();
    let family = shared::tokens::RefreshToken::parse(&first_refresh).unwrap().family_id();
    assert!(reuse.contains(tokens_user(&stack).await.as_str()) && reuse.contains(&family), "{reuse}");
    let mut forbidden = vec![
        ("password", PASSWORD.to_owned()),
        ("wrong password", wrong_password.to_owned()),
        ("password hash", hash.clone()),
        ("argon2 salt+digest", hash.rsplit('$').next().unwrap().to_owned()),
        ("access token", tokens["access_token"].as_str().unwrap().to_owned()),
        ("access token signature", tokens["access_token"].as_str().unwrap().rsplit('.').next().unwrap().to_owned()),
        ("refresh token", first_refresh.clone()),
        ("rotated refresh token", second["refresh_token"].as_str().unwrap().to_owned()),
        ("current refresh token", third["refresh_token"].as_str().unwrap().to_owned()),
        ("signing key", secret.secret_string().unwrap().to_owned()),
        ("email of a failed login", "ghost@example.com".to_owned()),
    ];
    forbidden.extend(token_hashes.into_iter().map(|h| ("refresh token hash", h)));
    for (what, value) in forbidden {
        assert!(!logs.contains(&value), "{what} appears in the logs");
    }
}
