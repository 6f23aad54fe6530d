//! Arbitrary bytes as the JSON body of the register, login and refresh requests, each the request
//! Lambda hands over for its `events/` fixture with the body replaced: UTF-8 input as a text body,
//! anything else as a binary one (API Gateway's `isBase64Encoded`, decoded by `lambda_http`).
//!
//! Besides not panicking, a body is never a server error: every refusal is a 4xx.

#![no_main]

use std::sync::LazyLock;

use http::request::Parts;
use lambda_http::{Body, Request};
use libfuzzer_sys::fuzz_target;
use shared::domain::PasswordPolicy;
use shared::testing::event;
use shared::ApiError;

/// The fixture's request without its body (decoded once: the fuzzer varies only the body).
fn head(fixture: &str) -> Parts {
    event(fixture).into_parts().0
}

static REGISTER: LazyLock<Parts> = LazyLock::new(|| head("register.json"));
static LOGIN: LazyLock<Parts> = LazyLock::new(|| head("login.json"));
static REFRESH: LazyLock<Parts> = LazyLock::new(|| head("refresh.json"));

fn with_body(head: &Parts, body: &[u8]) -> Request {
    let body = match std::str::from_utf8(body) {
        Ok(text) => Body::Text(text.to_owned()),
        Err(_) => Body::Binary(body.to_vec()),
    };
    Request::from_parts(head.clone(), body)
}

fn assert_client_error<T>(route: &str, result: Result<T, ApiError>) {
    if let Err(error) = result {
        assert!(!error.is_server_error(), "{route}: a request body caused a server error: {error:?}");
    }
}

fuzz_target!(|body: &[u8]| {
    assert_client_error("register", register::parse(&with_body(&REGISTER, body), &PasswordPolicy::default()));
    assert_client_error("login", login::parse(&with_body(&LOGIN, body)));
    assert_client_error("refresh", refresh::parse(&with_body(&REFRESH, body)));
});
