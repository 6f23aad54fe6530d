//! `DELETE /users/me`: wiring only; the logic is in `handler.rs`.

fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve::<delete_user::Deps>(env!("CARGO_CRATE_NAME"))
}
