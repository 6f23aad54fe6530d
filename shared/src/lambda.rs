//! The runtime adapter every function runs on: [`serve`] builds the function's dependencies once
//! per cold start and answers each invocation through [`Service::call`], which turns the
//! handler's `Result` into the response and logs exactly one line for the request.
//!
//! A function is a type implementing [`Function`]; its `main.rs` is one call:
//! `shared::lambda::serve::<login::Deps>(env!("CARGO_CRATE_NAME"))`.
//!
//! The event is normalised first. lambda_http turns an API Gateway REST event into an
//! `http::Request` by laying `headers` over `multiValueHeaders`, which keeps only the last value
//! of a repeated header, and it panics on a body flagged base64 that is not base64 (API Gateway
//! never sends one, but a direct invocation can). [`normalize`] runs first, so that a repeated
//! header reaches the handler with all its values (and is refused there) and an undecodable body
//! reaches it as an unreadable one.

use std::convert::Infallible;
use std::fmt::{Display, Write as _};
use std::future::Future;
use std::time::Instant;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{service_fn, Adapter, Body, LambdaEvent, Request, RequestExt, Response};
use tracing::Instrument;

use crate::aws::Clients;
use crate::config::{Config, ConfigError};
use crate::error::Chain;
use crate::http::{respond, RequestMeta};
use crate::ApiError;

/// A Lambda function of this API: its dependencies, built once per cold start, and its handler.
pub trait Function: Sized + Send + Sync + 'static {
    /// The dependencies, from the typed configuration and the AWS clients. A missing or invalid
    /// variable fails the cold start, naming the variable.
    fn build(config: &Config, aws: &Clients) -> Result<Self, ConfigError>;

    /// Work worth doing during init (reading keys). It must not fail: whatever it could not do,
    /// the first request does again.
    fn warm(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Answers one request. Expected failures are `Err(ApiError)` values that become problem+json
    /// responses; what the log line should say besides goes into `log`.
    fn handle(
        &self,
        req: &Request,
        log: &mut RequestLog,
    ) -> impl Future<Output = Result<Response<Body>, ApiError>> + Send;
}

/// What a handler adds to its request's one log line. Never a password, token, hash, code or
/// secret: only ids, outcomes and counts.
#[derive(Debug, Default)]
pub struct RequestLog {
    user_id: Option<String>,
    outcome: Option<&'static str>,
    detail: String,
    warning: Option<String>,
}

impl RequestLog {
    /// The user the request acted for, once known.
    pub fn user(&mut self, id: impl Display) {
        self.user_id = Some(id.to_string());
    }

    /// A word for what happened (`created`, `email_taken`, `reuse_detected`, ...).
    pub fn outcome(&mut self, outcome: &'static str) {
        self.outcome = Some(outcome);
    }

    /// A named count or id, appended to the line's `detail`.
    pub fn detail(&mut self, name: &'static str, value: impl Display) {
        if !self.detail.is_empty() {
            self.detail.push(' ');
        }
        let _ = write!(self.detail, "{name}={value}");
    }

    /// A failure that did not fail the request (a best-effort write): raises the line to WARN,
    /// with the error's cause chain.
    pub fn warn(&mut self, what: &str, error: &(dyn std::error::Error + 'static)) {
        self.warning = Some(format!("{what}: {}", Chain(error)));
    }

    /// Raises the line to WARN for a security event that is not an error (a replayed token).
    pub fn alert(&mut self, what: &str) {
        self.warning = Some(what.to_owned());
    }
}

/// A function with the edge every response needs: the CORS origin, the response headers, the
/// problem+json mapping and the request's log line.
pub struct Service<F> {
    function: F,
    cors_allowed_origin: Option<String>,
}

impl<F: Function> Service<F> {
    pub fn new(function: F, config: &Config) -> Self {
        Self { function, cors_allowed_origin: config.cors_allowed_origin.clone() }
    }

    /// A service with no CORS origin configured (unit tests).
    pub fn without_cors(function: F) -> Self {
        Self { function, cors_allowed_origin: None }
    }

    pub fn function(&self) -> &F {
        &self.function
    }

    /// Answers `req` and logs one line: request id, route, method, status, latency, the
    /// client's address, the user when known, the outcome, and the error's cause chain for a
    /// server-side error (the reason, for a client error).
    pub async fn call(&self, req: Request) -> Response<Body> {
        let started = Instant::now();
        let meta = RequestMeta::new(&req, self.cors_allowed_origin.as_deref());
        let mut log = RequestLog::default();
        let result = self.function.handle(&req, &mut log).await;
        let error = match &result {
            Ok(_) => None,
            Err(error) if error.is_server_error() => Some(Chain(error).to_string()),
            Err(error) => Some(error.to_string()),
        };
        let server_error = result.as_ref().is_err_and(ApiError::is_server_error);
        let response = respond(&meta, result);
        let line = Line {
            request_id: &meta.request_id,
            route: route(&req),
            method: req.method().as_str(),
            status: response.status().as_u16(),
            latency_ms: (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0,
            source_ip: crate::http::source_ip(&req),
            log: &log,
            error: error.as_deref(),
        };
        if server_error {
            line.emit(tracing::Level::ERROR);
        } else if log.warning.is_some() {
            line.emit(tracing::Level::WARN);
        } else {
            line.emit(tracing::Level::INFO);
        }
        response
    }
}

/// The route template API Gateway matched (`/users/{id}`), else the path.
fn route(req: &Request) -> String {
    match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV1(ctx)) if ctx.resource_path.is_some() => {
            ctx.resource_path.clone().unwrap_or_default()
        }
        _ => req.uri().path().to_owned(),
    }
}

struct Line<'a> {
    request_id: &'a str,
    route: String,
    method: &'a str,
    status: u16,
    latency_ms: f64,
    source_ip: Option<String>,
    log: &'a RequestLog,
    error: Option<&'a str>,
}

impl Line<'_> {
    fn emit(&self, level: tracing::Level) {
        macro_rules! line {
            ($macro:ident) => {
                tracing::$macro!(
                    request_id = self.request_id,
                    route = %self.route,
                    method = self.method,
                    status = self.status,
                    latency_ms = self.latency_ms,
                    source_ip = self.source_ip.as_deref().unwrap_or("-"),
                    user_id = self.log.user_id.as_deref(),
                    outcome = self.log.outcome,
                    detail = (!self.log.detail.is_empty()).then_some(self.log.detail.as_str()),
                    error = self.error,
                    warning = self.log.warning.as_deref(),
                    "request"
                )
            };
        }
        match level {
            tracing::Level::ERROR => line!(error),
            tracing::Level::WARN => line!(warn),
            _ => line!(info),
        }
    }
}

/// Runs the function `F` until the runtime stops: the whole `main` of a function binary.
/// Logging is set up first (for `function_crate`, see [`crate::telemetry`]), then the
/// configuration, the AWS clients and `F`'s dependencies, then [`Function::warm`] while the
/// graceful-shutdown handler registers ([`on_sigterm`]).
pub fn serve<F: Function>(function_crate: &'static str) -> Result<(), lambda_http::Error> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
        let (config, clients) = init(function_crate).await?;
        let function = F::build(&config, &clients)?;
        // The extension's registration is a round trip to the runtime API: made while warm's are.
        tokio::join!(function.warm(), on_sigterm());
        // It lives as long as the process: every request borrows it, nothing is cloned per request.
        let service: &'static Service<F> = Box::leak(Box::new(Service::new(function, &config)));
        run(service).await
    })
}

/// Logging (for `function_crate`, see [`crate::telemetry`]), then the configuration and the AWS
/// clients: what every function's init starts with.
async fn init(function_crate: &'static str) -> Result<(Config, Clients), ConfigError> {
    crate::telemetry::init(function_crate);
    let config = Config::from_env()?;
    crate::aws::check_ca_bundle(|name| std::env::var(name).ok())?;
    Ok((config, Clients::new(&crate::aws::sdk_config().await)))
}

/// Registers the runtime's graceful-shutdown handler: an internal extension, which is what makes
/// Lambda send the process SIGTERM (and wait up to 500 ms) before it stops an instance, instead of
/// killing it outright; the process logs one line and exits.
async fn on_sigterm() {
    lambda_runtime::spawn_graceful_shutdown_handler(|| async {
        tracing::info!(event = "shutdown", "SIGTERM received: the instance is being stopped");
    })
    .await;
}

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

/// A Lambda function fed by an event source (a stream), not by API Gateway.
pub trait EventFunction: Sized + Send + Sync + 'static {
    type Event: serde::de::DeserializeOwned + Send + 'static;
    type Output: serde::Serialize + Send + 'static;

    fn build(config: &Config, aws: &Clients) -> Result<Self, ConfigError>;

    /// Work worth doing during init; it must not fail (see [`Function::warm`]).
    fn warm(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Handles one batch. An `Err` fails the whole invocation (the event source retries it).
    fn handle(&self, event: Self::Event) -> impl Future<Output = Result<Self::Output, lambda_runtime::Error>> + Send;
}

/// Runs the event function `F` until the runtime stops: the whole `main` of its binary.
pub fn serve_events<F: EventFunction>(function_crate: &'static str) -> Result<(), lambda_http::Error> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
        let (config, clients) = init(function_crate).await?;
        let function = F::build(&config, &clients)?;
        tokio::join!(function.warm(), on_sigterm());
        let function: &'static F = Box::leak(Box::new(function));
        lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<F::Event>| {
            function.handle(event.payload)
        }))
        .await
    })
}

/// Answers every invocation with `service` until the runtime stops. Everything logged while a
/// request is handled carries the client's address (the `request` span's `source_ip`), besides
/// the runtime's request id.
async fn run<F: Function>(service: &'static Service<F>) -> Result<(), lambda_http::Error> {
    let handler = service_fn(move |request: Request| {
        let source_ip = crate::http::source_ip(&request).unwrap_or_else(|| "-".to_owned());
        let span = tracing::info_span!("request", source_ip = %source_ip);
        async move { Ok::<_, Infallible>(service.call(request).await) }.instrument(span)
    });
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
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::filter::LevelFilter;

    /// A handler that says who it acted for and fails the way it is told to.
    struct Probe(fn() -> ApiError);

    impl Function for Probe {
        fn build(_: &Config, _: &Clients) -> Result<Self, ConfigError> {
            Ok(Self(|| ApiError::InvalidCredentials))
        }

        async fn handle(&self, _: &Request, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
            log.user("0d9a4c1e-8f7b-4a6d-9c3e-2b1a0f9e8d7c");
            log.outcome("bad_credentials");
            log.detail("account_failures", 3);
            log.detail("network_failures", 1);
            Err((self.0)())
        }
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The JSON lines logged at INFO and above while `probe` answers one request.
    fn lines_of(probe: Probe) -> (u16, Vec<serde_json::Value>) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = crate::telemetry::subscriber(move || writer.clone(), LevelFilter::TRACE, &["probe"], true);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let status = tracing::subscriber::with_default(subscriber, || {
            runtime.block_on(Service::without_cors(probe).call(into_request(event(serde_json::json!({})))))
        })
        .status()
        .as_u16();
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines = text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap());
        (status, lines.filter(|l| l["level"] != "DEBUG" && l["level"] != "TRACE").collect())
    }

    #[test]
    fn given_a_rejected_request_when_answering_then_one_info_line_says_everything_about_it() {
        let (status, lines) = lines_of(Probe(|| ApiError::InvalidCredentials));
        assert_eq!(status, 401);
        assert_eq!(lines.len(), 1, "{lines:#?}");
        let fields = &lines[0]["fields"];
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(fields["request_id"], "r");
        assert_eq!(fields["route"], "/users/{id}");
        assert_eq!(fields["method"], "GET");
        assert_eq!(fields["status"], 401);
        assert!(fields["latency_ms"].as_f64().is_some(), "{fields}");
        assert_eq!(fields["source_ip"], "198.51.100.7");
        assert_eq!(fields["user_id"], "0d9a4c1e-8f7b-4a6d-9c3e-2b1a0f9e8d7c");
        assert_eq!(fields["outcome"], "bad_credentials");
        assert_eq!(fields["detail"], "account_failures=3 network_failures=1");
        assert!(fields["error"].as_str().is_some(), "{fields}");
    }

    #[test]
    fn given_a_server_error_when_answering_then_its_one_line_is_an_error_with_the_cause_chain() {
        let (status, lines) =
            lines_of(Probe(|| ApiError::Dependency(crate::DependencyError::failed("DynamoDB", "the table is gone"))));
        assert_eq!(status, 500);
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert_eq!(lines[0]["level"], "ERROR");
        assert_eq!(lines[0]["fields"]["error"], "DynamoDB call failed: the table is gone");
    }

    fn event(extra: serde_json::Value) -> LambdaRequest {
        let mut event = serde_json::json!({
            "resource": "/users/{id}", "path": "/users/me", "httpMethod": "GET",
            "headers": {"Authorization": "Bearer second"},
            "multiValueHeaders": {"Authorization": ["Bearer first", "Bearer second"]},
            "requestContext": {"stage": "v1", "requestId": "r", "httpMethod": "GET", "resourcePath": "/users/{id}",
                               "identity": {"sourceIp": "198.51.100.7"}},
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
