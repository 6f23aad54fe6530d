//! `GET /hello` → `200 {"message":"hello","sub":"<sub>"}` for the caller whose access token API
//! Gateway's JWT authorizer accepted, else `401` problem+json.
//!
//! The function verifies nothing: the gateway checked the token's signature (against the auth
//! stack's JWKS), `iss`, `aud`, algorithm and expiry before invoking it, and the route cannot be
//! reached without the authorizer (see `../template.yaml`). It only reads the claims the gateway
//! passed along.
//!
//! Where the claims are. "Pass JWT claims to your integration"
//! (<https://docs.aws.amazon.com/apigateway/latest/developerguide/rest-api-jwt-authorizer-claims.html>)
//! says: "After a JWT authorizer validates a token, API Gateway makes the token's claims available
//! to the integration. You reference a claim with `$context.authorizer.claims.property`, where
//! property is the claim name." and "A Lambda proxy integration receives each claim with its JSON
//! type." A REST proxy event carries `$context.authorizer` as `requestContext.authorizer`, so the
//! subject is `requestContext.authorizer.claims.sub`, a JSON string. (That last step is how REST
//! proxy events lay out `$context.authorizer` for every authorizer type; the part of the page
//! read for this example shows no proxy event, so `events/hello.json` is built on that reading.)
//!
//! Without a usable `sub` (the function invoked some other way than through the protected route,
//! or the claim missing or not a string) it answers 401 rather than trusting anything else.

use lambda_http::http::{header, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{service_fn, Body, Error, Request, RequestExt, Response};
use serde_json::json;

const JSON: &str = "application/json";
const PROBLEM_JSON: &str = "application/problem+json";

/// Runs the function until the Lambda runtime stops it: the whole `main`.
pub fn serve() -> Result<(), Error> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(lambda_http::run(service_fn(hello)))
}

/// Answers one request.
pub async fn hello(req: Request) -> Result<Response<Body>, Error> {
    let response = match caller_sub(&req) {
        Some(sub) => respond(StatusCode::OK, JSON, json!({"message": "hello", "sub": sub})),
        None => unauthorized(),
    };
    Ok(response?)
}

/// The `sub` claim of the token the JWT authorizer accepted, if the request came through it.
pub fn caller_sub(req: &Request) -> Option<&str> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV1(ctx) => {
            ctx.authorizer.fields.get("claims")?.get("sub")?.as_str().filter(|sub| !sub.is_empty())
        }
        // Any other event source (the enum is non-exhaustive).
        _ => None,
    }
}

fn unauthorized() -> Result<Response<Body>, lambda_http::http::Error> {
    let problem = json!({
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": "A valid bearer access token is required.",
    });
    let mut response = respond(StatusCode::UNAUTHORIZED, PROBLEM_JSON, problem)?;
    response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    Ok(response)
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: serde_json::Value,
) -> Result<Response<Body>, lambda_http::http::Error> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::Text(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::request::LambdaRequest;
    use std::path::PathBuf;

    /// The raw JSON of `examples/protected-api/events/<name>`.
    fn event_json(name: &str) -> serde_json::Value {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events").join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
    }

    /// The request Lambda hands the function for this API Gateway REST proxy event.
    fn request_from(event: serde_json::Value) -> Request {
        let event: LambdaRequest = serde_json::from_value(event).expect("a valid API Gateway REST proxy event");
        event.into()
    }

    fn body_json(response: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(response.body().as_ref()).expect("a JSON body")
    }

    #[tokio::test]
    async fn given_the_authorizers_claims_when_saying_hello_then_200_names_the_callers_sub() {
        // GIVEN the proxy event of a request the JWT authorizer accepted
        let req = request_from(event_json("hello.json"));

        // WHEN the function answers it
        let response = hello(req).await.unwrap();

        // THEN 200 with the `sub` claim
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[header::CONTENT_TYPE], JSON);
        assert_eq!(body_json(&response), json!({"message": "hello", "sub": "7d0f5a36-2c9b-4e51-9a8e-3b6f1c2d4e5f"}));
    }

    #[tokio::test]
    async fn given_no_sub_claim_when_saying_hello_then_401_problem() {
        // GIVEN the same event without the `sub` claim
        let mut event = event_json("hello.json");
        event["requestContext"]["authorizer"]["claims"].as_object_mut().unwrap().remove("sub");
        let req = request_from(event);

        // WHEN the function answers it
        let response = hello(req).await.unwrap();

        // THEN 401 problem+json, and a bearer challenge
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let problem = body_json(&response);
        assert_eq!(problem["status"], 401);
        assert_eq!(problem["title"], "Unauthorized");
    }

    #[tokio::test]
    async fn given_no_authorizer_context_or_a_non_string_sub_when_saying_hello_then_401() {
        for edit in [
            |e: &mut serde_json::Value| {
                e["requestContext"].as_object_mut().unwrap().remove("authorizer");
            },
            |e: &mut serde_json::Value| e["requestContext"]["authorizer"]["claims"]["sub"] = json!(42),
            |e: &mut serde_json::Value| e["requestContext"]["authorizer"]["claims"]["sub"] = json!(""),
        ] {
            // GIVEN an event whose authorizer context gives no usable subject
            let mut event = event_json("hello.json");
            edit(&mut event);

            // WHEN the function answers it
            let response = hello(request_from(event)).await.unwrap();

            // THEN 401
            assert_eq!(response.status(), 401);
        }
    }
}
