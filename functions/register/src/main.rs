//! `POST /register`: wiring only; the logic is in `handler.rs`.

fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve::<register::Deps>(env!("CARGO_CRATE_NAME"))
}
