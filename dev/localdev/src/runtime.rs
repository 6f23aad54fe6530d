//! A minimal Lambda Runtime API (`2018-06-01`) for one function process at a time, for the
//! benchmark and the tests that run function binaries as Lambda runs them.
//!
//! `GET /runtime/invocation/next` hands out the events the caller submits, with the headers the
//! Lambda service sets; `POST /runtime/invocation/{id}/response` and `.../error` complete an
//! invocation; `POST /runtime/init/error` reports a failed init. Every request becomes a
//! [`Signal`] for the caller, stamped with the time it arrived, in arrival order.
//!
//! Of the Extensions API (`2020-01-01`) it serves what an internal extension subscribed to no
//! events uses, as lambda_runtime's graceful-shutdown helper is: `POST /extension/register`
//! (without it, init fails, as it does not on Lambda) and `GET /extension/event/next`, which
//! such an extension is never woken from.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const PREFIX: &str = "/2018-06-01/runtime";
const EXTENSION_REGISTER: &str = "/2020-01-01/extension/register";
const EXTENSION_NEXT: &str = "/2020-01-01/extension/event/next";

/// What the function process did, as seen by the runtime API.
#[derive(Debug)]
pub enum Signal {
    /// The process asked for its next event (it is idle from now on).
    Poll(Instant),
    /// An invocation finished: `delivered` is when its event was handed out, `at` when the
    /// response (or error) arrived.
    Done { delivered: Instant, at: Instant, outcome: Outcome },
    /// `POST /runtime/init/error`.
    InitError(String),
}

#[derive(Debug)]
pub enum Outcome {
    Response(Bytes),
    Error(String),
}

struct Event {
    id: String,
    body: Bytes,
}

struct State {
    function_name: String,
    timeout: Duration,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<Event>>,
    delivered: Mutex<HashMap<String, Instant>>,
    signals: mpsc::UnboundedSender<Signal>,
}

/// The runtime API server; it stops when dropped.
pub struct RuntimeApi {
    addr: SocketAddr,
    events: mpsc::UnboundedSender<Event>,
    signals: mpsc::UnboundedReceiver<Signal>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    pub async fn start(function_name: &str, timeout: Duration) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (events, events_rx) = mpsc::unbounded_channel();
        let (signals_tx, signals) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            function_name: function_name.to_owned(),
            timeout,
            events: tokio::sync::Mutex::new(events_rx),
            delivered: Mutex::default(),
            signals: signals_tx,
        });
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let service = service_fn(move |request| handle(request, state.clone()));
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Ok(Self { addr, events, signals, server })
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an event; the next `GET .../next` receives it.
    pub fn submit(&self, body: Bytes) {
        let _ = self.events.send(Event { id: uuid::Uuid::new_v4().to_string(), body });
    }

    /// The next signal, or `None` when `limit` passes first.
    pub async fn signal(&mut self, limit: Duration) -> Option<Signal> {
        tokio::time::timeout(limit, self.signals.recv()).await.ok().flatten()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn reply(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

async fn handle(request: Request<Incoming>, state: Arc<State>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let arrived = Instant::now();
    if request.method() == Method::POST && request.uri().path() == EXTENSION_REGISTER {
        return Ok(register_extension(&state));
    }
    if request.method() == Method::GET && request.uri().path() == EXTENSION_NEXT {
        // No event an internal extension can subscribe to ever comes (Lambda sends SHUTDOWN to
        // external extensions only; the runtime process gets SIGTERM).
        std::future::pending::<()>().await;
    }
    let path = request.uri().path().strip_prefix(PREFIX).unwrap_or("").to_owned();
    let method = request.method().clone();
    let body = request.into_body().collect().await?.to_bytes();
    let text = || String::from_utf8_lossy(&body).into_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let response = match (method, segments.as_slice()) {
        (Method::GET, ["invocation", "next"]) => {
            let _ = state.signals.send(Signal::Poll(arrived));
            let Some(event) = state.events.lock().await.recv().await else {
                return Ok(reply(StatusCode::GONE, r#"{"errorType":"ShuttingDown"}"#));
            };
            state.delivered.lock().unwrap_or_else(|e| e.into_inner()).insert(event.id.clone(), Instant::now());
            return Ok(next_response(&state, event));
        }
        (Method::POST, ["invocation", id, kind @ ("response" | "error")]) => {
            let delivered = state.delivered.lock().unwrap_or_else(|e| e.into_inner()).remove(*id);
            let Some(delivered) = delivered else {
                return Ok(reply(StatusCode::BAD_REQUEST, r#"{"errorType":"InvalidRequestID"}"#));
            };
            let outcome = if *kind == "response" { Outcome::Response(body.clone()) } else { Outcome::Error(text()) };
            let _ = state.signals.send(Signal::Done { delivered, at: arrived, outcome });
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        (Method::POST, ["init", "error"]) => {
            let _ = state.signals.send(Signal::InitError(text()));
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        _ => reply(StatusCode::NOT_FOUND, r#"{"errorType":"NotFound"}"#),
    };
    Ok(response)
}

/// Lambda's answer to an extension's registration: an id and the function's identity.
fn register_extension(state: &State) -> Response<Full<Bytes>> {
    let body = serde_json::json!({
        "functionName": state.function_name,
        "functionVersion": "$LATEST",
        "handler": "bootstrap",
    });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    if let Ok(id) = http::HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("lambda-extension-identifier", id);
    }
    response
}

/// The event with the headers the Lambda service sends along with it.
fn next_response(state: &State, event: Event) -> Response<Full<Bytes>> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let deadline = (now + state.timeout).as_millis().to_string();
    let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{}", state.function_name);
    let trace = format!(
        "Root=1-{:08x}-{}; Parent={}; Sampled=0",
        now.as_secs(),
        &uuid::Uuid::new_v4().simple().to_string()[..24],
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    let mut response = Response::new(Full::new(event.body));
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = http::HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("content-type", "application/json");
    set("lambda-runtime-aws-request-id", &event.id);
    set("lambda-runtime-deadline-ms", &deadline);
    set("lambda-runtime-invoked-function-arn", &arn);
    set("lambda-runtime-trace-id", &trace);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Empty;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    async fn call(api: &RuntimeApi, method: Method, path: &str) -> Response<Incoming> {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", api.host_port()))
            .header("lambda-extension-name", "test-extension")
            .body(Empty::new())
            .unwrap();
        client.request(request).await.unwrap()
    }

    #[tokio::test]
    async fn given_an_internal_extension_when_it_registers_and_waits_then_it_gets_an_id_and_no_event() {
        let api = RuntimeApi::start("fn", Duration::from_secs(3)).await.unwrap();
        let registered = call(&api, Method::POST, EXTENSION_REGISTER).await;
        assert_eq!(registered.status(), StatusCode::OK);
        assert!(registered.headers().contains_key("lambda-extension-identifier"));
        let body = registered.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["functionName"], "fn");
        // The wait for the next event is answered by nothing (as on Lambda), not by an error.
        let next = tokio::time::timeout(Duration::from_millis(300), call(&api, Method::GET, EXTENSION_NEXT)).await;
        assert!(next.is_err(), "an internal extension subscribed to nothing is never woken");
    }
}
