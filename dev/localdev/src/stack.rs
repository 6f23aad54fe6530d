//! A local stack: one deployment of the template against the emulators.
//!
//! Like CloudFormation, a stack names its resources after itself: the table declared as
//! `AuthTable` is `<stack>-AuthTable`, the secret `KeyRingSecret` is `<stack>-KeyRingSecret`.
//! Because names follow from the stack's name, anything that knows the stack (the local IAM check
//! reads it from the caller's access key id) can find its resources without a registry. What
//! `!Ref` yields is the name, except for a secret, whose `!Ref` is its ARN as on AWS; the emulator
//! chooses the ARN's random suffix, so [`StackResources`] asks for it once the secret exists.

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::error::{template_error, Error, Result};
use crate::template::Template;

pub const SECRET_TYPE: &str = "AWS::SecretsManager::Secret";
pub const TABLE_TYPE: &str = "AWS::DynamoDB::Table";

/// The name of a local stack (CloudFormation's rules: a letter, then letters, digits and hyphens,
/// at most 128 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalStack(String);

impl LocalStack {
    pub fn new(name: &str) -> Result<Self> {
        let valid = name.len() <= 128
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(Error::Override(format!(
                "stack name {name:?}: a letter, then letters, digits and hyphens (at most 128)"
            )))
        }
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// The physical name of one of the stack's resources.
    pub fn physical_name(&self, logical_id: &str) -> String {
        format!("{}-{logical_id}", self.0)
    }

    /// The access key id a function of this stack signs its AWS requests with: the stack and the
    /// function, so that the local IAM check knows whose policy applies (on AWS the key belongs
    /// to the function's role session).
    pub fn access_key_id(&self, function: &str) -> String {
        format!("{}.{function}", self.0)
    }

    /// The stack and function named by an access key id from [`LocalStack::access_key_id`].
    pub fn parse_access_key_id(access_key_id: &str) -> Option<(Self, String)> {
        let (stack, function) = access_key_id.split_once('.')?;
        let function_ok = !function.is_empty() && function.chars().all(|c| c.is_ascii_alphanumeric());
        function_ok.then(|| Self::new(stack).ok().map(|stack| (stack, function.to_owned()))).flatten()
    }
}

impl std::fmt::Display for LocalStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `!Ref` yields for each of a stack's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackResources {
    pub stack: LocalStack,
    refs: BTreeMap<String, String>,
}

impl StackResources {
    /// The stack's `!Ref` values with the ARN of each secret as given (logical id → ARN).
    pub fn new(template: &Template, stack: LocalStack, secret_arns: BTreeMap<String, String>) -> Result<Self> {
        let mut refs = BTreeMap::new();
        for (id, _) in template.resources()? {
            refs.insert(id.clone(), stack.physical_name(&id));
        }
        for id in template.resources_of_type(SECRET_TYPE)? {
            let arn = secret_arns.get(&id).ok_or_else(|| template_error(format!("no ARN for secret {id}")))?;
            refs.insert(id, arn.clone());
        }
        Ok(Self { stack, refs })
    }

    /// The resources of a stack whose secrets exist: their ARNs come from Secrets Manager.
    pub async fn discover(
        template: &Template,
        stack: LocalStack,
        secrets: &aws_sdk_secretsmanager::Client,
    ) -> Result<Self> {
        let mut arns = BTreeMap::new();
        for id in template.resources_of_type(SECRET_TYPE)? {
            let name = stack.physical_name(&id);
            let described = secrets
                .describe_secret()
                .secret_id(&name)
                .send()
                .await
                .map_err(|e| Error::Aws(format!("DescribeSecret {name}: {}", DisplayErrorContext(e))))?;
            let arn = described.arn().ok_or_else(|| Error::Aws(format!("secret {name} has no ARN")))?;
            arns.insert(id, arn.to_owned());
        }
        Self::new(template, stack, arns)
    }

    /// Creates every table and secret of the template that does not exist yet, and the identity
    /// its mail is sent from (see [`crate::ses::ensure_sender`]).
    pub async fn create(
        template: &Template,
        stack: LocalStack,
        dynamodb: &aws_sdk_dynamodb::Client,
        secrets: &aws_sdk_secretsmanager::Client,
    ) -> Result<Self> {
        for id in template.resources_of_type(TABLE_TYPE)? {
            template.table_definition_of(&id)?.ensure(dynamodb, &stack.physical_name(&id)).await?;
        }
        for spec in template.secret_specs()? {
            spec.ensure(secrets, &stack.physical_name(&spec.logical_id)).await?;
        }
        crate::ses::ensure_sender(template, secrets).await?;
        Self::discover(template, stack, secrets).await
    }

    /// What `!Ref <logical_id>` yields.
    pub fn reference(&self, logical_id: &str) -> Option<&str> {
        self.refs.get(logical_id).map(String::as_str)
    }

    /// Logical id → `!Ref` value, for the template resolver.
    pub fn refs(&self) -> &BTreeMap<String, String> {
        &self.refs
    }

    /// The logical id of the resource whose `!Ref` or ARN is `value`, if any.
    pub fn logical_id_of(&self, template: &Template, value: &str) -> Option<String> {
        self.refs.iter().find_map(|(id, reference)| {
            let arn = template.resource_arn(id, self).ok().flatten();
            (reference == value || arn.as_deref() == Some(value)).then(|| id.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_stack_when_naming_then_names_and_keys_round_trip() {
        let stack = LocalStack::new("auth-test-1").unwrap();
        assert_eq!(stack.physical_name("AuthTable"), "auth-test-1-AuthTable");
        let key = stack.access_key_id("LoginFunction");
        assert_eq!(LocalStack::parse_access_key_id(&key), Some((stack, "LoginFunction".to_owned())));
    }

    #[test]
    fn given_malformed_names_when_parsing_then_they_are_refused() {
        for name in ["", "1abc", "a_b", "a.b", &"a".repeat(129)] {
            assert!(LocalStack::new(name).is_err(), "{name:?}");
        }
        for key in ["local", "stack.", ".Fn", "st_ack.Fn", "stack.Fn-x", "AKIAIOSFODNN7EXAMPLE"] {
            assert_eq!(LocalStack::parse_access_key_id(key), None, "{key:?}");
        }
    }
}
