//! `POST /register`: wiring only; the logic is in `handler.rs`.

use std::sync::Arc;

use lambda_http::{run, service_fn, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = shared::Config::from_env()?;
    let aws = shared::aws::sdk_config().await;
    let deps = Arc::new(register::Deps::new(&config, shared::aws::dynamodb(&aws)));
    run(service_fn(move |req| {
        let deps = deps.clone();
        async move { Ok::<_, std::convert::Infallible>(register::handle(req, &deps).await) }
    }))
    .await
}
