//! The template's secrets: generated locally the way `GenerateSecretString` would, or its literal `SecretString`.

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use aws_sdk_secretsmanager::Client;

use crate::error::{template_error, Error, Result};
use crate::params::scalar_string;
use crate::template::Template;

const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// The `GenerateSecretString` (or literal `SecretString`) of an `AWS::SecretsManager::Secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    /// Logical id of the secret resource.
    pub logical_id: String,
    /// `SecretString`, when the template gives a literal value instead of generating one.
    pub literal: Option<String>,
    /// `PasswordLength` (default 32).
    pub password_length: usize,
    /// Character classes and exclusions, as in `GenerateSecretString`.
    pub exclude_punctuation: bool,
    /// `ExcludeNumbers`.
    pub exclude_numbers: bool,
    /// `ExcludeUppercase`.
    pub exclude_uppercase: bool,
    /// `ExcludeLowercase`.
    pub exclude_lowercase: bool,
    /// `ExcludeCharacters`.
    pub exclude_characters: String,
    /// `IncludeSpace`.
    pub include_space: bool,
    /// `RequireEachIncludedType` (default true).
    pub require_each_included_type: bool,
    /// `SecretStringTemplate` + `GenerateStringKey`: the generated value goes into this JSON object.
    pub json_template: Option<(String, String)>,
}

impl Template {
    /// The `GenerateSecretString` (or `SecretString`) of every `AWS::SecretsManager::Secret`.
    pub fn secret_specs(&self) -> Result<Vec<SecretSpec>> {
        self.resources_of_type(crate::stack::SECRET_TYPE)?.into_iter().map(|id| self.secret_spec_of(&id)).collect()
    }

    /// The template's only `AWS::SecretsManager::Secret`.
    pub fn secret_spec(&self) -> Result<SecretSpec> {
        self.secret_spec_of(&self.single_resource_of_type(crate::stack::SECRET_TYPE)?)
    }

    fn secret_spec_of(&self, id: &str) -> Result<SecretSpec> {
        let names = BTreeMap::new();
        let raw = self.resource(id).and_then(|r| r.get("Properties")).cloned().unwrap_or_default();
        let props = self.resolver(&names).resolve(&raw)?.unwrap_or_default();
        let gen = props.get("GenerateSecretString");
        let get = |key: &str| gen.and_then(|g| g.get(key)).and_then(scalar_string);
        let flag = |key: &str, default: bool| get(key).map_or(default, |v| v == "true");
        let literal = props.get("SecretString").and_then(scalar_string);
        if gen.is_none() && literal.is_none() {
            return Err(template_error(format!("{id} has neither SecretString nor GenerateSecretString")));
        }
        let json_template = match (get("SecretStringTemplate"), get("GenerateStringKey")) {
            (Some(t), Some(k)) => Some((t, k)),
            _ => None,
        };
        Ok(SecretSpec {
            logical_id: id.to_owned(),
            literal,
            password_length: get("PasswordLength")
                .map(|v| v.parse().map_err(|_| template_error("PasswordLength must be a number")))
                .transpose()?
                .unwrap_or(32),
            exclude_punctuation: flag("ExcludePunctuation", false),
            exclude_numbers: flag("ExcludeNumbers", false),
            exclude_uppercase: flag("ExcludeUppercase", false),
            exclude_lowercase: flag("ExcludeLowercase", false),
            exclude_characters: get("ExcludeCharacters").unwrap_or_default(),
            include_space: flag("IncludeSpace", false),
            require_each_included_type: flag("RequireEachIncludedType", true),
            json_template,
        })
    }
}

fn random_index(bound: usize) -> Result<usize> {
    // Rejection sampling over u32 keeps the choice uniform.
    let bound32 = u32::try_from(bound).map_err(|_| template_error("alphabet too large"))?;
    let zone = u32::MAX - (u32::MAX % bound32);
    loop {
        let mut buf = [0u8; 4];
        getrandom::getrandom(&mut buf).map_err(|e| Error::Aws(format!("random source: {e}")))?;
        let n = u32::from_le_bytes(buf);
        if n < zone {
            return Ok((n % bound32) as usize);
        }
    }
}

impl SecretSpec {
    fn classes(&self) -> Vec<Vec<char>> {
        let keep = |set: &str| -> Vec<char> { set.chars().filter(|c| !self.exclude_characters.contains(*c)).collect() };
        let mut classes = Vec::new();
        if !self.exclude_lowercase {
            classes.push(keep("abcdefghijklmnopqrstuvwxyz"));
        }
        if !self.exclude_uppercase {
            classes.push(keep("ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
        }
        if !self.exclude_numbers {
            classes.push(keep("0123456789"));
        }
        if !self.exclude_punctuation {
            classes.push(keep(PUNCTUATION));
        }
        if self.include_space {
            classes.push(keep(" "));
        }
        classes.retain(|c| !c.is_empty());
        classes
    }

    /// A fresh random value (or the literal `SecretString`), shaped as the template asks.
    pub fn generate(&self) -> Result<String> {
        if let Some(literal) = &self.literal {
            return Ok(literal.clone());
        }
        let classes = self.classes();
        let alphabet: Vec<char> = classes.concat();
        if alphabet.is_empty() || self.password_length == 0 {
            return Err(template_error("GenerateSecretString allows no characters"));
        }
        let password = loop {
            let candidate = (0..self.password_length)
                .map(|_| random_index(alphabet.len()).map(|i| alphabet[i]))
                .collect::<Result<String>>()?;
            let complete = !self.require_each_included_type
                || self.password_length < classes.len()
                || classes.iter().all(|class| candidate.chars().any(|c| class.contains(&c)));
            if complete {
                break candidate;
            }
        };
        match &self.json_template {
            None => Ok(password),
            Some((template, key)) => {
                let mut object: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(template).map_err(|e| template_error(format!("SecretStringTemplate: {e}")))?;
                object.insert(key.clone(), serde_json::Value::String(password));
                Ok(serde_json::Value::Object(object).to_string())
            }
        }
    }

    /// Creates the secret `name` with a generated value unless it exists. Returns whether it created it.
    pub async fn ensure(&self, client: &Client, name: &str) -> Result<bool> {
        match client.describe_secret().secret_id(name).send().await {
            Ok(_) => return Ok(false),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(Error::Aws(format!("DescribeSecret {name}: {}", DisplayErrorContext(e)))),
        }
        let created = client.create_secret().name(name).secret_string(self.generate()?).send().await;
        match created {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_exists_exception()) => Ok(false),
            Err(e) => Err(Error::Aws(format!("CreateSecret {name}: {}", DisplayErrorContext(e)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_alphanumeric_of_declared_length() {
        let t = Template::from_yaml(
            "Resources:\n  S:\n    Type: AWS::SecretsManager::Secret\n    Properties:\n      \
             GenerateSecretString: {PasswordLength: 64, ExcludePunctuation: true}\n",
            "",
        )
        .unwrap();
        let spec = t.secret_spec().unwrap();
        let a = spec.generate().unwrap();
        let b = spec.generate().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(a.chars().any(|c| c.is_ascii_digit()) && a.chars().any(|c| c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn json_template_and_exclusions() {
        let t = Template::from_yaml(
            "Resources:\n  S:\n    Type: AWS::SecretsManager::Secret\n    Properties:\n      \
             GenerateSecretString: {PasswordLength: 8, ExcludeNumbers: true, ExcludeUppercase: true, \
             ExcludePunctuation: true, ExcludeCharacters: abc, SecretStringTemplate: '{\"u\":\"x\"}', \
             GenerateStringKey: p}\n",
            "",
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&t.secret_spec().unwrap().generate().unwrap()).unwrap();
        let p = v["p"].as_str().unwrap();
        assert_eq!(v["u"], "x");
        assert_eq!(p.len(), 8);
        assert!(p.chars().all(|c| c.is_ascii_lowercase() && !"abc".contains(c)));
    }
}
