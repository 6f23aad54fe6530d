//! `POST /login`: wiring only; the logic is in `handler.rs`.

fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve::<login::Deps>(env!("CARGO_CRATE_NAME"))
}
