//! The gateway emulator end to end against a stand-in for `cargo lambda watch` on 127.0.0.1.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use localdev::gateway::{Gateway, GatewayOptions};
use localdev::Template;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const KEY: &str = "test-key-0123456789";

type Events = Arc<Mutex<Vec<Value>>>;

async fn lambda_reply(request: Request<Incoming>, events: Events) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let body = request.into_body().collect().await.unwrap().to_bytes();
    events.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
    let function = path.split('/').nth(3).unwrap_or_default().to_owned();
    let reply = |payload: Value| Response::new(Full::new(Bytes::from(payload.to_string())));
    match function.as_str() {
        "register" => reply(json!({
            "statusCode": 201,
            "headers": {"x-fn": "register", "content-type": "application/json"},
            "multiValueHeaders": {"set-cookie": ["a=1", "b=2"]},
            "body": "{\"created\":true}",
            "isBase64Encoded": false
        })),
        "login" => {
            let mut r = reply(json!({"errorType": "Panic", "errorMessage": "boom"}));
            r.headers_mut().insert("x-amz-function-error", "Unhandled".parse().unwrap());
            r
        }
        "refresh" => {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            reply(json!({"statusCode": 200, "body": "late"}))
        }
        _ => reply(json!({"hello": "not a proxy response"})),
    }
}

async fn fake_lambda() -> (String, Events) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let events: Events = Arc::default();
    let recorded = Arc::clone(&events);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let events = Arc::clone(&recorded);
            let service = service_fn(move |r| {
                let events = Arc::clone(&events);
                async move { Ok::<_, Infallible>(lambda_reply(r, events).await) }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    (format!("http://{addr}"), events)
}

struct Running {
    addr: SocketAddr,
    events: Events,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(overrides: &str) -> Running {
    let (lambda, events) = fake_lambda().await;
    let template =
        Template::load_with_overrides(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"), overrides).unwrap();
    let options = GatewayOptions {
        lambda_endpoint: lambda,
        api_keys: vec![KEY.into()],
        integration_timeout: Duration::from_millis(500),
        ..GatewayOptions::default()
    };
    let gateway = Arc::new(Gateway::new(&template, options).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(gateway.serve(listener, async {
        let _ = stopped.await;
    }));
    Running { addr, events, stop: Some(stop), done }
}

impl Running {
    async fn send(&self, method: Method, path: &str, key: Option<&str>, body: &str) -> (StatusCode, HeaderMap, String) {
        self.send_from(Ipv4Addr::LOCALHOST.into(), method, path, key, body).await
    }

    /// Sends from a socket bound to `client` (any 127.X.Y.Z is this machine), so the gateway sees
    /// that address as the TCP peer, as API Gateway sees each client's.
    async fn send_from(
        &self,
        client: IpAddr,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: &str,
    ) -> (StatusCode, HeaderMap, String) {
        let mut connector = HttpConnector::new();
        connector.set_local_address(Some(client));
        let client = Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(connector);
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr))
            .header("content-type", "application/json")
            .header("user-agent", "gateway-test");
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = client.request(request.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.done.await.unwrap().unwrap();
    }
}

fn problem(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test]
async fn rejects_unknown_routes_and_bad_keys_with_template_responses() {
    let gw = start("").await;
    for (method, path) in [(Method::POST, "/nope"), (Method::GET, "/register"), (Method::POST, "/v1/register")] {
        let (status, headers, body) = gw.send(method, path, Some(KEY), "{}").await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(headers["access-control-allow-origin"], "*");
        let request_id = headers["x-request-id"].to_str().unwrap();
        assert_eq!(headers["x-amzn-requestid"], request_id);
        let p = problem(&body);
        assert_eq!(p["status"], 404);
        assert_eq!(p["instance"], format!("urn:uuid:{request_id}"));
    }
    for key in [None, Some("wrong")] {
        let (status, headers, body) = gw.send(Method::POST, "/register", key, "{}").await;
        assert_eq!(status, 403);
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(problem(&body)["status"], 403);
    }
    assert!(gw.events.lock().unwrap().is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn answers_cors_preflight_without_a_key() {
    let gw = start("CorsAllowedOrigin=https://app.example.com").await;
    let (status, headers, body) = gw.send(Method::OPTIONS, "/users/42", None, "").await;
    assert_eq!(status, 200);
    assert_eq!(headers["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(headers["access-control-allow-methods"], "GET,POST,DELETE,OPTIONS");
    assert_eq!(headers["access-control-allow-headers"], "Content-Type,Authorization,X-Api-Key");
    assert_eq!(headers["access-control-max-age"], "600");
    assert!(body.is_empty());
    let (status, _, _) = gw.send(Method::OPTIONS, "/nope", None, "").await;
    assert_eq!(status, 404);
    gw.stop().await;
}

#[tokio::test]
async fn proxies_to_the_function_with_a_rest_v1_event() {
    let gw = start("").await;
    let (status, headers, body) = gw.send(Method::POST, "/register?src=test", Some(KEY), "{\"email\":\"a@b.c\"}").await;
    assert_eq!(status, 201);
    assert_eq!(body, "{\"created\":true}");
    assert_eq!(headers["x-fn"], "register");
    assert_eq!(headers.get_all("set-cookie").iter().count(), 2);
    let events = gw.events.lock().unwrap().clone();
    let ev = &events[0];
    assert_eq!(ev["resource"], "/register");
    assert_eq!(ev["path"], "/register");
    assert_eq!(ev["httpMethod"], "POST");
    assert_eq!(ev["body"], "{\"email\":\"a@b.c\"}");
    assert_eq!(ev["isBase64Encoded"], false);
    assert_eq!(ev["queryStringParameters"]["src"], "test");
    assert_eq!(ev["headers"]["x-api-key"], KEY);
    assert_eq!(ev["headers"]["content-type"], "application/json");
    let rc = &ev["requestContext"];
    assert_eq!(rc["stage"], "v1");
    assert_eq!(rc["path"], "/v1/register");
    assert_eq!(rc["resourcePath"], "/register");
    assert_eq!(rc["identity"]["apiKey"], KEY);
    assert_eq!(rc["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(rc["identity"]["userAgent"], "gateway-test");
    assert_eq!(rc["requestId"], headers["x-amzn-requestid"].to_str().unwrap());
    assert_eq!(uuid::Uuid::parse_str(rc["requestId"].as_str().unwrap()).unwrap().get_version_num(), 4);
    gw.stop().await;
}

#[tokio::test]
async fn function_failures_become_502_and_slow_functions_504() {
    let gw = start("").await;
    for path in ["/login", "/users/abc"] {
        let method = if path == "/login" { Method::POST } else { Method::GET };
        let (status, headers, body) = gw.send(method, path, Some(KEY), "{}").await;
        assert_eq!(status, 502, "{path}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(problem(&body)["detail"], "The service could not complete the request.");
    }
    let get_user = gw.events.lock().unwrap().iter().find(|e| e["resource"] == "/users/{id}").cloned().unwrap();
    assert_eq!(get_user["pathParameters"]["id"], "abc");
    let (status, _, _) = gw.send(Method::POST, "/refresh", Some(KEY), "{}").await;
    assert_eq!(status, 504);
    gw.stop().await;
}

#[tokio::test]
async fn route_throttle_returns_throttled_response() {
    let gw = start("RegisterRateLimit=1 RegisterBurstLimit=3").await;
    let mut statuses = Vec::new();
    let mut throttled = None;
    for _ in 0..6 {
        let (status, headers, body) = gw.send(Method::POST, "/register", Some(KEY), "{}").await;
        statuses.push(status.as_u16());
        if status == 429 {
            throttled = Some((headers, body));
        }
    }
    assert_eq!(&statuses[..3], &[201, 201, 201], "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    let (headers, body) = throttled.unwrap();
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(problem(&body)["title"], "Too Many Requests");
    // Other routes have their own buckets.
    let (status, _, _) = gw.send(Method::GET, "/users/x", Some(KEY), "").await;
    assert_eq!(status, 502);
    gw.stop().await;
}

fn direct(overrides: &str) -> Gateway {
    // Nothing listens on the discard port: invocations fail fast with 502.
    direct_to("http://127.0.0.1:9", overrides)
}

fn direct_to(lambda: &str, overrides: &str) -> Gateway {
    let template =
        Template::load_with_overrides(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"), overrides).unwrap();
    let options = GatewayOptions {
        lambda_endpoint: lambda.into(),
        api_keys: vec![KEY.into(), "second-key-0123456789".into()],
        ..GatewayOptions::default()
    };
    Gateway::new(&template, options).unwrap()
}

fn request(path: &str, key: &str, body: Vec<u8>) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "127.0.0.1:3000")
        .header("x-api-key", key)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

#[tokio::test]
async fn usage_plan_quota_is_per_key() {
    let gw = direct("ApiQuotaLimit=2");
    let remote: SocketAddr = "127.0.0.1:5555".parse().unwrap();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(gw.respond(request("/login", KEY, Vec::new()), remote).await.status().as_u16());
    }
    assert_eq!(statuses, [502, 502, 429]);
    let r = gw.respond(request("/login", KEY, Vec::new()), remote).await;
    assert_eq!(r.headers()["retry-after"], "3600");
    let p: Value = serde_json::from_slice(r.body()).unwrap();
    assert!(p["detail"].as_str().unwrap().contains("quota"));
    let other = gw.respond(request("/login", "second-key-0123456789", Vec::new()), remote).await;
    assert_eq!(other.status(), 502);
}

#[tokio::test]
async fn bodies_over_10_mb_are_rejected() {
    let gw = direct("");
    let remote: SocketAddr = "127.0.0.1:5555".parse().unwrap();
    let big = vec![b'a'; localdev::gateway::MAX_BODY_BYTES + 1];
    let r = gw.respond(request("/register", KEY, big), remote).await;
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(p["detail"], "Request Too Long");
    let ok = vec![b'a'; localdev::gateway::MAX_BODY_BYTES];
    assert_eq!(gw.respond(request("/register", KEY, ok), remote).await.status(), 502);
}

const CLIENT: [u8; 4] = [127, 0, 0, 2];
const OTHER_CLIENT: [u8; 4] = [127, 0, 0, 3];

impl Running {
    fn invocations(&self, resource: &str) -> usize {
        self.events.lock().unwrap().iter().filter(|e| e["resource"] == resource).count()
    }
}

#[tokio::test]
async fn given_a_waf_login_limit_when_one_ip_exceeds_it_then_it_alone_gets_waf_filtered_before_anything_else() {
    let gw = start("WafLoginLimit=10 WafWindowSeconds=60").await;
    let (client, other) = (IpAddr::from(CLIENT), IpAddr::from(OTHER_CLIENT));
    for i in 0..10 {
        // The stub login function fails: 502 means the request reached it.
        let (status, _, _) = gw.send_from(client, Method::POST, "/login", Some(KEY), "{}").await;
        assert_eq!(status, 502, "login {i}");
    }
    assert_eq!(gw.invocations("/login"), 10);
    let (status, headers, body) = gw.send_from(client, Method::POST, "/login", Some(KEY), "{}").await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "60");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(headers["x-amzn-errortype"], "WAFFilteredException");
    let p = problem(&body);
    assert_eq!(p["title"], "Too Many Requests");
    assert!(p["detail"].as_str().unwrap().starts_with("Too many requests from this network."), "{body}");
    assert_eq!(p["instance"], format!("urn:uuid:{}", headers["x-request-id"].to_str().unwrap()));
    // WAF answers before API Gateway looks at the API key (403 otherwise) or the route (404).
    let (status, _, _) = gw.send_from(client, Method::POST, "/login", None, "{}").await;
    assert_eq!(status, 429);
    let (status, _, _) = gw.send_from(client, Method::POST, "/login/nope", Some(KEY), "{}").await;
    assert_eq!(status, 429);
    assert_eq!(gw.invocations("/login"), 10);
    // Another address has its own count; other routes are not limited by the login rule.
    let (status, _, _) = gw.send_from(other, Method::POST, "/login", Some(KEY), "{}").await;
    assert_eq!(status, 502);
    let (status, _, _) = gw.send_from(client, Method::GET, "/users/x", Some(KEY), "").await;
    assert_eq!(status, 502);
    assert_eq!(gw.invocations("/login"), 11);
    gw.stop().await;
}

#[tokio::test]
async fn given_waf_disabled_when_one_ip_exceeds_the_login_limit_then_nothing_is_blocked() {
    let gw = start("EnableWaf=false WafLoginLimit=10 WafWindowSeconds=60").await;
    for i in 0..15 {
        let (status, _, _) = gw.send_from(IpAddr::from(CLIENT), Method::POST, "/login", Some(KEY), "{}").await;
        assert_eq!(status, 502, "login {i}");
    }
    assert_eq!(gw.invocations("/login"), 15);
    gw.stop().await;
}

fn access_log(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("access log is not JSON ({e}): {line}"))
}

#[tokio::test]
async fn given_a_request_with_credentials_when_logged_then_the_access_log_has_every_field_and_no_secret() {
    let (lambda, _) = fake_lambda().await;
    let gw = direct_to(&lambda, "");
    // The template's format is itself a JSON object: its keys are the fields every line must have.
    let format: Value = serde_json::from_str(gw.api().access_log_format.as_deref().unwrap()).unwrap();
    let body = r#"{"email":"someone@example.com","password":"correct horse battery staple"}"#;
    let request = Request::post("/register")
        .header("host", "127.0.0.1:3000")
        .header("x-api-key", KEY)
        .header("authorization", "Bearer secret-access-token")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let remote: SocketAddr = "127.0.0.7:40000".parse().unwrap();
    let (response, line) = gw.respond_with_access_log(request, remote).await;
    assert_eq!(response.status(), 201);
    let log = access_log(&line);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&log), keys(&format));
    for (field, value) in log.as_object().unwrap() {
        let value = value.as_str().unwrap();
        assert!(!value.is_empty() && !value.contains("$context"), "{field}: {value:?}");
    }
    assert_eq!(log["sourceIp"], "127.0.0.7");
    assert_eq!(log["status"], "201");
    assert_eq!(log["httpMethod"], "POST");
    assert_eq!(log["resourcePath"], "/register");
    assert_eq!(log["requestId"], response.headers()["x-amzn-requestid"].to_str().unwrap());
    assert!(regex_lite::Regex::new(r"^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000$")
        .unwrap()
        .is_match(log["requestTime"].as_str().unwrap()));
    assert_eq!(log["apiKeyId"].as_str().unwrap().len(), 10);
    assert!(log["integrationLatency"].as_str().unwrap().parse::<u64>().is_ok());
    assert!(log["responseLatency"].as_str().unwrap().parse::<u64>().is_ok());
    assert_eq!(log["protocol"], "HTTP/1.1");
    // No gateway error, no WAF action, no TLS locally: API Gateway's "-".
    for field in ["errorType", "wafStatus", "tlsVersion"] {
        assert_eq!(log[field], "-", "{field}");
    }
    for secret in [KEY, "secret-access-token", "correct horse", "someone@example.com"] {
        assert!(!line.contains(secret), "{secret} in {line}");
    }
}

#[tokio::test]
async fn given_a_request_blocked_by_waf_when_logged_then_the_access_log_names_waf_filtered() {
    let gw = direct("WafLoginLimit=10 WafWindowSeconds=60");
    let remote = SocketAddr::from((CLIENT, 40000));
    let login = || request("/login", KEY, Vec::new());
    for _ in 0..10 {
        assert_eq!(gw.respond(login(), remote).await.status(), 502);
    }
    let (response, line) = gw.respond_with_access_log(login(), remote).await;
    assert_eq!(response.status(), 429);
    let log = access_log(&line);
    assert_eq!(log["status"], "429");
    assert_eq!(log["errorType"], "WAF_FILTERED");
    assert_eq!(log["wafStatus"], "403");
    assert_eq!(log["sourceIp"], "127.0.0.2");
    // Blocked before routing, the API key check and the integration.
    for field in ["resourcePath", "apiKeyId", "integrationLatency"] {
        assert_eq!(log[field], "-", "{field}");
    }
}
