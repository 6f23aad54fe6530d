//! `POST /password/forgot`: wiring only; the logic is in `handler.rs`.

fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve::<password_forgot::Deps>(env!("CARGO_CRATE_NAME"))
}
