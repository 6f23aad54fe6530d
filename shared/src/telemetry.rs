//! Structured logs for CloudWatch.
//!
//! Follows Lambda's advanced logging controls like the runtime's default subscriber does
//! (`AWS_LAMBDA_LOG_FORMAT=JSON` for JSON lines, `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else
//! INFO; every line carries the invocation's request id through the runtime's span), with one
//! difference: the AWS SDK, its HTTP stack and TLS never log below INFO, whatever the level,
//! because their debug and trace output can include request payloads, which hold password hashes
//! and token hashes; nor does the Lambda runtime, whose TRACE output includes each raw event
//! (passwords, tokens, the API key). Nothing in this crate logs a password, token, hash or
//! secret: such values are wrapped in `secrecy` types or never handed to a log macro.

use std::str::FromStr;

use tracing::Subscriber;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// Crates whose verbose output may carry request or response bodies.
const CAPPED_TARGETS: &[&str] = &[
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_sdk_dynamodb",
    "aws_sdk_secretsmanager",
    "aws_config",
    "aws_runtime",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
];

/// The filter for `level`, with [`CAPPED_TARGETS`] held at INFO or less.
pub fn filter(level: LevelFilter) -> EnvFilter {
    let cap = level.min(LevelFilter::INFO);
    CAPPED_TARGETS.iter().fold(EnvFilter::default().add_directive(level.into()), |filter, target| {
        match format!("{target}={cap}").parse() {
            Ok(directive) => filter.add_directive(directive),
            Err(_) => filter,
        }
    })
}

/// The subscriber the functions use, writing to `writer` (tests capture logs this way).
pub fn subscriber<W>(writer: W, level: LevelFilter, json: bool) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder =
        tracing_subscriber::fmt().with_target(false).without_time().with_env_filter(filter(level)).with_writer(writer);
    if json {
        Box::new(builder.json().finish())
    } else {
        Box::new(builder.finish())
    }
}

/// Installs the process-wide subscriber. Call once, first thing in `main`.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|level| LevelFilter::from_str(&level).ok())
        .unwrap_or(LevelFilter::INFO);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    // Ignore a second initialisation (only possible in tests).
    let _ = subscriber(std::io::stdout, level, json).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_trace_level_when_filtering_then_sdk_targets_are_capped_at_info() {
        let text = filter(LevelFilter::TRACE).to_string();
        assert!(text.contains("aws_smithy_runtime=info"), "{text}");
        assert!(text.contains("lambda_runtime=info") && text.contains("lambda_http=info"), "{text}");
        assert!(text.contains("trace"), "{text}");
    }

    #[test]
    fn given_warn_level_when_filtering_then_caps_do_not_raise_sdk_verbosity() {
        let text = filter(LevelFilter::WARN).to_string();
        assert!(text.contains("hyper=warn") && !text.contains("=info"), "{text}");
    }
}
