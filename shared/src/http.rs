//! The HTTP edge shared by every function: reading a JSON object body with field-level errors,
//! the request id, and turning a handler's `Result` into the final response with the headers
//! every response carries.

use std::collections::HashMap;
use std::fmt;

use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde::Serialize;
use serde_json::Value;

use crate::error::{ApiError, FieldError};

/// Largest request body accepted, after base64 decoding.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
const JSON: &str = "application/json";
const PROBLEM_JSON: &str = "application/problem+json";
/// `Strict-Transport-Security` on every response (the gateway's own responses in template.yaml too).
pub const HSTS: &str = "max-age=31536000";

/// What every response needs from its request.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    allow_origin: Option<HeaderValue>,
}

impl RequestMeta {
    /// `cors_allowed_origin` is `*` or one exact origin; it is echoed only to that origin.
    pub fn new(req: &Request, cors_allowed_origin: Option<&str>) -> Self {
        let request_id = req
            .lambda_context_ref()
            .map(|ctx| ctx.request_id.clone())
            .filter(|id| !id.is_empty())
            .or_else(|| match req.request_context_ref() {
                Some(lambda_http::request::RequestContext::ApiGatewayV1(ctx)) => ctx.request_id.clone(),
                _ => None,
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let allow_origin = cors_allowed_origin.and_then(|allowed| {
            let origin = req.headers().get(header::ORIGIN)?;
            (allowed == "*" || origin.as_bytes() == allowed.as_bytes()).then(|| HeaderValue::from_str(allowed).ok())?
        });
        Self { request_id, allow_origin }
    }
}

/// The client's address as API Gateway saw it, for security logs.
pub fn source_ip(req: &Request) -> Option<String> {
    match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV1(ctx)) => ctx.identity.source_ip.clone(),
        _ => None,
    }
}

/// Builds the final response: the success as given, or the error as problem+json (logged by
/// the caller, [`crate::lambda::Service::call`], in the request's one line).
pub fn respond(meta: &RequestMeta, result: Result<Response<Body>, ApiError>) -> Response<Body> {
    let mut response = match result {
        Ok(response) => response,
        Err(error) => problem_response(&error),
    };
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&meta.request_id) {
        headers.insert("x-request-id", id);
    }
    // Every body is about a user or a credential, so no shared cache may keep it, unless the
    // handler said otherwise (the public keys).
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // HTTPS only, for a year. Not `includeSubDomains`: behind a custom domain, its subdomains
    // are the operator's to decide.
    headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    // A handler that answers every origin (the public keys) has set its own.
    if let Some(origin) =
        meta.allow_origin.as_ref().filter(|_| !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN))
    {
        if origin != "*" {
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Location, Retry-After, WWW-Authenticate, X-Request-Id"),
        );
    }
    response
}

fn problem_response(error: &ApiError) -> Response<Body> {
    let body = serde_json::to_string(&error.problem()).unwrap_or_default();
    let mut builder = Response::builder().status(error.status()).header(header::CONTENT_TYPE, PROBLEM_JSON);
    for (name, value) in error.headers() {
        builder = builder.header(name, value);
    }
    builder.body(Body::Text(body)).unwrap_or_else(|_| plain_500())
}

fn plain_500() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

/// A JSON response with the given status.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Result<Response<Body>, ApiError> {
    let body = serde_json::to_string(body).map_err(|e| ApiError::Internal(e.into()))?;
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, JSON)
        .body(Body::Text(body))
        .map_err(|e| ApiError::Internal(e.into()))
}

/// `202 Accepted`, the same body for every request it answers (`{"status":"accepted"}`).
pub fn accepted() -> Result<Response<Body>, ApiError> {
    json_response(StatusCode::ACCEPTED, &serde_json::json!({"status": "accepted"}))
}

/// `204 No Content`.
pub fn no_content() -> Result<Response<Body>, ApiError> {
    Response::builder().status(StatusCode::NO_CONTENT).body(Body::Empty).map_err(|e| ApiError::Internal(e.into()))
}

/// Refuses any method other than `allowed` (API Gateway routes only the declared method, but a
/// function can also be invoked directly).
pub fn require_method(req: &Request, allowed: &'static http::Method) -> Result<(), ApiError> {
    if req.method() == allowed {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed(allowed.as_str()))
    }
}

/// The single value of a header, refusing a header sent twice (which proxies and frameworks
/// resolve differently).
pub fn single_header<'a>(
    headers: &'a HeaderMap,
    name: &header::HeaderName,
) -> Result<Option<&'a HeaderValue>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::BadRequest("A header that must appear once was sent more than once."));
    }
    Ok(first)
}

/// Whether `content_type` is JSON: `application/json` or `application/*+json`, optionally with a
/// UTF-8 charset.
fn is_json(content_type: &HeaderValue) -> bool {
    let Ok(value) = content_type.to_str() else { return false };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let media_type_ok = essence == JSON || (essence.starts_with("application/") && essence.ends_with("+json"));
    let params_ok = parts.all(|param| match param.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        Some(_) => true,
        None => param.trim().is_empty(),
    });
    media_type_ok && params_ok
}

/// The members of a JSON object body, checked for size, media type, syntax, duplicates and
/// unknown names. Use [`JsonFields::string`] for each expected member and [`JsonFields::finish`]
/// to collect every field error into one `422`.
#[derive(Debug)]
pub struct JsonFields {
    members: HashMap<String, Value>,
    errors: Vec<FieldError>,
}

impl JsonFields {
    /// Reads the request body as a JSON object whose member names must all be in `allowed`.
    pub fn from_request(req: &Request, allowed: &[&str]) -> Result<Self, ApiError> {
        let body: &[u8] = match req.body() {
            Body::Empty => &[],
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
            _ => return Err(ApiError::BadRequest("The request body could not be read.")),
        };
        if body.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        match single_header(req.headers(), &header::CONTENT_TYPE)? {
            Some(content_type) if is_json(content_type) => {}
            _ => return Err(ApiError::UnsupportedMediaType),
        }
        Self::from_slice(body, allowed)
    }

    pub fn from_slice(body: &[u8], allowed: &[&str]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadRequest("The request body is empty; a JSON object is required."));
        }
        let object: Members = serde_json::from_slice(body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ApiError::BadRequest("The request body must be a JSON object."),
            _ => ApiError::BadRequest("The request body is not valid JSON."),
        })?;
        let mut members = HashMap::with_capacity(object.0.len());
        let mut errors = Vec::new();
        for (name, value) in object.0 {
            if !allowed.contains(&name.as_str()) {
                errors.push(FieldError::new(printable_name(&name), "is not a recognised field"));
            } else if members.insert(name, value).is_some() {
                return Err(ApiError::BadRequest("The request body has a duplicate member name."));
            }
        }
        Ok(Self { members, errors })
    }

    /// The named member as a string; records "is required" or "must be a string" otherwise.
    pub fn string(&mut self, name: &str) -> Option<String> {
        match self.members.remove(name) {
            Some(Value::String(value)) => Some(value),
            None => {
                self.errors.push(FieldError::new(name, "is required"));
                None
            }
            Some(_) => {
                self.errors.push(FieldError::new(name, "must be a string"));
                None
            }
        }
    }

    /// Parses the named string member with `parse`, recording its message as a field error.
    pub fn parse<T>(&mut self, name: &str, parse: impl FnOnce(String) -> Result<T, String>) -> Option<T> {
        let raw = self.string(name)?;
        parse(raw).map_err(|message| self.errors.push(FieldError::new(name, message))).ok()
    }

    /// Records an error found by a check that spans fields.
    pub fn reject(&mut self, name: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(name, message));
    }

    /// `Ok` when every field was valid, else one `422` listing them all.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// Unknown member names are echoed back in errors: keep them short and printable.
fn printable_name(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// The members of a JSON object in document order, duplicates included (serde_json's own maps
/// silently keep the last duplicate).
struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(4).min(16));
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor).map_err(|e: D::Error| de::Error::custom(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &["email", "password"];

    fn bad_request(body: &str) -> bool {
        matches!(JsonFields::from_slice(body.as_bytes(), FIELDS), Err(ApiError::BadRequest(_)))
    }

    fn answer(origin: Option<&str>, allowed: Option<&str>) -> http::HeaderMap {
        let mut request = http::Request::builder().uri("/users/me");
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        let request: Request = request.body(Body::Empty).unwrap();
        let meta = RequestMeta::new(&request, allowed);
        respond(&meta, Err(ApiError::NotFound)).headers().clone()
    }

    #[test]
    fn given_any_answer_then_it_is_uncacheable_unsniffable_and_https_only() {
        let headers = answer(None, None);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::STRICT_TRANSPORT_SECURITY], "max-age=31536000");
    }

    #[test]
    fn given_an_origin_when_answering_then_only_the_configured_origin_is_allowed() {
        let allow = |origin, allowed| answer(origin, allowed).get(header::ACCESS_CONTROL_ALLOW_ORIGIN).cloned();
        let app = "https://app.example.com";
        assert_eq!(allow(Some(app), Some("*")).unwrap(), "*");
        assert_eq!(allow(Some(app), Some(app)).unwrap(), app);
        assert_eq!(answer(Some(app), Some(app))[header::VARY], "Origin", "a cache must key on the origin");
        assert!(!answer(Some(app), Some("*")).contains_key(header::VARY));
        assert_eq!(allow(Some("https://evil.example.com"), Some(app)), None);
        assert_eq!(allow(None, Some("*")), None, "no Origin, no CORS");
        assert_eq!(allow(Some(app), None), None, "CORS not configured");
    }

    #[test]
    fn given_malformed_or_non_object_bodies_when_reading_then_400() {
        for body in ["", "  ", "{", "{\"email\":}", "[]", "\"text\"", "null", "42", "{} {}", "{\"a\":1,}"] {
            assert!(bad_request(body), "{body:?} should be a 400");
        }
    }

    #[test]
    fn given_duplicate_members_when_reading_then_400() {
        assert!(bad_request(r#"{"email":"a@example.com","email":"b@example.com"}"#));
    }

    #[test]
    fn given_deeply_nested_json_when_reading_then_400_without_overflow() {
        let nested = format!("{{\"email\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(bad_request(&nested));
    }

    #[test]
    fn given_unknown_missing_and_mistyped_members_when_finishing_then_one_422_lists_all() {
        let mut fields = JsonFields::from_slice(br#"{"email":5,"extra":true}"#, FIELDS).unwrap();
        assert_eq!(fields.string("email"), None);
        assert_eq!(fields.string("password"), None);
        let Err(ApiError::Validation(errors)) = fields.finish() else { panic!("expected 422") };
        let names: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(names, ["extra", "email", "password"]);
    }

    #[test]
    fn given_json_media_types_when_checking_then_only_utf8_json_passes() {
        for ok in [
            "application/json",
            "Application/JSON; charset=UTF-8",
            "application/problem+json",
            "application/json;charset=\"utf-8\"",
        ] {
            assert!(is_json(&HeaderValue::from_static(ok)), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/json; charset=latin1",
            "json",
            "multipart/form-data",
        ] {
            assert!(!is_json(&HeaderValue::from_static(bad)), "{bad}");
        }
    }
}
