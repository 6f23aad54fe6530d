//! Evaluation of the CloudFormation intrinsic functions the template uses, in both the YAML
//! short form (`!Ref X`, `!Sub ...`) and the long form (`{Ref: X}`, `{Fn::Sub: ...}`).
//!
//! Supported: `Ref` (parameters, pseudo parameters, resources), `Fn::Sub`, `Fn::GetAtt`,
//! `Fn::Join`, `Fn::Select`, `Fn::Split`, `Fn::If`, `Fn::Equals`, `Fn::And`, `Fn::Or`,
//! `Fn::Not`, `Condition`, `Fn::FindInMap`, `Fn::Base64`. Anything else is an error.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_norway::{Mapping, Value};

use crate::error::{template_error, Result};
use crate::params::{is_list_type, scalar_string};
use crate::template::Template;

/// Resolves template values against parameter values and physical resource names.
pub(crate) struct Resolver<'a> {
    pub template: &'a Template,
    /// Physical names by logical id; a resource not listed resolves to its logical id.
    pub names: &'a BTreeMap<String, String>,
}

/// Splits an intrinsic function call into its name (`Ref`, `Fn::Sub`, ...) and argument.
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let name = if name == "Ref" || name == "Condition" { name.to_owned() } else { format!("Fn::{name}") };
            Some((name, &tagged.value))
        }
        Value::Mapping(map) if map.len() == 1 => {
            let (key, arg) = map.iter().next()?;
            let key = key.as_str()?;
            (key == "Ref" || key.starts_with("Fn::")).then(|| (key.to_owned(), arg))
        }
        _ => None,
    }
}

/// The logical id a `!Ref` names, unresolved.
pub(crate) fn ref_target(value: &Value) -> Option<String> {
    match intrinsic(value)? {
        (name, Value::String(target)) if name == "Ref" => Some(target.clone()),
        _ => None,
    }
}

/// The resource and attribute of a `!GetAtt`, unresolved.
pub(crate) fn get_att(value: &Value) -> Option<(String, String)> {
    let (name, arg) = intrinsic(value)?;
    if name != "Fn::GetAtt" {
        return None;
    }
    match arg {
        Value::String(path) => path.split_once('.').map(|(r, a)| (r.to_owned(), a.to_owned())),
        Value::Sequence(parts) => match parts.as_slice() {
            [Value::String(r), Value::String(a)] => Some((r.clone(), a.clone())),
            _ => None,
        },
        _ => None,
    }
}

impl Resolver<'_> {
    /// Resolves a value deeply. `None` means `AWS::NoValue` (the key or element disappears).
    pub fn resolve(&self, value: &Value) -> Result<Option<Value>> {
        if let Some((name, arg)) = intrinsic(value) {
            return self.call(&name, arg);
        }
        Ok(Some(match value {
            Value::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(v) = self.resolve(item)? {
                        out.push(v);
                    }
                }
                Value::Sequence(out)
            }
            Value::Mapping(map) => {
                let mut out = Mapping::new();
                for (k, v) in map {
                    if let Some(v) = self.resolve(v)? {
                        out.insert(k.clone(), v);
                    }
                }
                Value::Mapping(out)
            }
            other => other.clone(),
        }))
    }

    /// Resolves a value that must end up a scalar, returned as a string.
    pub fn string(&self, value: &Value) -> Result<String> {
        let resolved = self.resolve(value)?;
        resolved
            .as_ref()
            .and_then(scalar_string)
            .ok_or_else(|| template_error(format!("expected a scalar, got {value:?}")))
    }

    fn call(&self, name: &str, arg: &Value) -> Result<Option<Value>> {
        let s = |v: String| Ok(Some(Value::String(v)));
        match name {
            "Ref" => {
                let target = arg.as_str().ok_or_else(|| template_error("!Ref needs a name"))?;
                self.reference(target)
            }
            "Fn::GetAtt" => {
                let (res, attr) = match arg {
                    Value::String(path) => path
                        .split_once('.')
                        .map(|(a, b)| (a.to_owned(), b.to_owned()))
                        .ok_or_else(|| template_error(format!("bad !GetAtt {path}")))?,
                    Value::Sequence(parts) if parts.len() == 2 => (self.string(&parts[0])?, self.string(&parts[1])?),
                    other => return Err(template_error(format!("bad !GetAtt {other:?}"))),
                };
                s(self.get_att(&res, &attr)?)
            }
            "Fn::Sub" => match arg {
                Value::String(text) => s(self.substitute(text, &Mapping::new())?),
                Value::Sequence(parts) if parts.len() == 2 => {
                    let text = parts[0].as_str().ok_or_else(|| template_error("bad !Sub"))?;
                    let vars = parts[1].as_mapping().ok_or_else(|| template_error("bad !Sub"))?;
                    s(self.substitute(text, vars)?)
                }
                other => Err(template_error(format!("bad !Sub {other:?}"))),
            },
            "Fn::Join" => {
                let [delim, list] = self.args::<2>(arg, "Join")?;
                let delim = self.string(&delim)?;
                let items = self.list(&list)?;
                let parts: Result<Vec<String>> = items.iter().map(|i| self.string(i)).collect();
                s(parts?.join(&delim))
            }
            "Fn::Select" => {
                let [index, list] = self.args::<2>(arg, "Select")?;
                let index: usize =
                    self.string(&index)?.parse().map_err(|_| template_error("!Select index must be a number"))?;
                let items = self.list(&list)?;
                let item = items.get(index).ok_or_else(|| template_error("!Select index out of range"))?;
                Ok(Some(item.clone()))
            }
            "Fn::Split" => {
                let [delim, text] = self.args::<2>(arg, "Split")?;
                let (delim, text) = (self.string(&delim)?, self.string(&text)?);
                let parts = text.split(delim.as_str()).map(|p| Value::String(p.into()));
                Ok(Some(Value::Sequence(parts.collect())))
            }
            "Fn::If" => {
                let [cond, then, otherwise] = self.args::<3>(arg, "If")?;
                let cond = cond.as_str().ok_or_else(|| template_error("!If needs a condition name"))?;
                let branch = if self.condition(cond)? { then } else { otherwise };
                self.resolve(&branch)
            }
            "Fn::Equals" | "Fn::And" | "Fn::Or" | "Fn::Not" | "Condition" => {
                Ok(Some(Value::Bool(self.boolean(name, arg)?)))
            }
            "Fn::FindInMap" => {
                let [map, top, second] = self.args::<3>(arg, "FindInMap")?;
                let (map, top, second) = (self.string(&map)?, self.string(&top)?, self.string(&second)?);
                let found = self
                    .template
                    .section("Mappings")
                    .and_then(|m| m.get(map.as_str()))
                    .and_then(|m| m.get(top.as_str()))
                    .and_then(|m| m.get(second.as_str()))
                    .ok_or_else(|| template_error(format!("!FindInMap {map}.{top}.{second} not found")))?;
                self.resolve(found)
            }
            "Fn::Base64" => s(base64::engine::general_purpose::STANDARD.encode(self.string(arg)?)),
            other => Err(template_error(format!("intrinsic {other} is not supported locally"))),
        }
    }

    /// Resolves an argument list of exactly `N` elements (each still unresolved).
    fn args<const N: usize>(&self, arg: &Value, name: &str) -> Result<[Value; N]> {
        let items = arg
            .as_sequence()
            .filter(|items| items.len() == N)
            .ok_or_else(|| template_error(format!("!{name} needs {N} arguments")))?;
        Ok(std::array::from_fn(|i| items[i].clone()))
    }

    fn list(&self, value: &Value) -> Result<Vec<Value>> {
        match self.resolve(value)? {
            Some(Value::Sequence(items)) => Ok(items),
            other => Err(template_error(format!("expected a list, got {other:?}"))),
        }
    }

    fn reference(&self, target: &str) -> Result<Option<Value>> {
        let t = self.template;
        let s = |v: &str| Ok(Some(Value::String(v.to_owned())));
        if let Some(value) = t.parameter(target) {
            let spec = t.section("Parameters").and_then(|p| p.get(target));
            if spec.is_some_and(is_list_type) {
                let items = value.split(',').map(|v| Value::String(v.trim().to_owned()));
                return Ok(Some(Value::Sequence(items.collect())));
            }
            return s(value);
        }
        match target {
            "AWS::NoValue" => Ok(None),
            "AWS::Region" => s(t.region()),
            "AWS::AccountId" => s(t.account_id()),
            "AWS::StackName" => s(t.stack_name()),
            "AWS::StackId" => {
                s(&format!("arn:aws:cloudformation:{}:{}:stack/{}/local", t.region(), t.account_id(), t.stack_name()))
            }
            "AWS::Partition" => s("aws"),
            "AWS::URLSuffix" => s("amazonaws.com"),
            "AWS::NotificationARNs" => Ok(Some(Value::Sequence(Vec::new()))),
            _ if t.resource(target).is_some() || t.is_generated_resource(target) => {
                s(self.names.get(target).map_or(target, String::as_str))
            }
            _ => Err(template_error(format!("!Ref to unknown name {target}"))),
        }
    }

    fn get_att(&self, resource: &str, attr: &str) -> Result<String> {
        let t = self.template;
        let kind = t
            .resource(resource)
            .and_then(|r| r.get("Type"))
            .and_then(Value::as_str)
            .ok_or_else(|| template_error(format!("!GetAtt to unknown resource {resource}")))?;
        let name = self.names.get(resource).map_or(resource, String::as_str);
        let (region, account) = (t.region(), t.account_id());
        Ok(match (kind, attr) {
            ("AWS::DynamoDB::Table", "Arn") => {
                format!("arn:aws:dynamodb:{region}:{account}:table/{name}")
            }
            ("AWS::DynamoDB::Table", "StreamArn") => {
                format!("arn:aws:dynamodb:{region}:{account}:table/{name}/stream/local")
            }
            ("AWS::SecretsManager::Secret", "Id") => name.to_owned(),
            ("AWS::SQS::Queue", "Arn") => format!("arn:aws:sqs:{region}:{account}:{name}"),
            ("AWS::Serverless::Function" | "AWS::Lambda::Function", "Arn") => {
                format!("arn:aws:lambda:{region}:{account}:function:{name}")
            }
            _ => format!("arn:aws:local:{region}:{account}:{name}/{attr}"),
        })
    }

    /// `Fn::Sub`: `${Name}`, `${Resource.Attr}`, `${!Literal}` and explicit variables.
    fn substitute(&self, text: &str, vars: &Mapping) -> Result<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| template_error(format!("unterminated ${{ in !Sub {text:?}")))?;
            let var = after[..end].trim();
            if let Some(literal) = var.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = vars.get(var) {
                out.push_str(&self.string(value)?);
            } else if let Some((res, attr)) = var.split_once('.') {
                out.push_str(&self.get_att(res, attr)?);
            } else {
                match self.reference(var)? {
                    Some(v) => {
                        out.push_str(&scalar_string(&v).ok_or_else(|| template_error(format!("${{{var}}} is a list")))?)
                    }
                    None => return Err(template_error("${AWS::NoValue} inside !Sub")),
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Evaluates a named entry of the `Conditions` section.
    pub fn condition(&self, name: &str) -> Result<bool> {
        let body = self
            .template
            .section("Conditions")
            .and_then(|c| c.get(name))
            .ok_or_else(|| template_error(format!("unknown condition {name}")))?;
        self.truth(body)
    }

    fn truth(&self, value: &Value) -> Result<bool> {
        if let Value::Mapping(map) = value {
            if let (1, Some(arg)) = (map.len(), map.get("Condition")) {
                return self.boolean("Condition", arg);
            }
        }
        match intrinsic(value) {
            Some((name, arg)) => self.boolean(&name, arg),
            None => match value {
                Value::Bool(b) => Ok(*b),
                other => Err(template_error(format!("expected a condition, got {other:?}"))),
            },
        }
    }

    fn boolean(&self, name: &str, arg: &Value) -> Result<bool> {
        let items = || arg.as_sequence().ok_or_else(|| template_error(format!("{name} needs a list")));
        match name {
            "Condition" => self.condition(arg.as_str().ok_or_else(|| template_error("bad Condition"))?),
            "Fn::Equals" => {
                let [a, b] = self.args::<2>(arg, "Equals")?;
                Ok(self.resolve(&a)?.as_ref().and_then(scalar_string)
                    == self.resolve(&b)?.as_ref().and_then(scalar_string))
            }
            "Fn::And" => items()?.iter().try_fold(true, |acc, c| Ok(acc && self.truth(c)?)),
            "Fn::Or" => items()?.iter().try_fold(false, |acc, c| Ok(acc || self.truth(c)?)),
            "Fn::Not" => {
                let [c] = self.args::<1>(arg, "Not")?;
                Ok(!self.truth(&c)?)
            }
            other => Err(template_error(format!("{other} is not a condition function"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"
Parameters:
  Stage: {Type: String, Default: v1}
  Origins: {Type: CommaDelimitedList, Default: "a, b"}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  NotProd: !Not [!Condition IsProd]
Mappings:
  M: {v1: {Size: "3"}}
Resources:
  Table: {Type: AWS::DynamoDB::Table}
  Secret: {Type: AWS::SecretsManager::Secret}
"#;

    fn eval(template: &Template, yaml: &str) -> Option<Value> {
        let names = BTreeMap::from([("Table".to_owned(), "local-table".to_owned())]);
        let value: Value = serde_norway::from_str(yaml).unwrap();
        Resolver { template, names: &names }.resolve(&value).unwrap()
    }

    fn text(template: &Template, yaml: &str) -> String {
        scalar_string(&eval(template, yaml).unwrap()).unwrap()
    }

    #[test]
    fn short_and_long_forms() {
        let t = Template::from_yaml(DOC, "").unwrap();
        assert_eq!(text(&t, "!Ref Stage"), "v1");
        assert_eq!(text(&t, "{Ref: Stage}"), "v1");
        assert_eq!(text(&t, "!Ref Table"), "local-table");
        assert_eq!(text(&t, "!Ref Secret"), "Secret");
        assert_eq!(text(&t, "!Sub \"'${Stage}'-${!Lit}\""), "'v1'-${Lit}");
        assert_eq!(text(&t, "!Sub [\"${X}/${AWS::Region}\", {X: !Ref Stage}]"), "v1/us-east-1");
        assert_eq!(text(&t, "!GetAtt Table.Arn"), "arn:aws:dynamodb:us-east-1:123456789012:table/local-table");
        assert_eq!(text(&t, "{\"Fn::GetAtt\": [Table, Arn]}"), text(&t, "!Sub ${Table.Arn}"));
        assert_eq!(text(&t, "!Join [\"-\", [a, !Ref Stage]]"), "a-v1");
        assert_eq!(text(&t, "!Select [1, !Ref Origins]"), "b");
        assert_eq!(text(&t, "!Select [0, !Split [',', 'x,y']]"), "x");
        assert_eq!(text(&t, "!If [IsProd, big, small]"), "small");
        assert_eq!(text(&t, "!If [NotProd, big, small]"), "big");
        assert_eq!(text(&t, "!FindInMap [M, !Ref Stage, Size]"), "3");
        assert_eq!(eval(&t, "!Ref AWS::NoValue"), None);
        for yaml in ["!GetAtt Table.StreamArn", "{\"Fn::GetAtt\": [Table, StreamArn]}"] {
            let value: Value = serde_norway::from_str(yaml).unwrap();
            assert_eq!(get_att(&value), Some(("Table".into(), "StreamArn".into())), "{yaml}");
        }
        assert_eq!(eval(&t, "[a, !If [IsProd, b, !Ref AWS::NoValue]]"), Some(serde_norway::from_str("[a]").unwrap()));
    }

    #[test]
    fn errors_on_unknown_names_and_functions() {
        let t = Template::from_yaml(DOC, "").unwrap();
        let names = BTreeMap::new();
        let r = Resolver { template: &t, names: &names };
        for yaml in ["!Ref Nope", "!GetAtt Nope.Arn", "!ImportValue x", "!Sub '${Nope}'"] {
            let value: Value = serde_norway::from_str(yaml).unwrap();
            assert!(r.resolve(&value).is_err(), "{yaml}");
        }
    }
}
