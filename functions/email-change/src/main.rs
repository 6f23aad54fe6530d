//! `POST /email/change`: wiring only; the logic is in `handler.rs`.

fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve::<email_change::Deps>(env!("CARGO_CRATE_NAME"))
}
