//! Refresh-token rotation and reuse detection, signing-key rotation (verifiers across rotations,
//! the emergency removal) and the registration race.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::DecodingKey;
use serde_json::{json, Value};
use shared::keyring::{KeyRing, PrivateJwk};
use shared::services::TokenServices;
use shared::testing::TEST_ISSUER;
use tests::verifier::GatewayVerifier;
use tests::{assert_problem, parts, Stack, PASSWORD};

async fn session_item(stack: &Stack) -> std::collections::HashMap<String, AttributeValue> {
    let items = stack.items().await;
    let sessions: Vec<_> = items.into_iter().filter(|i| i["pk"].as_s().unwrap().starts_with("SESSION#")).collect();
    assert_eq!(sessions.len(), 1, "one login, one family");
    sessions.into_iter().next().unwrap()
}

#[tokio::test]
async fn given_a_chain_of_refreshes_when_each_is_used_once_then_all_succeed_within_one_family() {
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let mut refresh = stack.login_user("ada@example.com", PASSWORD).await["refresh_token"].as_str().unwrap().to_owned();
    let family_expiry = session_item(&stack).await["expires_at"].clone();
    for _ in 0..5 {
        let (status, _, body) = parts(stack.refresh_with(&refresh).await);
        assert_eq!(status, 200, "{body}");
        refresh = body["refresh_token"].as_str().unwrap().to_owned();
    }
    let session = session_item(&stack).await;
    assert_eq!(session["generation"].as_n().unwrap(), "5");
    // Absolute lifetime: rotation never extends the family.
    assert_eq!(session["expires_at"], family_expiry);
}

const STRICT: &[(&str, &str)] = &[("REFRESH_REUSE_GRACE_SECONDS", "0")];

#[tokio::test]
async fn given_a_used_refresh_token_when_replayed_then_the_family_is_revoked_but_other_sessions_live() {
    let stack = Stack::with_env(STRICT).await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let stolen = stack.login_user("ada@example.com", PASSWORD).await["refresh_token"].as_str().unwrap().to_owned();
    let other_device =
        stack.login_user("ada@example.com", PASSWORD).await["refresh_token"].as_str().unwrap().to_owned();

    let (status, _, legit) = parts(stack.refresh_with(&stolen).await);
    assert_eq!(status, 200);
    // The attacker replays the stolen (now used) token: refused, and the family is revoked...
    assert_problem(stack.refresh_with(&stolen).await, 401);
    // ...so the token the legitimate client holds stops working too.
    assert_problem(stack.refresh_with(legit["refresh_token"].as_str().unwrap()).await, 401);
    let revoked = stack.items().await.into_iter().filter(|i| i.contains_key("revoked_at")).count();
    assert_eq!(revoked, 1);
    // Another login's family is untouched.
    assert_eq!(parts(stack.refresh_with(&other_device).await).0, 200);
}

/// Presents one refresh token from 50 tasks at once; returns their answers.
async fn race(stack: &Arc<Stack>, refresh: &str) -> Vec<(u16, serde_json::Value)> {
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (stack, refresh) = (stack.clone(), refresh.to_owned());
            tokio::spawn(async move {
                let (status, _, body) = parts(stack.refresh_with(&refresh).await);
                (status, body)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

#[tokio::test]
async fn given_concurrent_refreshes_of_one_token_in_strict_mode_then_exactly_one_pair_is_issued() {
    let stack = Arc::new(Stack::with_env(STRICT).await);
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let refresh = stack.login_user("ada@example.com", PASSWORD).await["refresh_token"].as_str().unwrap().to_owned();
    let statuses: Vec<u16> = race(&stack, &refresh).await.into_iter().map(|(status, _)| status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 49, "{statuses:?}");
    assert_eq!(session_item(&stack).await["generation"].as_n().unwrap(), "1");
}

#[tokio::test]
async fn given_strict_mode_and_a_rotation_stamped_after_the_replay_s_clock_then_the_replay_revokes() {
    // GIVEN strict mode and a token just rotated by a request whose clock read a later second
    // than the one replaying it (concurrent requests straddling a second, or instances' clocks)
    let stack = Stack::with_env(STRICT).await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let spent = stack.login_user("ada@example.com", PASSWORD).await["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(parts(stack.refresh_with(&spent).await).0, 200);
    stack
        .dynamodb
        .update_item()
        .table_name(&stack.table)
        .key("pk", session_item(&stack).await["pk"].clone())
        .update_expression("SET rotated_at = :later")
        .expression_attribute_values(":later", AttributeValue::N((shared::now_epoch() + 5).to_string()))
        .send()
        .await
        .unwrap();

    // WHEN the spent token is presented again
    let replay = stack.refresh_with(&spent).await;

    // THEN it is a reuse, as any replay in strict mode: 401 and the family revoked
    assert_problem(replay, 401);
    assert!(session_item(&stack).await.contains_key("revoked_at"));
}

#[tokio::test]
async fn given_concurrent_refreshes_of_one_token_within_the_grace_window_then_one_rotation_and_one_token() {
    // GIVEN the default 10 s grace window
    let stack = Arc::new(Stack::new().await);
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let refresh = stack.login_user("ada@example.com", PASSWORD).await["refresh_token"].as_str().unwrap().to_owned();
    // WHEN 50 clients present the same token at once
    let answers = race(&stack, &refresh).await;
    // THEN the family rotates once, and every client gets that one successor
    assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
    let successors: std::collections::BTreeSet<_> =
        answers.iter().map(|(_, body)| body["refresh_token"].as_str().unwrap().to_owned()).collect();
    assert_eq!(successors.len(), 1, "{successors:?}");
    assert_eq!(session_item(&stack).await["generation"].as_n().unwrap(), "1");
    assert_eq!(parts(stack.refresh_with(successors.first().unwrap()).await).0, 200);
}

/// Moves the family's last rotation `seconds` into the past.
async fn age_rotation(stack: &Stack, seconds: i64) {
    let session = session_item(stack).await;
    let rotated_at: i64 = session["rotated_at"].as_n().unwrap().parse().unwrap();
    stack
        .dynamodb
        .update_item()
        .table_name(&stack.table)
        .key("pk", session["pk"].clone())
        .update_expression("SET rotated_at = :t")
        .expression_attribute_values(":t", AttributeValue::N((rotated_at - seconds).to_string()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn given_the_token_just_replaced_then_within_the_window_it_gets_the_current_one_and_after_it_revokes() {
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let first = stack.login_user("ada@example.com", PASSWORD).await["refresh_token"].as_str().unwrap().to_owned();
    let (_, _, second) = parts(stack.refresh_with(&first).await);
    let second = second["refresh_token"].as_str().unwrap().to_owned();

    // Within the window: the same current token and a fresh access token, no rotation.
    let (status, _, again) = parts(stack.refresh_with(&first).await);
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["refresh_token"], second.as_str());
    assert_eq!(parts(stack.get_user("me", again["access_token"].as_str()).await).0, 200);
    assert_eq!(session_item(&stack).await["generation"].as_n().unwrap(), "1");

    // After it: reuse, and the whole family is revoked.
    age_rotation(&stack, 10).await;
    assert_problem(stack.refresh_with(&first).await, 401);
    assert!(session_item(&stack).await.contains_key("revoked_at"));
    assert_problem(stack.refresh_with(&second).await, 401);
}

#[tokio::test]
async fn given_a_token_older_than_the_one_just_replaced_then_it_revokes_the_family_at_once() {
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let first = stack.login_user("ada@example.com", PASSWORD).await["refresh_token"].as_str().unwrap().to_owned();
    let second = parts(stack.refresh_with(&first).await).2["refresh_token"].as_str().unwrap().to_owned();
    let third = parts(stack.refresh_with(&second).await).2["refresh_token"].as_str().unwrap().to_owned();

    assert_problem(stack.refresh_with(&first).await, 401);
    assert!(session_item(&stack).await.contains_key("revoked_at"));
    assert_problem(stack.refresh_with(&third).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_50_concurrent_registrations_of_one_email_then_exactly_one_201_and_49_409() {
    let stack = Arc::new(Stack::new().await);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let stack = stack.clone();
            tokio::spawn(async move {
                let body = json!({"email": "race@example.com", "password": PASSWORD, "name": format!("Racer {i}")});
                parts(stack.post("register", &body).await).0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 49, "{statuses:?}");
    let keys = stack.keys().await;
    assert_eq!(keys.iter().filter(|k| k.starts_with("USER#")).count(), 1, "{keys:?}");
    assert_eq!(keys.iter().filter(|k| k.starts_with("EMAIL#")).count(), 1, "{keys:?}");
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// A verifier that fetches the JWKS and keeps it for exactly its max-age, never earlier, as a
/// gateway or another service may: it knows only what was published when it fetched.
struct CachingVerifier {
    fetched_at: i64,
    keys: JwkSet,
}

impl CachingVerifier {
    fn verifies(&self, token: &str, now: i64) -> bool {
        let Some(jwk) = self.keys.find(&kid(token)) else { return false };
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&["serverless-auth"]);
        validation.set_issuer(&[TEST_ISSUER]);
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation);
        claims.is_ok_and(|c| c.claims["exp"].as_i64().is_some_and(|exp| now < exp))
    }
}

/// The issue's walk: two rotations in quick succession, then one long after. At every step
/// (simulated time; each rotation is the real rotation function on moto, the signer the
/// signing functions' own code reading the ring), a token is issued, and every token still
/// alive must verify for every verifier that fetched the JWKS at any moment within its
/// max-age, and for the verify-only functions' own key cache.
#[tokio::test]
async fn given_two_rotations_when_verifiers_cache_the_jwks_for_its_max_age_then_no_live_token_is_refused_and_a_retired_key_disappears(
) {
    // GIVEN a stack before its first rotation, whose functions re-read keys on every call
    let stack = Stack::unrotated_with_env(&[("KEY_CACHE_TTL_SECONDS", "0")]).await;
    let login = stack.function("LoginFunction");
    let signer = TokenServices::signing(&login.config, &login.clients).unwrap().tokens;
    let get_user = stack.function("GetUserFunction");
    let verifier = TokenServices::verifying(&get_user.config, &get_user.clients).unwrap().tokens;
    let (max_age, ttl) = (login.config.key_ring.jwks_max_age.as_secs() as i64, 900);
    // With no key cache, a key may sign once published for the JWKS's max-age, no later.
    assert_eq!(login.config.key_ring.signing_delay.as_secs() as i64, max_age);
    assert_eq!(login.config.tokens.access_ttl.as_secs() as i64, ttl);
    let user = shared::domain::UserId::generate();
    // AND a verifier working as API Gateway's JWT authorizers do, through the public routes
    let mut gateway = GatewayVerifier::discover(&stack, "serverless-auth").await;
    assert_eq!(gateway.issuer, TEST_ISSUER);

    // WHEN the ring rotates at 0 (its first key), 600 and 1200, and again once the first key's
    // last token and every cached copy naming it are gone; a step every 300 s
    let last = 1200 + max_age + ttl + max_age;
    let rotations = [0, 600, 1200, last];
    let step = 300;
    let mut caches: Vec<CachingVerifier> = Vec::new();
    let mut issued: Vec<(i64, String)> = Vec::new();
    let mut kids_used = Vec::new();
    // Simulated time starts at the real clock's now and runs into the future: the library
    // checks `exp` against the real clock, so no token is ever past it; the walk checks the
    // simulated expiry itself and only ever verifies tokens alive at the simulated now.
    let base = shared::now_epoch();
    for t in (0..=last + step).step_by(step as usize) {
        let now = base + t;
        if rotations.contains(&t) {
            stack.rotate(now).await;
        }
        // A verifier fetches now (one per phase), and keeps what it fetched for max-age.
        let jwks: JwkSet = serde_json::from_str(&stack.current_secret("JwksSecret").await).unwrap();
        caches.retain(|cache| now < cache.fetched_at + max_age);
        caches.push(CachingVerifier { fetched_at: now, keys: jwks });
        let token = signer.issue(TEST_ISSUER, user, true, now).await.unwrap();
        if kids_used.last() != Some(&kid(&token)) {
            kids_used.push(kid(&token));
        }
        issued.push((now, token));
        issued.retain(|(at, _)| now < at + ttl);
        // THEN every live token verifies, for every cache and for the functions' verifier
        for (at, token) in &issued {
            let at = at - base;
            for cache in &caches {
                let fetched = cache.fetched_at - base;
                assert!(
                    cache.verifies(token, now),
                    "t={t}: a token of t={at} refused by a JWKS fetched at t={fetched}"
                );
            }
            verifier.verify(TEST_ISSUER, token, now).await.unwrap_or_else(|e| panic!("t={t}: token of t={at}: {e}"));
            let accepted = gateway.verify(&stack, token, now).await;
            accepted.unwrap_or_else(|e| panic!("t={t}: the gateway refused a token of t={at}: {e}"));
        }
    }
    // AND the tokens were signed by the keys in turn, each new one once published for max-age
    // (the second key signs for a while before the third takes over; the fourth not yet)
    assert_eq!(kids_used.len(), 3, "{kids_used:?}");
    // AND the gateway-style verifier fetched the keys only when its copy expired, never for an
    // unknown kid: once at the start and once per max-age
    assert_eq!(gateway.fetches as i64, 1 + (last + step) / max_age, "fetches");
    // AND the first and second keys have left the ring and the JWKS at the last rotation (their
    // last tokens, and every copy of the JWKS a verifier may hold from then, have expired); the
    // third, which signs, and the new one stay
    let ring = KeyRing::parse(&stack.current_secret("KeyRingSecret").await).unwrap();
    let published = stack.current_secret("JwksSecret").await;
    for retired in &kids_used[..2] {
        assert!(ring.find(retired).is_none(), "a retired key is still in the ring");
        assert!(!published.contains(retired.as_str()), "a retired key is still published");
    }
    assert_eq!(ring.keys.len(), 2);
    assert!(ring.find(&kids_used[2]).is_some());
}

#[tokio::test]
async fn given_a_user_deleted_after_login_when_reading_then_401() {
    let stack = Stack::new().await;
    let ada = stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let access = stack.login_user("ada@example.com", PASSWORD).await["access_token"].as_str().unwrap().to_owned();
    let key = format!("USER#{}", ada["id"].as_str().unwrap());
    stack.dynamodb.delete_item().table_name(&stack.table).key("pk", AttributeValue::S(key)).send().await.unwrap();
    assert_problem(stack.get_user("me", Some(&access)).await, 401);
}

#[tokio::test]
async fn given_a_hash_with_weaker_parameters_when_logging_in_then_it_is_upgraded() {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(4096, 1, 1, None).unwrap(),
    )
    .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut OsRng))
    .unwrap()
    .to_string();
    let key = AttributeValue::S("EMAIL#ada@example.com".into());
    let set_hash = stack
        .dynamodb
        .update_item()
        .table_name(&stack.table)
        .key("pk", key.clone())
        .update_expression("SET password_hash = :h")
        .expression_attribute_values(":h", AttributeValue::S(weak));
    set_hash.send().await.unwrap();

    stack.login_user("ada@example.com", PASSWORD).await;
    let item = stack.dynamodb.get_item().table_name(&stack.table).key("pk", key).send().await.unwrap().item.unwrap();
    assert!(item["password_hash"].as_s().unwrap().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    stack.login_user("ada@example.com", PASSWORD).await;
}

/// SECURITY.md, "A compromised signing key", step by step.
#[tokio::test]
async fn given_a_compromised_signing_key_when_following_the_emergency_procedure_then_its_tokens_stop_within_the_cache_ttl(
) {
    // GIVEN warm functions caching keys for 2 s, and a user holding a token signed with the key
    let stack = Stack::with_env(&[("KEY_CACHE_TTL_SECONDS", "2")]).await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let before = stack.login_user("ada@example.com", PASSWORD).await;
    let compromised = kid(before["access_token"].as_str().unwrap());
    assert_eq!(parts(stack.get_user("me", before["access_token"].as_str()).await).0, 200);
    // AND a verifier working as API Gateway's JWT authorizers do, which fetched the keys then
    let mut gateway = GatewayVerifier::discover(&stack, "serverless-auth").await;
    let now = shared::now_epoch();
    gateway.verify(&stack, before["access_token"].as_str().unwrap(), now).await.unwrap();

    // WHEN the operator (1) rotates, since the ring holds no other key: a replacement is published
    stack.rotate(shared::now_epoch()).await;
    // AND (2) removes the compromised kid from the ring (`jq` and PutSecretValue)
    let ring = KeyRing::parse(&stack.current_secret("KeyRingSecret").await).unwrap();
    let replacement = ring.keys.iter().find(|key| key.kid != compromised).unwrap().kid.clone();
    stack.put_secret("KeyRingSecret", &ring.without(&compromised).to_json()).await;
    // AND (3) rotates again, which publishes the JWKS of what is left (and adds a key)
    stack.rotate(shared::now_epoch()).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

    // THEN the compromised key's tokens are refused, signers moved at once to the replacement
    // (the newest key left that verifiers were shown), and the user's session survives:
    // refresh tokens are not signed, so a refresh gets a token with the replacement
    let (headers, _) = assert_problem(stack.get_user("me", before["access_token"].as_str()).await, 401);
    assert_eq!(headers["www-authenticate"], r#"Bearer error="invalid_token""#);
    assert!(!stack.current_secret("JwksSecret").await.contains(compromised.as_str()));
    let refreshed = parts(stack.refresh_with(before["refresh_token"].as_str().unwrap()).await).2;
    assert_eq!(kid(refreshed["access_token"].as_str().unwrap()), replacement);
    assert_eq!(parts(stack.get_user("me", refreshed["access_token"].as_str()).await).0, 200);
    // AND the gateway-style verifier, whose copy is still fresh, fetches the keys again for the
    // replacement's unknown kid: it accepts the new token, and from then refuses the compromised one
    let refreshed = refreshed["access_token"].as_str().unwrap();
    assert_eq!(gateway.fetches, 1);
    gateway.verify(&stack, refreshed, now).await.expect("the replacement's token");
    assert_eq!(gateway.fetches, 2, "one fetch for the unknown kid");
    let refused = gateway.verify(&stack, before["access_token"].as_str().unwrap(), now).await;
    assert!(refused.is_err_and(|e| e == "unknown kid"));
}

/// A secret's value shorter than the 32 bytes HS256 and HMAC-SHA256 keys need (RFC 7518 §3.2).
async fn put_short_value(stack: &Stack, secret_id: &str) {
    stack.secrets.put_secret_value().secret_id(secret_id).secret_string("k".repeat(31)).send().await.unwrap();
}

#[tokio::test]
async fn given_a_short_throttle_key_or_a_damaged_key_ring_when_logging_in_then_a_generic_500_and_nothing_counted() {
    // GIVEN a user, and a throttle-key secret that an operator set to 31 bytes
    let mut stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let throttle_secret = stack.resources.reference("ThrottleKeySecret").unwrap().to_owned();
    put_short_value(&stack, &throttle_secret).await;

    // WHEN a new login instance starts and serves a request
    stack.login = stack.fresh("LoginFunction");
    let response = stack.post("login", &json!({"email": "ada@example.com", "password": PASSWORD})).await;

    // THEN it refuses the weak key: a generic 500 that names no internals, and no attempt counted
    let (_, problem) = assert_problem(response, 500);
    assert!(!problem.to_string().contains("bytes"), "{problem}");
    assert!(!stack.keys().await.iter().any(|k| k.starts_with("FAILURES#")));

    // AND the same for a damaged key ring, once the throttle key is long enough again
    let valid: String = "t".repeat(32);
    stack.secrets.put_secret_value().secret_id(&throttle_secret).secret_string(valid).send().await.unwrap();
    let mut ring = KeyRing::parse(&stack.current_secret("KeyRingSecret").await).unwrap();
    if let PrivateJwk::Ec { x, d, .. } = &mut ring.keys[0].private_jwk {
        d.clone_from(x);
    }
    stack.put_secret("KeyRingSecret", &ring.to_json()).await;
    stack.login = stack.fresh("LoginFunction");
    let response = stack.post("login", &json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_problem(response, 500);
    assert!(!stack.keys().await.iter().any(|k| k.starts_with("SESSION#")), "no session without a usable key");
}
