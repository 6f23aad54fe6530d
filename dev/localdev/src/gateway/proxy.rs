//! Turning a function's REST API v1 proxy response back into HTTP.

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use serde_json::Value;

fn scalar(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("header value {other} is not a scalar")),
    }
}

/// Parses a proxy response (`statusCode`, `headers`, `multiValueHeaders`, `body`,
/// `isBase64Encoded`). Anything else — an error payload, a body that is not a string, a bad
/// status or header — is an error, which API Gateway answers with a 502.
pub fn parse_proxy_response(payload: &[u8]) -> Result<Response<Bytes>, String> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let object = value.as_object().ok_or("not a JSON object")?;
    let status = match object.get("statusCode") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .and_then(|s| u16::try_from(s).ok())
    .and_then(|s| StatusCode::from_u16(s).ok())
    .filter(|s| s.as_u16() >= 100)
    .ok_or("missing or invalid statusCode")?;
    let is_base64 = match object.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("isBase64Encoded is not a boolean".into()),
    };
    let body = match object.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(s)) if is_base64 => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(Bytes::from)
            .map_err(|e| format!("body is not base64: {e}"))?,
        Some(Value::String(s)) => Bytes::from(s.clone()),
        Some(_) => return Err("body is not a string".into()),
    };
    // multiValueHeaders win for a name present in both, as in API Gateway.
    let mut pairs: Vec<(String, String)> = Vec::new();
    match object.get("multiValueHeaders") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, values) in map {
                match values {
                    Value::Array(items) => {
                        for item in items {
                            pairs.push((name.clone(), scalar(item)?));
                        }
                    }
                    Value::Null => {}
                    other => pairs.push((name.clone(), scalar(other)?)),
                }
            }
        }
        Some(_) => return Err("multiValueHeaders is not an object".into()),
    }
    match object.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                if !pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) && !value.is_null() {
                    pairs.push((name.clone(), scalar(value)?));
                }
            }
        }
        Some(_) => return Err("headers is not an object".into()),
    }
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("bad header name {name:?}"))?;
        let value = HeaderValue::from_str(&value).map_err(|_| format!("bad value for header {name}"))?;
        headers.append(name, value);
    }
    if !headers.contains_key(http::header::CONTENT_TYPE) {
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_headers_multivalue_and_base64() {
        let r = parse_proxy_response(
            br#"{"statusCode":201,"headers":{"x-a":"1","x-b":"single"},
                 "multiValueHeaders":{"x-b":["m1","m2"],"set-cookie":["a=1","b=2"]},
                 "body":"aGk=","isBase64Encoded":true}"#,
        )
        .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["x-a"], "1");
        let b: Vec<_> = r.headers().get_all("x-b").iter().collect();
        assert_eq!(b, ["m1", "m2"]);
        assert_eq!(r.headers().get_all("set-cookie").iter().count(), 2);
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.body().as_ref(), b"hi");
    }

    #[test]
    fn rejects_what_api_gateway_rejects() {
        for bad in [
            &b"not json"[..],
            br#"[1]"#,
            br#"{"errorType":"Panic","errorMessage":"boom"}"#,
            br#"{"statusCode":"abc"}"#,
            br#"{"statusCode":200,"body":{"a":1}}"#,
            br#"{"statusCode":200,"headers":{"bad name":"x"}}"#,
            br#"{"statusCode":200,"body":"%%%","isBase64Encoded":true}"#,
        ] {
            assert!(parse_proxy_response(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let r = parse_proxy_response(br#"{"statusCode":204,"headers":{"content-type":"text/plain"}}"#).unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(r.headers()["content-type"], "text/plain");
        assert!(r.body().is_empty());
    }
}
