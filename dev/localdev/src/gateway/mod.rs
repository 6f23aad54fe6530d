//! A local REST API Gateway emulator for the template's API, in front of `cargo lambda watch`.
//!
//! Per request, in API Gateway's order: AWS WAF, when a web ACL is associated with the stage
//! (rate-based rules per client IP, else `WAF_FILTERED`; see [`waf`]) → body size (10 MB) → route
//! (method + path, else `MISSING_AUTHENTICATION_TOKEN`; `OPTIONS` on a known path answers the CORS
//! mock) → API key (`x-api-key`, else `INVALID_API_KEY`) → method throttle from `MethodSettings` →
//! usage-plan throttle and quota per key (`THROTTLED` / `QUOTA_EXCEEDED`) → Lambda proxy
//! integration (`DEFAULT_5XX` as 502 when the function fails or answers something that is not a
//! proxy response; `INTEGRATION_TIMEOUT` as 504 after the integration timeout). Each request then
//! gets one access-log line on stderr, rendered from the template's `AccessLogSetting.Format`.
//! Beside the API, `GET /_local/outbox` shows the mail the local IAM check saw SES accept.

pub mod event;
pub(crate) mod invoke;
pub mod proxy;
pub mod responses;
pub mod router;
pub mod throttle;
pub mod waf;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use time::OffsetDateTime;
use tokio::net::TcpListener;

use crate::api::{Api, Cors};
use crate::error::Result;
use crate::outbox;
use crate::template::Template;
use event::{build_event, RequestInfo};
use invoke::{InvokeError, Invoker};
use responses::{render, render_access_log, ResponseType};
use router::{RouteMatch, Router};
use throttle::{Limiter, Refusal};
use waf::Waf;

/// API Gateway's maximum request payload (10 MB).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// The access-log line when the template sets no `AccessLogSetting.Format`.
const DEFAULT_ACCESS_LOG: &str =
    "[$context.requestTime] $context.identity.sourceIp \"$context.httpMethod $context.path\" \
     $context.status $context.responseLatency ms $context.requestId";

/// How the emulator reaches the functions and which API keys it accepts.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// Lambda Invoke API endpoint, e.g. `http://127.0.0.1:9000` (`cargo lambda watch`).
    pub lambda_endpoint: String,
    /// Accepted `x-api-key` values; each gets its own usage-plan throttle and quota.
    pub api_keys: Vec<String>,
    /// Integration timeout (API Gateway's maximum is 29 s).
    pub integration_timeout: Duration,
    /// `requestContext.apiId`.
    pub api_id: String,
    /// The local IAM check whose outbox `GET /_local/outbox` shows (see [`crate::outbox`]).
    pub iam_endpoint: Option<String>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            lambda_endpoint: "http://127.0.0.1:9000".into(),
            api_keys: Vec::new(),
            integration_timeout: Duration::from_secs(29),
            api_id: "localapi01".into(),
            iam_endpoint: None,
        }
    }
}

/// The emulator: the template's API, its routes and the throttling state.
pub struct Gateway {
    api: Api,
    router: Router,
    waf: Option<Waf>,
    limiter: Limiter,
    invoker: Invoker,
    options: GatewayOptions,
    account_id: String,
}

fn same_key(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // A failing OS random source only makes request ids less unique; never fatal here.
    let _ = getrandom::getrandom(&mut buf);
    buf
}

fn preflight(cors: &Cors, methods: &[&str]) -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set("content-type", "application/json");
    set("access-control-allow-origin", &cors.allow_origin);
    if let Some(h) = &cors.allow_headers {
        set("access-control-allow-headers", h);
    }
    let derived = || {
        let mut m: Vec<&str> = methods.iter().copied().chain(["OPTIONS"]).collect();
        m.sort_unstable();
        m.dedup();
        m.join(",")
    };
    set("access-control-allow-methods", &cors.allow_methods.clone().unwrap_or_else(derived));
    if let Some(age) = &cors.max_age {
        set("access-control-max-age", age);
    }
    if cors.allow_credentials {
        set("access-control-allow-credentials", "true");
    }
    response
}

impl Gateway {
    /// Builds the emulator for the template's API.
    pub fn new(template: &Template, options: GatewayOptions) -> Result<Self> {
        Ok(Self {
            api: template.api()?,
            router: Router::new(template.routes()?),
            waf: template.web_acl()?.map(Waf::new),
            limiter: Limiter::default(),
            invoker: Invoker::new(&options.lambda_endpoint, options.integration_timeout),
            options,
            account_id: template.account_id().to_owned(),
        })
    }

    /// The API being emulated.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The routes being served.
    pub fn router(&self) -> &Router {
        &self.router
    }

    fn request_info(&self, parts: &http::request::Parts, remote: SocketAddr) -> RequestInfo {
        let extended = base64::engine::general_purpose::STANDARD.encode(random_bytes::<11>());
        RequestInfo {
            request_id: uuid::Uuid::new_v4().to_string(),
            extended_request_id: extended,
            api_id: self.options.api_id.clone(),
            account_id: self.account_id.clone(),
            stage: self.api.stage_name.clone(),
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers.clone(),
            source_ip: remote.ip().to_string(),
            protocol: format!("{:?}", parts.version),
            domain_name: parts
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost")
                .to_owned(),
            received: OffsetDateTime::now_utc(),
            resource_path: None,
            api_key: None,
            error_message: None,
            error_type: None,
            waf_blocked: None,
            status: None,
            response_latency: None,
            integration_latency: None,
        }
    }

    /// Gateway response `kind`, also recorded in `info` for the access log's `$context.error.*`.
    fn fail(&self, kind: ResponseType, info: &mut RequestInfo) -> Response<Bytes> {
        info.error_message = Some(kind.message().to_owned());
        info.error_type = Some(kind.name().to_owned());
        render(&self.api, kind, info)
    }

    fn check_key(&self, info: &mut RequestInfo) -> Option<ResponseType> {
        let presented = info.headers.get("x-api-key").and_then(|v| v.to_str().ok());
        match presented {
            Some(key) if self.options.api_keys.iter().any(|k| same_key(k, key)) => {
                info.api_key = Some(key.to_owned());
                None
            }
            _ => Some(ResponseType::InvalidApiKey),
        }
    }

    fn refusal(refusal: Refusal) -> ResponseType {
        match refusal {
            Refusal::Throttled => ResponseType::Throttled,
            Refusal::QuotaExceeded => ResponseType::QuotaExceeded,
        }
    }

    /// Answers one request as API Gateway would (see the module docs for the order of checks).
    pub async fn respond<B>(&self, request: Request<B>, remote: SocketAddr) -> Response<Bytes>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.respond_with_access_log(request, remote).await.0
    }

    /// [`Gateway::respond`], with the request's access-log line (the template's
    /// `AccessLogSetting.Format`, else a short default).
    pub async fn respond_with_access_log<B>(&self, request: Request<B>, remote: SocketAddr) -> (Response<Bytes>, String)
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        let mut info = self.request_info(&parts, remote);
        let mut response = self.dispatch(&mut info, body).await;
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&info.request_id) {
            headers.insert("x-amzn-requestid", v);
        }
        if let Ok(v) = HeaderValue::from_str(&info.extended_request_id) {
            headers.insert("x-amz-apigw-id", v);
        }
        info.status = Some(response.status().as_u16());
        info.response_latency = Some(started.elapsed());
        let format = self.api.access_log_format.as_deref().unwrap_or(DEFAULT_ACCESS_LOG);
        let line = render_access_log(format, &info);
        (response, line)
    }

    async fn dispatch<B>(&self, info: &mut RequestInfo, body: B) -> Response<Bytes>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if info.method == "GET" && info.path == outbox::PATH {
            return self.outbox().await;
        }
        if let Some(waf) = &self.waf {
            let blocked = waf.check(&info.source_ip, &info.stage_path(), Instant::now());
            info.waf_blocked = Some(blocked.is_some());
            if let Some(rule) = blocked {
                eprintln!("{} blocked by WAF rule {}", info.request_id, rule.name);
                return self.fail(ResponseType::WafFiltered, info);
            }
        }
        let declared_length = info
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared_length.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return self.fail(ResponseType::RequestTooLarge, info);
        }
        let (route, params) = match self.router.find(&info.method, &info.path) {
            RouteMatch::Found { route, params } => (route, params),
            RouteMatch::MethodNotAllowed { resource, methods } if info.method == "OPTIONS" => {
                let Some(cors) = &self.api.cors else {
                    return self.fail(ResponseType::MissingAuthenticationToken, info);
                };
                info.resource_path = Some(resource.to_owned());
                if self.api.api_key_required_on_preflight {
                    if let Some(kind) = self.check_key(info) {
                        return self.fail(kind, info);
                    }
                }
                let throttle = self.api.method_throttle(resource, "OPTIONS");
                let key = format!("OPTIONS {resource}");
                if let Err(refusal) = self.limiter.check_route(&key, throttle, Instant::now()) {
                    return self.fail(Self::refusal(refusal), info);
                }
                return preflight(cors, &methods);
            }
            _ => return self.fail(ResponseType::MissingAuthenticationToken, info),
        };
        info.resource_path = Some(route.path.clone());
        if route.api_key_required {
            if let Some(kind) = self.check_key(info) {
                return self.fail(kind, info);
            }
        }
        let route_key = format!("{} {}", route.method, route.path);
        if let Err(refusal) = self.limiter.check_route(&route_key, route.throttle, Instant::now()) {
            return self.fail(Self::refusal(refusal), info);
        }
        if let (true, Some(plan), Some(key)) = (route.api_key_required, &self.api.usage_plan, &info.api_key) {
            if let Err(refusal) = self.limiter.check_key(key, plan, Instant::now(), info.received) {
                return self.fail(Self::refusal(refusal), info);
            }
        }
        let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return self.fail(ResponseType::RequestTooLarge, info);
            }
            Err(_) => return self.fail(ResponseType::BadGateway, info),
        };
        let event = build_event(info, &route.path, &params, &body);
        let invoked = Instant::now();
        let result = self.invoker.invoke(&route.binary, Bytes::from(event.to_string())).await;
        info.integration_latency = Some(invoked.elapsed());
        match result {
            Ok(payload) => match proxy::parse_proxy_response(&payload) {
                Ok(response) => response,
                Err(reason) => {
                    eprintln!("{} {}: malformed proxy response: {reason}", info.request_id, route.binary);
                    self.fail(ResponseType::BadGateway, info)
                }
            },
            Err(InvokeError::Timeout) => self.fail(ResponseType::IntegrationTimeout, info),
            Err(InvokeError::Failed(reason)) => {
                eprintln!("{} {}: {reason}", info.request_id, route.binary);
                self.fail(ResponseType::BadGateway, info)
            }
        }
    }

    /// The local IAM check's outbox: a development route beside the API, outside its stage.
    async fn outbox(&self) -> Response<Bytes> {
        let (status, body) = match &self.options.iam_endpoint {
            None => (404, serde_json::json!({"message": "no IAM check to read the outbox of (--iam-endpoint)"})),
            Some(url) => match outbox::fetch(url).await {
                Ok(messages) => (200, serde_json::json!(messages)),
                Err(error) => (502, serde_json::json!({"message": error.to_string()})),
            },
        };
        let mut response = Response::new(Bytes::from(body.to_string()));
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }

    /// [`Gateway::respond`], printing the request's access-log line on stderr.
    pub async fn handle<B>(&self, request: Request<B>, remote: SocketAddr) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (response, access_log) = self.respond_with_access_log(request, remote).await;
        eprintln!("{access_log}");
        response.map(Full::new)
    }

    /// Serves HTTP/1.1 on `listener` until `shutdown` completes, then lets in-flight requests
    /// finish (10 s at most).
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, remote) = match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            eprintln!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let gateway = Arc::clone(&self);
                    let service = service_fn(move |request| {
                        let gateway = Arc::clone(&gateway);
                        async move { Ok::<_, Infallible>(gateway.handle(request, remote).await) }
                    });
                    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        // Client disconnects are routine; nothing to report.
                        let _ = connection.await;
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(Duration::from_secs(10)) => eprintln!("shutdown: gave up waiting for open connections"),
        }
        Ok(())
    }
}
