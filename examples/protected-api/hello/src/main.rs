//! `GET /hello` of the protected example API: wiring only; the logic is in `handler.rs`.

fn main() -> Result<(), lambda_http::Error> {
    protected_hello::serve()
}
