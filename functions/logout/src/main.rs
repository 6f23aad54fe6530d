//! `POST /logout`: wiring only; the logic is in `handler.rs`.

fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve::<logout::Deps>(env!("CARGO_CRATE_NAME"))
}
