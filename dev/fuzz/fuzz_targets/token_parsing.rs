//! Arbitrary strings as credentials: through `AccessTokens::verify` with fixed keys, through
//! `RefreshToken::parse`, and as `Authorization` header values (one per input line, so repeated
//! headers are covered too) through the shared bearer parsing and on to verification.
//!
//! Besides not panicking: a refused access token is always `InvalidAccessToken` (a `401`, never a
//! server error), an accepted one names a subject, and an accepted refresh token re-encodes to
//! exactly the string presented.

#![no_main]

use std::sync::LazyLock;

use http::header::{HeaderValue, AUTHORIZATION};
use http::request::Parts;
use lambda_http::{Body, Request};
use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret;
use shared::testing::{event, fixed_tokens, TEST_ISSUER};
use shared::tokens::{AccessTokens, RefreshToken};
use shared::ApiError;

static TOKENS: LazyLock<AccessTokens> = LazyLock::new(fixed_tokens);
static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime"));
/// The `GET /users/me` fixture's request, decoded once.
static GET_USER: LazyLock<Parts> = LazyLock::new(|| event("get-user.me.json").into_parts().0);

fn check_access_token(token: &str) {
    match RUNTIME.block_on(TOKENS.verify(TEST_ISSUER, token, shared::now_epoch())) {
        // Only a forged signature could get here: the fuzzer does not know the key.
        Ok(claims) => panic!("a fuzzed token verified: {token:?} ({claims:?})"),
        Err(ApiError::InvalidAccessToken(_)) => {}
        Err(other) => panic!("verifying {token:?} failed with {other:?} instead of InvalidAccessToken"),
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    check_access_token(&text);

    if let Some(token) = RefreshToken::parse(&text) {
        assert_eq!(token.expose().expose_secret(), &*text, "a refresh token that does not re-encode to itself");
    }

    let mut req = Request::from_parts(GET_USER.clone(), Body::Empty);
    req.headers_mut().remove(AUTHORIZATION);
    for line in data.split(|&b| b == b'\n').take(3) {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            req.headers_mut().append(AUTHORIZATION, value);
        }
    }
    match shared::auth::bearer_token(&req) {
        Ok(token) => {
            assert!(!token.is_empty() && !token.contains(' '), "bearer token {token:?} from {:?}", req.headers());
            check_access_token(token);
        }
        Err(ApiError::MissingAccessToken | ApiError::InvalidAccessToken(_)) => {}
        Err(other) => panic!("bearer parsing failed with {other:?}"),
    }
});
