//! Wiring only; the logic is in `handler.rs`.

use std::sync::Arc;

use lambda_http::Error;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::telemetry::init(env!("CARGO_CRATE_NAME"));
    let config = shared::Config::from_env()?;
    let aws = shared::aws::sdk_config().await;
    let deps = login::Deps::new(&config, shared::aws::dynamodb(&aws), shared::aws::secrets_manager(&aws))?;
    // Read the keys during init; a failure here is retried by the first request.
    tokio::join!(deps.services.tokens.keys().prefetch(), deps.throttle.prefetch());
    let deps = Arc::new(deps);
    shared::lambda::run(move |req| {
        let deps = deps.clone();
        async move { login::handle(req, &deps).await }
    })
    .await
}
