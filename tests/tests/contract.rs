//! Every row of the HTTP contract, against DynamoDB Local and moto.

use serde_json::json;
use shared::keyring::{KeyRing, RingKey, SigningAlgorithm};
use shared::testing::TEST_ISSUER;
use tests::{assert_problem, error_fields, parts, Stack, PASSWORD};

// ---- POST /register -------------------------------------------------------------------------

#[tokio::test]
async fn given_valid_fields_when_registering_then_201_with_the_user_and_location() {
    let stack = Stack::new().await;
    let (status, headers, body) = parts(
        stack
            .post("register", &json!({"email": "  Ada@Example.COM ", "password": PASSWORD, "name": "  Ada Lovelace "}))
            .await,
    );
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["name"], "Ada Lovelace");
    assert!(time::OffsetDateTime::parse(
        body["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339
    )
    .is_ok());
    assert_eq!(body["email_verified"], false, "no link followed yet");
    assert_eq!(body.as_object().unwrap().len(), 5, "no other members, never the hash: {body}");
    assert_eq!(headers["location"], format!("/users/{id}"));
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.contains_key("x-request-id"));
    let keys = stack.keys().await;
    let prefixes: Vec<_> = keys.iter().map(|k| k.split_once('#').unwrap().0).collect();
    assert_eq!(prefixes, ["EMAIL", "OUTBOX", "TOKEN", "USER"], "the verification mail and its token's hash: {keys:?}");
    assert!(keys.contains(&"EMAIL#ada@example.com".to_owned()) && keys.contains(&format!("USER#{id}")));
}

#[tokio::test]
async fn given_a_taken_email_in_any_case_when_registering_then_409_and_nothing_is_written() {
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let before = stack.keys().await;
    let response = stack
        .post(
            "register",
            &json!({"email": "ADA@example.com ", "password": "another fine passphrase", "name": "Imposter"}),
        )
        .await;
    assert_problem(response, 409);
    assert_eq!(stack.keys().await, before);
}

#[tokio::test]
async fn given_invalid_fields_when_registering_then_422_lists_them_and_nothing_is_written() {
    let stack = Stack::new().await;
    let cases = [
        (json!({"email": "nope", "password": PASSWORD, "name": "Ada"}), vec!["email"]),
        (json!({"email": "ada@example.com", "password": "short", "name": "Ada"}), vec!["password"]),
        (json!({"email": "ada@example.com", "password": "1234567890QWERTYUIOP", "name": "Ada"}), vec!["password"]),
        (
            json!({"email": "lovelace@example.com", "password": "i am LOVELACE forever", "name": "Ada"}),
            vec!["password"],
        ),
        (json!({"email": "ada@example.com", "password": PASSWORD, "name": " \t "}), vec!["name"]),
        (json!({"email": "ada@example.com", "password": PASSWORD, "name": "x".repeat(101)}), vec!["name"]),
        (json!({"email": "ada@example.com", "password": PASSWORD, "name": "bell\u{7}"}), vec!["name"]),
        (json!({"email": "ada@example.com", "password": "x".repeat(257), "name": "Ada"}), vec!["password"]),
        (json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada", "role": "admin"}), vec!["role"]),
        (json!({"email": 42, "password": null, "name": ["Ada"]}), vec!["email", "name", "password"]),
        (json!({}), vec!["email", "name", "password"]),
    ];
    for (body, fields) in cases {
        let (_, problem) = assert_problem(stack.post("register", &body).await, 422);
        let mut actual = error_fields(&problem);
        actual.sort();
        assert_eq!(actual, fields, "{body}");
    }
    assert!(stack.keys().await.is_empty());
}

#[tokio::test]
async fn given_long_and_unicode_passwords_when_registering_then_they_are_accepted_unchanged() {
    let stack = Stack::new().await;
    // 256 characters, with no short unit repeated (that alone would be refused).
    let long: String = "qz7#Lm2$Vr9&Xw4*Tp6@Ny8!Kd3%".chars().cycle().take(256).collect();
    stack.register_user("long@example.com", &long, "Long").await;
    stack.login_user("long@example.com", &long).await;
    let unicode = "パスワードは長くて安全です🔐🔐🔐";
    stack.register_user("unicode@example.com", unicode, "Unicode").await;
    stack.login_user("unicode@example.com", unicode).await;
    // Never normalised: a different Unicode form of the same text is a different password.
    let composed = "Ünïcödé pässwörd ünchänged";
    stack.register_user("nfc@example.com", composed, "NFC").await;
    let decomposed: String = composed.replace('Ü', "U\u{308}");
    assert_problem(stack.post("login", &json!({"email": "nfc@example.com", "password": decomposed})).await, 401);
}

#[tokio::test]
async fn given_a_lower_configured_minimum_when_registering_then_it_applies() {
    let stack = Stack::with_env(&[("PASSWORD_MIN_LENGTH", "8")]).await;
    stack.register_user("eight@example.com", "tr0ub4dor", "Eight").await;
    assert_problem(
        stack.post("register", &json!({"email": "seven@example.com", "password": "tr0ub4d", "name": "Seven"})).await,
        422,
    );
}

#[tokio::test]
async fn given_unreadable_bodies_when_registering_then_400_415_413() {
    let stack = Stack::new().await;
    for fixture in ["register.malformed.json", "register.not-json.json", "register.too-large.json"] {
        let expected = match fixture {
            "register.malformed.json" => 400,
            "register.not-json.json" => 415,
            _ => 413,
        };
        assert_problem(stack.send(&tests::event_json(fixture)).await, expected);
    }
    let mut no_content_type = tests::event_json("register.json");
    no_content_type["headers"].as_object_mut().unwrap().remove("Content-Type");
    no_content_type["multiValueHeaders"].as_object_mut().unwrap().remove("Content-Type");
    assert_problem(stack.send(&no_content_type).await, 415);
    assert!(stack.keys().await.is_empty());
}

// ---- POST /login ----------------------------------------------------------------------------

#[tokio::test]
async fn given_the_right_password_when_logging_in_then_200_with_a_token_pair() {
    let stack = Stack::new().await;
    let user = stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let (status, headers, body) =
        parts(stack.post("login", &json!({"email": " ADA@example.com", "password": PASSWORD})).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["refresh_expires_in"], 604_800);
    let refresh = body["refresh_token"].as_str().unwrap();
    assert_eq!(refresh.len(), 104, "78 bytes base64url: {refresh}");
    let access = body["access_token"].as_str().unwrap();
    let (status, _, me) = parts(stack.get_user("me", Some(access)).await);
    assert_eq!((status, &me), (200, &user));
}

#[tokio::test]
async fn given_a_wrong_password_or_unknown_email_when_logging_in_then_identical_401s() {
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let wrong = stack.post("login", &json!({"email": "ada@example.com", "password": "not the password at all"})).await;
    let unknown =
        stack.post("login", &json!({"email": "nobody@example.com", "password": "not the password at all"})).await;
    let (wrong_headers, wrong_body) = assert_problem(wrong, 401);
    let (unknown_headers, unknown_body) = assert_problem(unknown, 401);
    assert_eq!(wrong_body, unknown_body);
    let names = |h: &http::HeaderMap| {
        let mut names: Vec<_> = h.keys().map(|k| k.as_str().to_owned()).collect();
        names.sort();
        names
    };
    assert_eq!(names(&wrong_headers), names(&unknown_headers));
    assert_eq!(stack.keys().await.iter().filter(|k| k.starts_with("SESSION#")).count(), 0);
}

#[tokio::test]
async fn given_bad_login_bodies_when_logging_in_then_422_or_400() {
    let stack = Stack::new().await;
    let (_, problem) = assert_problem(stack.post("login", &json!({"email": "ada@example.com"})).await, 422);
    assert_eq!(error_fields(&problem), ["password"]);
    assert_problem(stack.post("login", &json!({"email": "ada@example.com", "password": ""})).await, 422);
    assert_problem(stack.send(&tests::event_json("login.malformed.json")).await, 400);
}

// ---- POST /refresh --------------------------------------------------------------------------

#[tokio::test]
async fn given_a_refresh_token_when_refreshing_then_a_new_pair_and_the_old_token_is_spent() {
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let first = stack.login_user("ada@example.com", PASSWORD).await;
    let first_refresh = first["refresh_token"].as_str().unwrap();

    let (status, headers, second) = parts(stack.refresh_with(first_refresh).await);
    assert_eq!(status, 200, "{second}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(second["token_type"], "Bearer");
    let second_refresh = second["refresh_token"].as_str().unwrap();
    assert_ne!(second_refresh, first_refresh);
    assert!(second["refresh_expires_in"].as_u64().unwrap() <= 604_800);
    let (status, _, _) = parts(stack.get_user("me", second["access_token"].as_str()).await);
    assert_eq!(status, 200);

    // The first token is spent: it rotates nothing more, and within the grace window it only
    // gets the current token again (tests/tests/security.rs covers reuse after the window).
    let (status, _, again) = parts(stack.refresh_with(first_refresh).await);
    assert_eq!((status, again["refresh_token"].as_str()), (200, Some(second_refresh)));
    let (status, _, third) = parts(stack.refresh_with(second_refresh).await);
    assert_eq!(status, 200, "{third}");
    assert_ne!(third["refresh_token"].as_str(), Some(second_refresh));
}

#[tokio::test]
async fn given_unknown_or_malformed_refresh_tokens_when_refreshing_then_401() {
    let stack = Stack::new().await;
    for token in ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "garbage", "", "🙂"] {
        assert_problem(stack.refresh_with(token).await, 401);
    }
    assert_problem(stack.post("refresh", &json!({"refresh_token": 12})).await, 422);
}

#[tokio::test]
async fn given_an_expired_family_when_refreshing_then_401_even_before_ttl_deletion() {
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let tokens = stack.login_user("ada@example.com", PASSWORD).await;
    let session = stack.keys().await.into_iter().find(|k| k.starts_with("SESSION#")).unwrap();
    stack
        .dynamodb
        .update_item()
        .table_name(&stack.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(session))
        .update_expression("SET expires_at = :past")
        .expression_attribute_values(
            ":past",
            aws_sdk_dynamodb::types::AttributeValue::N((shared::now_epoch() - 1).to_string()),
        )
        .send()
        .await
        .unwrap();
    assert_problem(stack.refresh_with(tokens["refresh_token"].as_str().unwrap()).await, 401);
}

#[tokio::test]
async fn given_a_login_when_storing_the_session_then_only_a_hash_with_ttl_is_kept() {
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let tokens = stack.login_user("ada@example.com", PASSWORD).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let items = stack.items().await;
    let dump = format!("{items:?}");
    assert!(!dump.contains(refresh), "refresh token stored in clear");
    assert!(!dump.contains(PASSWORD), "password stored in clear");
    let session = items.iter().find(|i| i["pk"].as_s().unwrap().starts_with("SESSION#")).unwrap();
    let expires_at: i64 = session["expires_at"].as_n().unwrap().parse().unwrap();
    assert!((expires_at - shared::now_epoch() - 604_800).abs() < 10);
}

// ---- GET /users/{id} ------------------------------------------------------------------------

#[tokio::test]
async fn given_a_token_when_reading_own_id_or_me_then_200_and_another_id_403() {
    let stack = Stack::new().await;
    let ada = stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let bob = stack.register_user("bob@example.com", PASSWORD, "Bob").await;
    let tokens = stack.login_user("ada@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str();

    for id in [ada["id"].as_str().unwrap(), "me"] {
        let (status, headers, body) = parts(stack.get_user(id, access).await);
        assert_eq!((status, &body), (200, &ada));
        assert!(headers.contains_key("x-request-id"));
    }
    assert_problem(stack.get_user(bob["id"].as_str().unwrap(), access).await, 403);
}

#[tokio::test]
async fn given_missing_or_invalid_tokens_when_reading_then_401_with_a_challenge() {
    let stack = Stack::new().await;
    let (headers, _) = assert_problem(stack.get_user("me", None).await, 401);
    assert_eq!(headers["www-authenticate"], "Bearer");
    for token in ["nonsense", "a.b.c", "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4In0."] {
        let (headers, _) = assert_problem(stack.get_user("me", Some(token)).await, 401);
        assert_eq!(headers["www-authenticate"], r#"Bearer error="invalid_token""#);
    }
}

#[tokio::test]
async fn given_an_expired_token_signed_with_the_real_key_when_reading_then_401() {
    let stack = Stack::new().await;
    let ada = stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let now = shared::now_epoch();
    let claims = json!({"iss": TEST_ISSUER, "aud": "serverless-auth", "sub": ada["id"], "iat": now - 2000, "exp": now - 1000, "jti": "x"});
    let expired = stack.sign(&claims).await;
    let (headers, _) = assert_problem(stack.get_user("me", Some(&expired)).await, 401);
    assert_eq!(headers["www-authenticate"], r#"Bearer error="invalid_token""#);

    // The same token, still valid, passes: the failure above is the expiry alone.
    let fresh = json!({"iss": TEST_ISSUER, "aud": "serverless-auth", "sub": ada["id"], "iat": now, "exp": now + 60, "jti": "y"});
    let fresh = stack.sign(&fresh).await;
    assert_eq!(parts(stack.get_user("me", Some(&fresh)).await).0, 200);
}

// ---- Calls per invocation -------------------------------------------------------------------

#[tokio::test]
async fn given_the_happy_path_then_each_function_makes_the_fewest_calls() {
    let stack = Stack::new().await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    assert_eq!(stack.dynamodb_calls.take(), 1, "register: one transaction, the verification mail in it");
    assert_eq!(stack.secrets_calls.take(), 1, "cold: the mail key");
    stack.register_user("bob@example.com", PASSWORD, "Bob").await;
    assert_eq!((stack.dynamodb_calls.take(), stack.secrets_calls.take()), (1, 0), "warm register");

    let tokens = stack.login_user("ada@example.com", PASSWORD).await;
    assert_eq!(
        stack.dynamodb_calls.take_round_trips(),
        (3, 2),
        "login: reserve the attempt while reading the credentials, then the session's transaction"
    );
    assert_eq!(stack.secrets_calls.take(), 2, "cold: the key ring and the throttle key");
    stack.login_user("ada@example.com", PASSWORD).await;
    assert_eq!((stack.dynamodb_calls.take_round_trips(), stack.secrets_calls.take()), ((3, 2), 0), "warm login");

    let refreshed = parts(stack.refresh_with(tokens["refresh_token"].as_str().unwrap()).await).2;
    assert_eq!(stack.dynamodb_calls.take(), 1, "refresh: one conditional update");
    stack.secrets_calls.take();
    parts(stack.refresh_with(refreshed["refresh_token"].as_str().unwrap()).await);
    assert_eq!((stack.dynamodb_calls.take(), stack.secrets_calls.take()), (1, 0), "warm refresh");

    assert_eq!(parts(stack.get_user("me", tokens["access_token"].as_str()).await).0, 200);
    assert_eq!(stack.dynamodb_calls.take(), 1, "get-user: one read");
    stack.secrets_calls.take();
    assert_eq!(parts(stack.get_user("me", tokens["access_token"].as_str()).await).0, 200);
    assert_eq!((stack.dynamodb_calls.take(), stack.secrets_calls.take()), (1, 0), "warm get-user");
}

// ---- GET /health ----------------------------------------------------------------------------

#[tokio::test]
async fn given_a_healthy_stack_when_checking_health_then_200_and_one_pair_of_checks_per_30_seconds() {
    let stack = Stack::new().await;
    stack.dynamodb_calls.take();
    stack.secrets_calls.take();
    let (status, headers, body) = parts(stack.send(&tests::event_json("health.json")).await);
    assert_eq!((status, body), (200, json!({"status": "ok", "checks": {"table": "ok", "signing_key": "ok"}})));
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!((stack.dynamodb_calls.take(), stack.secrets_calls.take()), (1, 1), "DescribeTable, the JWKS");
    for _ in 0..5 {
        assert_eq!(parts(stack.send(&tests::event_json("health.json")).await).0, 200);
    }
    assert_eq!((stack.dynamodb_calls.take(), stack.secrets_calls.take()), (0, 0), "cached in the warm instance");
}

#[tokio::test]
async fn given_no_key_yet_a_jwks_scheduled_for_deletion_or_a_missing_table_when_checking_health_then_503_marks_it() {
    // GIVEN a stack whose key ring's first rotation has not run: nothing can be signed yet
    let mut stack = Stack::unrotated().await;
    let (headers, problem) = assert_problem(stack.send(&tests::event_json("health.json")).await, 503);
    assert_eq!(headers["retry-after"], "30");
    assert_eq!(problem["checks"], json!({"table": "ok", "signing_key": "unavailable"}));

    // WHEN it rotates, THEN it is healthy; WHEN the JWKS is scheduled for deletion, THEN not
    stack.rotate(shared::now_epoch()).await;
    stack.health = stack.fresh("HealthFunction");
    assert_eq!(parts(stack.send(&tests::event_json("health.json")).await).0, 200);
    let jwks = stack.resources.reference("JwksSecret").unwrap().to_owned();
    stack.secrets.delete_secret().secret_id(jwks).recovery_window_in_days(7).send().await.unwrap();
    stack.health = stack.fresh("HealthFunction");
    let (headers, problem) = assert_problem(stack.send(&tests::event_json("health.json")).await, 503);
    assert_eq!(headers["retry-after"], "30");
    assert_eq!(problem["checks"], json!({"table": "ok", "signing_key": "unavailable"}));

    stack.dynamodb.delete_table().table_name(&stack.table).send().await.unwrap();
    stack.health = stack.fresh("HealthFunction");
    let (_, problem) = assert_problem(stack.send(&tests::event_json("health.json")).await, 503);
    assert_eq!(problem["checks"], json!({"table": "unavailable", "signing_key": "unavailable"}));
}

#[tokio::test]
async fn given_published_keys_of_another_algorithm_only_when_checking_health_then_no_signing_key() {
    // GIVEN an ES256 stack whose JWKS holds only an RS256 key (as right after SigningAlgorithm
    // changed, before a rotation made a key of the new algorithm: signers answer 503)
    let mut stack = Stack::new().await;
    let rsa = KeyRing { keys: vec![RingKey::generate(SigningAlgorithm::Rs256, shared::now_epoch())] };
    stack.put_secret("JwksSecret", &serde_json::to_string(&rsa.jwks()).unwrap()).await;

    // WHEN checking health, THEN the signing key is unavailable
    stack.health = stack.fresh("HealthFunction");
    let (_, problem) = assert_problem(stack.send(&tests::event_json("health.json")).await, 503);
    assert_eq!(problem["checks"], json!({"table": "ok", "signing_key": "unavailable"}));
}
