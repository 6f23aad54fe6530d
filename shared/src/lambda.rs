//! Running a handler under the Lambda runtime, with the event normalised first.
//!
//! lambda_http turns an API Gateway REST event into an `http::Request` by laying `headers` over
//! `multiValueHeaders`, which keeps only the last value of a repeated header, and it panics on a
//! body flagged base64 that is not base64 (API Gateway never sends one, but a direct invocation
//! can). [`normalize`] runs first, so that a repeated header reaches the handler with all its
//! values (and is refused there) and an undecodable body reaches it as an unreadable one.

use std::convert::Infallible;
use std::future::Future;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{service_fn, Adapter, Body, LambdaEvent, Request, Response};
use tracing::Instrument;

/// What an undecodable body becomes: a NUL, which no JSON decoder accepts.
const UNREADABLE_BODY: &str = "\u{0}";

/// Makes `multiValueHeaders` the one source of headers (API Gateway puts every value there and
/// only the last one in `headers`), and replaces a body that claims to be base64 but is not.
pub fn normalize(event: &mut LambdaRequest) {
    if let LambdaRequest::ApiGatewayV1(event) = event {
        if !event.multi_value_headers.is_empty() {
            event.headers.clear();
        }
        if event.is_base64_encoded && event.body.as_deref().is_some_and(|body| STANDARD.decode(body).is_err()) {
            event.is_base64_encoded = false;
            event.body = Some(UNREADABLE_BODY.to_owned());
        }
    }
}

/// The request a REST event becomes, after [`normalize`].
pub fn into_request(mut event: LambdaRequest) -> Request {
    normalize(&mut event);
    event.into()
}

/// Runs `handler` for every invocation until the runtime stops. Everything logged while a
/// request is handled carries the client's address (the `request` span's `source_ip`), besides
/// the runtime's request id.
///
/// Before that, it registers the runtime's graceful-shutdown handler: an internal extension,
/// which is what makes Lambda send the process SIGTERM (and wait up to 500 ms) before it stops
/// an instance, instead of killing it outright; the process logs one line and exits.
pub async fn run<H, F>(handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(Request) -> F,
    F: Future<Output = Response<Body>> + Send,
{
    let handler = service_fn(move |request: Request| {
        let source_ip = crate::http::source_ip(&request).unwrap_or_else(|| "-".to_owned());
        let span = tracing::info_span!("request", source_ip = %source_ip);
        let response = handler(request);
        async move { Ok::<_, Infallible>(response.await) }.instrument(span)
    });
    lambda_runtime::spawn_graceful_shutdown_handler(|| async {
        tracing::info!(event = "shutdown", "SIGTERM received: the instance is being stopped");
    })
    .await;
    let service = Adapter::from(handler).map_request(|mut event: LambdaEvent<LambdaRequest>| {
        normalize(&mut event.payload);
        event
    });
    lambda_http::lambda_runtime::run(service).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::header::AUTHORIZATION;

    fn event(extra: serde_json::Value) -> LambdaRequest {
        let mut event = serde_json::json!({
            "resource": "/users/{id}", "path": "/users/me", "httpMethod": "GET",
            "headers": {"Authorization": "Bearer second"},
            "multiValueHeaders": {"Authorization": ["Bearer first", "Bearer second"]},
            "requestContext": {"stage": "v1", "requestId": "r", "httpMethod": "GET", "resourcePath": "/users/{id}"},
            "body": null, "isBase64Encoded": false
        });
        event.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value(event).unwrap()
    }

    #[test]
    fn given_a_repeated_header_when_converting_then_the_handler_sees_every_value() {
        let request = into_request(event(serde_json::json!({})));
        let values: Vec<_> = request.headers().get_all(AUTHORIZATION).iter().collect();
        assert_eq!(values, ["Bearer first", "Bearer second"]);
    }

    #[test]
    fn given_a_body_flagged_base64_that_is_not_when_converting_then_it_is_unreadable_not_a_panic() {
        let request = into_request(event(serde_json::json!({"body": "{not base64}", "isBase64Encoded": true})));
        assert_eq!(request.body(), &Body::Text(UNREADABLE_BODY.to_owned()));
        let request = into_request(event(serde_json::json!({"body": "e30=", "isBase64Encoded": true})));
        assert_eq!(request.body(), &Body::Binary(b"{}".to_vec()));
    }
}
