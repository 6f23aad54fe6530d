//! The flows that go through mail, against DynamoDB Local and moto: the request writes the mail
//! to the outbox, the table's stream hands it to the mailer (as Lambda's event source mapping
//! would), the mailer sends it through the SESv2 API to moto (through the IAM check, whose
//! outbox keeps each SendEmail request), and the test follows the link.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use tests::{assert_problem, parts, token_of, unique_email, Stack, PASSWORD};

const NEW_PASSWORD: &str = "another long passphrase of mine";

async fn status(response: lambda_http::Response<lambda_http::Body>) -> u16 {
    response.status().as_u16()
}

async fn verify(stack: &Stack, token: &str) -> (u16, Value) {
    let (status, _, body) = parts(stack.post("email-verify", &json!({"token": token})).await);
    (status, body)
}

fn login(email: &str, password: &str) -> Value {
    json!({"email": email, "password": password})
}

// ---- Sign-up and POST /email/verify ------------------------------------------------------------

#[tokio::test]
async fn given_a_sign_up_when_its_mail_is_followed_then_the_email_is_verified_once_and_login_works() {
    // GIVEN a new account
    let stack = Stack::new().await;
    let email = unique_email("ada");
    stack.register_unverified_user(&email, PASSWORD, "Ada").await;
    assert_eq!(status(stack.post("login", &login(&email, PASSWORD)).await).await, 403);

    // WHEN its mail goes out
    let mail = stack.mail_to(&email, 1).await;

    // THEN one message from the sender, in text and HTML, with a link into the app
    assert_eq!(mail.len(), 1, "{mail:#?}");
    assert_eq!(mail[0].from, "no-reply@example.com");
    assert_eq!(mail[0].subject, "Verify your email address");
    assert!(mail[0].html.contains("<a href=\"https://app.example.com/verify-email#token="), "{}", mail[0].html);
    let token = token_of(&mail[0]);
    assert_eq!(token.len(), 43, "256 bits");
    // AND no item of the table holds the token
    let items = format!("{:?}", stack.items().await);
    assert!(!items.contains(&token), "a usable token is stored");

    // WHEN the app posts the token THEN the user is verified, and the token is spent
    let (code, user) = verify(&stack, &token).await;
    assert_eq!(code, 200, "{user}");
    assert_eq!((user["email"].as_str(), &user["email_verified"]), (Some(email.as_str()), &json!(true)));
    assert_eq!(status(stack.post("login", &login(&email, PASSWORD)).await).await, 200);
    assert_problem(stack.post("email-verify", &json!({"token": token})).await, 401);
}

#[tokio::test]
async fn given_two_verification_links_when_one_is_used_then_the_other_no_longer_works() {
    // GIVEN the sign-up link and a second one sent again (the sign-up mail starts no cooldown)
    let stack = Stack::new().await;
    let email = unique_email("ada");
    stack.register_unverified_user(&email, PASSWORD, "Ada").await;
    let first = stack.link_token(&email, 1).await;
    assert_eq!(status(stack.post("email-verify-resend", &json!({"email": email})).await).await, 202);
    let second = stack.link_token(&email, 2).await;
    assert_ne!(first, second);

    // WHEN the second is used THEN the first is superseded
    assert_eq!(verify(&stack, &second).await.0, 200);
    assert_problem(stack.post("email-verify", &json!({"token": first})).await, 401);
}

#[tokio::test]
async fn given_an_expired_link_when_used_then_401() {
    let stack = Stack::with_env(&[("VERIFY_EMAIL_TTL_SECONDS", "300")]).await;
    let email = unique_email("ada");
    stack.register_unverified_user(&email, PASSWORD, "Ada").await;
    let token = stack.link_token(&email, 1).await;
    // The stored expiry moved into the past (TTL deletion is lazy; the code checks it).
    for item in stack.items().await {
        let pk = item["pk"].as_s().unwrap();
        if pk.starts_with("TOKEN#") {
            stack
                .dynamodb
                .update_item()
                .table_name(&stack.table)
                .key("pk", AttributeValue::S(pk.clone()))
                .update_expression("SET expires_at = :past")
                .expression_attribute_values(":past", AttributeValue::N((shared::now_epoch() - 1).to_string()))
                .send()
                .await
                .unwrap();
        }
    }
    assert_problem(stack.post("email-verify", &json!({"token": token})).await, 401);
}

// ---- POST /email/verify/resend ------------------------------------------------------------------

#[tokio::test]
async fn given_unknown_unverified_and_verified_addresses_when_asking_to_resend_then_the_same_202_and_mail_only_where_due(
) {
    let stack = Stack::new().await;
    let (unverified, verified, unknown) = (unique_email("u"), unique_email("v"), unique_email("x"));
    stack.register_unverified_user(&unverified, PASSWORD, "U").await;
    stack.register_user(&verified, PASSWORD, "V").await;
    stack.mail_to(&unverified, 1).await;

    let mut answers = Vec::new();
    for email in [&unverified, &verified, &unknown] {
        let (code, _, body) = parts(stack.post("email-verify-resend", &json!({"email": email})).await);
        answers.push((code, body));
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, 202);

    assert_eq!(stack.mail_to(&unverified, 2).await.len(), 2, "the unverified account gets a new link");
    stack.deliver_mail().await;
    assert_eq!(stack.mail_to(&verified, 1).await.len(), 1, "the verified one only its sign-up mail");
    assert!(stack.mail_to(&unknown, 0).await.is_empty(), "a stranger's address gets nothing");
    let skipped = stack
        .items()
        .await
        .into_iter()
        .filter(|i| i.get("status").and_then(|s| s.as_s().ok()).is_some_and(|s| s == "skipped"))
        .count();
    assert_eq!(skipped, 2, "both marked skipped, for an operator to see");
}

#[tokio::test]
async fn given_a_resend_when_asking_again_within_a_minute_then_429_with_retry_after() {
    let stack = Stack::new().await;
    let email = unique_email("ada");
    assert_eq!(status(stack.post("email-verify-resend", &json!({"email": email})).await).await, 202);
    let (headers, _) = assert_problem(stack.post("email-verify-resend", &json!({"email": email})).await, 429);
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // The other kind has its own cooldown.
    assert_eq!(status(stack.post("password-forgot", &json!({"email": email})).await).await, 202);
}

// ---- POST /password/forgot and /password/reset --------------------------------------------------

#[tokio::test]
async fn given_a_forgotten_password_when_the_link_is_followed_then_the_password_changes_and_everything_else_follows() {
    // GIVEN an unverified account with a session, throttled by failures from this network
    let stack = Stack::with_env(&[("REQUIRE_VERIFIED_EMAIL", "false")]).await;
    let email = unique_email("ada");
    stack.register_unverified_user(&email, PASSWORD, "Ada").await;
    let session = stack.login_user(&email, PASSWORD).await;
    // Seven counted failures: the next attempt waits 4 s, long enough for a loaded machine.
    let mut counted = 0;
    while counted < 7 {
        let response = stack.post("login", &login(&email, "a wrong password entirely")).await;
        match response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok()) {
            Some(wait) => tokio::time::sleep(std::time::Duration::from_millis(wait * 1000 + 100)).await,
            None => counted += 1,
        }
    }
    assert_eq!(status(stack.post("login", &login(&email, PASSWORD)).await).await, 429);

    // WHEN a reset is asked for and its link followed
    assert_eq!(status(stack.post("password-forgot", &json!({"email": email})).await).await, 202);
    let mail = stack.mail_to(&email, 2).await;
    assert_eq!(mail[0].subject, "Reset your password");
    assert!(mail[0].links()[0].starts_with("https://app.example.com/reset-password#token="));
    let token = token_of(&mail[0]);

    // THEN a weak password is refused and leaves the token usable
    let (_, problem) =
        assert_problem(stack.post("password-reset", &json!({"token": token, "password": "short"})).await, 422);
    assert_eq!(problem["errors"][0]["field"], "password");
    let response = stack.post("password-reset", &json!({"token": token, "password": NEW_PASSWORD})).await;
    assert_eq!(response.status(), 204);

    // AND the password is the new one, the throttle forgot the failures, the email is verified,
    // every earlier session is over, the token is spent and a notice went out
    assert_problem(stack.post("login", &login(&email, PASSWORD)).await, 401);
    let after = stack.login_user(&email, NEW_PASSWORD).await;
    assert_problem(stack.refresh_with(session["refresh_token"].as_str().unwrap()).await, 401);
    assert_eq!(status(stack.refresh_with(after["refresh_token"].as_str().unwrap()).await).await, 200);
    let (_, _, me) = parts(stack.get_user("me", after["access_token"].as_str()).await);
    assert_eq!(me["email_verified"], true);
    assert_problem(stack.post("password-reset", &json!({"token": token, "password": NEW_PASSWORD})).await, 401);
    let notice = stack.mail_to(&email, 3).await;
    assert_eq!(notice[0].subject, "Your password was changed");
    assert!(notice[0].links().is_empty(), "a notice acts on nothing");
}

#[tokio::test]
async fn given_one_reset_token_when_used_twice_at_once_then_exactly_one_204() {
    let stack = Stack::new().await;
    let email = unique_email("ada");
    stack.register_user(&email, PASSWORD, "Ada").await;
    stack.post("password-forgot", &json!({"email": email})).await;
    let token = stack.link_token(&email, 1).await;
    let body = json!({"token": token, "password": NEW_PASSWORD});
    let (a, b) = tokio::join!(stack.post("password-reset", &body), stack.post("password-reset", &body));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [204, 401]);
}

#[tokio::test]
async fn given_20_concurrent_forgot_requests_for_one_address_then_at_most_one_mail() {
    let stack = Stack::new().await;
    let email = unique_email("ada");
    stack.register_user(&email, PASSWORD, "Ada").await;
    let body = json!({"email": email});
    let answers = futures::future::join_all((0..20).map(|_| stack.post("password-forgot", &body))).await;
    let accepted = answers.iter().filter(|a| a.status() == 202).count();
    assert_eq!(accepted, 1, "{:?}", answers.iter().map(|a| a.status()).collect::<Vec<_>>());
    assert!(answers.iter().all(|a| a.status() == 202 || a.status() == 429));
    stack.mail_to(&email, 2).await;
    let resets = stack.mail_to(&email, 0).await.into_iter().filter(|m| m.subject == "Reset your password").count();
    assert_eq!(resets, 1);
}

// ---- POST /password/change --------------------------------------------------------------------

#[tokio::test]
async fn given_a_signed_in_user_when_changing_the_password_then_a_new_family_and_every_earlier_one_revoked() {
    let stack = Stack::new().await;
    let email = unique_email("ada");
    stack.register_user(&email, PASSWORD, "Ada").await;
    let (phone, laptop) = (stack.login_user(&email, PASSWORD).await, stack.login_user(&email, PASSWORD).await);
    let access = phone["access_token"].as_str().unwrap();

    let wrong = json!({"current_password": "not the password at all", "new_password": NEW_PASSWORD});
    assert_problem(stack.bearer("password-change", access, Some(&wrong)).await, 401);
    let weak = json!({"current_password": PASSWORD, "new_password": "short"});
    let (_, problem) = assert_problem(stack.bearer("password-change", access, Some(&weak)).await, 422);
    assert_eq!(problem["errors"][0]["field"], "new_password");

    let body = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
    let (code, _, pair) = parts(stack.bearer("password-change", access, Some(&body)).await);
    assert_eq!(code, 200, "{pair}");
    assert_eq!(pair["token_type"], "Bearer");
    for old in [&phone, &laptop] {
        assert_problem(stack.refresh_with(old["refresh_token"].as_str().unwrap()).await, 401);
    }
    assert_eq!(status(stack.refresh_with(pair["refresh_token"].as_str().unwrap()).await).await, 200);
    assert_problem(stack.post("login", &login(&email, PASSWORD)).await, 401);
    stack.login_user(&email, NEW_PASSWORD).await;
    let mail = stack.mail_to(&email, 1).await;
    assert_eq!(mail[0].subject, "Your password was changed");
}

// ---- POST /email/change -----------------------------------------------------------------------

#[tokio::test]
async fn given_an_email_change_when_the_new_address_confirms_then_the_account_moves_and_the_old_address_is_free() {
    let stack = Stack::new().await;
    let (old, new) = (unique_email("ada"), unique_email("lovelace"));
    stack.register_user(&old, PASSWORD, "Ada").await;
    let session = stack.login_user(&old, PASSWORD).await;
    let access = session["access_token"].as_str().unwrap();

    let taken = unique_email("bob");
    stack.register_user(&taken, PASSWORD, "Bob").await;
    assert_problem(
        stack.bearer("email-change", access, Some(&json!({"new_email": taken, "password": PASSWORD}))).await,
        409,
    );
    let wrong = json!({"new_email": new, "password": "not the password at all"});
    assert_problem(stack.bearer("email-change", access, Some(&wrong)).await, 401);
    let response = stack.bearer("email-change", access, Some(&json!({"new_email": new, "password": PASSWORD}))).await;
    assert_eq!(response.status(), 202);

    // THEN a link to the new address, a notice (no link) to the old one; nothing changed yet
    let confirm = stack.mail_to(&new, 1).await;
    assert_eq!(confirm[0].subject, "Confirm your new email address");
    let notice = stack.mail_to(&old, 1).await;
    assert_eq!(notice[0].subject, "Your email address is being changed");
    assert!(notice[0].links().is_empty());
    assert_eq!(status(stack.post("login", &login(&old, PASSWORD)).await).await, 200);

    // WHEN the link is used THEN the account is at the new address, verified; the old is free
    let (code, user) = verify(&stack, &token_of(&confirm[0])).await;
    assert_eq!(code, 200, "{user}");
    assert_eq!((user["email"].as_str(), &user["email_verified"]), (Some(new.as_str()), &json!(true)));
    assert_problem(stack.post("login", &login(&old, PASSWORD)).await, 401);
    assert_eq!(status(stack.post("login", &login(&new, PASSWORD)).await).await, 200);
    assert_eq!(
        status(stack.refresh_with(session["refresh_token"].as_str().unwrap()).await).await,
        200,
        "sessions go on"
    );
    stack.register_unverified_user(&old, PASSWORD, "Someone Else").await;
}

#[tokio::test]
async fn given_an_email_change_when_the_new_address_is_registered_before_the_link_is_used_then_409() {
    let stack = Stack::new().await;
    let (old, new) = (unique_email("ada"), unique_email("lovelace"));
    stack.register_user(&old, PASSWORD, "Ada").await;
    let access = stack.login_user(&old, PASSWORD).await["access_token"].as_str().unwrap().to_owned();
    stack.bearer("email-change", &access, Some(&json!({"new_email": new, "password": PASSWORD}))).await;
    let token = stack.link_token(&new, 1).await;
    stack.register_unverified_user(&new, PASSWORD, "Someone Else").await;

    assert_problem(stack.post("email-verify", &json!({"token": token})).await, 409);
    assert_eq!(status(stack.post("login", &login(&old, PASSWORD)).await).await, 200, "nothing moved");
}

// ---- DELETE /users/me -------------------------------------------------------------------------

#[tokio::test]
async fn given_a_user_when_deleting_the_account_then_everything_it_owned_goes_and_the_address_is_free() {
    let stack = Stack::new().await;
    let email = unique_email("ada");
    let user = stack.register_user(&email, PASSWORD, "Ada").await;
    let sessions = [stack.login_user(&email, PASSWORD).await, stack.login_user(&email, PASSWORD).await];
    stack.post("password-forgot", &json!({"email": email})).await;
    stack.link_token(&email, 1).await;
    let access = sessions[0]["access_token"].as_str().unwrap();

    assert_problem(
        stack.bearer("delete-user", access, Some(&json!({"password": "not the password at all"}))).await,
        401,
    );
    let response = stack.bearer("delete-user", access, Some(&json!({"password": PASSWORD}))).await;
    assert_eq!(response.status(), 204);

    for session in &sessions {
        assert_problem(stack.refresh_with(session["refresh_token"].as_str().unwrap()).await, 401);
    }
    assert_problem(stack.get_user("me", Some(access)).await, 401);
    let id = user["id"].as_str().unwrap();
    let left: Vec<String> = stack
        .items()
        .await
        .into_iter()
        .filter(|item| {
            item.get("user_id").and_then(|v| v.as_s().ok()).is_some_and(|owner| owner == id)
                || item["pk"].as_s().unwrap().contains(id)
        })
        .map(|item| item["pk"].as_s().unwrap().clone())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    stack.register_unverified_user(&email, PASSWORD, "Ada Again").await;
}

// ---- The mailer's limits ----------------------------------------------------------------------

#[tokio::test]
async fn given_a_sender_the_role_may_not_send_from_when_mailing_then_the_mail_is_marked_failed_and_stays() {
    // GIVEN a mailer configured with another From address than the template's SenderEmail, on an
    // IAM check of the test's own (its denial stays out of the suite's record)
    let check = tests::private_iam_check(&tests::repo_root().join("template.yaml")).await;
    let stack = Stack::with_iam_endpoint(&check.url(), &[("SENDER_EMAIL", "someone-else@example.com")]).await;
    let email = unique_email("ada");
    stack.register_unverified_user(&email, PASSWORD, "Ada").await;

    // WHEN its mail is handled
    stack.deliver_mail().await;
    for _ in 0..50 {
        if stack.deliver_mail().await == 0 && stack.items().await.iter().any(|i| i.contains_key("detail")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // THEN the IAM check refused it, nothing went out, and the item stays, failed, with no expiry
    let outbox: Vec<_> =
        stack.items().await.into_iter().filter(|i| i["pk"].as_s().unwrap().starts_with("OUTBOX#")).collect();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0]["status"].as_s().unwrap(), "failed");
    assert_eq!(outbox[0]["detail"].as_s().unwrap(), "AccessDeniedException");
    assert!(!outbox[0].contains_key("expires_at"), "a failed mail waits for an operator");
    assert!(stack.mail_to(&email, 0).await.is_empty());
    assert_eq!(check.denials(), 1, "one SendEmail, refused once, not retried");
}
