//! Structured logs for CloudWatch.
//!
//! Lambda's JSON log format sets `AWS_LAMBDA_LOG_FORMAT=JSON` and `AWS_LAMBDA_LOG_LEVEL`; the
//! runtime's default subscriber honours both and tags every line with the invocation's request
//! id. Nothing in this crate logs a password, token, hash or secret: values that could carry one
//! are wrapped in `secrecy` types or never passed to a log macro.

/// Installs the process-wide subscriber. Call once, first thing in `main`.
pub fn init() {
    lambda_http::tracing::init_default_subscriber();
}
