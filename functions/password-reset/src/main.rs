//! `POST /password/reset`: wiring only; the logic is in `handler.rs`.

fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve::<password_reset::Deps>(env!("CARGO_CRATE_NAME"))
}
