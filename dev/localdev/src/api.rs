//! The REST API as declared in the template: routes, throttling, usage plan, CORS, gateway
//! responses and access-log format of the `AWS::Serverless::Api` resource, the functions' `Api`
//! events, and the AWS WAF web ACL associated with the API's stage.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_norway::{Mapping, Value};

use crate::error::{template_error, Error, Result};
use crate::params::scalar_string;
use crate::template::Template;

/// A token-bucket throttle: steady `rate_limit` requests per second, `burst_limit` bucket size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    /// Requests per second (negative: unlimited).
    pub rate_limit: f64,
    /// Bucket capacity (negative: unlimited).
    pub burst_limit: i64,
}

/// Usage-plan quota period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaPeriod {
    /// Calendar day (UTC).
    Day,
    /// Calendar week (UTC, Monday to Sunday).
    Week,
    /// Calendar month (UTC).
    Month,
}

/// Usage-plan quota: at most `limit` requests per `period` and API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests allowed per period.
    pub limit: u64,
    /// The period.
    pub period: QuotaPeriod,
}

/// The usage plan SAM creates for the API (one per API key here).
#[derive(Debug, Clone, PartialEq)]
pub struct UsagePlan {
    /// Per-key throttle.
    pub throttle: Option<Throttle>,
    /// Per-key quota.
    pub quota: Option<Quota>,
}

/// SAM `Cors` settings (quotes around the values already removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// `Access-Control-Allow-Origin`.
    pub allow_origin: String,
    /// `Access-Control-Allow-Headers`.
    pub allow_headers: Option<String>,
    /// `Access-Control-Allow-Methods` (SAM derives it from the path's methods when absent).
    pub allow_methods: Option<String>,
    /// `Access-Control-Max-Age`.
    pub max_age: Option<String>,
    /// `Access-Control-Allow-Credentials: true`.
    pub allow_credentials: bool,
}

/// Where a gateway-response header value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderSource {
    /// `'literal'`.
    Literal(String),
    /// `context.<name>` (e.g. `requestId`).
    Context(String),
    /// `method.request.header.<name>`.
    RequestHeader(String),
}

/// One `GatewayResponses` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GatewayResponseConfig {
    /// `StatusCode`, if set.
    pub status_code: Option<u16>,
    /// `ResponseParameters.Headers`, in template order.
    pub headers: Vec<(String, HeaderSource)>,
    /// `ResponseTemplates` by content type.
    pub templates: BTreeMap<String, String>,
}

/// One `MethodSettings` entry with its resource path decoded (`/~1users~1{id}` → `/users/{id}`).
#[derive(Debug, Clone, PartialEq)]
pub struct MethodSetting {
    /// Decoded resource path, or `*` for all.
    pub resource_path: String,
    /// HTTP method, or `*` for all.
    pub http_method: String,
    /// Throttle, if both limits are set.
    pub throttle: Option<Throttle>,
}

/// The `AWS::Serverless::Api` (with `Globals.Api` merged in).
#[derive(Debug, Clone, PartialEq)]
pub struct Api {
    /// Logical id.
    pub logical_id: String,
    /// Stage name.
    pub stage_name: String,
    /// `Auth.ApiKeyRequired` (the default for its routes).
    pub api_key_required: bool,
    /// `Auth.AddApiKeyRequiredToCorsPreflight` (SAM default: true).
    pub api_key_required_on_preflight: bool,
    /// `Auth.UsagePlan` unless `CreateUsagePlan: NONE`.
    pub usage_plan: Option<UsagePlan>,
    /// `Cors`.
    pub cors: Option<Cors>,
    /// `MethodSettings`.
    pub method_settings: Vec<MethodSetting>,
    /// `GatewayResponses` by response type (`THROTTLED`, `DEFAULT_4XX`, ...).
    pub gateway_responses: BTreeMap<String, GatewayResponseConfig>,
    /// `AccessLogSetting.Format`: one line of `$context` variables per request.
    pub access_log_format: Option<String>,
}

/// One route: an `Api` event of a function.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Upper-case HTTP method, or `ANY`.
    pub method: String,
    /// Resource path template, e.g. `/users/{id}`.
    pub path: String,
    /// Logical id of the function.
    pub function: String,
    /// Binary name (`Metadata.BuildProperties.Binary`), as `cargo lambda watch` knows it.
    pub binary: String,
    /// Whether an API key is required (event `Auth.ApiKeyRequired`, else the API's).
    pub api_key_required: bool,
    /// Method throttle from `MethodSettings` (exact entry, else the `/*` `*` entry).
    pub throttle: Option<Throttle>,
}

/// How a WAF byte match compares the inspected value with its search string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositionalConstraint {
    /// `EXACTLY`.
    Exactly,
    /// `STARTS_WITH`.
    StartsWith,
    /// `ENDS_WITH`.
    EndsWith,
    /// `CONTAINS`.
    Contains,
}

/// A WAF text transformation, applied to the inspected value (never to the search string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextTransformation {
    /// `NONE`.
    None,
    /// `LOWERCASE`: A-Z to a-z.
    Lowercase,
}

/// A `ByteMatchStatement` on `FieldToMatch: {UriPath: {}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteMatch {
    /// `SearchString`, as declared (WAF sees the stage in the path: `/v1/login`).
    pub search_string: String,
    /// `PositionalConstraint`.
    pub positional_constraint: PositionalConstraint,
    /// `TextTransformations`, in priority order.
    pub text_transformations: Vec<TextTransformation>,
}

/// A web ACL rule: a `RateBasedStatement` per client IP (`AggregateKeyType: IP`), action `Block`.
#[derive(Debug, Clone, PartialEq)]
pub struct RateRule {
    /// `Name`.
    pub name: String,
    /// `Priority` (lower runs first).
    pub priority: i64,
    /// `Limit`: matching requests per IP allowed within the window.
    pub limit: u64,
    /// `EvaluationWindowSec` (WAF's default: 300 s).
    pub window: Duration,
    /// `ScopeDownStatement`: only matching requests are counted and blocked (all when `None`).
    pub scope_down: Option<ByteMatch>,
}

/// The `AWS::WAFv2::WebACL` associated with the API's stage (default action `Allow`).
#[derive(Debug, Clone, PartialEq)]
pub struct WebAcl {
    /// Logical id.
    pub logical_id: String,
    /// Rules in priority order.
    pub rules: Vec<RateRule>,
}

/// Decodes a CloudFormation `MethodSettings` resource path: `/~1users~1{id}` → `/users/{id}`, `/*` → `*`.
pub fn decode_resource_path(encoded: &str) -> String {
    let body = encoded.strip_prefix('/').unwrap_or(encoded);
    if body == "*" {
        return "*".into();
    }
    body.replace("~1", "/").replace("~0", "~")
}

/// Removes the single quotes API Gateway requires around literal values.
fn unquote(value: &str) -> String {
    let v = value.trim();
    v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(v).to_owned()
}

fn get_str(map: &Mapping, key: &str) -> Option<String> {
    map.get(key).and_then(scalar_string)
}

fn get_bool(map: &Mapping, key: &str) -> Option<bool> {
    get_str(map, key).map(|v| v == "true")
}

fn number<T: std::str::FromStr>(value: Option<String>, what: &str) -> Result<Option<T>> {
    value.map(|v| v.trim().parse().map_err(|_| template_error(format!("{what} must be a number: {v:?}")))).transpose()
}

fn throttle(map: &Mapping, rate_key: &str, burst_key: &str) -> Result<Option<Throttle>> {
    let rate = number::<f64>(get_str(map, rate_key), rate_key)?;
    let burst = number::<f64>(get_str(map, burst_key), burst_key)?;
    Ok(match (rate, burst) {
        (None, None) => None,
        (rate, burst) => {
            Some(Throttle { rate_limit: rate.unwrap_or(-1.0), burst_limit: burst.map_or(-1, |b| b as i64) })
        }
    })
}

fn mapping<'a>(map: &'a Mapping, key: &str) -> Option<&'a Mapping> {
    map.get(key).and_then(Value::as_mapping)
}

impl Api {
    fn from_properties(logical_id: String, props: &Mapping) -> Result<Self> {
        let auth = mapping(props, "Auth").cloned().unwrap_or_default();
        let api_key_required = get_bool(&auth, "ApiKeyRequired").unwrap_or(false);
        let usage_plan = match mapping(&auth, "UsagePlan") {
            Some(plan) if get_str(plan, "CreateUsagePlan").as_deref() != Some("NONE") => {
                let quota = match mapping(plan, "Quota") {
                    Some(q) => Some(Quota {
                        limit: number(get_str(q, "Limit"), "Quota.Limit")?
                            .ok_or_else(|| template_error("Quota.Limit missing"))?,
                        period: match get_str(q, "Period").as_deref() {
                            Some("DAY") => QuotaPeriod::Day,
                            Some("WEEK") => QuotaPeriod::Week,
                            Some("MONTH") => QuotaPeriod::Month,
                            other => return Err(template_error(format!("bad Quota.Period {other:?}"))),
                        },
                    }),
                    None => None,
                };
                let throttle = match mapping(plan, "Throttle") {
                    Some(t) => throttle(t, "RateLimit", "BurstLimit")?,
                    None => None,
                };
                Some(UsagePlan { throttle, quota })
            }
            _ => None,
        };
        let cors = match props.get("Cors") {
            None => None,
            Some(Value::Mapping(c)) => Some(Cors {
                allow_origin: get_str(c, "AllowOrigin")
                    .map(|v| unquote(&v))
                    .ok_or_else(|| template_error("Cors.AllowOrigin missing"))?,
                allow_headers: get_str(c, "AllowHeaders").map(|v| unquote(&v)),
                allow_methods: get_str(c, "AllowMethods").map(|v| unquote(&v)),
                max_age: get_str(c, "MaxAge").map(|v| unquote(&v)),
                allow_credentials: get_bool(c, "AllowCredentials").unwrap_or(false),
            }),
            Some(origin) => Some(Cors {
                allow_origin: unquote(&scalar_string(origin).unwrap_or_default()),
                allow_headers: None,
                allow_methods: None,
                max_age: None,
                allow_credentials: false,
            }),
        };
        let mut method_settings = Vec::new();
        for entry in props.get("MethodSettings").and_then(Value::as_sequence).into_iter().flatten() {
            let entry = entry.as_mapping().ok_or_else(|| template_error("bad MethodSettings entry"))?;
            method_settings.push(MethodSetting {
                resource_path: decode_resource_path(&get_str(entry, "ResourcePath").unwrap_or("/*".into())),
                http_method: get_str(entry, "HttpMethod").unwrap_or("*".into()).to_uppercase(),
                throttle: throttle(entry, "ThrottlingRateLimit", "ThrottlingBurstLimit")?,
            });
        }
        let mut gateway_responses = BTreeMap::new();
        for (kind, entry) in mapping(props, "GatewayResponses").into_iter().flatten() {
            let kind = kind.as_str().ok_or_else(|| template_error("bad GatewayResponses key"))?;
            let entry = entry.as_mapping().cloned().unwrap_or_default();
            gateway_responses.insert(kind.to_owned(), gateway_response(&entry)?);
        }
        Ok(Self {
            logical_id,
            stage_name: get_str(props, "StageName").ok_or_else(|| template_error("StageName missing"))?,
            api_key_required,
            api_key_required_on_preflight: api_key_required
                && get_bool(&auth, "AddApiKeyRequiredToCorsPreflight").unwrap_or(true),
            usage_plan,
            cors,
            method_settings,
            gateway_responses,
            access_log_format: mapping(props, "AccessLogSetting").and_then(|a| get_str(a, "Format")),
        })
    }

    /// The throttle `MethodSettings` gives `method` on `path` (exact entry first, then wildcards).
    pub fn method_throttle(&self, path: &str, method: &str) -> Option<Throttle> {
        let exact = |s: &&MethodSetting| s.resource_path == path && s.http_method == method;
        let wildcard = |s: &&MethodSetting| {
            (s.resource_path == "*" || s.resource_path == path) && (s.http_method == "*" || s.http_method == method)
        };
        let settings = || self.method_settings.iter().filter(|s| s.throttle.is_some());
        settings().find(exact).or_else(|| settings().find(wildcard)).and_then(|s| s.throttle)
    }
}

fn gateway_response(entry: &Mapping) -> Result<GatewayResponseConfig> {
    let mut headers = Vec::new();
    let params = mapping(entry, "ResponseParameters");
    for (name, value) in params.and_then(|p| mapping(p, "Headers")).into_iter().flatten() {
        let (Some(name), Some(value)) = (name.as_str(), scalar_string(value)) else {
            return Err(template_error("bad gateway response header"));
        };
        let value = value.trim();
        let source = if value.starts_with('\'') {
            HeaderSource::Literal(unquote(value))
        } else if let Some(ctx) = value.strip_prefix("context.") {
            HeaderSource::Context(ctx.to_owned())
        } else if let Some(h) = value.strip_prefix("method.request.header.") {
            HeaderSource::RequestHeader(h.to_owned())
        } else {
            return Err(template_error(format!("unsupported gateway response header value {value:?}")));
        };
        headers.push((name.to_owned(), source));
    }
    let templates = mapping(entry, "ResponseTemplates")
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), scalar_string(v)?)))
        .collect();
    Ok(GatewayResponseConfig { status_code: number(get_str(entry, "StatusCode"), "StatusCode")?, headers, templates })
}

/// A WAF setting the local gateway cannot enforce: an error, never silently ignored.
fn unsupported(at: &str, what: impl std::fmt::Display) -> Error {
    template_error(format!("{at}: {what} is not supported locally"))
}

/// Fails naming the first key of `map` that is not in `allowed`.
fn only_keys(map: &Mapping, allowed: &[&str], at: &str) -> Result<()> {
    map.keys().filter_map(Value::as_str).find(|k| !allowed.contains(k)).map_or(Ok(()), |k| Err(unsupported(at, k)))
}

/// A WAF statement, action or field: a map with exactly one key, returned with its value.
fn single<'a>(value: Option<&'a Value>, at: &str) -> Result<(&'a str, &'a Value)> {
    value
        .and_then(Value::as_mapping)
        .filter(|m| m.len() == 1)
        .and_then(|m| m.iter().next())
        .and_then(|(k, v)| Some((k.as_str()?, v)))
        .ok_or_else(|| template_error(format!("{at} must be a map with exactly one key")))
}

fn byte_match(statement: &Value, at: &str) -> Result<ByteMatch> {
    let m = match single(Some(statement), &format!("{at}: ScopeDownStatement"))? {
        ("ByteMatchStatement", Value::Mapping(m)) => m,
        (other, _) => return Err(unsupported(at, format!("ScopeDownStatement {other}"))),
    };
    only_keys(m, &["FieldToMatch", "PositionalConstraint", "SearchString", "TextTransformations"], at)?;
    match single(m.get("FieldToMatch"), &format!("{at}: FieldToMatch"))? {
        ("UriPath", _) => {}
        (other, _) => return Err(unsupported(at, format!("FieldToMatch {other}"))),
    }
    let positional_constraint = match get_str(m, "PositionalConstraint").as_deref() {
        Some("EXACTLY") => PositionalConstraint::Exactly,
        Some("STARTS_WITH") => PositionalConstraint::StartsWith,
        Some("ENDS_WITH") => PositionalConstraint::EndsWith,
        Some("CONTAINS") => PositionalConstraint::Contains,
        other => return Err(unsupported(at, format!("PositionalConstraint {other:?}"))),
    };
    let mut transformations = Vec::new();
    for t in m.get("TextTransformations").and_then(Value::as_sequence).into_iter().flatten() {
        let t = t.as_mapping().ok_or_else(|| template_error(format!("{at}: bad TextTransformations entry")))?;
        let kind = match get_str(t, "Type").as_deref() {
            Some("NONE") => TextTransformation::None,
            Some("LOWERCASE") => TextTransformation::Lowercase,
            other => return Err(unsupported(at, format!("TextTransformation {other:?}"))),
        };
        transformations.push((number::<i64>(get_str(t, "Priority"), "Priority")?.unwrap_or(0), kind));
    }
    transformations.sort_by_key(|(priority, _)| *priority);
    let search_string = get_str(m, "SearchString").ok_or_else(|| template_error(format!("{at}: no SearchString")))?;
    let text_transformations = transformations.into_iter().map(|(_, kind)| kind).collect();
    Ok(ByteMatch { search_string, positional_constraint, text_transformations })
}

fn rate_rule(rule: &Mapping, acl: &str) -> Result<RateRule> {
    let name = get_str(rule, "Name").ok_or_else(|| template_error(format!("{acl}: rule without Name")))?;
    let at = format!("{acl} rule {name}");
    only_keys(rule, &["Name", "Priority", "Action", "Statement", "VisibilityConfig"], &at)?;
    match single(rule.get("Action"), &format!("{at}: Action"))? {
        ("Block", Value::Mapping(block)) if block.is_empty() => {}
        (other, _) => return Err(unsupported(&at, format!("Action {other} (only Block: {{}})"))),
    }
    let rate = match single(rule.get("Statement"), &format!("{at}: Statement"))? {
        ("RateBasedStatement", Value::Mapping(rate)) => rate,
        (other, _) => return Err(unsupported(&at, other)),
    };
    only_keys(rate, &["Limit", "EvaluationWindowSec", "AggregateKeyType", "ScopeDownStatement"], &at)?;
    match get_str(rate, "AggregateKeyType").as_deref() {
        Some("IP") => {}
        other => return Err(unsupported(&at, format!("AggregateKeyType {other:?}"))),
    }
    let limit = number(get_str(rate, "Limit"), "Limit")?.ok_or_else(|| template_error(format!("{at}: no Limit")))?;
    let window = number(get_str(rate, "EvaluationWindowSec"), "EvaluationWindowSec")?.unwrap_or(300);
    Ok(RateRule {
        priority: number(get_str(rule, "Priority"), "Priority")?.unwrap_or(0),
        limit,
        window: Duration::from_secs(window),
        scope_down: rate.get("ScopeDownStatement").map(|s| byte_match(s, &at)).transpose()?,
        name,
    })
}

fn web_acl(logical_id: String, props: &Mapping) -> Result<WebAcl> {
    if get_str(props, "Scope").as_deref() != Some("REGIONAL") {
        return Err(template_error(format!("{logical_id}: a REST API stage needs Scope: REGIONAL")));
    }
    match single(props.get("DefaultAction"), &format!("{logical_id}: DefaultAction"))? {
        ("Allow", _) => {}
        (other, _) => return Err(unsupported(&logical_id, format!("DefaultAction {other}"))),
    }
    let mut rules = Vec::new();
    for rule in props.get("Rules").and_then(Value::as_sequence).into_iter().flatten() {
        let rule = rule.as_mapping().ok_or_else(|| template_error(format!("{logical_id}: bad rule")))?;
        rules.push(rate_rule(rule, &logical_id)?);
    }
    rules.sort_by_key(|r| r.priority);
    Ok(WebAcl { logical_id, rules })
}

impl Template {
    /// The `AWS::WAFv2::WebACL` that an `AWS::WAFv2::WebACLAssociation` attaches to a stage of
    /// [`Template::api`], values resolved; `None` when there is none (resources whose `Condition`
    /// is false do not exist). Only rate-based rules per client IP, scoped down by a byte match on
    /// the URI path, are supported: anything else is an error naming it.
    pub fn web_acl(&self) -> Result<Option<WebAcl>> {
        let api = self.single_resource_of_type("AWS::Serverless::Api")?;
        let names = BTreeMap::new();
        let resolver = self.resolver(&names);
        let properties = |id: &str| -> Result<Mapping> {
            let raw = self.resource(id).and_then(|r| r.get("Properties")).cloned().unwrap_or_default();
            Ok(resolver.resolve(&raw)?.and_then(|v| v.as_mapping().cloned()).unwrap_or_default())
        };
        for association in self.resources_of_type("AWS::WAFv2::WebACLAssociation")? {
            let props = properties(&association)?;
            let api_stages = format!("/restapis/{api}/stages/");
            if !get_str(&props, "ResourceArn").is_some_and(|arn| arn.contains(&api_stages)) {
                continue;
            }
            let wanted = get_str(&props, "WebACLArn");
            for acl in self.resources_of_type("AWS::WAFv2::WebACL")? {
                // The ARN `!GetAtt <acl>.Arn` resolves to, to compare with the association's.
                let get_att = Mapping::from_iter([(
                    "Fn::GetAtt".into(),
                    Value::Sequence(vec![acl.as_str().into(), "Arn".into()]),
                )]);
                if wanted.as_deref() == Some(resolver.string(&Value::Mapping(get_att))?.as_str()) {
                    let props = properties(&acl)?;
                    return web_acl(acl, &props).map(Some);
                }
            }
            return Err(template_error(format!("{association}: WebACLArn names no web ACL of this template")));
        }
        Ok(None)
    }

    /// The template's only `AWS::Serverless::Api`, with `Globals.Api` merged and values resolved.
    pub fn api(&self) -> Result<Api> {
        let id = self.single_resource_of_type("AWS::Serverless::Api")?;
        let merged = Value::Mapping(self.properties_with_globals(&id, "Api"));
        let names = BTreeMap::new();
        let resolved = self.resolver(&names).resolve(&merged)?.unwrap_or_default();
        let props = resolved.as_mapping().cloned().unwrap_or_default();
        Api::from_properties(id, &props)
    }

    /// Every `Api` event of every function attached to [`Template::api`], in template order.
    pub fn routes(&self) -> Result<Vec<Route>> {
        let api = self.api()?;
        let names = BTreeMap::new();
        let resolver = self.resolver(&names);
        let mut routes = Vec::new();
        for function in self.resources_of_type("AWS::Serverless::Function")? {
            let props = self.properties_with_globals(&function, "Function");
            for (_, event) in mapping(&props, "Events").into_iter().flatten() {
                if event.get("Type").and_then(Value::as_str) != Some("Api") {
                    continue;
                }
                let raw = event.get("Properties").cloned().unwrap_or_default();
                let ev = resolver.resolve(&raw)?.unwrap_or_default();
                let ev = ev.as_mapping().cloned().unwrap_or_default();
                if get_str(&ev, "RestApiId").is_some_and(|id| id != api.logical_id) {
                    continue;
                }
                let binary = self
                    .resource(&function)
                    .and_then(|r| r.get("Metadata"))
                    .and_then(|m| m.get("BuildProperties"))
                    .and_then(|b| b.get("Binary"))
                    .and_then(scalar_string)
                    .ok_or_else(|| template_error(format!("{function} lacks Metadata.BuildProperties.Binary")))?;
                let path = get_str(&ev, "Path").ok_or_else(|| template_error("Api event without Path"))?;
                let method =
                    get_str(&ev, "Method").ok_or_else(|| template_error("Api event without Method"))?.to_uppercase();
                let api_key_required =
                    mapping(&ev, "Auth").and_then(|a| get_bool(a, "ApiKeyRequired")).unwrap_or(api.api_key_required);
                routes.push(Route {
                    throttle: api.method_throttle(&path, &method),
                    method,
                    path,
                    function: function.clone(),
                    binary,
                    api_key_required,
                });
            }
        }
        Ok(routes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_encoded_resource_paths() {
        assert_eq!(decode_resource_path("/~1register"), "/register");
        assert_eq!(decode_resource_path("/~1users~1{id}"), "/users/{id}");
        assert_eq!(decode_resource_path("/~1a~0b"), "/a~b");
        assert_eq!(decode_resource_path("/*"), "*");
    }

    #[test]
    fn wildcard_and_exact_method_settings() {
        let t = Template::from_yaml(
            r#"
Resources:
  A:
    Type: AWS::Serverless::Api
    Properties:
      StageName: s
      MethodSettings:
        - {ResourcePath: "/*", HttpMethod: "*", ThrottlingRateLimit: 5, ThrottlingBurstLimit: 6}
        - {ResourcePath: /~1x, HttpMethod: GET, ThrottlingRateLimit: 1, ThrottlingBurstLimit: 2}
"#,
            "",
        )
        .unwrap();
        let api = t.api().unwrap();
        assert_eq!(api.method_throttle("/x", "GET"), Some(Throttle { rate_limit: 1.0, burst_limit: 2 }));
        assert_eq!(api.method_throttle("/x", "POST"), Some(Throttle { rate_limit: 5.0, burst_limit: 6 }));
        assert!(!api.api_key_required);
        assert!(api.usage_plan.is_none() && api.cors.is_none());
    }
}
