//! `POST /register`: wiring only; the logic is in `handler.rs`.

use std::sync::Arc;

use lambda_http::Error;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::telemetry::init(env!("CARGO_CRATE_NAME"));
    let config = shared::Config::from_env()?;
    let aws = shared::aws::sdk_config().await;
    let deps = Arc::new(register::Deps::new(&config, shared::aws::dynamodb(&aws)));
    shared::lambda::run(move |req| {
        let deps = deps.clone();
        async move { register::handle(req, &deps).await }
    })
    .await
}
