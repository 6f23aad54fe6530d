//! Per-account login throttling: exponential delays after 5 consecutive failures, the same for
//! known and unknown emails, never longer than 15 minutes, reset by a success or 15 quiet minutes.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use tests::{assert_problem, parts, Stack, PASSWORD};

const WRONG: &str = "definitely not the password";

async fn login(stack: &Stack, email: &str, password: &str) -> lambda_http::Response<lambda_http::Body> {
    stack.post("login", &json!({"email": email, "password": password})).await
}

async fn failures_items(stack: &Stack) -> Vec<HashMap<String, AttributeValue>> {
    stack.items().await.into_iter().filter(|i| i["pk"].as_s().unwrap().starts_with("FAILURES#")).collect()
}

/// Sets the (single) failure record to `failed` failures, the last `ago` seconds ago.
async fn set_failures(stack: &Stack, failed: u32, ago: i64) {
    let items = failures_items(stack).await;
    assert_eq!(items.len(), 1);
    stack
        .dynamodb
        .update_item()
        .table_name(&stack.table)
        .key("pk", items[0]["pk"].clone())
        .update_expression("SET failed = :f, last_failed_at = :t")
        .expression_attribute_values(":f", AttributeValue::N(failed.to_string()))
        .expression_attribute_values(":t", AttributeValue::N((shared::now_epoch() - ago).to_string()))
        .send()
        .await
        .unwrap();
}

fn header_names(headers: &http::HeaderMap) -> Vec<String> {
    let mut names: Vec<_> = headers.keys().map(|k| k.to_string()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn given_five_failures_then_the_next_attempt_waits_identically_for_known_and_unknown_emails() {
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    for _ in 0..5 {
        assert_problem(login(&stack, "ada@example.com", WRONG).await, 401);
        assert_problem(login(&stack, "ghost@example.com", WRONG).await, 401);
    }
    // Even the right password waits: the delay applies to the account, not the guess.
    let (known_headers, known) = assert_problem(login(&stack, "ada@example.com", PASSWORD).await, 429);
    let (unknown_headers, unknown) = assert_problem(login(&stack, "ghost@example.com", WRONG).await, 429);
    assert_eq!(known, unknown);
    assert_eq!(header_names(&known_headers), header_names(&unknown_headers));
    assert_eq!(known_headers["retry-after"], "1");
    assert_eq!(unknown_headers["retry-after"], "1");

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, _, _) = parts(login(&stack, "ada@example.com", PASSWORD).await);
    assert_eq!(status, 200, "the delay has passed and a success resets the count");
    let remaining = failures_items(&stack).await;
    assert_eq!(remaining.len(), 1, "only the unknown email's record is left: {remaining:?}");
}

#[tokio::test]
async fn given_more_failures_then_the_delay_doubles_and_is_capped_at_fifteen_minutes() {
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    assert_problem(login(&stack, "ada@example.com", WRONG).await, 401);
    for (failed, expected) in [(6, 2), (10, 32), (14, 512), (15, 900), (1000, 900)] {
        set_failures(&stack, failed, 0).await;
        let (headers, _) = assert_problem(login(&stack, "ada@example.com", PASSWORD).await, 429);
        let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry_after <= expected && retry_after + 2 >= expected, "{failed} failures: {retry_after}");
    }
}

#[tokio::test]
async fn given_a_locked_account_then_refused_attempts_do_not_extend_the_lock() {
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    assert_problem(login(&stack, "ada@example.com", WRONG).await, 401);
    set_failures(&stack, 8, 0).await;
    let before = failures_items(&stack).await;
    for _ in 0..10 {
        assert_problem(login(&stack, "ada@example.com", WRONG).await, 429);
    }
    assert_eq!(failures_items(&stack).await, before);
}

#[tokio::test]
async fn given_fifteen_quiet_minutes_then_logins_are_accepted_again() {
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    assert_problem(login(&stack, "ada@example.com", WRONG).await, 401);
    set_failures(&stack, 20, 15 * 60).await;
    assert_eq!(parts(login(&stack, "ada@example.com", PASSWORD).await).0, 200);
    // A failure after the quiet period counts from one again.
    set_failures(&stack, 20, 15 * 60).await;
    assert_problem(login(&stack, "ada@example.com", WRONG).await, 401);
    assert_eq!(failures_items(&stack).await[0]["failed"].as_n().unwrap(), "1");
}
