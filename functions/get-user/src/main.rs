//! Wiring only; the logic is in `handler.rs`.

use std::sync::Arc;

use lambda_http::Error;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::telemetry::init(env!("CARGO_CRATE_NAME"));
    let config = shared::Config::from_env()?;
    let aws = shared::aws::sdk_config().await;
    let deps = get_user::Deps::new(&config, shared::aws::dynamodb(&aws), shared::aws::secrets_manager(&aws))?;
    // Read the signing key during init; a failure here is retried by the first request.
    deps.tokens.keys().prefetch().await;
    let deps = Arc::new(deps);
    shared::lambda::run(move |req| {
        let deps = deps.clone();
        async move { get_user::handle(req, &deps).await }
    })
    .await
}
