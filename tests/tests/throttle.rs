//! Login throttling (`shared::throttle`): per (email, network) delays after 5 failures, at most
//! 100 consecutive failures per account from networks it is not known on, every attempt counted
//! by one conditional write before the password is checked, the same for known and unknown emails.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Response};
use serde_json::json;
use shared::throttle::{Network, ThrottleKey};
use tests::{assert_problem, event_json, parts, Stack, PASSWORD};

const WRONG: &str = "definitely not the password";
const HOME: &str = "198.51.100.7";

async fn login_from(stack: &Stack, ip: &str, email: &str, password: &str) -> Response<Body> {
    let mut event = event_json("login.json");
    event["body"] = json!({"email": email, "password": password}).to_string().into();
    event["requestContext"]["identity"]["sourceIp"] = ip.into();
    stack.send(&event).await
}

async fn login(stack: &Stack, email: &str, password: &str) -> Response<Body> {
    login_from(stack, HOME, email, password).await
}

async fn failure_records(stack: &Stack) -> Vec<HashMap<String, AttributeValue>> {
    stack.items().await.into_iter().filter(|i| i["pk"].as_s().unwrap().starts_with("FAILURES#")).collect()
}

/// The stack's throttle key, read as an operator would.
async fn throttle_key(stack: &Stack) -> ThrottleKey {
    let id = stack.resources.reference("ThrottleKeySecret").expect("the template declares ThrottleKeySecret");
    let secret = stack.secrets.get_secret_value().secret_id(id).send().await.unwrap();
    ThrottleKey::new(secret.secret_string().unwrap().as_bytes())
}

/// Sets `ip`'s network in the (single) failure record to `failures`, the last one `ago` seconds ago.
async fn set_network(stack: &Stack, ip: &str, failures: u32, ago: i64) {
    let records = failure_records(stack).await;
    assert_eq!(records.len(), 1);
    let network = throttle_key(stack).await.network_id(&Network::of(Some(ip)));
    stack
        .dynamodb
        .update_item()
        .table_name(&stack.table)
        .key("pk", records[0]["pk"].clone())
        .update_expression("SET #c = :c, #t = :t")
        .expression_attribute_names("#c", format!("c_{}", network.as_str()))
        .expression_attribute_names("#t", format!("t_{}", network.as_str()))
        .expression_attribute_values(":c", AttributeValue::N(failures.to_string()))
        .expression_attribute_values(":t", AttributeValue::N((shared::now_epoch_ms() - ago * 1000).to_string()))
        .send()
        .await
        .unwrap();
}

/// Sets numeric attributes of the (first) failure record, as time passing would have left them.
async fn set_record(stack: &Stack, numbers: &[(&str, i64)]) {
    let mut update =
        stack.dynamodb.update_item().table_name(&stack.table).key("pk", failure_records(stack).await[0]["pk"].clone());
    let mut assignments = Vec::new();
    for (i, (name, value)) in numbers.iter().enumerate() {
        assignments.push(format!("#a{i} = :v{i}"));
        update = update
            .expression_attribute_names(format!("#a{i}"), *name)
            .expression_attribute_values(format!(":v{i}"), AttributeValue::N(value.to_string()));
    }
    update.update_expression(format!("SET {}", assignments.join(", "))).send().await.unwrap();
}

fn header_names(headers: &http::HeaderMap) -> Vec<String> {
    let mut names: Vec<_> = headers.keys().map(|k| k.to_string()).collect();
    names.sort();
    names
}

fn retry_after(headers: &http::HeaderMap) -> u64 {
    headers["retry-after"].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn given_five_failures_then_the_next_attempt_waits_identically_for_known_and_unknown_emails() {
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    for _ in 0..5 {
        assert_problem(login(&stack, "ada@example.com", WRONG).await, 401);
        assert_problem(login(&stack, "ghost@example.com", WRONG).await, 401);
    }
    // Even the right password waits: the delay applies to the account and network, not the guess.
    let (known_headers, known) = assert_problem(login(&stack, "ada@example.com", PASSWORD).await, 429);
    let (unknown_headers, unknown) = assert_problem(login(&stack, "ghost@example.com", WRONG).await, 429);
    assert_eq!(known, unknown);
    assert_eq!(header_names(&known_headers), header_names(&unknown_headers));
    assert_eq!(known_headers["retry-after"], "1");
    assert_eq!(unknown_headers["retry-after"], "1");

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(parts(login(&stack, "ada@example.com", PASSWORD).await).0, 200, "the delay has passed");
    // The success cleared the counts in the session's transaction; the network is now known.
    let records = failure_records(&stack).await;
    let cleared: Vec<_> = records.iter().filter(|r| r["total"].as_n().unwrap() == "0").collect();
    assert_eq!(cleared.len(), 1, "{records:?}");
    assert!(cleared[0].keys().all(|name| !name.starts_with("c_") && !name.starts_with("t_")), "{cleared:?}");
    assert!(cleared[0].keys().any(|name| name.starts_with("k_")));
}

#[tokio::test]
async fn given_more_failures_then_the_delay_doubles_and_is_capped_at_fifteen_minutes() {
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    assert_problem(login(&stack, "ada@example.com", WRONG).await, 401);
    for (failed, expected) in [(6, 2), (10, 32), (14, 512), (15, 900), (1000, 900)] {
        set_network(&stack, HOME, failed, 0).await;
        let (headers, _) = assert_problem(login(&stack, "ada@example.com", PASSWORD).await, 429);
        let seconds = retry_after(&headers);
        assert!(seconds <= expected && seconds + 2 >= expected, "{failed} failures: {seconds}");
    }
    // The wait runs from the last attempt, for the network's own count: having waited long
    // enough for a smaller count is not enough.
    set_network(&stack, HOME, 10, 20).await;
    let (headers, _) = assert_problem(login(&stack, "ada@example.com", PASSWORD).await, 429);
    assert!((11..=12).contains(&retry_after(&headers)), "{headers:?}");
    set_network(&stack, HOME, 10, 33).await;
    assert_eq!(parts(login(&stack, "ada@example.com", PASSWORD).await).0, 200);
}

#[tokio::test]
async fn given_a_waiting_network_then_refused_attempts_do_not_extend_the_wait() {
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    assert_problem(login(&stack, "ada@example.com", WRONG).await, 401);
    set_network(&stack, HOME, 8, 0).await;
    let before = failure_records(&stack).await;
    for _ in 0..10 {
        assert_problem(login(&stack, "ada@example.com", WRONG).await, 429);
    }
    assert_eq!(failure_records(&stack).await, before);
}

#[tokio::test]
async fn given_fifty_concurrent_wrong_passwords_then_five_are_checked_and_the_rest_wait() {
    // GIVEN an account and no failures yet
    let stack = std::sync::Arc::new(Stack::new().await);
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    // WHEN 50 wrong guesses arrive at once from one network
    let started = std::time::Instant::now();
    let guesses = (0..50).map(|_| {
        let stack = stack.clone();
        tokio::spawn(async move { parts(login(&stack, "ada@example.com", WRONG).await) })
    });
    let mut answers = Vec::new();
    for guess in guesses {
        answers.push(guess.await.unwrap());
    }
    // THEN the five free failures reach the password check, and no more than the delays allow
    // in the time the burst took (a sixth after 1 s, a seventh after 3 s, …); the others wait
    let elapsed = started.elapsed().as_secs_f64();
    let allowed = 5 + (0..10).take_while(|k| f64::from((1u32 << k) - 1) + 1.0 <= elapsed).count();
    let checked = answers.iter().filter(|(status, _, _)| *status == 401).count();
    let refused: Vec<_> = answers.iter().filter(|(status, _, _)| *status == 429).collect();
    assert!((5..=allowed).contains(&checked), "{checked} checked in {elapsed:.2} s; allowed {allowed}");
    assert_eq!(checked + refused.len(), 50);
    assert!(refused.iter().all(|(_, headers, _)| retry_after(headers) >= 1));
}

#[tokio::test]
async fn given_failures_from_one_network_then_the_right_password_from_another_is_accepted() {
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    for _ in 0..8 {
        let status = parts(login_from(&stack, "203.0.113.9", "ada@example.com", WRONG).await).0;
        assert!(matches!(status, 401 | 429));
    }
    assert_problem(login_from(&stack, "203.0.113.200", "ada@example.com", PASSWORD).await, 429);
    // Another /24 (and an IPv6 /64) has counters of its own.
    assert_eq!(parts(login_from(&stack, HOME, "ada@example.com", PASSWORD).await).0, 200);
    assert_eq!(parts(login_from(&stack, "2001:db8::1", "ada@example.com", PASSWORD).await).0, 200);
}

/// Five wrong guesses from each of `networks` fresh /24s (all of them checked: five are free).
async fn spray(stack: &Stack, email: &str, networks: std::ops::Range<u32>) {
    for network in networks {
        let ip = format!("10.{}.{}.1", network / 256, network % 256);
        for _ in 0..5 {
            assert_problem(login_from(stack, &ip, email, WRONG).await, 401);
        }
    }
}

#[tokio::test]
async fn given_guesses_spread_over_many_networks_then_they_stop_at_the_account_limit() {
    // GIVEN an account that logged in from its home network, then 100 failures from 20 others
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    assert_eq!(parts(login(&stack, "ada@example.com", PASSWORD).await).0, 200);
    spray(&stack, "ada@example.com", 0..20).await;
    spray(&stack, "ghost@example.com", 0..20).await;

    // WHEN a new network tries, with any password, on the account or on an unknown email
    let (headers, problem) = assert_problem(login_from(&stack, "10.9.9.1", "ada@example.com", WRONG).await, 429);
    let (_, right) = assert_problem(login_from(&stack, "10.9.9.1", "ada@example.com", PASSWORD).await, 429);
    let (ghost_headers, ghost) = assert_problem(login_from(&stack, "10.9.9.1", "ghost@example.com", WRONG).await, 429);

    // THEN the account is locked there, without a Retry-After that would invite a retry
    assert!(problem["type"].as_str().unwrap().ends_with("account-locked"), "{problem}");
    assert!(!headers.contains_key("retry-after"));
    assert_eq!(problem, right);
    assert_eq!((problem, header_names(&headers)), (ghost, header_names(&ghost_headers)));

    // AND the home network keeps only its own delays, and its success lifts the lock
    for _ in 0..5 {
        assert_problem(login(&stack, "ada@example.com", WRONG).await, 401);
    }
    let (home_headers, _) = assert_problem(login(&stack, "ada@example.com", PASSWORD).await, 429);
    assert!(retry_after(&home_headers) >= 1, "a delay, not the lock");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(parts(login(&stack, "ada@example.com", PASSWORD).await).0, 200);
    assert_problem(login_from(&stack, "10.9.9.1", "ada@example.com", WRONG).await, 401);
}

#[tokio::test]
async fn given_failure_records_then_neither_emails_nor_networks_are_stored_in_clear() {
    let stack = Stack::new().await;
    assert_problem(login(&stack, "ghost@example.com", WRONG).await, 401);
    let records = failure_records(&stack).await;
    let text = format!("{records:?}");
    assert!(!text.contains("ghost") && !text.contains("198.51.100"), "{text}");
    let key = throttle_key(&stack).await;
    let expected = key.failure_key(&shared::domain::Email::parse("ghost@example.com").unwrap());
    assert_eq!(records[0]["pk"].as_s().unwrap(), expected.as_str());
}

#[tokio::test]
async fn given_a_failure_then_a_success_then_the_record_expires_a_year_after_each_by_dynamodb_ttl() {
    // GIVEN an account
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let expires_in = |records: Vec<HashMap<String, AttributeValue>>| {
        records[0]["expires_at"].as_n().unwrap().parse::<i64>().unwrap() - shared::now_epoch()
    };
    let lifetime = shared::throttle::RECORD_LIFETIME_SECONDS;

    // WHEN a wrong password is tried THEN its record lives a year (longer than any delay or the
    // refresh-token lifetime that makes a network known), then DynamoDB deletes it
    assert_problem(login(&stack, "ada@example.com", WRONG).await, 401);
    assert!((expires_in(failure_records(&stack).await) - lifetime).abs() < 10);

    // WHEN the right password clears it THEN the cleared record lives a year from then
    set_record(&stack, &[("expires_at", shared::now_epoch() + 60)]).await;
    assert_eq!(parts(login(&stack, "ada@example.com", PASSWORD).await).0, 200);
    assert!((expires_in(failure_records(&stack).await) - lifetime).abs() < 10);
}

#[tokio::test]
async fn given_networks_known_long_ago_and_recently_when_logging_in_then_only_the_stale_one_is_forgotten() {
    // GIVEN a record naming two other networks where the account logged in: one 100 days ago
    // (beyond the refresh-token lifetime: no longer known), one an hour ago
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    assert_problem(login(&stack, "ada@example.com", WRONG).await, 401);
    let key = throttle_key(&stack).await;
    let known = |ip: &str| format!("k_{}", key.network_id(&Network::of(Some(ip))).as_str());
    let (stale, recent, home) = (known("203.0.113.9"), known("192.0.2.9"), known(HOME));
    let now = shared::now_epoch();
    set_record(&stack, &[(&stale, now - 100 * 86_400), (&recent, now - 3_600)]).await;

    // WHEN the account logs in from its home network
    assert_eq!(parts(login(&stack, "ada@example.com", PASSWORD).await).0, 200);

    // THEN the stale network is forgotten, the recent one kept, and home is known from now on
    let record = failure_records(&stack).await.remove(0);
    assert!(!record.contains_key(&stale), "{record:?}");
    assert!(record.contains_key(&recent), "{record:?}");
    assert!(record.contains_key(&home), "{record:?}");
}
