//! Structured logs for CloudWatch.
//!
//! Follows Lambda's advanced logging controls like the runtime's default subscriber does
//! (`AWS_LAMBDA_LOG_FORMAT=JSON` for JSON lines, `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else
//! INFO; every line carries the invocation's request id through the runtime's span), with one
//! difference: the level applies to this project's own crates only. Every other crate logs at
//! INFO at most, whatever the level: the AWS SDK's debug and trace output includes request
//! payloads and signed headers (password hashes, token hashes, the session token), and the
//! Lambda runtime's TRACE output includes each raw event (passwords, tokens, the API key); an
//! allow-list keeps a crate added later from doing the same. Nothing in this project logs a
//! password, token, hash or secret: such values are wrapped in `secrecy` types or never handed
//! to a log macro.

use std::str::FromStr;

use tracing::Subscriber;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter for `level`: `own` crates (and this one) at `level`, every other crate at INFO or less.
pub fn filter(level: LevelFilter, own: &[&str]) -> EnvFilter {
    let cap = level.min(LevelFilter::INFO);
    own.iter().chain(&[env!("CARGO_CRATE_NAME")]).fold(
        EnvFilter::default().add_directive(cap.into()),
        |filter, target| match format!("{target}={level}").parse() {
            Ok(directive) => filter.add_directive(directive),
            Err(_) => filter,
        },
    )
}

/// The subscriber the functions use, writing to `writer` (tests capture logs this way).
pub fn subscriber<W>(writer: W, level: LevelFilter, own: &[&str], json: bool) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter(level, own))
        .with_writer(writer);
    if json {
        Box::new(builder.json().finish())
    } else {
        Box::new(builder.finish())
    }
}

/// Installs the process-wide subscriber. Call once, first thing in `main`, with the function's
/// crate (`env!("CARGO_CRATE_NAME")`), whose logs follow the configured level.
pub fn init(function_crate: &'static str) {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|level| LevelFilter::from_str(&level).ok())
        .unwrap_or(LevelFilter::INFO);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    // Ignore a second initialisation (only possible in tests).
    let _ = subscriber(std::io::stdout, level, &[function_crate], json).try_init();
    tracing::debug!(%level, "logging configured");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_trace_level_when_filtering_then_only_own_crates_trace() {
        let text = filter(LevelFilter::TRACE, &["login"]).to_string();
        assert!(text.contains("login=trace") && text.contains("shared=trace"), "{text}");
        let base: Vec<_> = text.split(',').filter(|d| !d.contains('=')).collect();
        assert_eq!(base, ["info"], "{text}");
    }

    #[test]
    fn given_warn_level_when_filtering_then_nothing_is_raised_to_info() {
        let text = filter(LevelFilter::WARN, &["login"]).to_string();
        assert!(text.contains("login=warn") && !text.contains("info"), "{text}");
    }
}
