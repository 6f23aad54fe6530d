//! Micro-benchmarks of the functions' hot paths: JWT sign and verify, refresh-token generation
//! and hashing, request decoding and validation, response encoding, and one argon2id hash at the
//! configured parameters. Run with `cargo bench -p shared` (release profile); `dev/scripts/bench.sh`
//! puts the results in `docs/performance.md`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderValue, StatusCode};
use lambda_http::aws_lambda_events::apigw::ApiGatewayProxyResponse;
use lambda_http::{Body, Request, Response};
use secrecy::ExposeSecret;
use shared::config::{Issuer, TokenSettings};
use shared::domain::{DisplayName, Email, NewPassword, PasswordPolicy, SubmittedPassword, UserId};
use shared::http::{json_response, respond, JsonFields, RequestMeta};
use shared::keyring::{KeyRing, RingKey, SigningAlgorithm};
use shared::store::User;
use shared::token_keys::TokenKeys;
use shared::tokens::{token_pair, AccessTokens, Family, RefreshToken};
use shared::ApiError;

const REGISTER_EVENT: &str = include_str!("../../events/register.json");
const USER_ID: &str = "0d9a4c1e-8f7b-4a6d-9c3e-2b1a0f9e8d7c";

fn user_id() -> UserId {
    UserId::parse(USER_ID).expect("a user id")
}

/// A login's family: the user's, epoch 0, verified, a week from now.
fn family() -> Family {
    Family::new(user_id(), 0, true, shared::now_epoch() + 604_800).expect("a family")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

const ISS: &str = "https://auth.example.com";

fn tokens() -> AccessTokens {
    tokens_with(SigningAlgorithm::Es256)
}

fn tokens_with(algorithm: SigningAlgorithm) -> AccessTokens {
    let ring = KeyRing { keys: vec![RingKey::generate(algorithm, 0)] };
    let issuer = Issuer::Fixed(ISS.into());
    let settings = TokenSettings::new(issuer, "clients".into(), Duration::from_secs(900), Duration::from_secs(604_800));
    AccessTokens::new(Arc::new(TokenKeys::fixed(ring, Duration::from_secs(3600))), settings).expect("an issuer")
}

fn jwt(c: &mut Criterion) {
    let rt = runtime();
    let now = shared::now_epoch();
    let mut group = c.benchmark_group("jwt");
    // ES256, the default, keeps the names the report has always used.
    for (suffix, algorithm) in [("", SigningAlgorithm::Es256), ("_rs256", SigningAlgorithm::Rs256)] {
        let tokens = tokens_with(algorithm);
        let token = rt.block_on(tokens.issue(ISS, user_id(), true, now)).expect("a token");
        group.bench_function(format!("sign{suffix}"), |b| {
            b.iter(|| rt.block_on(tokens.issue(ISS, black_box(user_id()), true, now)).unwrap())
        });
        group.bench_function(format!("verify{suffix}"), |b| {
            b.iter(|| rt.block_on(tokens.verify(ISS, black_box(&token), now)).unwrap())
        });
    }
    group.finish();
}

fn refresh_tokens(c: &mut Criterion) {
    let mut group = c.benchmark_group("refresh_token");
    // Login: a new family; the store gets the hash, the client the token.
    group.bench_function("generate_and_hash", |b| {
        b.iter(|| {
            let token = RefreshToken::generate(family()).unwrap();
            (token.family().id(), token.hash(), token.expose().expose_secret().len())
        })
    });
    // Refresh: parse the presented token, hash it, derive its successor, hash and expose that.
    let presented = RefreshToken::generate(family()).unwrap().expose();
    group.bench_function("parse_rotate_and_hash", |b| {
        b.iter(|| {
            let token = RefreshToken::parse(black_box(presented.expose_secret())).unwrap();
            let next = token.successor(black_box(&[7; 32]));
            (token.family().id(), token.hash(), next.hash(), next.expose().expose_secret().len())
        })
    });
    group.finish();
}

/// What register does with a request before hashing: the runtime's event decoding, then the
/// body's decoding and every field rule.
fn decode_register(event: &str, policy: &PasswordPolicy) -> Result<(Email, DisplayName, NewPassword), ApiError> {
    let req: Request = lambda_http::request::from_str(event).map_err(|e| ApiError::Internal(e.into()))?;
    let mut fields = JsonFields::from_request(&req, &["email", "password", "name"])?;
    let email = fields.parse("email", |raw| Email::parse(&raw));
    let name = fields.parse("name", |raw| DisplayName::parse(&raw));
    let password = fields.parse("password", |raw| NewPassword::parse(raw, policy, email.as_ref(), name.as_ref()));
    fields.finish()?;
    Ok((email.unwrap(), name.unwrap(), password.unwrap()))
}

fn requests(c: &mut Criterion) {
    let policy = PasswordPolicy::default();
    let mut group = c.benchmark_group("request");
    group.bench_function("decode_and_validate_register", |b| {
        b.iter(|| decode_register(black_box(REGISTER_EVENT), &policy).unwrap())
    });
    group.finish();
}

/// What the runtime sends back: the handler's response as an API Gateway REST proxy response.
fn encode(response: Response<Body>) -> Vec<u8> {
    let (parts, body) = response.into_parts();
    let mut out = ApiGatewayProxyResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.multi_value_headers = parts.headers;
    out.body = Some(body);
    serde_json::to_vec(&out).unwrap()
}

fn responses(c: &mut Criterion) {
    let req: Request = lambda_http::request::from_str(REGISTER_EVENT).unwrap();
    let meta = RequestMeta::new(&req, None);
    let user = User {
        id: user_id(),
        email: "ada@example.com".into(),
        name: "Ada Lovelace".into(),
        created_at: "2026-11-24T05:00:00Z".into(),
        email_verified: true,
    };
    let rt = runtime();
    let tokens = tokens();
    let now = shared::now_epoch();
    let access = rt.block_on(tokens.issue(ISS, user_id(), true, now)).unwrap();
    let refresh = RefreshToken::generate(family()).unwrap();
    let mut group = c.benchmark_group("response");
    group.bench_function("encode_register_201", |b| {
        b.iter(|| {
            let mut response = json_response(StatusCode::CREATED, black_box(&user)).unwrap();
            let location = HeaderValue::from_str(&format!("/users/{}", user.id)).unwrap();
            response.headers_mut().insert(http::header::LOCATION, location);
            encode(respond(&meta, Ok(response)))
        })
    });
    group.bench_function("encode_token_pair_200", |b| {
        b.iter(|| {
            let pair = token_pair(access.clone(), tokens.settings(), &refresh, now);
            encode(respond(&meta, json_response(StatusCode::OK, &pair)))
        })
    });
    group.bench_function("encode_problem_422", |b| {
        b.iter(|| {
            let error =
                decode_register(&REGISTER_EVENT.replace("ada@example.com", "not-an-email"), &PasswordPolicy::default())
                    .err()
                    .unwrap();
            encode(respond(&meta, Err(error)))
        })
    });
    group.finish();
}

fn argon2id(c: &mut Criterion) {
    let rt = runtime();
    let policy = PasswordPolicy::default();
    let password = || NewPassword::parse("correct horse battery staple".into(), &policy, None, None).unwrap();
    let stored = rt.block_on(shared::password::hash(password())).unwrap();
    let mut group = c.benchmark_group("argon2id");
    group.sample_size(20).measurement_time(Duration::from_secs(8));
    group.bench_function("hash", |b| b.iter(|| rt.block_on(shared::password::hash(password())).unwrap()));
    group.bench_function("verify", |b| {
        b.iter(|| {
            let submitted = SubmittedPassword::parse("correct horse battery staple".into()).unwrap();
            rt.block_on(shared::password::verify(submitted, Some(stored.clone()))).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, jwt, refresh_tokens, requests, responses, argon2id);
criterion_main!(benches);
