//! IAM, enforced locally: every AWS call a function makes is checked against that function's own
//! statements in template.yaml before it reaches an emulator.
//!
//! Neither DynamoDB Local nor moto evaluates IAM, so without this a missing permission only shows
//! once deployed. The check works on the template as CloudFormation receives it: the SAM
//! transform ([`transform`]) turns each function's `Policies` (policy templates included) into an
//! `AWS::IAM::Role`; [`Policies`] resolves the role's statements against a local stack's
//! resources; [`authorizations`] says which actions, resources and condition keys AWS authorises a
//! request with; the `iam-rs` evaluator decides; [`IamProxy`] sits between the functions and the
//! emulators, identifies the caller from its access key id (`<stack>.<FunctionLogicalId>`, see
//! [`crate::LocalStack::access_key_id`]), answers a denied call as AWS does and records every
//! decision ([`record`]).

mod policies;
mod proxy;
pub mod record;
mod requests;
mod transform;

pub use policies::{FunctionPolicy, Policies, StatementInfo};
pub use proxy::{IamProxy, IamProxyOptions};
pub use requests::{authorizations, Authorization, Malformed, SendEmail, Service, TableKeys};
pub use transform::transformed;
