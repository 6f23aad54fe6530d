//! Local development tooling driven by `template.yaml`, so the local stack cannot drift from the
//! deployed one.
//!
//! - [`Template`] parses the SAM template (CloudFormation short-form tags included) and resolves
//!   parameter values from their defaults plus a `sam deploy --parameter-overrides` style string.
//! - [`Template::table_definition`] / [`Template::create_table`] create the DynamoDB table exactly
//!   as declared (keys, indexes, billing mode, TTL).
//! - [`Template::routes`] / [`Template::api`] describe the REST API: routes, throttling, usage plan,
//!   CORS and gateway responses; [`gateway`] serves them as a local API Gateway emulator in front
//!   of `cargo lambda watch`.
//! - [`Template::function_environment`] resolves the functions' environment variables.
//! - [`secret`] creates the signing-key secret the way `GenerateSecretString` would.

pub mod api;
pub mod environment;
mod error;
pub mod gateway;
mod intrinsics;
mod params;
pub mod secret;
pub mod table;
mod template;

pub use api::{
    Api, Cors, GatewayResponseConfig, HeaderSource, MethodSetting, Quota, QuotaPeriod, Route, Throttle, UsagePlan,
};
pub use environment::LocalNames;
pub use error::{Error, Result};
pub use params::parse_overrides;
pub use table::TableDefinition;
pub use template::Template;
