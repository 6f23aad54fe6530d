//! Property tests of the input edge: no input makes a parser panic, and every value a parser
//! accepts comes back unchanged when it goes through again (normalisation is idempotent, nothing
//! is lost on the way). Case counts stay modest so that the suite runs in seconds in debug.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use secrecy::ExposeSecret;
use serde_json::{Map, Number, Value};
use shared::config::{Issuer, TokenSettings};
use shared::domain::{DisplayName, Email, NewPassword, PasswordPolicy, SubmittedPassword, UserId};
use shared::http::JsonFields;
use shared::keyring::{KeyRing, RingKey, SigningAlgorithm};
use shared::token_keys::TokenKeys;
use shared::tokens::{AccessTokens, Family, RefreshToken, MAX_TOKEN_BYTES};
use shared::ApiError;

const CASES: u32 = 256;
/// Token properties sign or verify an HMAC per case; fewer cases keep them quick.
const TOKEN_CASES: u32 = 64;

/// Strings that probe the edges: arbitrary Unicode, control and invisible characters, email and
/// JSON punctuation, and huge inputs (far past every length cap).
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "[\\x00-\\x1f\\x7f \t\r\n@.\"\\\\\\[\\]a-zA-Z0-9\u{85}\u{a0}\u{200b}-\u{200f}\u{202a}-\u{202e}\u{2060}\u{feff}\u{3000}é山]{0,80}",
        1 => (any::<String>(), any::<char>(), 0..40_000usize)
            .prop_map(|(start, c, n)| format!("{start}{}", c.to_string().repeat(n))),
    ]
}

/// Email-shaped strings in mixed case with surrounding whitespace: most are accepted.
fn email_like() -> impl Strategy<Value = String> {
    "[ \t\n]{0,2}[a-zA-Z0-9._%+-]{1,20}@[a-zA-Z0-9-]{1,12}(\\.[a-zA-Z0-9-]{1,12}){1,3}[ \t\n]{0,2}"
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", Number::from_f64).prop_map(Value::Number),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

const ISS: &str = "https://issuer.test";

fn tokens() -> AccessTokens {
    let ring = KeyRing { keys: vec![RingKey::generate(SigningAlgorithm::Es256, 0)] };
    let issuer = Issuer::Fixed(ISS.into());
    let settings = TokenSettings::new(issuer, "clients".into(), Duration::from_secs(900), Duration::from_secs(604_800));
    AccessTokens::new(Arc::new(TokenKeys::fixed(ring, Duration::from_secs(3600))), settings).expect("an issuer")
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn given_any_string_when_validating_then_no_validator_panics(raw in hostile_string(), min in 0..40usize) {
        let email = Email::parse(&raw);
        let name = DisplayName::parse(&raw).ok();
        let _ = SubmittedPassword::parse(raw.clone());
        let _ = NewPassword::parse(raw.clone(), &PasswordPolicy::new(min), None, None);
        let someone = Email::parse("someone@example.com").unwrap();
        let (policy, email) = (PasswordPolicy::default(), Some(email.as_ref().unwrap_or(&someone)));
        let _ = NewPassword::parse(raw.clone(), &policy, email, name.as_ref());
    }

    #[test]
    fn given_an_accepted_email_when_parsing_it_again_then_it_is_unchanged(raw in prop_oneof![email_like(), hostile_string()]) {
        if let Ok(email) = Email::parse(&raw) {
            prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
            prop_assert_eq!(email.as_str(), raw.trim().to_ascii_lowercase());
            prop_assert!(email.as_str().len() <= 254 && email.as_str().is_ascii());
            prop_assert!(!email.as_str().bytes().any(|b| b.is_ascii_uppercase() || b.is_ascii_whitespace()));
            // Normalisation ignores case: any other spelling of the same address is one account.
            prop_assert_eq!(Email::parse(&raw.to_ascii_uppercase()), Ok(email));
        }
    }

    #[test]
    fn given_an_accepted_name_when_parsing_it_again_then_it_is_unchanged(
        raw in prop_oneof!["[ \t]{0,2}\\PC{1,100}[ \t]{0,2}", hostile_string()],
    ) {
        if let Ok(name) = DisplayName::parse(&raw) {
            prop_assert_eq!(DisplayName::parse(name.as_str()), Ok(name.clone()));
            prop_assert_eq!(name.as_str(), raw.trim());
            prop_assert!((1..=100).contains(&name.as_str().chars().count()));
        }
    }

    #[test]
    fn given_an_accepted_password_when_parsing_then_it_is_kept_exactly(raw in prop_oneof!["\\PC{15,40}", hostile_string()]) {
        let email = Email::parse("jdoe-1980@example.com").unwrap();
        if let Ok(password) = NewPassword::parse(raw.clone(), &PasswordPolicy::default(), Some(&email), None) {
            prop_assert_eq!(password.secret().expose_secret(), raw.as_str());
            prop_assert!(SubmittedPassword::parse(raw.clone()).is_ok(), "a valid new password is a valid login password");
        }
        if let Ok(password) = SubmittedPassword::parse(raw.clone()) {
            prop_assert_eq!(password.secret().expose_secret(), raw.as_str());
        }
    }

    #[test]
    fn given_any_bytes_when_decoding_a_body_then_it_never_panics(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = JsonFields::from_slice(&body, &["email", "password", "name"]);
    }

    #[test]
    fn given_any_json_value_when_decoding_a_body_then_only_objects_are_read(value in json_value()) {
        let body = serde_json::to_vec(&value).unwrap();
        let decoded = JsonFields::from_slice(&body, &["email", "password", "name"]);
        prop_assert_eq!(decoded.is_ok(), value.is_object(), "{}", value);
        if let Err(error) = decoded {
            prop_assert!(matches!(error, ApiError::BadRequest(_)), "{:?}", error);
        }
    }

    #[test]
    fn given_an_object_of_string_members_when_decoding_then_each_string_comes_back(
        members in prop::collection::btree_map(any::<String>(), any::<String>(), 0..8),
    ) {
        let body = serde_json::to_vec(&members).unwrap();
        let allowed: Vec<&str> = members.keys().map(String::as_str).collect();
        let mut fields = JsonFields::from_slice(&body, &allowed).unwrap();
        for (name, value) in &members {
            prop_assert_eq!(fields.string(name), Some(value.clone()));
        }
        prop_assert!(fields.finish().is_ok());
    }

    #[test]
    fn given_members_outside_the_allowed_names_when_finishing_then_one_422_names_each(
        members in prop::collection::btree_map("[a-z_]{1,12}", any::<String>(), 1..6),
    ) {
        let body = serde_json::to_vec(&members).unwrap();
        let fields = JsonFields::from_slice(&body, &["0-not-a-member-name"]).unwrap();
        let Err(ApiError::Validation(errors)) = fields.finish() else {
            return Err(TestCaseError::fail("expected a 422"));
        };
        let named: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        let expected: Vec<&str> = members.keys().map(String::as_str).collect();
        prop_assert_eq!(named, expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(TOKEN_CASES))]

    #[test]
    fn given_a_generated_refresh_token_when_exposed_and_parsed_then_the_hash_is_the_same(
        epoch: u32, verified: bool, expires_at in 0..i64::MAX,
    ) {
        let family = Family::new(UserId::generate(), epoch, verified, expires_at).unwrap();
        let token = RefreshToken::generate(family.clone()).unwrap();
        let exposed = token.expose();
        let parsed = RefreshToken::parse(exposed.expose_secret()).unwrap();
        prop_assert_eq!(parsed.hash(), token.hash());
        prop_assert_eq!(parsed.family(), &family);
        prop_assert_eq!(parsed.expose().expose_secret().to_owned(), exposed.expose_secret());
    }

    #[test]
    fn given_any_string_when_parsing_a_refresh_token_then_only_the_canonical_encoding_is_accepted(
        raw in prop_oneof![hostile_string(), "[A-Za-z0-9_-]{104}", "[A-Za-z0-9_=+/-]{102,106}", "AQ[A-Za-z0-9_-]{102}"],
    ) {
        if let Some(token) = RefreshToken::parse(&raw) {
            prop_assert_eq!(token.expose().expose_secret().to_owned(), raw);
        }
    }

    #[test]
    fn given_an_issued_access_token_when_verifying_then_the_subject_comes_back(
        sub in any::<[u8; 16]>().prop_map(UserId::from_bytes),
        verified: bool,
        age in 0i64..840,
    ) {
        // `exp` is checked against the clock, so the token is issued up to 14 minutes ago: still
        // inside its 15-minute lifetime.
        let tokens = tokens();
        let now = shared::now_epoch();
        let claims = block_on(async {
            let token = tokens.issue(ISS, sub, verified, now - age).await.unwrap();
            tokens.verify(ISS, &token, now).await
        })
        .unwrap();
        prop_assert_eq!(claims.sub, sub);
        prop_assert_eq!(claims.email_verified, verified);
        prop_assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn given_any_string_when_verifying_it_as_an_access_token_then_it_is_refused_without_panicking(
        raw in prop_oneof![
            hostile_string(),
            "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,60}",
            Just("a".repeat(MAX_TOKEN_BYTES + 1)),
        ],
    ) {
        let result = block_on(tokens().verify(ISS, &raw, 1_800_000_000));
        prop_assert!(matches!(result, Err(ApiError::InvalidAccessToken(_))), "{:?}", result);
    }
}

/// An object whose members are all accepted round-trips through the same decoder the handlers
/// use, including names and values that need escaping.
#[test]
fn given_members_that_need_escaping_when_decoding_then_they_come_back_verbatim() {
    let members: BTreeMap<String, String> = [
        ("quote\"name".to_owned(), "line\nbreak".to_owned()),
        ("back\\slash".to_owned(), "\u{0}\u{1f}\u{7f}".to_owned()),
        ("".to_owned(), "😀 \u{202e}".to_owned()),
    ]
    .into();
    let body = serde_json::to_vec(&members).unwrap();
    let allowed: Vec<&str> = members.keys().map(String::as_str).collect();
    let mut fields = JsonFields::from_slice(&body, &allowed).unwrap();
    for (name, value) in &members {
        assert_eq!(fields.string(name).as_ref(), Some(value));
    }
    assert!(fields.finish().is_ok());
}
