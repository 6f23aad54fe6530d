//! Loading `template.yaml` and resolving its parameters.

use std::collections::BTreeMap;
use std::path::Path;

use serde_norway::{Mapping, Value};

use crate::error::{template_error, Error, Result};
use crate::intrinsics::Resolver;
use crate::params::{parse_overrides, resolve_parameters};
use crate::stack::StackResources;

/// A parsed SAM template with its parameter values resolved.
///
/// Parameter values are the declared defaults overridden by a `sam deploy --parameter-overrides`
/// style string; every value is checked against `AllowedValues`, `MinValue`/`MaxValue` and
/// `MinLength`/`MaxLength`. Pseudo parameters resolve to `us-east-1` (see [`Template::with_region`]),
/// account `123456789012` and stack name `local`.
#[derive(Debug, Clone)]
pub struct Template {
    doc: Mapping,
    parameters: BTreeMap<String, String>,
    region: String,
    account_id: String,
    stack_name: String,
}

impl Template {
    /// Loads a template with every parameter at its default.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_with_overrides(path, "")
    }

    /// Loads a template with `overrides` (`"Name=Value Name2=Value2"`) applied to the defaults.
    /// Unknown parameter names and values violating the declared constraints are errors.
    pub fn load_with_overrides(path: impl AsRef<Path>, overrides: &str) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_owned(), source })?;
        Self::from_yaml(&text, overrides)
    }

    /// Parses template text; see [`Template::load_with_overrides`].
    pub fn from_yaml(yaml: &str, overrides: &str) -> Result<Self> {
        let doc: Mapping = serde_norway::from_str(yaml)?;
        let declared = doc.get("Parameters").and_then(Value::as_mapping);
        let parameters = resolve_parameters(declared, &parse_overrides(overrides)?)?;
        Ok(Self {
            doc,
            parameters,
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            stack_name: "local".into(),
        })
    }

    /// Sets the region used for `AWS::Region` and in generated ARNs.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// The value of one parameter (after overrides).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).map(String::as_str)
    }

    /// All parameter values (after overrides).
    pub fn parameters(&self) -> &BTreeMap<String, String> {
        &self.parameters
    }

    /// `AWS::Region` as resolved locally.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// `AWS::AccountId` as resolved locally.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// `AWS::StackName` as resolved locally.
    pub fn stack_name(&self) -> &str {
        &self.stack_name
    }

    /// A top-level section (`Parameters`, `Globals`, `Resources`, ...).
    pub(crate) fn section(&self, name: &str) -> Option<&Mapping> {
        self.doc.get(name).and_then(Value::as_mapping)
    }

    /// A resource by logical id (the whole resource: `Type`, `Properties`, `Metadata`, ...).
    pub fn resource(&self, logical_id: &str) -> Option<&Value> {
        self.section("Resources")?.get(logical_id)
    }

    /// Every resource whose `Condition` (if any) holds: logical id and `Type`, in template order.
    pub fn resources(&self) -> Result<Vec<(String, String)>> {
        let no_names = BTreeMap::new();
        let resolver = self.resolver(&no_names);
        let mut found = Vec::new();
        for (id, resource) in self.section("Resources").into_iter().flatten() {
            if let Some(cond) = resource.get("Condition").and_then(Value::as_str) {
                if !resolver.condition(cond)? {
                    continue;
                }
            }
            let id = id.as_str().ok_or_else(|| template_error("resource ids must be strings"))?;
            let kind = resource.get("Type").and_then(Value::as_str).unwrap_or_default();
            found.push((id.to_owned(), kind.to_owned()));
        }
        Ok(found)
    }

    /// The ARN of a stack's table, secret or queue (`None` for other kinds of resource).
    pub fn resource_arn(&self, logical_id: &str, resources: &StackResources) -> Result<Option<String>> {
        let kind = self.resource(logical_id).and_then(|r| r.get("Type")).and_then(Value::as_str);
        let Some(reference) = resources.reference(logical_id) else { return Ok(None) };
        Ok(match kind {
            Some(crate::stack::TABLE_TYPE) => {
                Some(format!("arn:aws:dynamodb:{}:{}:table/{reference}", self.region, self.account_id))
            }
            Some(crate::stack::SECRET_TYPE) => Some(reference.to_owned()),
            Some("AWS::SQS::Queue") => Some(format!("arn:aws:sqs:{}:{}:{reference}", self.region, self.account_id)),
            _ => None,
        })
    }

    /// Logical ids of the resources of one `Type` whose `Condition` (if any) holds, in template order.
    pub fn resources_of_type(&self, kind: &str) -> Result<Vec<String>> {
        Ok(self.resources()?.into_iter().filter(|(_, k)| k == kind).map(|(id, _)| id).collect())
    }

    /// The only resource of `kind`, or an error naming what was found.
    pub(crate) fn single_resource_of_type(&self, kind: &str) -> Result<String> {
        let mut ids = self.resources_of_type(kind)?;
        match ids.len() {
            1 => Ok(ids.remove(0)),
            0 => Err(template_error(format!("no {kind} resource"))),
            _ => Err(template_error(format!("more than one {kind} resource: {ids:?}"))),
        }
    }

    /// Resources SAM generates from others (API keys, usage plans, stages, roles) that `!Ref` may name.
    pub(crate) fn is_generated_resource(&self, logical_id: &str) -> bool {
        ["ApiKey", "UsagePlan", "UsagePlanKey", "Deployment", "Stage", "Role"].iter().any(|suffix| {
            logical_id.strip_suffix(suffix).is_some_and(|base| !base.is_empty() && self.resource_prefix_exists(base))
        })
    }

    fn resource_prefix_exists(&self, prefix: &str) -> bool {
        self.section("Resources")
            .into_iter()
            .flatten()
            .filter_map(|(id, _)| id.as_str())
            .any(|id| prefix.starts_with(id))
    }

    /// A resolver using `names` (logical id → physical name) for resource references.
    pub(crate) fn resolver<'a>(&'a self, names: &'a BTreeMap<String, String>) -> Resolver<'a> {
        Resolver { template: self, names }
    }

    /// `Properties` of a resource merged over `Globals.<section>` (maps merge deeply, the resource wins).
    pub(crate) fn properties_with_globals(&self, logical_id: &str, globals: &str) -> Mapping {
        let mut merged = self
            .section("Globals")
            .and_then(|g| g.get(globals))
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        if let Some(props) = self.resource(logical_id).and_then(|r| r.get("Properties")).and_then(Value::as_mapping) {
            merge(&mut merged, props);
        }
        merged
    }
}

fn merge(base: &mut Mapping, over: &Mapping) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(Value::Mapping(b)), Value::Mapping(o)) if !is_intrinsic_map(o) => merge(b, o),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

fn is_intrinsic_map(map: &Mapping) -> bool {
    map.len() == 1 && map.keys().next().and_then(Value::as_str).is_some_and(|k| k == "Ref" || k.starts_with("Fn::"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_globals_deeply() {
        let t = Template::from_yaml(
            "Globals:\n  Function:\n    Timeout: 10\n    Environment: {Variables: {A: '1', B: '2'}}\n\
             Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Timeout: 3\n      \
             Environment: {Variables: {B: '3'}}\n",
            "",
        )
        .unwrap();
        let p = t.properties_with_globals("F", "Function");
        let expected: Mapping =
            serde_norway::from_str("{Timeout: 3, Environment: {Variables: {A: '1', B: '3'}}}").unwrap();
        assert_eq!(p, expected);
    }

    #[test]
    fn resource_conditions_filter() {
        let t = Template::from_yaml(
            "Parameters: {On: {Type: String, Default: 'no'}}\n\
             Conditions: {Enabled: !Equals [!Ref On, 'yes']}\n\
             Resources:\n  A: {Type: X}\n  B: {Type: X, Condition: Enabled}\n",
            "",
        )
        .unwrap();
        assert_eq!(t.resources_of_type("X").unwrap(), vec!["A"]);
        let t = Template::from_yaml(
            "Parameters: {On: {Type: String, Default: 'no'}}\n\
             Conditions: {Enabled: !Equals [!Ref On, 'yes']}\n\
             Resources:\n  A: {Type: X}\n  B: {Type: X, Condition: Enabled}\n",
            "On=yes",
        )
        .unwrap();
        assert_eq!(t.resources_of_type("X").unwrap(), vec!["A", "B"]);
    }
}
