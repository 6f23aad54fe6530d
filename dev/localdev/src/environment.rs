//! A function's whole environment, as Lambda gives it, resolved from the template for local runs.
//!
//! Lambda starts each function with its own variables (`Globals.Function` merged with the
//! function's `Environment`), the variables it derives from the function's configuration
//! (memory, logging) and the credentials of the function's role, and nothing else. Local runs
//! give each function exactly that, with the role's credentials replaced by the stack's access
//! key id for the function (see [`LocalStack::access_key_id`]) and every AWS endpoint pointed at
//! the local IAM check, so that a function that relies on a variable the template does not set,
//! or on a permission its role lacks, fails locally as it would on AWS.

use std::collections::BTreeMap;
use std::path::Path;

use serde_norway::Value;

use crate::error::{template_error, Result};
use crate::params::scalar_string;
use crate::stack::{LocalStack, StackResources};
use crate::template::Template;

/// Lambda's defaults when a function does not set `MemorySize` / `Timeout`.
const DEFAULT_MEMORY_MB: u64 = 128;
const DEFAULT_TIMEOUT_SECONDS: u64 = 3;

/// A function of the template, by logical id, with what its environment derives from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    pub logical_id: String,
    /// `Metadata.BuildProperties.Binary`: the cargo binary.
    pub binary: String,
    pub memory_mb: u64,
    pub timeout_seconds: u64,
}

impl Template {
    /// Every `AWS::Serverless::Function`, in template order.
    pub fn functions(&self) -> Result<Vec<FunctionSpec>> {
        self.resources_of_type("AWS::Serverless::Function")?.into_iter().map(|id| self.function(&id)).collect()
    }

    /// One function by logical id.
    pub fn function(&self, logical_id: &str) -> Result<FunctionSpec> {
        let resource = self.resource(logical_id).ok_or_else(|| template_error(format!("no resource {logical_id}")))?;
        let binary = resource
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(scalar_string)
            .ok_or_else(|| template_error(format!("{logical_id} lacks Metadata.BuildProperties.Binary")))?;
        let props = self
            .resolver(&BTreeMap::new())
            .resolve(&Value::Mapping(self.properties_with_globals(logical_id, "Function")))?
            .unwrap_or_default();
        let number = |key: &str, default: u64| -> Result<u64> {
            props.get(key).and_then(scalar_string).map_or(Ok(default), |v| {
                v.parse().map_err(|_| template_error(format!("{logical_id}: {key} must be a whole number")))
            })
        };
        Ok(FunctionSpec {
            logical_id: logical_id.to_owned(),
            binary,
            memory_mb: number("MemorySize", DEFAULT_MEMORY_MB)?,
            timeout_seconds: number("Timeout", DEFAULT_TIMEOUT_SECONDS)?,
        })
    }

    /// The function whose cargo binary is `binary`.
    pub fn function_for_binary(&self, binary: &str) -> Result<FunctionSpec> {
        self.functions()?
            .into_iter()
            .find(|f| f.binary == binary)
            .ok_or_else(|| template_error(format!("no function builds the binary {binary}")))
    }

    fn resolved_function_properties(&self, logical_id: &str, resources: &StackResources) -> Result<Value> {
        let props = Value::Mapping(self.properties_with_globals(logical_id, "Function"));
        Ok(self.resolver(resources.refs()).resolve(&props)?.unwrap_or_default())
    }

    /// The function's own variables: `Globals.Function` merged with its `Environment`, resolved
    /// against the stack's resources.
    pub fn function_variables(&self, logical_id: &str, resources: &StackResources) -> Result<BTreeMap<String, String>> {
        let props = self.resolved_function_properties(logical_id, resources)?;
        let mut env = BTreeMap::new();
        let variables = props.get("Environment").and_then(|e| e.get("Variables")).and_then(Value::as_mapping);
        for (key, value) in variables.into_iter().flatten() {
            let key = key.as_str().ok_or_else(|| template_error("variable names must be strings"))?;
            let value =
                scalar_string(value).ok_or_else(|| template_error(format!("{logical_id}: {key} is not a scalar")))?;
            env.insert(key.to_owned(), value);
        }
        Ok(env)
    }

    /// Everything Lambda would put in the function's environment, for a local process whose AWS
    /// calls go to `aws_endpoint` (the local IAM check).
    pub fn lambda_environment(
        &self,
        logical_id: &str,
        resources: &StackResources,
        aws_endpoint: &str,
    ) -> Result<BTreeMap<String, String>> {
        let spec = self.function(logical_id)?;
        let props = self.resolved_function_properties(logical_id, resources)?;
        let stack: &LocalStack = &resources.stack;
        let function_name = stack.physical_name(logical_id);
        let mut env: BTreeMap<String, String> = [
            ("AWS_REGION", self.region().to_owned()),
            ("AWS_DEFAULT_REGION", self.region().to_owned()),
            ("AWS_ACCESS_KEY_ID", stack.access_key_id(logical_id)),
            ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
            ("AWS_SESSION_TOKEN", "local".to_owned()),
            ("AWS_ENDPOINT_URL", aws_endpoint.to_owned()),
            ("AWS_LAMBDA_FUNCTION_NAME", function_name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", spec.memory_mb.to_string()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function_name}")),
            ("_HANDLER", props.get("Handler").and_then(scalar_string).unwrap_or_default()),
            ("LANG", "en_US.UTF-8".to_owned()),
            ("TZ", ":UTC".to_owned()),
            ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(logging) = props.get("LoggingConfig") {
            if let Some(group) = logging.get("LogGroup").and_then(scalar_string) {
                env.insert("AWS_LAMBDA_LOG_GROUP_NAME".into(), group);
            }
            if logging.get("LogFormat").and_then(scalar_string).as_deref() == Some("JSON") {
                env.insert("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into());
                if let Some(level) = logging.get("ApplicationLogLevel").and_then(scalar_string) {
                    env.insert("AWS_LAMBDA_LOG_LEVEL".into(), level);
                }
            }
        }
        env.extend(self.function_variables(logical_id, resources)?);
        if let Some(bundle) = env.get_mut("SSL_CERT_FILE") {
            if !Path::new(bundle.as_str()).is_file() {
                if let Some(host) = HOST_CA_BUNDLES.iter().find(|p| Path::new(p).is_file()) {
                    *bundle = (*host).to_owned();
                }
            }
        }
        Ok(env)
    }
}

/// Where distributions keep their CA bundle. The template's `SSL_CERT_FILE` is the Lambda
/// image's; where this host keeps it elsewhere, the functions get this host's, as they would
/// get the image's on Lambda (still one file, the same work at init).
const HOST_CA_BUNDLES: [&str; 3] =
    ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"
Parameters:
  Level: {Type: String, Default: INFO}
  Ttl: {Type: Number, Default: 900}
Globals:
  Function:
    MemorySize: 256
    Handler: bootstrap
    LoggingConfig: {LogFormat: JSON, ApplicationLogLevel: !Ref Level}
    Environment:
      Variables:
        TABLE_NAME: !Ref T
        SECRET_ID: !Ref S
        TTL: !Ref Ttl
Resources:
  T: {Type: AWS::DynamoDB::Table}
  S: {Type: AWS::SecretsManager::Secret}
  F1:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: one}}
    Properties: {MemorySize: 512, Environment: {Variables: {EXTRA: x}}}
  F2:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: two}}
"#;

    fn resources(t: &Template) -> StackResources {
        let arns = BTreeMap::from([(
            "S".to_owned(),
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:st-S-AbCdEf".into(),
        )]);
        StackResources::new(t, LocalStack::new("st").unwrap(), arns).unwrap()
    }

    #[test]
    fn given_a_ca_bundle_this_host_lacks_when_resolving_then_the_hosts_bundle_is_given() {
        // GIVEN a template whose SSL_CERT_FILE is a path no host has
        let doc =
            DOC.replace("        TTL: !Ref Ttl\n", "        TTL: !Ref Ttl\n        SSL_CERT_FILE: /nowhere/ca.crt\n");
        let t = Template::from_yaml(&doc, "").unwrap();
        // WHEN the function's environment is resolved
        let env = t.lambda_environment("F1", &resources(&t), "http://127.0.0.1:4566").unwrap();
        // THEN it names this host's bundle, a file
        assert_ne!(env["SSL_CERT_FILE"], "/nowhere/ca.crt");
        assert!(Path::new(&env["SSL_CERT_FILE"]).is_file());
    }

    #[test]
    fn given_two_functions_when_resolving_then_each_gets_its_own_environment() {
        let t = Template::from_yaml(DOC, "Ttl=60").unwrap();
        let env = t.lambda_environment("F1", &resources(&t), "http://127.0.0.1:4566").unwrap();
        assert_eq!(env["TABLE_NAME"], "st-T");
        assert_eq!(env["SECRET_ID"], "arn:aws:secretsmanager:us-east-1:123456789012:secret:st-S-AbCdEf");
        assert_eq!(env["TTL"], "60");
        assert_eq!(env["EXTRA"], "x");
        assert_eq!(env["AWS_ACCESS_KEY_ID"], "st.F1");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "st-F1");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "512");
        assert_eq!(env["AWS_LAMBDA_LOG_LEVEL"], "INFO");
        assert_eq!(env["AWS_LAMBDA_LOG_FORMAT"], "JSON");
        assert_eq!(env["AWS_ENDPOINT_URL"], "http://127.0.0.1:4566");
        let other = t.lambda_environment("F2", &resources(&t), "http://127.0.0.1:4566").unwrap();
        assert!(!other.contains_key("EXTRA"));
        assert_eq!(other["AWS_ACCESS_KEY_ID"], "st.F2");
        assert_eq!(other["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    }

    #[test]
    fn given_a_binary_when_looking_up_then_its_function_is_found() {
        let t = Template::from_yaml(DOC, "").unwrap();
        assert_eq!(t.function_for_binary("two").unwrap().logical_id, "F2");
        assert_eq!(t.function("F1").unwrap().memory_mb, 512);
        assert!(t.function_for_binary("three").is_err());
    }
}
