//! The floor of init and invocation cost: a `lambda_runtime` binary that answers every event
//! with a fixed API Gateway response and does nothing else (no telemetry, no configuration, no
//! AWS client). `bench run` measures it beside the functions, at the same points, so each
//! function's init can be read against what the runtime alone costs on this machine.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

// The functions' runtime: one thread, built the same way (`shared::lambda::serve`).
fn main() -> Result<(), Error> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(lambda_runtime::run(service_fn(
        |_: LambdaEvent<Value>| async { Ok::<_, Error>(json!({"statusCode": 200})) },
    )))
}
