//! The account's life after sign-up, against DynamoDB Local and moto: logging out one session or
//! every session.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use shared::domain::UserId;
use shared::tokens::{Family, RefreshToken};
use tests::{assert_problem, parts, Stack, PASSWORD};

const EMAIL: &str = "ada@example.com";

fn refresh_token(tokens: &Value) -> &str {
    tokens["refresh_token"].as_str().unwrap()
}

async fn status(response: lambda_http::Response<lambda_http::Body>) -> u16 {
    response.status().as_u16()
}

// ---- POST /logout -----------------------------------------------------------------------------

#[tokio::test]
async fn given_a_session_when_logging_out_with_its_token_then_204_and_only_that_family_ends() {
    // GIVEN two sessions of one user
    let stack = Stack::new().await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let (phone, laptop) = (stack.login_user(EMAIL, PASSWORD).await, stack.login_user(EMAIL, PASSWORD).await);

    // WHEN the phone logs out
    let response = stack.logout_with(refresh_token(&phone)).await;

    // THEN 204 with no body; the phone's family is over, the laptop's goes on
    assert_eq!(response.status(), 204);
    assert!(response.body().is_empty());
    assert_problem(stack.refresh_with(refresh_token(&phone)).await, 401);
    assert_eq!(status(stack.refresh_with(refresh_token(&laptop)).await).await, 200);
}

#[tokio::test]
async fn given_a_rotated_family_when_logging_out_with_the_token_just_replaced_then_the_family_ends() {
    // GIVEN a family whose first token was just rotated (within the 10 s grace window)
    let stack = Stack::new().await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let first = stack.login_user(EMAIL, PASSWORD).await;
    let (_, _, second) = parts(stack.refresh_with(refresh_token(&first)).await);

    // WHEN the other tab logs out with the token it still holds
    assert_eq!(status(stack.logout_with(refresh_token(&first)).await).await, 204);

    // THEN the family's current token is revoked too
    assert_problem(stack.refresh_with(refresh_token(&second)).await, 401);
}

#[tokio::test]
async fn given_an_older_token_or_no_grace_when_logging_out_then_204_and_nothing_changes() {
    // GIVEN strict mode and a family rotated twice
    let stack = Stack::with_env(&[("REFRESH_REUSE_GRACE_SECONDS", "0")]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let first = stack.login_user(EMAIL, PASSWORD).await;
    let (_, _, second) = parts(stack.refresh_with(refresh_token(&first)).await);
    let (_, _, third) = parts(stack.refresh_with(refresh_token(&second)).await);

    // WHEN the spent tokens are presented to log out, and a token of a family that never was
    let ghost = RefreshToken::generate(Family::new(UserId::generate(), 0, false, shared::now_epoch() + 60).unwrap());
    for spent in [refresh_token(&first), refresh_token(&second), ghost.unwrap().expose().expose_secret()] {
        assert_eq!(status(stack.logout_with(spent).await).await, 204, "RFC 7009: the same answer");
    }

    // THEN the family goes on: a spent token is not the credential to end it
    assert_eq!(status(stack.refresh_with(refresh_token(&third)).await).await, 200);
}

#[tokio::test]
async fn given_a_logged_out_family_when_logging_out_again_then_204() {
    let stack = Stack::new().await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let tokens = stack.login_user(EMAIL, PASSWORD).await;
    for _ in 0..2 {
        assert_eq!(status(stack.logout_with(refresh_token(&tokens)).await).await, 204);
    }
    assert_eq!(stack.dynamodb_calls.take(), 2 + 2 + 2, "register, login, one update per logout");
}

// ---- POST /logout/all -------------------------------------------------------------------------

#[tokio::test]
async fn given_three_sessions_when_logging_out_everywhere_then_every_family_ends_and_a_new_login_works() {
    // GIVEN three sessions, one of them rotated
    let stack = Stack::new().await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let sessions = [
        stack.login_user(EMAIL, PASSWORD).await,
        stack.login_user(EMAIL, PASSWORD).await,
        stack.login_user(EMAIL, PASSWORD).await,
    ];
    let (_, _, rotated) = parts(stack.refresh_with(refresh_token(&sessions[2])).await);
    stack.dynamodb_calls.take();

    // WHEN one of them logs out everywhere
    let access = sessions[0]["access_token"].as_str().unwrap();
    let response = stack.bearer("logout-all", access, None).await;

    // THEN 204 after two calls (the user's email, then one transaction), and no family refreshes
    assert_eq!(response.status(), 204);
    assert_eq!(stack.dynamodb_calls.take(), 2);
    for token in [refresh_token(&sessions[0]), refresh_token(&sessions[1]), refresh_token(&rotated)] {
        assert_problem(stack.refresh_with(token).await, 401);
    }
    // AND a session started afterwards is unaffected
    let after = stack.login_user(EMAIL, PASSWORD).await;
    assert_eq!(status(stack.refresh_with(refresh_token(&after)).await).await, 200);
}

#[tokio::test]
async fn given_a_rotation_within_the_grace_window_when_logging_out_everywhere_then_the_old_token_is_not_repeated() {
    // GIVEN a family just rotated: its previous token would be answered with the current one
    let stack = Stack::new().await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let first = stack.login_user(EMAIL, PASSWORD).await;
    assert_eq!(status(stack.refresh_with(refresh_token(&first)).await).await, 200);

    // WHEN the user logs out everywhere
    assert_eq!(status(stack.bearer("logout-all", first["access_token"].as_str().unwrap(), None).await).await, 204);

    // THEN the repeat is refused too
    assert_problem(stack.refresh_with(refresh_token(&first)).await, 401);
}

#[tokio::test]
async fn given_1000_open_sessions_when_logging_out_everywhere_then_all_end_within_the_one_request() {
    // GIVEN 1,000 families of one user, written as login writes them
    let stack = Stack::new().await;
    let user = stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let user_id = UserId::parse(user["id"].as_str().unwrap()).unwrap();
    let now = shared::now_epoch();
    let tokens: Vec<_> = (0..1000)
        .map(|_| RefreshToken::generate(Family::new(user_id, 0, false, now + 3600).unwrap()).unwrap())
        .collect();
    for chunk in tokens.chunks(25) {
        let writes = chunk.iter().map(|token| {
            let item = HashMap::from([
                ("pk".to_owned(), AttributeValue::S(format!("SESSION#{}", token.family().id()))),
                ("user_id".to_owned(), AttributeValue::S(user_id.to_string())),
                ("token_hash".to_owned(), AttributeValue::S(token.hash().as_str().to_owned())),
                ("created_at".to_owned(), AttributeValue::N(now.to_string())),
                ("expires_at".to_owned(), AttributeValue::N((now + 3600).to_string())),
                ("generation".to_owned(), AttributeValue::N("0".into())),
            ]);
            let put = aws_sdk_dynamodb::types::PutRequest::builder().set_item(Some(item)).build().unwrap();
            aws_sdk_dynamodb::types::WriteRequest::builder().put_request(put).build()
        });
        stack.dynamodb.batch_write_item().request_items(&stack.table, writes.collect()).send().await.unwrap();
    }
    let sample = |i: usize| tokens[i].expose().expose_secret().to_owned();
    assert_eq!(status(stack.refresh_with(&sample(999)).await).await, 200, "the families work");
    let access = stack.login_user(EMAIL, PASSWORD).await["access_token"].as_str().unwrap().to_owned();
    stack.dynamodb_calls.take();

    // WHEN the user logs out everywhere
    assert_eq!(status(stack.bearer("logout-all", &access, None).await).await, 204);

    // THEN in the same two calls every family is over: the first, the last and a spread between
    assert_eq!(stack.dynamodb_calls.take(), 2, "no call per session");
    for i in (0..999).step_by(111) {
        assert_problem(stack.refresh_with(&sample(i)).await, 401);
    }
}

#[tokio::test]
async fn given_a_deleted_user_when_logging_out_everywhere_or_refreshing_then_401() {
    // GIVEN a user with a session, whose items are then removed
    let stack = Stack::new().await;
    let user = stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let tokens = stack.login_user(EMAIL, PASSWORD).await;
    for pk in [format!("USER#{}", user["id"].as_str().unwrap()), format!("EMAIL#{EMAIL}")] {
        stack.dynamodb.delete_item().table_name(&stack.table).key("pk", AttributeValue::S(pk)).send().await.unwrap();
    }

    // THEN neither the access token nor the refresh token gets anything
    let (headers, _) =
        assert_problem(stack.bearer("logout-all", tokens["access_token"].as_str().unwrap(), None).await, 401);
    assert_eq!(headers["www-authenticate"], r#"Bearer error="invalid_token""#);
    assert_problem(stack.refresh_with(refresh_token(&tokens)).await, 401);
}

#[tokio::test]
async fn given_a_refresh_token_naming_another_user_when_refreshing_or_logging_out_then_nothing_of_theirs_moves() {
    // GIVEN Bob's session, and Ada's token rewritten to name Bob (the family's name is its key)
    let stack = Stack::new().await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let bob = stack.register_user("bob@example.com", PASSWORD, "Bob").await;
    let ada = stack.login_user(EMAIL, PASSWORD).await;
    let bobs = stack.login_user("bob@example.com", PASSWORD).await;
    let mut bytes = base64_decode(refresh_token(&ada));
    bytes[2..18].copy_from_slice(UserId::parse(bob["id"].as_str().unwrap()).unwrap().as_bytes());
    let forged = base64_encode(&bytes);

    // WHEN the forged token is presented
    assert_problem(stack.refresh_with(&forged).await, 401);
    assert_eq!(status(stack.logout_with(&forged).await).await, 204);

    // THEN Bob's session and Ada's are untouched
    assert_eq!(status(stack.refresh_with(refresh_token(&bobs)).await).await, 200);
    assert_eq!(status(stack.refresh_with(refresh_token(&ada)).await).await, 200);
    assert_eq!(json!(forged.len()), json!(refresh_token(&ada).len()));
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

// ---- RequireVerifiedEmail ---------------------------------------------------------------------

fn claims_of(access_token: &str) -> Value {
    use base64::Engine;
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn given_an_unverified_email_when_logging_in_then_403_after_the_password_and_401_before_it() {
    // GIVEN an account whose email was never verified
    let stack = Stack::new().await;
    let user = stack.register_unverified_user(EMAIL, PASSWORD, "Ada").await;
    assert_eq!(user["email_verified"], false);

    // WHEN its owner logs in, THEN 403 email-not-verified; a stranger's wrong password still gets 401
    let (status, _, problem) = parts(stack.post("login", &json!({"email": EMAIL, "password": PASSWORD})).await);
    assert_eq!(status, 403, "{problem}");
    assert!(problem["type"].as_str().unwrap().ends_with("email-not-verified"), "{problem}");
    assert_eq!(problem["title"], "Email Not Verified");
    assert_problem(stack.post("login", &json!({"email": EMAIL, "password": "not the password at all"})).await, 401);
}

#[tokio::test]
async fn given_an_unverified_email_when_its_owner_keeps_trying_then_the_right_password_is_never_counted_a_failure() {
    let stack = Stack::new().await;
    stack.register_unverified_user(EMAIL, PASSWORD, "Ada").await;
    // Five failures are free per network; these would be the sixth to tenth.
    for _ in 0..10 {
        let response = stack.post("login", &json!({"email": EMAIL, "password": PASSWORD})).await;
        assert_eq!(response.status(), 403);
    }
}

#[tokio::test]
async fn given_verification_not_required_when_an_unverified_user_logs_in_then_200_and_the_claim_says_so() {
    let stack = Stack::with_env(&[("REQUIRE_VERIFIED_EMAIL", "false")]).await;
    stack.register_unverified_user(EMAIL, PASSWORD, "Ada").await;
    let tokens = stack.login_user(EMAIL, PASSWORD).await;
    assert_eq!(claims_of(tokens["access_token"].as_str().unwrap())["email_verified"], false);
    let (_, _, refreshed) = parts(stack.refresh_with(refresh_token(&tokens)).await);
    assert_eq!(claims_of(refreshed["access_token"].as_str().unwrap())["email_verified"], false);

    let stack = Stack::new().await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let tokens = stack.login_user(EMAIL, PASSWORD).await;
    assert_eq!(claims_of(tokens["access_token"].as_str().unwrap())["email_verified"], true);
}

// ---- Password routes share login's throttle -----------------------------------------------------

#[tokio::test]
async fn given_wrong_passwords_on_the_password_routes_then_they_count_on_login_s_record_and_429_as_login_does() {
    // GIVEN a signed-in user
    let stack = Stack::new().await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let access = stack.login_user(EMAIL, PASSWORD).await["access_token"].as_str().unwrap().to_owned();

    // WHEN seven wrong passwords are counted on the three routes that check one (waiting out
    // each delay: the seventh makes the next attempt wait 4 s, long enough for a loaded machine)
    let wrong = "not the password at all";
    let change = json!({"current_password": wrong, "new_password": "a brand new passphrase here"});
    let move_to = json!({"new_email": "ada@example.org", "password": wrong});
    let delete = json!({"password": wrong});
    let mut counted = 0;
    while counted < 7 {
        let (route, body) =
            [("password-change", &change), ("email-change", &move_to), ("delete-user", &delete)][counted % 3];
        let response = stack.bearer(route, &access, Some(body)).await;
        match response.status().as_u16() {
            401 => counted += 1,
            429 => {
                assert!(counted >= 5, "the first five failures are free");
                let wait: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(wait * 1000 + 100)).await;
            }
            other => panic!("{route}: unexpected {other}"),
        }
    }

    // THEN the next attempt anywhere waits, login included, with the same 429
    let (headers, _) =
        assert_problem(stack.bearer("delete-user", &access, Some(&json!({"password": PASSWORD}))).await, 429);
    assert!(headers.contains_key("retry-after"));
    let (login_headers, _) =
        assert_problem(stack.post("login", &json!({"email": EMAIL, "password": PASSWORD})).await, 429);
    assert!(login_headers.contains_key("retry-after"));
}
