//! `resend` and `forgot` must not reveal whether an address is registered, or verified: not by
//! status, headers or body, and not by time. (Its own test binary, so no other test competes for
//! the CPU while it measures.)

use std::time::{Duration, Instant};

use serde_json::json;
use tests::{Stack, PASSWORD};

const SAMPLES: usize = 40;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// `resend` and `forgot` answer unknown, unverified and verified addresses alike: the same
/// status, headers and body, in the same time (the request never looks the account up).
#[tokio::test]
async fn given_unknown_unverified_and_verified_addresses_when_asking_for_mail_then_answers_and_latency_match() {
    let stack = Stack::new().await;
    // Fresh addresses every time: each address has its own 60 s cooldown.
    for i in 0..SAMPLES {
        stack.register_unverified_user(&format!("unverified{i}@example.com"), PASSWORD, "U").await;
        stack.register_user(&format!("verified{i}@example.com"), PASSWORD, "V").await;
    }
    for route in ["email-verify-resend", "password-forgot"] {
        let ask = |email: String| {
            let stack = &stack;
            async move {
                let started = Instant::now();
                let response = stack.post(route, &json!({"email": email})).await;
                (started.elapsed(), response)
            }
        };
        ask(format!("warmup-{route}@example.com")).await;
        let mut series: [Vec<Duration>; 3] = Default::default();
        let mut reference = None;
        for i in 0..SAMPLES {
            for (kind, email) in [
                format!("nobody{i}@example.com"),
                format!("unverified{i}@example.com"),
                format!("verified{i}@example.com"),
            ]
            .into_iter()
            .enumerate()
            {
                let (elapsed, response) = ask(email).await;
                series[kind].push(elapsed);
                let (status, mut headers, body) = tests::parts(response);
                headers.remove("x-request-id");
                let answer = (status, format!("{headers:?}"), body);
                assert_eq!(
                    reference.get_or_insert_with(|| answer.clone()),
                    &answer,
                    "{route}: every answer is the same"
                );
            }
        }
        let [unknown, unverified, verified] = series.map(median);
        let (fastest, slowest) = (
            [unknown, unverified, verified].into_iter().min().unwrap(),
            [unknown, unverified, verified].into_iter().max().unwrap(),
        );
        let difference = (slowest - fastest).as_secs_f64() / slowest.as_secs_f64();
        println!(
            "median {route} latency: unknown {unknown:?}, unverified {unverified:?}, verified {verified:?}, spread {:.1} %",
            difference * 100.0
        );
        assert!(difference < 0.10, "{route}: medians differ by {:.1} %", difference * 100.0);
    }
}
