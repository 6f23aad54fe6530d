//! Test support (feature `test-support`): requests from the `events/` fixtures, and AWS clients
//! that point at an address where nothing listens, for handler tests of paths that must not
//! reach AWS at all.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use lambda_http::Request;

use crate::config::{Issuer, TokenSettings};
use crate::keyring::{KeyRing, RingKey};
use crate::token_keys::TokenKeys;
use crate::tokens::AccessTokens;

/// The repository's `events/` directory.
pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// The raw JSON of `events/<name>` (e.g. `register.json`).
pub fn event_json(name: &str) -> serde_json::Value {
    let path = events_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// A request exactly as Lambda would hand it to the function for this API Gateway event.
pub fn request_from(event: &serde_json::Value) -> Request {
    let event = serde_json::from_value(event.clone()).expect("a valid API Gateway REST proxy event");
    crate::lambda::into_request(event)
}

/// The request for fixture `events/<name>`.
pub fn event(name: &str) -> Request {
    request_from(&event_json(name))
}

/// Replaces `{{placeholder}}` strings anywhere in an event.
pub fn fill(event: &serde_json::Value, values: &[(&str, &str)]) -> serde_json::Value {
    let mut text = event.to_string();
    for (name, value) in values {
        text = text.replace(&format!("{{{{{name}}}}}"), value);
    }
    serde_json::from_str(&text).expect("placeholders hold JSON-safe values")
}

/// SDK config whose every call fails fast with a connection error.
pub fn unreachable_aws() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"),
        ))
        .build()
}

/// The issuer of tokens for requests from the `events/` fixtures (API `abc123`, stage `v1`).
pub const TEST_ISSUER: &str = "https://abc123.execute-api.us-east-1.amazonaws.com/v1";

/// The `kid` of [`TEST_KEY`] (the fuzz corpus's seeds name it).
pub const TEST_KID: &str = "P7pe5cKX_pR0AI8E0q2kNuHOvjj6IJJCots4z7ZALJo";

/// The signing key of unit tests and fuzz targets: a fixed test key (it signs nothing else), so
/// that tokens issued by one [`fixed_tokens`] verify with another, in any process.
pub static TEST_KEY: LazyLock<RingKey> = LazyLock::new(|| {
    let json = r#"{"keys":[{"kid":"P7pe5cKX_pR0AI8E0q2kNuHOvjj6IJJCots4z7ZALJo","published_at":0,"private_jwk":{"kty":"EC","crv":"P-256","x":"eAx5DzgrI6JZ_lVwHWswe74NWWVba4wD4MoZP8M2Y-g","y":"yeJHemzp7IKHvFSLdvXIGmSyS-mA_ZVapYktd6qifYI","d":"mJIsV36EyQM3xd4p_CQ3UBRhfRpsxSuy17M8j5Vebcs"}}]}"#;
    KeyRing::parse(json).expect("a valid test key").keys.remove(0)
});

pub fn token_settings() -> TokenSettings {
    TokenSettings::new(
        Issuer::ExecuteApi { region: "us-east-1".into(), url_suffix: "amazonaws.com".into() },
        crate::config::DEFAULT_AUDIENCE.into(),
        Duration::from_secs(900),
        Duration::from_secs(604_800),
    )
}

/// Access tokens signed with [`TEST_KEY`].
pub fn fixed_tokens() -> AccessTokens {
    let ring = KeyRing { keys: vec![TEST_KEY.clone()] };
    AccessTokens::new(Arc::new(TokenKeys::fixed(ring, Duration::from_secs(3600))), token_settings())
        .expect("test settings name the issuer")
}

/// Status, headers and parsed JSON body of a response.
pub fn parts(response: lambda_http::Response<lambda_http::Body>) -> (u16, http::HeaderMap, serde_json::Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap_or(serde_json::Value::Null),
        lambda_http::Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap_or(serde_json::Value::Null),
        _ => serde_json::Value::Null,
    };
    (status, headers, body)
}

/// Asserts an RFC 9457 problem with this status and returns its body.
pub fn assert_problem(
    response: lambda_http::Response<lambda_http::Body>,
    status: u16,
) -> (http::HeaderMap, serde_json::Value) {
    let (actual, headers, body) = parts(response);
    assert_eq!(actual, status, "unexpected status; body: {body}");
    assert_eq!(headers.get("content-type").map(|v| v.to_str().unwrap()), Some("application/problem+json"));
    assert_eq!(body["status"], status, "problem status: {body}");
    for member in ["type", "title", "detail"] {
        assert!(body[member].as_str().is_some_and(|s| !s.is_empty()), "problem lacks {member}: {body}");
    }
    assert!(headers.contains_key("x-request-id"));
    (headers, body)
}

/// The `field` names of a 422 problem's `errors`.
pub fn error_fields(problem: &serde_json::Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The token functions' dependencies with [`fixed_tokens`] and a store no call can reach.
pub fn offline_token_services() -> crate::services::TokenServices {
    crate::services::TokenServices {
        store: crate::store::Store::new(crate::aws::dynamodb(&unreachable_aws()), "offline"),
        tokens: fixed_tokens(),
    }
}
