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

/// Measurement rounds a route gets: the work is the same for every address, so only noise
/// (another process on the machine) can separate the medians, and noise rarely does it three
/// times in a row; a real difference (an account lookup is a DynamoDB read, a fifth of the
/// request) does it every time.
const TRIALS: usize = 3;

/// `resend` and `forgot` answer unknown, unverified and verified addresses alike: the same
/// status, headers and body, in the same time (the request never looks the account up).
#[tokio::test]
async fn given_unknown_unverified_and_verified_addresses_when_asking_for_mail_then_answers_and_latency_match() {
    let stack = Stack::new().await;
    // Fresh addresses for every sample of a route: each address has its own 60 s cooldown.
    let accounts = TRIALS * SAMPLES;
    for i in 0..accounts {
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
        let mut reference = None;
        let mut spreads = Vec::new();
        for trial in 0..TRIALS {
            let mut series: [Vec<Duration>; 3] = Default::default();
            // Interleaved, so that drift in the machine's load affects the three alike.
            for i in trial * SAMPLES..(trial + 1) * SAMPLES {
                let emails = [
                    format!("nobody{i}@example.com"),
                    format!("unverified{i}@example.com"),
                    format!("verified{i}@example.com"),
                ];
                for (kind, email) in emails.into_iter().enumerate() {
                    let (elapsed, response) = ask(email).await;
                    series[kind].push(elapsed);
                    let (status, mut headers, body) = tests::parts(response);
                    assert_eq!(status, 202, "{route}: {body}");
                    headers.remove("x-request-id");
                    let answer = (status, format!("{headers:?}"), body);
                    assert_eq!(
                        reference.get_or_insert_with(|| answer.clone()),
                        &answer,
                        "{route}: every answer is the same"
                    );
                }
            }
            let medians = series.map(median);
            let (fastest, slowest) = (medians.iter().min().unwrap(), medians.iter().max().unwrap());
            let spread = (*slowest - *fastest).as_secs_f64() / slowest.as_secs_f64();
            println!(
                "median {route} latency, trial {trial}: unknown {:?}, unverified {:?}, verified {:?}, spread {:.1} %",
                medians[0],
                medians[1],
                medians[2],
                spread * 100.0
            );
            spreads.push(spread);
            if spread < 0.10 {
                break;
            }
        }
        let best = spreads.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(best < 0.10, "{route}: medians differ by {:.1} % at best, {TRIALS} trials", best * 100.0);
    }
}
