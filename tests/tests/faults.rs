//! Behaviour under AWS faults: throttling, 5xx, timeouts and dropped connections between the
//! functions and DynamoDB or Secrets Manager, injected by a proxy in front of each emulator.
//! The functions' clients use their production retries and timeouts (`shared::aws`): three
//! attempts, 2 s per attempt, 6 s per operation.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Response};
use serde_json::{json, Value};
use shared::keyring::KeyRing;
use shared::lambda::Function;
use tests::faults::{Fault, GET_ITEM, GET_SECRET_VALUE, TRANSACT_WRITE_ITEMS, UPDATE_ITEM};
use tests::{assert_problem, event_json, parts, Stack, PASSWORD};

const EMAIL: &str = "ada@example.com";
/// The SDK's configured maximum number of attempts per operation.
const MAX_ATTEMPTS: usize = 3;

/// Asserts a `503` problem with `Retry-After`.
fn assert_unavailable(response: Response<Body>) {
    let (headers, problem) = assert_problem(response, 503);
    assert_eq!(headers.get("retry-after").map(|v| v.to_str().unwrap()), Some("2"), "{problem}");
}

/// Asserts a `2xx` and returns the body.
fn assert_success(response: Response<Body>, expected: u16) -> Value {
    let (status, _, body) = parts(response);
    assert_eq!(status, expected, "{body}");
    body
}

async fn register(stack: &Stack) -> Response<Body> {
    stack.post("register", &json!({"email": EMAIL, "password": PASSWORD, "name": "Ada"})).await
}

async fn login(stack: &Stack, password: &str) -> Response<Body> {
    stack.post("login", &json!({"email": EMAIL, "password": password})).await
}

fn token<'a>(body: &'a Value, name: &str) -> &'a str {
    body[name].as_str().unwrap_or_else(|| panic!("no {name} in {body}"))
}

/// The table's items whose `pk` starts with `prefix`.
async fn items(stack: &Stack, prefix: &str) -> Vec<HashMap<String, AttributeValue>> {
    stack.items().await.into_iter().filter(|i| i["pk"].as_s().unwrap().starts_with(prefix)).collect()
}

/// Exactly one user and one email item, pointing at each other, or neither.
async fn assert_users_consistent(stack: &Stack, expected_users: usize) {
    let (users, emails) = (items(stack, "USER#").await, items(stack, "EMAIL#").await);
    assert_eq!((users.len(), emails.len()), (expected_users, expected_users), "users {users:?}, emails {emails:?}");
    for user in &users {
        let id = user["id"].as_s().unwrap();
        assert!(emails.iter().any(|e| e["user_id"].as_s().unwrap() == id), "user {id} has no email item");
    }
}

/// The single refresh-token family in the table.
async fn only_session(stack: &Stack) -> HashMap<String, AttributeValue> {
    let sessions = items(stack, "SESSION#").await;
    assert_eq!(sessions.len(), 1, "one login, one family: {sessions:?}");
    sessions.into_iter().next().unwrap()
}

// --- Faults on every attempt: 503 with Retry-After, after the SDK's retries ---------------------

#[tokio::test]
async fn given_dynamodb_throttles_every_attempt_when_logging_in_then_503_after_three_attempts() {
    let stack = Stack::with_proxies(&[]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    stack.dynamodb_proxy().inject(Fault::Throttle.on(GET_ITEM));
    stack.dynamodb_proxy().reset_counts();
    stack.dynamodb_calls.take();

    assert_unavailable(login(&stack, PASSWORD).await);

    assert_eq!(stack.dynamodb_proxy().count(GET_ITEM), MAX_ATTEMPTS);
    assert_eq!(stack.dynamodb_calls.take(), 2, "the credentials read (retried by the SDK) and the reservation");
    assert!(items(&stack, "SESSION#").await.is_empty());
}

#[tokio::test]
async fn given_dynamodb_answers_500_to_every_attempt_when_registering_then_503_after_three_attempts() {
    let stack = Stack::with_proxies(&[]).await;
    stack.dynamodb_proxy().inject(Fault::ServerError(500).on(TRANSACT_WRITE_ITEMS));

    assert_unavailable(register(&stack).await);

    assert_eq!(stack.dynamodb_proxy().count(TRANSACT_WRITE_ITEMS), MAX_ATTEMPTS);
    assert_users_consistent(&stack, 0).await;
}

#[tokio::test]
async fn given_dynamodb_answers_503_to_every_attempt_when_reading_the_user_then_503_after_three_attempts() {
    let stack = Stack::with_proxies(&[]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let tokens = stack.login_user(EMAIL, PASSWORD).await;
    stack.dynamodb_proxy().inject(Fault::ServerError(503).on(GET_ITEM));
    stack.dynamodb_proxy().reset_counts();

    assert_unavailable(stack.get_user("me", Some(token(&tokens, "access_token"))).await);

    assert_eq!(stack.dynamodb_proxy().count(GET_ITEM), MAX_ATTEMPTS);
}

#[tokio::test]
async fn given_dynamodb_closes_the_connection_on_every_attempt_when_reading_the_user_then_503() {
    let stack = Stack::with_proxies(&[]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let tokens = stack.login_user(EMAIL, PASSWORD).await;
    stack.dynamodb_proxy().inject(Fault::Close.on(GET_ITEM));
    stack.dynamodb_proxy().reset_counts();

    assert_unavailable(stack.get_user("me", Some(token(&tokens, "access_token"))).await);

    assert_eq!(stack.dynamodb_proxy().count(GET_ITEM), MAX_ATTEMPTS);
}

#[tokio::test]
async fn given_dynamodb_never_answers_when_refreshing_then_503_within_the_operation_timeout() {
    let stack = Stack::with_proxies(&[]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let tokens = stack.login_user(EMAIL, PASSWORD).await;
    stack.dynamodb_proxy().inject(Fault::Hang.on(TRANSACT_WRITE_ITEMS));
    stack.dynamodb_proxy().reset_counts();

    let started = Instant::now();
    assert_unavailable(stack.refresh_with(token(&tokens, "refresh_token")).await);
    let elapsed = started.elapsed();

    // 2 s per attempt, cut off by the 6 s operation timeout during the third.
    assert_eq!(stack.dynamodb_proxy().count(TRANSACT_WRITE_ITEMS), MAX_ATTEMPTS);
    assert!(elapsed >= Duration::from_secs(4) && elapsed < Duration::from_secs(7), "took {elapsed:?}");
}

// --- A fault on the first attempt only: the SDK retries and the request succeeds ----------------

#[tokio::test]
async fn given_one_throttled_read_when_logging_in_then_the_retry_succeeds() {
    let stack = Stack::with_proxies(&[]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    stack.dynamodb_proxy().inject(Fault::Throttle.on(GET_ITEM).times(1));
    stack.dynamodb_proxy().reset_counts();

    assert_success(login(&stack, PASSWORD).await, 200);

    assert_eq!(stack.dynamodb_proxy().count(GET_ITEM), 2);
}

#[tokio::test]
async fn given_one_throttled_reservation_when_logging_in_then_the_retry_succeeds_and_counts_once() {
    let stack = Stack::with_proxies(&[]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    stack.dynamodb_proxy().inject(Fault::Throttle.on(UPDATE_ITEM).times(1));
    stack.dynamodb_proxy().reset_counts();

    assert_problem(login(&stack, "definitely not the password").await, 401);

    assert_eq!(stack.dynamodb_proxy().count(UPDATE_ITEM), 2);
    let records = items(&stack, "FAILURES#").await;
    assert_eq!(records[0]["total"].as_n().unwrap(), "1", "the refused attempt did not count: {records:?}");
}

#[tokio::test]
async fn given_one_500_when_registering_then_the_retry_succeeds() {
    let stack = Stack::with_proxies(&[]).await;
    stack.dynamodb_proxy().inject(Fault::ServerError(500).times(1));

    assert_success(register(&stack).await, 201);

    assert_eq!(stack.dynamodb_proxy().count(TRANSACT_WRITE_ITEMS), 2);
    assert_users_consistent(&stack, 1).await;
}

#[tokio::test]
async fn given_one_attempt_timing_out_when_reading_the_user_then_the_retry_succeeds() {
    let stack = Stack::with_proxies(&[]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let tokens = stack.login_user(EMAIL, PASSWORD).await;
    stack.dynamodb_proxy().inject(Fault::Hang.on(GET_ITEM).times(1));
    stack.dynamodb_proxy().reset_counts();

    let started = Instant::now();
    let user = assert_success(stack.get_user("me", Some(token(&tokens, "access_token"))).await, 200);

    assert_eq!(user["email"], EMAIL);
    assert_eq!(stack.dynamodb_proxy().count(GET_ITEM), 2);
    assert!(started.elapsed() >= Duration::from_secs(2), "the first attempt ran into its timeout");
}

#[tokio::test]
async fn given_one_closed_connection_when_refreshing_then_the_retry_succeeds() {
    let stack = Stack::with_proxies(&[]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let tokens = stack.login_user(EMAIL, PASSWORD).await;
    stack.dynamodb_proxy().inject(Fault::Close.on(TRANSACT_WRITE_ITEMS).times(1));
    stack.dynamodb_proxy().reset_counts();

    let refreshed = assert_success(stack.refresh_with(token(&tokens, "refresh_token")).await, 200);

    assert_eq!(stack.dynamodb_proxy().count(TRANSACT_WRITE_ITEMS), 2);
    assert_success(stack.refresh_with(token(&refreshed, "refresh_token")).await, 200);
}

// --- No partial state ----------------------------------------------------------------------------

#[tokio::test]
async fn given_a_failing_registration_write_when_registering_then_neither_item_exists_and_a_retry_works() {
    let stack = Stack::with_proxies(&[]).await;
    for fault in [Fault::Throttle, Fault::ServerError(503), Fault::Close] {
        stack.dynamodb_proxy().inject(fault.on(TRANSACT_WRITE_ITEMS));
        assert_unavailable(register(&stack).await);
        assert_users_consistent(&stack, 0).await;
        stack.dynamodb_proxy().pass_through();
    }

    assert_success(register(&stack).await, 201);
    assert_users_consistent(&stack, 1).await;
}

#[tokio::test]
async fn given_transaction_conflicts_when_registering_then_retried_up_to_three_attempts_and_only_for_conflicts() {
    // GIVEN the email item's write conflicting with another request's, as DynamoDB cancels it
    let stack = Stack::with_proxies(&[]).await;
    let conflict = Fault::Canceled(&["None", "TransactionConflict"]);

    // WHEN the conflict happens twice THEN the third attempt creates the account
    stack.dynamodb_proxy().inject(conflict.on(TRANSACT_WRITE_ITEMS).times(2));
    assert_success(register(&stack).await, 201);
    assert_users_consistent(&stack, 1).await;
    assert_eq!(stack.dynamodb_proxy().count(TRANSACT_WRITE_ITEMS), 3);

    // WHEN it lasts THEN 503 after three attempts
    stack.dynamodb_proxy().reset_counts();
    stack.dynamodb_proxy().inject(conflict.on(TRANSACT_WRITE_ITEMS));
    assert_unavailable(
        stack.post("register", &json!({"email": "other@example.com", "password": PASSWORD, "name": "Bo"})).await,
    );
    assert_eq!(stack.dynamodb_proxy().count(TRANSACT_WRITE_ITEMS), 3);

    // WHEN a cancellation has another cause THEN no retry (it would fail the same way) and a
    // generic 500: a fault, not contention
    stack.dynamodb_proxy().pass_through();
    stack.dynamodb_proxy().reset_counts();
    stack.dynamodb_proxy().inject(Fault::Canceled(&["None", "ValidationError"]).on(TRANSACT_WRITE_ITEMS));
    let response =
        stack.post("register", &json!({"email": "third@example.com", "password": PASSWORD, "name": "Cy"})).await;
    let (_, problem) = assert_problem(response, 500);
    assert_eq!(problem["detail"], "The request could not be processed.");
    assert_eq!(stack.dynamodb_proxy().count(TRANSACT_WRITE_ITEMS), 1);
    assert_users_consistent(&stack, 1).await;
}

#[tokio::test]
async fn given_a_lost_answer_to_the_registration_write_when_the_sdk_retries_then_201_not_409() {
    let stack = Stack::with_proxies(&[]).await;
    stack.dynamodb_proxy().inject(Fault::LoseResponse.on(TRANSACT_WRITE_ITEMS).times(1));

    // The retry repeats the transaction's idempotency token, so it is not taken for a second sign-up.
    assert_success(register(&stack).await, 201);

    assert_eq!(stack.dynamodb_proxy().count(TRANSACT_WRITE_ITEMS), 2);
    assert_users_consistent(&stack, 1).await;
}

#[tokio::test]
async fn given_earlier_failures_and_a_failing_session_write_when_logging_in_then_no_session_and_no_reset() {
    let stack = Stack::with_proxies(&[]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    assert_problem(login(&stack, "definitely not the password").await, 401);
    // The session is written in one transaction with the clearing of the failure record.
    stack.dynamodb_proxy().inject(Fault::ServerError(500).on(TRANSACT_WRITE_ITEMS));
    stack.dynamodb_proxy().reset_counts();

    assert_unavailable(login(&stack, PASSWORD).await);

    assert_eq!(stack.dynamodb_proxy().count(TRANSACT_WRITE_ITEMS), MAX_ATTEMPTS);
    assert!(items(&stack, "SESSION#").await.is_empty());
    // Neither half of the transaction happened: the reserved attempt still counts.
    let records = items(&stack, "FAILURES#").await;
    assert_eq!(records[0]["total"].as_n().unwrap(), "2", "{records:?}");
}

#[tokio::test]
async fn given_the_session_write_conflicting_with_another_login_when_logging_in_then_503_and_a_retry_works() {
    // GIVEN an account, and a concurrent request writing its throttle record during the session write
    let stack = Stack::with_proxies(&[]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    stack.dynamodb_proxy().inject(Fault::Canceled(&["None", "TransactionConflict"]).on(TRANSACT_WRITE_ITEMS).times(1));

    // WHEN logging in THEN contention answers 503 with Retry-After (not a 500), and the retry logs in
    assert_unavailable(login(&stack, PASSWORD).await);
    assert_success(login(&stack, PASSWORD).await, 200);
}

#[tokio::test]
async fn given_a_lost_answer_to_the_session_write_when_the_sdk_retries_then_the_login_succeeds() {
    let stack = Stack::with_proxies(&[]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    stack.dynamodb_proxy().inject(Fault::LoseResponse.on(TRANSACT_WRITE_ITEMS).times(1));
    stack.dynamodb_proxy().reset_counts();

    // The first attempt stored the session; the retry repeats the transaction's idempotency
    // token, so DynamoDB answers it as done instead of failing the session's condition.
    let tokens = assert_success(login(&stack, PASSWORD).await, 200);

    assert_eq!(stack.dynamodb_proxy().count(TRANSACT_WRITE_ITEMS), 2);
    only_session(&stack).await;
    assert_success(stack.refresh_with(token(&tokens, "refresh_token")).await, 200);
}

#[tokio::test]
async fn given_a_failing_rotation_when_refreshing_then_the_presented_token_still_works_once() {
    let stack = Stack::with_proxies(&[]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let presented = token(&stack.login_user(EMAIL, PASSWORD).await, "refresh_token").to_owned();
    stack.dynamodb_proxy().inject(Fault::ServerError(503).on(TRANSACT_WRITE_ITEMS));

    assert_unavailable(stack.refresh_with(&presented).await);
    assert_eq!(only_session(&stack).await["generation"].as_n().unwrap(), "0", "nothing rotated");

    stack.dynamodb_proxy().pass_through();
    let refreshed = assert_success(stack.refresh_with(&presented).await, 200);
    assert_eq!(only_session(&stack).await["generation"].as_n().unwrap(), "1");
    // One live token per family: the presented one is spent, its successor works.
    assert_success(stack.refresh_with(token(&refreshed, "refresh_token")).await, 200);
    assert_problem(stack.refresh_with(&presented).await, 401);
}

#[tokio::test]
async fn given_a_lost_answer_to_the_rotation_when_the_sdk_retries_then_the_refresh_succeeds() {
    let stack = Stack::with_proxies(&[]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let presented = token(&stack.login_user(EMAIL, PASSWORD).await, "refresh_token").to_owned();
    stack.dynamodb_proxy().inject(Fault::LoseResponse.on(TRANSACT_WRITE_ITEMS).times(1));
    stack.dynamodb_proxy().reset_counts();

    // The first attempt rotated the family; the retry (same `ClientRequestToken`) must be
    // recognised as the same transaction rather than taken for a replayed token.
    let refreshed = assert_success(stack.refresh_with(&presented).await, 200);

    assert_eq!(stack.dynamodb_proxy().count(TRANSACT_WRITE_ITEMS), 2);
    let session = only_session(&stack).await;
    assert_eq!(session["generation"].as_n().unwrap(), "1");
    assert!(!session.contains_key("revoked_at"), "{session:?}");
    assert_success(stack.refresh_with(token(&refreshed, "refresh_token")).await, 200);
}

#[tokio::test]
async fn given_transaction_conflicts_when_refreshing_then_retried_up_to_three_attempts() {
    // GIVEN a family whose rotation conflicts with another request's transaction on its item
    let stack = Stack::with_proxies(&[]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let tokens = stack.login_user(EMAIL, PASSWORD).await;
    let conflict = Fault::Canceled(&["TransactionConflict", "None"]);

    // WHEN the conflict happens twice THEN the third attempt rotates
    stack.dynamodb_proxy().reset_counts();
    stack.dynamodb_proxy().inject(conflict.on(TRANSACT_WRITE_ITEMS).times(2));
    let refreshed = assert_success(stack.refresh_with(token(&tokens, "refresh_token")).await, 200);
    assert_eq!(stack.dynamodb_proxy().count(TRANSACT_WRITE_ITEMS), 3);

    // WHEN it lasts THEN 503 with Retry-After after three attempts, and the token still works
    stack.dynamodb_proxy().reset_counts();
    stack.dynamodb_proxy().inject(conflict.on(TRANSACT_WRITE_ITEMS));
    assert_unavailable(stack.refresh_with(token(&refreshed, "refresh_token")).await);
    assert_eq!(stack.dynamodb_proxy().count(TRANSACT_WRITE_ITEMS), 3);
    stack.dynamodb_proxy().pass_through();
    assert_success(stack.refresh_with(token(&refreshed, "refresh_token")).await, 200);
}

#[tokio::test]
async fn given_a_repeat_after_logging_out_everywhere_and_no_reason_for_the_user_then_the_epoch_is_read() {
    // GIVEN a family just rotated (its previous token is within the grace window), then the
    // user logged out everywhere; and a DynamoDB that stops at the family's failed condition,
    // reporting nothing about the user's
    let stack = Stack::with_proxies(&[]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let first = stack.login_user(EMAIL, PASSWORD).await;
    assert_success(stack.refresh_with(token(&first, "refresh_token")).await, 200);
    assert_eq!(stack.bearer("logout-all", token(&first, "access_token"), None).await.status(), 204);
    stack.dynamodb_proxy().inject(Fault::HideReason(1).on(TRANSACT_WRITE_ITEMS));
    stack.dynamodb_proxy().reset_counts();

    // WHEN the previous token is presented again
    let response = stack.refresh_with(token(&first, "refresh_token")).await;

    // THEN the user's epoch is read and the repeat refused
    assert_problem(response, 401);
    assert_eq!(stack.dynamodb_proxy().count(GET_ITEM), 1);
}

#[tokio::test]
async fn given_a_replayed_token_and_a_failing_revocation_when_refreshing_then_503_and_the_retry_revokes() {
    // GIVEN a family whose first token was spent (strict mode: no grace window)
    let stack = Stack::with_proxies(&[("REFRESH_REUSE_GRACE_SECONDS", "0")]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let spent = token(&stack.login_user(EMAIL, PASSWORD).await, "refresh_token").to_owned();
    let current = assert_success(stack.refresh_with(&spent).await, 200);

    // WHEN the spent token is replayed: the rotation is refused as reuse, and every attempt of
    // the revocation that follows fails
    stack.dynamodb_proxy().inject(Fault::ServerError(500).on(UPDATE_ITEM));
    assert_unavailable(stack.refresh_with(&spent).await);

    // THEN nothing pretends the family is revoked: it is not yet, and the replay, retried, revokes it
    assert!(!only_session(&stack).await.contains_key("revoked_at"));
    stack.dynamodb_proxy().pass_through();
    assert_problem(stack.refresh_with(&spent).await, 401);
    assert!(only_session(&stack).await.contains_key("revoked_at"));
    assert_problem(stack.refresh_with(token(&current, "refresh_token")).await, 401);
}

#[tokio::test]
async fn given_dynamodb_down_at_cold_start_when_warming_then_init_tries_once_and_the_first_request_connects() {
    let mut stack = Stack::with_proxies(&[]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let access = token(&stack.login_user(EMAIL, PASSWORD).await, "access_token").to_owned();

    // GIVEN a new get-user instance starting while DynamoDB closes the connection of every GetItem
    stack.dynamodb_proxy().inject(Fault::Close.on(GET_ITEM));
    stack.dynamodb_proxy().reset_counts();
    stack.get_user = stack.fresh("GetUserFunction");
    // WHEN init opens its connection: one try, no retries (init does not wait out an outage),
    // and no failure
    stack.get_user.function().warm().await;
    assert_eq!(stack.dynamodb_proxy().count(GET_ITEM), 1);

    // THEN once DynamoDB is back, the first request connects and answers
    stack.dynamodb_proxy().pass_through();
    assert_success(stack.get_user("me", Some(&access)).await, 200);
}

// --- Secrets Manager -----------------------------------------------------------------------------

#[tokio::test]
async fn given_secrets_manager_down_at_cold_start_when_invoked_then_503_and_recovery_once_it_is_back() {
    let mut stack = Stack::with_proxies(&[]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    let access = token(&stack.login_user(EMAIL, PASSWORD).await, "access_token").to_owned();
    let sessions = items(&stack, "SESSION#").await.len();

    // New containers start while Secrets Manager is unreachable: init must not fail.
    stack.secrets_proxy().inject(Fault::Close);
    stack.secrets_proxy().reset_counts();
    stack.login = stack.fresh("LoginFunction");
    stack.get_user = stack.fresh("GetUserFunction");
    tokio::join!(stack.login.function().warm(), stack.get_user.function().warm());
    // Login reads the key ring and the throttle key, get-user the public JWKS.
    assert_eq!(stack.secrets_proxy().count(GET_SECRET_VALUE), 3 * MAX_ATTEMPTS);

    assert_unavailable(login(&stack, PASSWORD).await);
    assert_unavailable(stack.get_user("me", Some(&access)).await);
    assert_eq!(items(&stack, "SESSION#").await.len(), sessions, "no session without a token");

    stack.secrets_proxy().pass_through();
    assert_success(login(&stack, PASSWORD).await, 200);
    assert_success(stack.get_user("me", Some(&access)).await, 200);
}

#[tokio::test]
async fn given_a_warm_function_when_secrets_manager_goes_down_then_the_cached_key_keeps_working() {
    let stack = Stack::with_proxies(&[("KEY_CACHE_TTL_SECONDS", "0")]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    // Each function has fetched the key once.
    let first = stack.login_user(EMAIL, PASSWORD).await;
    let tokens = assert_success(stack.refresh_with(token(&first, "refresh_token")).await, 200);
    assert_success(stack.get_user("me", Some(token(&tokens, "access_token"))).await, 200);
    stack.secrets_proxy().reset_counts();

    stack.secrets_proxy().inject(Fault::ServerError(503));

    let fresh = assert_success(login(&stack, PASSWORD).await, 200);
    let tried = stack.secrets_proxy().count(GET_SECRET_VALUE);
    assert_success(login(&stack, PASSWORD).await, 200);
    // A failed refresh waits a few seconds before the next try: an outage does not add the SDK's
    // retries to every request.
    assert_eq!(stack.secrets_proxy().count(GET_SECRET_VALUE), tried, "the second login went back to Secrets Manager");
    assert_success(stack.get_user("me", Some(token(&tokens, "access_token"))).await, 200);
    assert_success(stack.get_user("me", Some(token(&fresh, "access_token"))).await, 200);
    assert_success(stack.refresh_with(token(&tokens, "refresh_token")).await, 200);
    // The cache had expired: each function did try Secrets Manager, then used the key it had.
    assert!(stack.secrets_proxy().count(GET_SECRET_VALUE) >= MAX_ATTEMPTS, "{:?}", stack.secrets_proxy().counts());
}

#[tokio::test]
async fn given_secrets_manager_failing_while_an_unknown_kid_is_looked_up_then_503_not_a_401_that_logs_out() {
    // GIVEN a warm get-user that knows the first key only
    let mut stack = Stack::with_proxies(&[]).await;
    stack.register_user(EMAIL, PASSWORD, "Ada").await;
    stack.get_user.function().warm().await;
    // AND the first key removed in an emergency after a rotation (SECURITY.md), so that a new
    // login instance signs with the second key at once
    stack.rotate(shared::now_epoch()).await;
    let first = stack.signing_key().await.kid;
    let ring = KeyRing::parse(&stack.current_secret("KeyRingSecret").await).unwrap().without(&first);
    for (id, value) in [("KeyRingSecret", ring.to_json()), ("JwksSecret", serde_json::to_string(&ring.jwks()).unwrap())]
    {
        stack.put_secret(id, &value).await;
    }
    stack.login = stack.fresh("LoginFunction");
    let access = token(&stack.login_user(EMAIL, PASSWORD).await, "access_token").to_owned();
    assert_ne!(jsonwebtoken::decode_header(&access).unwrap().kid.unwrap(), first);

    // WHEN every attempt of get-user's read of the JWKS fails
    stack.secrets_proxy().inject(Fault::ServerError(503).on(GET_SECRET_VALUE).times(MAX_ATTEMPTS));

    // THEN the token is not taken for unknown: 503 with Retry-After, also while the function
    // waits before its next read; and once it reads again the same token verifies
    assert_unavailable(stack.get_user("me", Some(&access)).await);
    assert_unavailable(stack.get_user("me", Some(&access)).await);
    tokio::time::sleep(Duration::from_millis(5100)).await;
    assert_success(stack.get_user("me", Some(&access)).await, 200);
}

#[tokio::test]
async fn given_secrets_manager_down_when_the_jwks_route_serves_its_last_copy_then_only_briefly_cacheable() {
    // GIVEN a warm JWKS function whose cache is always due for a re-read
    let stack = Stack::with_proxies(&[("KEY_CACHE_TTL_SECONDS", "0")]).await;
    let event = event_json("jwks.json");
    let jwks = || stack.send(&event);
    let (status, headers, _) = parts(jwks().await);
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "public, max-age=3600");

    // WHEN every read of the JWKS fails
    stack.secrets_proxy().inject(Fault::ServerError(503).on(GET_SECRET_VALUE));

    // THEN the route still answers the keys it has, but a verifier or a shared cache may keep
    // that copy a minute, not JwksMaxAge: it may lack a key published since
    let (status, headers, body) = parts(jwks().await);
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "public, max-age=60");
    assert!(!body["keys"].as_array().unwrap().is_empty(), "{body}");

    // AND once a read succeeds again, the full max-age is back
    stack.secrets_proxy().pass_through();
    tokio::time::sleep(Duration::from_millis(5100)).await;
    let (_, headers, _) = parts(jwks().await);
    assert_eq!(headers["cache-control"], "public, max-age=3600");
}
