//! The table stream's consumer: wiring only; the logic is in `handler.rs`.

fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve_events::<mailer::Deps>(env!("CARGO_CRATE_NAME"))
}
