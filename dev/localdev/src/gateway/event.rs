//! The REST API (v1) Lambda proxy event, and the `$context` variables of a request.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use http::HeaderMap;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use super::router::percent_decode;

/// What the gateway knows about one request; the source of the event's `requestContext` and of
/// `$context.*` in gateway responses.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// `requestId` (UUID v4).
    pub request_id: String,
    /// `extendedRequestId`.
    pub extended_request_id: String,
    /// `apiId`.
    pub api_id: String,
    /// `accountId`.
    pub account_id: String,
    /// Stage name.
    pub stage: String,
    /// Upper-case HTTP method.
    pub method: String,
    /// Raw request path (without stage or query string).
    pub path: String,
    /// Raw query string.
    pub query: Option<String>,
    /// Request headers.
    pub headers: HeaderMap,
    /// Client address.
    pub source_ip: String,
    /// `HTTP/1.1`.
    pub protocol: String,
    /// `Host` of the request.
    pub domain_name: String,
    /// When the request arrived.
    pub received: OffsetDateTime,
    /// Matched resource path template (`/users/{id}`), once routed.
    pub resource_path: Option<String>,
    /// The API key the request presented, once validated.
    pub api_key: Option<String>,
    /// Gateway error message for `$context.error.message`.
    pub error_message: Option<String>,
    /// Gateway response type for `$context.error.responseType`.
    pub error_type: Option<String>,
    /// Whether the stage's web ACL blocked the request (`None`: no web ACL).
    pub waf_blocked: Option<bool>,
    /// Status of the response, once answered.
    pub status: Option<u16>,
    /// From receiving the request to answering it.
    pub response_latency: Option<Duration>,
    /// Time spent invoking the function, if it was invoked.
    pub integration_latency: Option<Duration>,
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// A stable 6-character id for a resource path, like API Gateway's resource ids.
pub fn resource_id(resource_path: &str) -> String {
    short_id(resource_path, 6)
}

/// A stable 10-character id for an API key, standing in for its `apiKeyId`.
pub fn api_key_id(api_key: &str) -> String {
    short_id(api_key, 10)
}

fn short_id(input: &str, len: usize) -> String {
    // FNV-1a, rendered in base 36: stable, not secret-bearing beyond what a hash reveals.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..len)
        .map(|_| {
            let c = alphabet[(hash % 36) as usize] as char;
            hash /= 36;
            if hash == 0 {
                hash = 0x9e37_79b9_7f4a_7c15;
            }
            c
        })
        .collect()
}

impl RequestInfo {
    /// `requestTime` in API Gateway's format, e.g. `24/Nov/2026:05:04:00 +0000`.
    pub fn request_time(&self) -> String {
        let t = self.received.to_offset(time::UtcOffset::UTC);
        format!(
            "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
            t.day(),
            MONTHS[usize::from(u8::from(t.month())) - 1],
            t.year(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }

    /// `requestTimeEpoch` (milliseconds).
    pub fn request_time_epoch(&self) -> i64 {
        (self.received.unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// `requestContext.path`: the path as the client sent it, including the stage.
    pub fn stage_path(&self) -> String {
        format!("/{}{}", self.stage, self.path)
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    /// The value of `$context.<name>` (`None` when API Gateway would render nothing).
    pub fn context_value(&self, name: &str) -> Option<String> {
        Some(match name {
            "requestId" => self.request_id.clone(),
            "extendedRequestId" => self.extended_request_id.clone(),
            "apiId" => self.api_id.clone(),
            "accountId" => self.account_id.clone(),
            "stage" => self.stage.clone(),
            "httpMethod" => self.method.clone(),
            "path" => self.stage_path(),
            "resourcePath" => self.resource_path.clone()?,
            "resourceId" => resource_id(self.resource_path.as_deref()?),
            "domainName" => self.domain_name.clone(),
            "domainPrefix" => self.domain_name.split('.').next()?.to_owned(),
            "protocol" => self.protocol.clone(),
            "requestTime" => self.request_time(),
            "requestTimeEpoch" => self.request_time_epoch().to_string(),
            "identity.sourceIp" => self.source_ip.clone(),
            "identity.userAgent" => self.header("user-agent")?,
            "identity.apiKey" => self.api_key.clone()?,
            "identity.apiKeyId" => api_key_id(self.api_key.as_deref()?),
            "error.message" => self.error_message.clone()?,
            "error.messageString" => Value::String(self.error_message.clone()?).to_string(),
            "error.responseType" => self.error_type.clone()?,
            "error.validationErrorString" => String::new(),
            // Access-log variables.
            "status" => self.status?.to_string(),
            "responseLatency" => self.response_latency?.as_millis().to_string(),
            "integrationLatency" => self.integration_latency?.as_millis().to_string(),
            "wafResponseCode" => if self.waf_blocked? { "WAF_BLOCK" } else { "WAF_ALLOW" }.to_owned(),
            // WAF's own answer: a Block action without a custom response is a 403 (which API
            // Gateway then replaces with WAF_FILTERED). Nothing when WAF took no action.
            "waf.status" => self.waf_blocked?.then(|| "403".to_owned())?,
            // Plain HTTP locally: no TLS.
            "tlsVersion" => return None,
            _ => return None,
        })
    }

    fn request_context(&self, resource_path: &str) -> Value {
        json!({
            "accountId": self.account_id,
            "apiId": self.api_id,
            "resourceId": resource_id(resource_path),
            "resourcePath": resource_path,
            "httpMethod": self.method,
            "requestId": self.request_id,
            "extendedRequestId": self.extended_request_id,
            "identity": {
                "sourceIp": self.source_ip,
                "apiKey": self.api_key,
                "apiKeyId": self.api_key.as_deref().map(api_key_id),
                "userAgent": self.header("user-agent"),
                "accessKey": null, "accountId": null, "caller": null, "cognitoAuthenticationProvider": null,
                "cognitoAuthenticationType": null, "cognitoIdentityId": null, "cognitoIdentityPoolId": null,
                "principalOrgId": null, "user": null, "userArn": null
            },
            "stage": self.stage,
            "path": self.stage_path(),
            "protocol": self.protocol,
            "requestTime": self.request_time(),
            "requestTimeEpoch": self.request_time_epoch(),
            "domainName": self.domain_name,
            "domainPrefix": self.domain_name.split('.').next().unwrap_or_default(),
        })
    }
}

/// Single- and multi-value maps, as the event carries them (`null` when empty).
fn value_maps(pairs: Vec<(String, String)>) -> (Value, Value) {
    if pairs.is_empty() {
        return (Value::Null, Value::Null);
    }
    let mut single = Map::new();
    let mut multi: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (k, v) in pairs {
        single.insert(k.clone(), Value::String(v.clone()));
        multi.entry(k).or_default().push(Value::String(v));
    }
    let multi = multi.into_iter().map(|(k, v)| (k, Value::Array(v))).collect::<Map<_, _>>();
    (Value::Object(single), Value::Object(multi))
}

/// Parses a raw query string into decoded pairs (`a=1&a=2&b` → `a=1`, `a=2`, `b=`).
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Builds the REST API v1 proxy event for a routed request.
pub fn build_event(info: &RequestInfo, resource_path: &str, params: &BTreeMap<String, String>, body: &[u8]) -> Value {
    let mut header_pairs: Vec<(String, String)> = info
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let forwarded =
        info.header("x-forwarded-for").map_or(info.source_ip.clone(), |f| format!("{f}, {}", info.source_ip));
    let port = info.domain_name.rsplit_once(':').map_or("80", |(_, p)| p).to_owned();
    header_pairs.retain(|(k, _)| k != "x-forwarded-for");
    header_pairs.push(("X-Forwarded-For".into(), forwarded));
    for (name, value) in [("X-Forwarded-Port", port), ("X-Forwarded-Proto", "http".to_owned())] {
        if info.header(name).is_none() {
            header_pairs.push((name.into(), value));
        }
    }
    if info.header("x-amzn-trace-id").is_none() {
        let id = info.request_id.replace('-', "");
        let trace = format!("Root=1-{:08x}-{}", info.received.unix_timestamp(), &id[..24]);
        header_pairs.push(("X-Amzn-Trace-Id".into(), trace));
    }
    let (headers, multi_headers) = value_maps(header_pairs);
    let (query, multi_query) = value_maps(info.query.as_deref().map(query_pairs).unwrap_or_default());
    let path_parameters = if params.is_empty() { Value::Null } else { json!(params) };
    let (body, is_base64) = match (body.is_empty(), std::str::from_utf8(body)) {
        (true, _) => (Value::Null, false),
        (false, Ok(text)) => (Value::String(text.to_owned()), false),
        (false, Err(_)) => (Value::String(base64::engine::general_purpose::STANDARD.encode(body)), true),
    };
    json!({
        "resource": resource_path,
        "path": info.path,
        "httpMethod": info.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": path_parameters,
        "stageVariables": null,
        "requestContext": info.request_context(resource_path),
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use time::macros::datetime;

    pub(crate) fn info() -> RequestInfo {
        let mut headers = HeaderMap::new();
        headers.insert("host", "127.0.0.1:3000".parse().unwrap());
        headers.insert("user-agent", "curl/8".parse().unwrap());
        headers.append("accept", "a/b".parse().unwrap());
        headers.append("accept", "c/d".parse().unwrap());
        RequestInfo {
            request_id: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef".into(),
            extended_request_id: "AbCdEfGhIjKlMnO=".into(),
            api_id: "localapi01".into(),
            account_id: "123456789012".into(),
            stage: "v1".into(),
            method: "GET".into(),
            path: "/users/a%40b".into(),
            query: Some("x=1&x=2&y=%20z&flag".into()),
            headers,
            source_ip: "127.0.0.1".into(),
            protocol: "HTTP/1.1".into(),
            domain_name: "127.0.0.1:3000".into(),
            received: datetime!(2026-11-24 05:04:03.250 UTC),
            resource_path: Some("/users/{id}".into()),
            api_key: Some("key-1".into()),
            error_message: None,
            error_type: None,
            waf_blocked: None,
            status: None,
            response_latency: None,
            integration_latency: None,
        }
    }

    #[test]
    fn builds_a_v1_proxy_event() {
        let info = info();
        let params = BTreeMap::from([("id".to_owned(), "a@b".to_owned())]);
        let ev = build_event(&info, "/users/{id}", &params, b"");
        assert_eq!(ev["resource"], "/users/{id}");
        assert_eq!(ev["path"], "/users/a%40b");
        assert_eq!(ev["httpMethod"], "GET");
        assert_eq!(ev["pathParameters"]["id"], "a@b");
        assert_eq!(ev["queryStringParameters"]["x"], "2");
        assert_eq!(ev["multiValueQueryStringParameters"]["x"], json!(["1", "2"]));
        assert_eq!(ev["queryStringParameters"]["y"], " z");
        assert_eq!(ev["queryStringParameters"]["flag"], "");
        assert_eq!(ev["headers"]["accept"], "c/d");
        assert_eq!(ev["multiValueHeaders"]["accept"], json!(["a/b", "c/d"]));
        assert_eq!(ev["headers"]["X-Forwarded-For"], "127.0.0.1");
        assert_eq!(ev["headers"]["X-Forwarded-Port"], "3000");
        assert!(ev["stageVariables"].is_null());
        assert!(ev["body"].is_null());
        assert_eq!(ev["isBase64Encoded"], false);
        let rc = &ev["requestContext"];
        assert_eq!(rc["path"], "/v1/users/a%40b");
        assert_eq!(rc["stage"], "v1");
        assert_eq!(rc["resourcePath"], "/users/{id}");
        assert_eq!(rc["resourceId"].as_str().unwrap().len(), 6);
        assert_eq!(rc["requestTime"], "24/Nov/2026:05:04:03 +0000");
        assert_eq!(rc["requestTimeEpoch"], 1_795_496_643_250_i64);
        assert_eq!(rc["identity"]["apiKey"], "key-1");
        assert_eq!(rc["identity"]["apiKeyId"].as_str().unwrap().len(), 10);
        assert_eq!(rc["identity"]["userAgent"], "curl/8");
        assert_eq!(rc["requestId"], info.request_id);
    }

    #[test]
    fn text_and_binary_bodies() {
        let info = info();
        let ev = build_event(&info, "/x", &BTreeMap::new(), "{\"a\":\"é\"}".as_bytes());
        assert_eq!(ev["body"], "{\"a\":\"é\"}");
        assert_eq!(ev["isBase64Encoded"], false);
        assert!(ev["pathParameters"].is_null());
        let ev = build_event(&info, "/x", &BTreeMap::new(), &[0xff, 0x00, 0x01]);
        assert_eq!(ev["body"], "/wAB");
        assert_eq!(ev["isBase64Encoded"], true);
    }

    #[test]
    fn context_values() {
        let mut info = info();
        info.error_message = Some("Say \"hi\"".into());
        assert_eq!(info.context_value("requestId").unwrap(), info.request_id);
        assert_eq!(info.context_value("error.messageString").unwrap(), "\"Say \\\"hi\\\"\"");
        assert_eq!(info.context_value("path").unwrap(), "/v1/users/a%40b");
        assert_eq!(info.context_value("nope"), None);
    }
}
