//! `POST /logout/all`: wiring only; the logic is in `handler.rs`.

fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve::<logout_all::Deps>(env!("CARGO_CRATE_NAME"))
}
