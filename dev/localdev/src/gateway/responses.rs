//! Gateway responses (`THROTTLED`, `INVALID_API_KEY`, ...) rendered from the template's
//! `GatewayResponses`, with API Gateway's defaults where the template says nothing.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};

use super::event::RequestInfo;
use crate::api::{Api, GatewayResponseConfig, HeaderSource};

/// The gateway response types this emulator produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    /// Unknown resource or method (default 403).
    MissingAuthenticationToken,
    /// Missing or wrong `x-api-key` (403).
    InvalidApiKey,
    /// A token bucket is empty (429).
    Throttled,
    /// The usage-plan quota is used up (429).
    QuotaExceeded,
    /// Body over 10 MB (413).
    RequestTooLarge,
    /// The integration did not answer within the timeout (504).
    IntegrationTimeout,
    /// The function failed or returned something that is not a proxy response (502).
    BadGateway,
    /// AWS WAF blocked the request (default 403).
    WafFiltered,
}

impl ResponseType {
    /// The `GatewayResponses` key; `BadGateway` is rendered as `DEFAULT_5XX`.
    pub fn name(self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MISSING_AUTHENTICATION_TOKEN",
            Self::InvalidApiKey => "INVALID_API_KEY",
            Self::Throttled => "THROTTLED",
            Self::QuotaExceeded => "QUOTA_EXCEEDED",
            Self::RequestTooLarge => "REQUEST_TOO_LARGE",
            Self::IntegrationTimeout => "INTEGRATION_TIMEOUT",
            Self::BadGateway => "DEFAULT_5XX",
            Self::WafFiltered => "WAF_FILTERED",
        }
    }

    /// API Gateway's status code for this type when the template sets none.
    pub fn default_status(self) -> u16 {
        match self {
            Self::MissingAuthenticationToken | Self::InvalidApiKey | Self::WafFiltered => 403,
            Self::Throttled | Self::QuotaExceeded => 429,
            Self::RequestTooLarge => 413,
            Self::IntegrationTimeout => 504,
            Self::BadGateway => 502,
        }
    }

    /// API Gateway's `$context.error.message` for this type.
    pub fn message(self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "Missing Authentication Token",
            Self::InvalidApiKey | Self::WafFiltered => "Forbidden",
            Self::Throttled => "Too Many Requests",
            Self::QuotaExceeded => "Limit Exceeded",
            Self::RequestTooLarge => "Request Too Long",
            Self::IntegrationTimeout => "Endpoint request timed out",
            Self::BadGateway => "Internal server error",
        }
    }

    /// API Gateway's `x-amzn-ErrorType` header for this type.
    pub fn error_type(self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Self::InvalidApiKey => "ForbiddenException",
            Self::Throttled => "TooManyRequestsException",
            Self::QuotaExceeded => "LimitExceededException",
            Self::RequestTooLarge => "RequestTooLongException",
            Self::IntegrationTimeout | Self::BadGateway => "InternalServerErrorException",
            Self::WafFiltered => "WAFFilteredException",
        }
    }
}

/// Expands `$context.x.y`, `${context.x}` and `$!context.x` in a response template; everything
/// else (including other VTL) is copied as is. Unknown variables render as nothing.
pub fn render_template(template: &str, info: &RequestInfo) -> String {
    expand(template, info, "")
}

/// Renders an `AccessLogSetting.Format` line. A variable without a value (unknown, or not set for
/// this request) renders as `-`, as in API Gateway's access logs (not in its documentation, but
/// what its log lines show, e.g. `"caller":"-"`), so no `$context` text is ever left.
pub fn render_access_log(format: &str, info: &RequestInfo) -> String {
    expand(format, info, "-")
}

fn expand(template: &str, info: &RequestInfo, missing: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let quiet = after.starts_with('!');
        let after_bang = if quiet { &after[1..] } else { after };
        let braced = after_bang.starts_with('{');
        let body = if braced { &after_bang[1..] } else { after_bang };
        let Some(vars) = body.strip_prefix("context.") else {
            out.push('$');
            rest = after;
            continue;
        };
        let mut end = 0;
        let bytes = vars.as_bytes();
        while end < bytes.len() {
            let c = bytes[end];
            let ident = c.is_ascii_alphanumeric() || c == b'_';
            let dot = c == b'.' && bytes.get(end + 1).is_some_and(|n| n.is_ascii_alphabetic());
            if ident || dot {
                end += 1;
            } else {
                break;
            }
        }
        let name = &vars[..end];
        let mut consumed = &vars[end..];
        if braced {
            match consumed.strip_prefix('}') {
                Some(r) => consumed = r,
                None => {
                    out.push('$');
                    rest = after;
                    continue;
                }
            }
        }
        out.push_str(&info.context_value(name).unwrap_or_else(|| missing.to_owned()));
        rest = consumed;
    }
    out.push_str(rest);
    out
}

fn header_value(source: &HeaderSource, info: &RequestInfo) -> Option<String> {
    match source {
        HeaderSource::Literal(v) => Some(v.clone()),
        HeaderSource::Context(name) => info.context_value(name),
        HeaderSource::RequestHeader(name) => {
            info.headers.get(name.as_str()).and_then(|v| v.to_str().ok()).map(str::to_owned)
        }
    }
}

/// Renders gateway response `kind` for the request described by `info`.
///
/// The entry for `kind` is used if the template has one, else `DEFAULT_4XX`/`DEFAULT_5XX`
/// (by the type's default status), else API Gateway's built-in `{"message": ...}` body.
pub fn render(api: &Api, kind: ResponseType, info: &RequestInfo) -> Response<Bytes> {
    let mut info = info.clone();
    info.error_message = Some(kind.message().to_owned());
    info.error_type = Some(kind.name().to_owned());
    let own = api.gateway_responses.get(kind.name());
    let fallback = if kind.default_status() >= 500 { "DEFAULT_5XX" } else { "DEFAULT_4XX" };
    let builtin = GatewayResponseConfig::default();
    let config = own.or_else(|| api.gateway_responses.get(fallback)).unwrap_or(&builtin);
    let status = own.and_then(|c| c.status_code).unwrap_or(kind.default_status());
    let (content_type, template) = config
        .templates
        .get_key_value("application/json")
        .or_else(|| config.templates.iter().next())
        .map_or(("application/json", "{\"message\":$context.error.messageString}"), |(k, v)| (k.as_str(), v.as_str()));
    let body = render_template(template, &info);
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(http::header::CONTENT_TYPE, v);
    }
    for (name, source) in &config.headers {
        let (Ok(name), Some(Ok(value))) =
            (HeaderName::from_bytes(name.as_bytes()), header_value(source, &info).map(|v| HeaderValue::from_str(&v)))
        else {
            continue;
        };
        headers.insert(name, value);
    }
    if let Ok(v) = HeaderValue::from_str(kind.error_type()) {
        headers.insert("x-amzn-errortype", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::event::tests::info;
    use crate::Template;

    const API: &str = r#"
Parameters: {Origin: {Type: String, Default: "*"}}
Resources:
  A:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      GatewayResponses:
        THROTTLED:
          StatusCode: 429
          ResponseParameters:
            Headers:
              Content-Type: "'application/problem+json'"
              Retry-After: "'1'"
              X-Request-Id: context.requestId
              Access-Control-Allow-Origin: !Sub "'${Origin}'"
          ResponseTemplates:
            application/json: '{"status":429,"instance":"$context.requestId","x":"${context.stage}$!context.nope"}'
        MISSING_AUTHENTICATION_TOKEN:
          StatusCode: 404
          ResponseTemplates: {application/json: '{"status":404}'}
        DEFAULT_4XX:
          ResponseParameters: {Headers: {X-Default: "'4xx'"}}
          ResponseTemplates:
            application/json: '{"detail":$context.error.messageString,"cost":"$5"}'
"#;

    #[test]
    fn renders_configured_response_with_context() {
        let api = Template::from_yaml(API, "").unwrap().api().unwrap();
        let info = info();
        let r = render(&api, ResponseType::Throttled, &info);
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        assert_eq!(r.headers()["retry-after"], "1");
        assert_eq!(r.headers()["x-request-id"], info.request_id.as_str());
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let body = String::from_utf8(r.body().to_vec()).unwrap();
        assert_eq!(body, format!("{{\"status\":429,\"instance\":\"{}\",\"x\":\"v1\"}}", info.request_id));
        assert_eq!(render(&api, ResponseType::MissingAuthenticationToken, &info).status(), 404);
    }

    #[test]
    fn falls_back_to_default_4xx_then_builtin() {
        let api = Template::from_yaml(API, "").unwrap().api().unwrap();
        let r = render(&api, ResponseType::InvalidApiKey, &info());
        assert_eq!(r.status(), 403);
        assert_eq!(r.headers()["x-default"], "4xx");
        assert_eq!(r.body().as_ref(), br#"{"detail":"Forbidden","cost":"$5"}"#);
        let r = render(&api, ResponseType::BadGateway, &info());
        assert_eq!(r.status(), 502);
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.headers()["x-amzn-errortype"], "InternalServerErrorException");
        assert_eq!(r.body().as_ref(), br#"{"message":"Internal server error"}"#);
    }

    #[test]
    fn given_no_waf_filtered_entry_when_waf_blocks_then_api_gateway_defaults_apply() {
        let api = Template::from_yaml(API, "").unwrap().api().unwrap();
        let r = render(&api, ResponseType::WafFiltered, &info());
        assert_eq!(r.status(), 403);
        assert_eq!(r.headers()["x-amzn-errortype"], "WAFFilteredException");
        assert_eq!(r.body().as_ref(), br#"{"detail":"Forbidden","cost":"$5"}"#);
    }

    #[test]
    fn given_variables_without_values_when_rendering_an_access_log_then_they_become_dashes() {
        let mut info = info();
        info.api_key = None;
        let format = r#"{"id":"$context.requestId","key":"$context.identity.apiKeyId","x":"$context.nope","t":"$context.tlsVersion"}"#;
        let line = render_access_log(format, &info);
        assert_eq!(line, format!(r#"{{"id":"{}","key":"-","x":"-","t":"-"}}"#, info.request_id));
        // Gateway response bodies keep rendering them as nothing.
        assert_eq!(render_template("[$context.nope]", &info), "[]");
    }
}
