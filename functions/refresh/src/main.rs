//! `POST /refresh`: wiring only; the logic is in `handler.rs`.

fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve::<refresh::Deps>(env!("CARGO_CRATE_NAME"))
}
