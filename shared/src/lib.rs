//! Everything the auth functions share: parsed domain values, the one error type and its
//! problem+json mapping, password hashing, tokens, the DynamoDB store, the token keys' cache,
//! typed configuration, AWS client set-up and telemetry.
//!
//! Each function binary only wires these together; the handlers take them as arguments so that
//! tests can call a handler with a request built from an `events/*.json` fixture.

pub mod auth;
pub mod aws;
pub mod config;
pub mod domain;
pub mod error;
pub mod health;
pub mod http;
pub mod keyring;
pub mod keys;
pub mod lambda;
pub mod mail;
pub mod mail_requests;
pub mod password;
pub mod services;
pub mod store;
pub mod telemetry;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod throttle;
pub mod token_keys;
pub mod tokens;

pub use config::Config;
pub use error::{ApiError, DependencyError};

/// Seconds since the Unix epoch. Token lifetimes and DynamoDB TTL attributes use this unit.
pub fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Milliseconds since the Unix epoch, for delays that must not be rounded to the second.
pub fn now_epoch_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
