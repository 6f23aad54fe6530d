//! Arbitrary bytes as the JSON body of every route that reads one, each the request Lambda hands
//! over for its `events/` fixture with the body replaced: UTF-8 input as a text body,
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
static LOGOUT: LazyLock<Parts> = LazyLock::new(|| head("logout.json"));
static EMAIL_VERIFY: LazyLock<Parts> = LazyLock::new(|| head("email-verify.json"));
static RESEND: LazyLock<Parts> = LazyLock::new(|| head("email-verify-resend.json"));
static FORGOT: LazyLock<Parts> = LazyLock::new(|| head("password-forgot.json"));
static PASSWORD_RESET: LazyLock<Parts> = LazyLock::new(|| head("password-reset.json"));
static PASSWORD_CHANGE: LazyLock<Parts> = LazyLock::new(|| head("password-change.json"));
static EMAIL_CHANGE: LazyLock<Parts> = LazyLock::new(|| head("email-change.json"));
static DELETE_USER: LazyLock<Parts> = LazyLock::new(|| head("delete-user.json"));

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
    assert_client_error("logout", logout::parse(&with_body(&LOGOUT, body)));
    assert_client_error("email-verify", email_verify::parse(&with_body(&EMAIL_VERIFY, body)));
    assert_client_error("resend", shared::mail_requests::parse(&with_body(&RESEND, body)));
    assert_client_error("forgot", shared::mail_requests::parse(&with_body(&FORGOT, body)));
    assert_client_error("password-reset", password_reset::parse(&with_body(&PASSWORD_RESET, body)));
    assert_client_error("password-change", password_change::parse(&with_body(&PASSWORD_CHANGE, body)));
    assert_client_error("email-change", email_change::parse(&with_body(&EMAIL_CHANGE, body)));
    assert_client_error("delete-user", delete_user::parse(&with_body(&DELETE_USER, body)));
});
