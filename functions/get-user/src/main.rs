//! `GET /users/{id}`: wiring only; the logic is in `handler.rs`.

fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve::<get_user::Deps>(env!("CARGO_CRATE_NAME"))
}
