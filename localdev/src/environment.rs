//! The functions' environment variables, resolved from the template for local runs.

use std::collections::BTreeMap;

use crate::error::{template_error, Result};
use crate::params::scalar_string;
use crate::template::Template;

/// Local physical names for the template's resources that functions reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalNames {
    /// Name of the local DynamoDB table (what `!Ref` of the `AWS::DynamoDB::Table` yields).
    pub table_name: String,
    /// Name of the local secret (what `!Ref` of the `AWS::SecretsManager::Secret` yields; usable as `SecretId`).
    pub secret_name: String,
}

/// AWS variables copied from the caller's environment into the env file, when set.
pub const AWS_VARIABLES: &[&str] = &[
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
];

impl Template {
    fn local_resource_names(&self, names: &LocalNames) -> Result<BTreeMap<String, String>> {
        let mut map = BTreeMap::new();
        for id in self.resources_of_type("AWS::DynamoDB::Table")? {
            map.insert(id, names.table_name.clone());
        }
        for id in self.resources_of_type("AWS::SecretsManager::Secret")? {
            map.insert(id, names.secret_name.clone());
        }
        Ok(map)
    }

    /// `Environment.Variables` of one function (`Globals.Function` merged with its own), as strings.
    pub fn function_environment_for(&self, function: &str, names: &LocalNames) -> Result<BTreeMap<String, String>> {
        if self.resource(function).is_none() {
            return Err(template_error(format!("no resource {function}")));
        }
        let props = self.properties_with_globals(function, "Function");
        let Some(vars) = props.get("Environment").and_then(|e| e.get("Variables")) else {
            return Ok(BTreeMap::new());
        };
        let resource_names = self.local_resource_names(names)?;
        let resolved = self.resolver(&resource_names).resolve(vars)?.unwrap_or_default();
        let mut env = BTreeMap::new();
        for (key, value) in resolved.as_mapping().into_iter().flatten() {
            let key = key.as_str().ok_or_else(|| template_error("variable names must be strings"))?;
            let value =
                scalar_string(value).ok_or_else(|| template_error(format!("{function}: {key} is not a scalar")))?;
            env.insert(key.to_owned(), value);
        }
        Ok(env)
    }

    /// The environment shared by all functions: `Globals.Function` variables plus every function's
    /// own. One process (`cargo lambda watch`) runs them all, so a variable that two functions set
    /// to different values is an error.
    pub fn function_environment(&self, names: &LocalNames) -> Result<BTreeMap<String, String>> {
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for function in self.resources_of_type("AWS::Serverless::Function")? {
            for (key, value) in self.function_environment_for(&function, names)? {
                match env.get(&key) {
                    Some(existing) if *existing != value => {
                        return Err(template_error(format!(
                            "{key} differs between functions; one env file cannot serve them all"
                        )))
                    }
                    _ => {
                        env.insert(key, value);
                    }
                }
            }
        }
        Ok(env)
    }

    /// Variables the Lambda service itself sets from `LoggingConfig` (`AWS_LAMBDA_LOG_FORMAT`,
    /// `AWS_LAMBDA_LOG_LEVEL`), taken from `Globals.Function`.
    pub fn runtime_environment(&self) -> Result<BTreeMap<String, String>> {
        let mut env = BTreeMap::new();
        let Some(logging) =
            self.section("Globals").and_then(|g| g.get("Function")).and_then(|f| f.get("LoggingConfig"))
        else {
            return Ok(env);
        };
        let names = BTreeMap::new();
        let logging = self.resolver(&names).resolve(logging)?.unwrap_or_default();
        if let Some(format) = logging.get("LogFormat").and_then(scalar_string) {
            if format == "JSON" {
                env.insert("AWS_LAMBDA_LOG_FORMAT".into(), format);
                if let Some(level) = logging.get("ApplicationLogLevel").and_then(scalar_string) {
                    env.insert("AWS_LAMBDA_LOG_LEVEL".into(), level);
                }
            }
        }
        Ok(env)
    }
}

/// Renders `KEY=VALUE` lines (dotenv syntax; values with spaces, quotes or `#` are double-quoted).
pub fn render_env_file(vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (key, value) in vars {
        let plain = !value.is_empty()
            && value.chars().all(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | '#' | '\\' | '$' | '`'));
        if plain {
            out.push_str(&format!("{key}={value}\n"));
        } else {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$").replace('\n', "\\n");
            out.push_str(&format!("{key}=\"{escaped}\"\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"
Parameters:
  Level: {Type: String, Default: INFO}
  Ttl: {Type: Number, Default: 900}
Globals:
  Function:
    LoggingConfig: {LogFormat: JSON, ApplicationLogLevel: !Ref Level}
    Environment:
      Variables:
        TABLE_NAME: !Ref T
        SECRET_ID: !Ref S
        TTL: !Ref Ttl
Resources:
  T: {Type: AWS::DynamoDB::Table}
  S: {Type: AWS::SecretsManager::Secret}
  F1: {Type: AWS::Serverless::Function, Properties: {Environment: {Variables: {EXTRA: x}}}}
  F2: {Type: AWS::Serverless::Function}
"#;

    fn names() -> LocalNames {
        LocalNames { table_name: "tbl".into(), secret_name: "sec".into() }
    }

    #[test]
    fn resolves_globals_and_per_function_variables() {
        let t = Template::from_yaml(DOC, "Ttl=60").unwrap();
        let env = t.function_environment(&names()).unwrap();
        assert_eq!(env["TABLE_NAME"], "tbl");
        assert_eq!(env["SECRET_ID"], "sec");
        assert_eq!(env["TTL"], "60");
        assert_eq!(env["EXTRA"], "x");
        assert!(!t.function_environment_for("F2", &names()).unwrap().contains_key("EXTRA"));
        let rt = t.runtime_environment().unwrap();
        assert_eq!(rt["AWS_LAMBDA_LOG_LEVEL"], "INFO");
        assert_eq!(rt["AWS_LAMBDA_LOG_FORMAT"], "JSON");
    }

    #[test]
    fn conflicting_function_variables_are_an_error() {
        let doc = DOC.replace(
            "F2: {Type: AWS::Serverless::Function}",
            "F2: {Type: AWS::Serverless::Function, Properties: {Environment: {Variables: {EXTRA: y}}}}",
        );
        let t = Template::from_yaml(&doc, "").unwrap();
        assert!(t.function_environment(&names()).is_err());
    }

    #[test]
    fn env_file_quoting() {
        let vars = BTreeMap::from([
            ("A".to_owned(), "*".to_owned()),
            ("B".to_owned(), "a b".to_owned()),
            ("C".to_owned(), "".to_owned()),
            ("D".to_owned(), "q\"$x".to_owned()),
        ]);
        assert_eq!(render_env_file(&vars), "A=*\nB=\"a b\"\nC=\"\"\nD=\"q\\\"\\$x\"\n");
    }
}
