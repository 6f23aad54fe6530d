//! The signing key ring's rotation function against moto's Secrets Manager, through the IAM
//! check, with the four step events of events/ (Secrets Manager's own rotation needs Lambda, so
//! the test plays its part: the steps in order, under one token).

use localdev::rotation::STEPS;
use shared::keyring::KeyRing;
use tests::Stack;

async fn run(stack: &Stack, step: &str, token: &str, now: i64) -> Result<(), String> {
    stack.rotate_signing_key.step(&stack.rotation_step(step, token), now).await.map_err(|e| e.to_string())
}

async fn rotate(stack: &Stack, now: i64) -> String {
    stack.rotate(now).await
}

/// Every version of the ring and its labels.
async fn stages(stack: &Stack) -> Vec<(String, Vec<String>)> {
    let id = stack.resources.reference("KeyRingSecret").unwrap();
    let secret = stack.secrets.describe_secret().secret_id(id).send().await.unwrap();
    let mut versions: Vec<_> = secret.version_ids_to_stages().cloned().unwrap_or_default().into_iter().collect();
    versions.sort();
    versions
}

fn labelled(versions: &[(String, Vec<String>)], label: &str) -> Vec<String> {
    versions.iter().filter(|(_, stages)| stages.iter().any(|s| s == label)).map(|(v, _)| v.clone()).collect()
}

#[tokio::test]
async fn given_a_new_stack_when_the_four_steps_run_then_the_first_key_is_current_and_published() {
    // GIVEN a stack whose ring is empty, as the template creates it
    let stack = Stack::unrotated().await;
    assert!(KeyRing::parse(&stack.current_secret("KeyRingSecret").await).unwrap().keys.is_empty());

    // WHEN a rotation runs
    let token = rotate(&stack, 1_000).await;

    // THEN the ring holds one key, published in the JWKS without its private part
    let ring = KeyRing::parse(&stack.current_secret("KeyRingSecret").await).unwrap();
    assert_eq!(ring.keys.len(), 1);
    assert_eq!(ring.keys[0].published_at, 1_000);
    let jwks: serde_json::Value = serde_json::from_str(&stack.current_secret("JwksSecret").await).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0]["kid"], ring.keys[0].kid.as_str());
    assert!(jwks["keys"][0].get("d").is_none(), "{jwks}");
    // AND the new version is AWSCURRENT, and AWSPENDING is gone
    let versions = stages(&stack).await;
    assert_eq!(labelled(&versions, "AWSCURRENT"), [token]);
    assert!(labelled(&versions, "AWSPENDING").is_empty(), "{versions:?}");
}

#[tokio::test]
async fn given_each_step_repeated_when_rotating_then_the_outcome_is_that_of_one_rotation() {
    // GIVEN a stack
    let stack = Stack::unrotated().await;
    let token = uuid::Uuid::new_v4().to_string();

    // WHEN every step runs twice (Secrets Manager retries a step that timed out)
    for step in STEPS {
        for attempt in 0..2 {
            run(&stack, step, &token, 1_000 + attempt).await.unwrap_or_else(|e| panic!("{step}: {e}"));
        }
    }

    // THEN one key was added, and the ring has exactly two versions: the template's and this one
    let ring = KeyRing::parse(&stack.current_secret("KeyRingSecret").await).unwrap();
    assert_eq!(ring.keys.len(), 1);
    let versions = stages(&stack).await;
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert_eq!(labelled(&versions, "AWSCURRENT"), [token]);
}

#[tokio::test]
async fn given_two_rotations_then_both_keys_are_published_and_the_first_stops_signing_when_the_second_may() {
    // GIVEN a stack rotated twice, 100 s apart
    let stack = Stack::unrotated().await;
    rotate(&stack, 1_000).await;
    rotate(&stack, 1_100).await;

    // THEN the ring has both keys, the first retired once the second has been published for
    // JwksMaxAge, and the JWKS lists both
    let ring = KeyRing::parse(&stack.current_secret("KeyRingSecret").await).unwrap();
    let delay = stack.function("RotateSigningKeyFunction").config.key_ring.signing_delay;
    assert_eq!(ring.keys.len(), 2);
    assert_eq!(ring.keys[0].retired_at, Some(1_100 + delay.as_secs() as i64));
    assert_eq!(ring.keys[1].retired_at, None);
    let jwks = ring.jwks();
    let published: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&stack.current_secret("JwksSecret").await).unwrap();
    assert_eq!(published, jwks);
}

#[tokio::test]
async fn given_steps_out_of_order_or_for_another_secret_then_they_fail_and_change_nothing() {
    // GIVEN a stack
    let stack = Stack::unrotated().await;
    let before = stages(&stack).await;
    let token = uuid::Uuid::new_v4().to_string();

    // WHEN a step other than createSecret comes first, or names another secret
    for step in &STEPS[1..] {
        let error = run(&stack, step, &token, 1_000).await.expect_err(step);
        assert!(error.contains("createSecret comes first"), "{step}: {error}");
    }
    let mut other = stack.rotation_step("createSecret", &token);
    other.secret_id = stack.resources.reference("MailKeySecret").unwrap().to_owned();
    let error = stack.rotate_signing_key.step(&other, 1_000).await.expect_err("another secret").to_string();

    // THEN each is refused and the ring is untouched
    assert!(error.contains("rotates only"), "{error}");
    assert_eq!(stages(&stack).await, before);
}

#[tokio::test]
async fn given_a_ring_that_cannot_be_read_when_rotating_then_create_fails_and_no_key_is_lost() {
    // GIVEN a ring whose current value is damaged
    let stack = Stack::unrotated().await;
    let id = stack.resources.reference("KeyRingSecret").unwrap();
    stack.secrets.put_secret_value().secret_id(id).secret_string("{\"keys\":[{\"kid\":\"x\"}]}").send().await.unwrap();

    // WHEN a rotation starts
    let token = uuid::Uuid::new_v4().to_string();
    let error = run(&stack, "createSecret", &token, 1_000).await.expect_err("a damaged ring");

    // THEN it stops with the reason, and no pending version was written
    assert!(error.contains("key ring"), "{error}");
    assert!(labelled(&stages(&stack).await, "AWSPENDING").is_empty());
}

#[tokio::test]
async fn given_a_set_secret_long_after_create_secret_then_it_publishes_nothing() {
    // GIVEN a rotation whose createSecret ran at t=1000
    let stack = Stack::unrotated().await;
    let token = uuid::Uuid::new_v4().to_string();
    run(&stack, "createSecret", &token, 1_000).await.unwrap();

    // WHEN setSecret comes more than five minutes later (a retried step)
    let error = run(&stack, "setSecret", &token, 1_301).await.expect_err("a stale pending key");

    // THEN it refuses, saying what to do, and the JWKS still lists no key: the key stamped at
    // t=1000 would otherwise sign before verifiers could have fetched it
    assert!(error.contains("made 301 s ago") && error.contains("rotate again"), "{error}");
    assert_eq!(stack.current_secret("JwksSecret").await, r#"{"keys":[]}"#);
    run(&stack, "setSecret", &token, 1_300).await.expect("within five minutes");
}
