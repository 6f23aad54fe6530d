//! `GET /.well-known/jwks.json` and `GET /.well-known/openid-configuration`: wiring only; the
//! logic is in `handler.rs`.

fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve::<jwks::Deps>(env!("CARGO_CRATE_NAME"))
}
