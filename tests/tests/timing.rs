//! Login must not reveal whether an email is registered: not by status, body or headers, and not
//! by time. (Its own test binary, so no other test competes for the CPU while it measures.)

use std::time::{Duration, Instant};

use serde_json::json;
use tests::{assert_problem, Stack, PASSWORD};

const SAMPLES: usize = 40;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test]
async fn given_unknown_emails_and_wrong_passwords_then_answers_and_latency_match() {
    let stack = Stack::new().await;
    // One account per attempt, so that no account reaches the login throttle.
    for i in 0..SAMPLES {
        stack.register_user(&format!("known{i}@example.com"), PASSWORD, "Known").await;
    }
    let attempt = |email: String| {
        let stack = &stack;
        async move {
            let started = Instant::now();
            let response = stack.post("login", &json!({"email": email, "password": "a wrong but long password"})).await;
            (started.elapsed(), response)
        }
    };
    // Warm up both paths (connections, key cache, lazily built tables).
    attempt("warmup-unknown@example.com".into()).await;
    attempt("known0@example.com".into()).await;

    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    let mut reference = None;
    // Interleaved, so that any drift in machine load affects both series alike.
    for i in 1..=SAMPLES {
        let (elapsed, response) = attempt(format!("nobody{i}@example.com")).await;
        unknown.push(elapsed);
        let unknown_answer = assert_problem(response, 401);
        let (elapsed, response) = attempt(format!("known{}@example.com", i % SAMPLES)).await;
        wrong.push(elapsed);
        let wrong_answer = assert_problem(response, 401);

        let comparable = |(headers, body): &(http::HeaderMap, serde_json::Value)| {
            let mut headers: Vec<(String, String)> = headers
                .iter()
                .filter(|(name, _)| *name != "x-request-id")
                .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
                .collect();
            headers.sort();
            (headers, body.clone())
        };
        assert_eq!(comparable(&unknown_answer), comparable(&wrong_answer));
        let reference = reference.get_or_insert_with(|| comparable(&unknown_answer));
        assert_eq!(*reference, comparable(&wrong_answer), "every answer is the same");
    }
    let (unknown, wrong) = (median(unknown), median(wrong));
    let difference = unknown.abs_diff(wrong).as_secs_f64() / unknown.max(wrong).as_secs_f64();
    println!(
        "median login latency: unknown email {unknown:?}, wrong password {wrong:?}, difference {:.1} %",
        difference * 100.0
    );
    assert!(difference < 0.10, "medians differ by {:.1} % (unknown {unknown:?}, wrong {wrong:?})", difference * 100.0);
}
