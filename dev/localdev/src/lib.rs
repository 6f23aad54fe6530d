//! Local development tooling driven by `template.yaml`, so the local stack cannot drift from the
//! deployed one.
//!
//! - [`Template`] parses the SAM template (CloudFormation short-form tags included) and resolves
//!   parameter values from their defaults plus a `sam deploy --parameter-overrides` style string.
//! - [`Template::table_definition`] / [`Template::create_table`] create the DynamoDB table exactly
//!   as declared (keys, indexes, billing mode, TTL).
//! - [`Template::routes`] / [`Template::api`] describe the REST API: routes, throttling, usage plan,
//!   CORS, gateway responses and access-log format; [`Template::web_acl`] the AWS WAF rate-based
//!   rules in front of its stage; [`gateway`] serves them as a local API Gateway emulator in front
//!   of `cargo lambda watch`.
//! - [`StackResources`] creates a local stack's tables and secrets (named after the stack, see
//!   [`LocalStack`]) and [`Template::lambda_environment`] gives each function the environment
//!   Lambda would give it.
//! - [`iam`] enforces each function's IAM statements on its calls to the emulators; [`outbox`]
//!   holds the mail SES accepted through it.
//! - [`secret`] creates secrets the way `GenerateSecretString` would; [`ses`] the identity mail
//!   is sent from.
//! - [`stream`] feeds a table's stream to a function as Lambda's event source mapping does;
//!   [`rotation`] runs a secret's rotation function as Secrets Manager does.

pub mod api;
pub mod environment;
mod error;
pub mod gateway;
pub mod iam;
mod intrinsics;
pub mod outbox;
mod params;
pub mod rotation;
pub mod runtime;
pub mod secret;
pub mod ses;
pub mod stack;
pub mod stream;
pub mod table;
mod template;

pub use api::{
    Api, ByteMatch, Cors, GatewayResponseConfig, HeaderSource, MethodSetting, PositionalConstraint, Quota, QuotaPeriod,
    RateRule, Route, TextTransformation, Throttle, UsagePlan, WebAcl,
};
pub use environment::FunctionSpec;
pub use error::{Error, Result};
pub use params::parse_overrides;
pub use stack::{LocalStack, StackResources};
pub use table::TableDefinition;
pub use template::Template;
