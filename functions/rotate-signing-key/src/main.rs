//! The signing key ring's rotation function: wiring only; the logic is in `handler.rs`.

fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve_events::<rotate_signing_key::Deps>(env!("CARGO_CRATE_NAME"))
}
