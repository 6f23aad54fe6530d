//! A fault-injecting HTTP proxy for the functions' AWS clients.
//!
//! [`FaultProxy`] listens on 127.0.0.1 (an ephemeral port) and forwards every request to one
//! upstream emulator, unless a [`Plan`] says otherwise: answer with a throttling error or a 5xx,
//! never answer, close the connection, or forward and then lose the answer. Plans may target one
//! operation (the `X-Amz-Target` header, e.g. `DynamoDB_20120810.PutItem`) and a number of
//! requests. The proxy counts the requests it receives per operation, retry attempts included.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

pub const GET_ITEM: &str = "DynamoDB_20120810.GetItem";
pub const UPDATE_ITEM: &str = "DynamoDB_20120810.UpdateItem";
pub const TRANSACT_WRITE_ITEMS: &str = "DynamoDB_20120810.TransactWriteItems";
pub const GET_SECRET_VALUE: &str = "secretsmanager.GetSecretValue";

/// What the proxy does instead of forwarding a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `400` `ProvisionedThroughputExceededException`, as DynamoDB throttles.
    Throttle,
    /// `500` or `503` `InternalServerError`.
    ServerError(u16),
    /// Never answers (the client's attempt timeout fires); nothing reaches the upstream.
    Hang,
    /// Closes the connection without an answer; nothing reaches the upstream.
    Close,
    /// Forwards the request, then closes the connection: the write happened, the answer is lost.
    LoseResponse,
    /// `400` `TransactionCanceledException` whose reasons are these codes, one per item, as
    /// DynamoDB cancels a transaction (`TransactionConflict`: another request was writing an item).
    Canceled(&'static [&'static str]),
    /// The upstream's own answer, except that a cancelled transaction reports no reason for the
    /// item at this index (as if DynamoDB had stopped before evaluating its condition).
    HideReason(usize),
}

/// A fault for some requests: all of them, or only one operation's, after the first `after` of
/// them, and only `times` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    fault: Fault,
    operation: Option<String>,
    after: usize,
    times: Option<usize>,
}

impl Plan {
    /// Only requests whose `X-Amz-Target` is `operation`.
    pub fn on(mut self, operation: &str) -> Self {
        self.operation = Some(operation.to_owned());
        self
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    /// Not the first `n` matching requests: they pass through.
    pub fn after(mut self, n: usize) -> Self {
        self.after = n;
        self
    }
}

impl Fault {
    pub fn on(self, operation: &str) -> Plan {
        Plan::from(self).on(operation)
    }

    pub fn times(self, n: usize) -> Plan {
        Plan::from(self).times(n)
    }
}

impl From<Fault> for Plan {
    fn from(fault: Fault) -> Self {
        Self { fault, operation: None, after: 0, times: None }
    }
}

#[derive(Default)]
struct State {
    plans: Vec<Plan>,
    counts: HashMap<String, usize>,
}

impl State {
    /// Counts the request and picks the first plan that applies to it, using one of its `after`
    /// or `times`.
    fn on_request(&mut self, operation: &str) -> Option<Fault> {
        *self.counts.entry(operation.to_owned()).or_default() += 1;
        let plan = self
            .plans
            .iter_mut()
            .find(|plan| plan.times != Some(0) && plan.operation.as_deref().is_none_or(|wanted| wanted == operation))?;
        if plan.after > 0 {
            plan.after -= 1;
            return None;
        }
        if let Some(left) = plan.times.as_mut() {
            *left -= 1;
        }
        Some(plan.fault)
    }
}

type Upstream = Client<HttpConnector, Full<Bytes>>;
type ProxyError = Box<dyn std::error::Error + Send + Sync>;

/// A programmable proxy in front of one emulator; it stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (e.g. `http://127.0.0.1:8000`) that passes everything through.
    pub async fn start(upstream: &str) -> Self {
        let upstream: Uri = upstream.parse().expect("an upstream URL");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the fault proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let state = Arc::new(Mutex::new(State::default()));
        let client: Upstream = Client::builder(TokioExecutor::new()).build_http();
        let server = tokio::spawn({
            let state = state.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (state, client, upstream) = (state.clone(), client.clone(), upstream.clone());
                    let service =
                        service_fn(move |request| handle(request, state.clone(), client.clone(), upstream.clone()));
                    tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
                }
            }
        });
        Self { addr, state, server }
    }

    /// The URL to give an SDK client as its endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a fault; plans are tried in the order they were added.
    pub fn inject(&self, plan: impl Into<Plan>) {
        self.state().plans.push(plan.into());
    }

    /// Drops every plan: from now on, requests pass through.
    pub fn pass_through(&self) {
        self.state().plans.clear();
    }

    /// Requests received for `operation` (an `X-Amz-Target`) since the last [`Self::reset_counts`].
    pub fn count(&self, operation: &str) -> usize {
        self.state().counts.get(operation).copied().unwrap_or(0)
    }

    /// Requests received per operation.
    pub fn counts(&self) -> HashMap<String, usize> {
        self.state().counts.clone()
    }

    pub fn reset_counts(&self) {
        self.state().counts.clear();
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(
    request: Request<Incoming>,
    state: Arc<Mutex<State>>,
    client: Upstream,
    upstream: Uri,
) -> Result<Response<Full<Bytes>>, ProxyError> {
    let operation = request.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let fault = state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).on_request(&operation);
    match fault {
        None => forward(request, &client, &upstream).await,
        Some(Fault::Throttle) => Ok(aws_error(
            StatusCode::BAD_REQUEST,
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded.",
        )),
        Some(Fault::ServerError(status)) => Ok(aws_error(
            StatusCode::from_u16(status).expect("a valid status"),
            "com.amazonaws.dynamodb.v20120810#InternalServerError",
            "Internal server error",
        )),
        Some(Fault::Hang) => std::future::pending().await,
        Some(Fault::Close) => Err(format!("fault: closing the connection on {operation}").into()),
        Some(Fault::Canceled(codes)) => {
            let reasons: Vec<_> = codes.iter().map(|code| serde_json::json!({"Code": code})).collect();
            let kind = "com.amazonaws.dynamodb.v20120810#TransactionCanceledException";
            let body = serde_json::json!({
                "__type": kind,
                "Message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", codes.join(", ")),
                "CancellationReasons": reasons,
            });
            Ok(json_response(StatusCode::BAD_REQUEST, kind, body))
        }
        Some(Fault::HideReason(index)) => {
            let response = forward(request, &client, &upstream).await?;
            let (mut parts, body) = response.into_parts();
            // The body changes: its length and checksum (which the SDK verifies) go with it.
            parts.headers.remove(http::header::CONTENT_LENGTH);
            parts.headers.remove("x-amz-crc32");
            let mut body: serde_json::Value = serde_json::from_slice(&body.collect().await?.to_bytes())?;
            if let Some(reason) = body["CancellationReasons"].get_mut(index) {
                *reason = serde_json::json!({"Code": "None"});
            }
            Ok(Response::from_parts(parts, Full::new(Bytes::from(body.to_string()))))
        }
        Some(Fault::LoseResponse) => {
            forward(request, &client, &upstream).await?;
            Err(format!("fault: dropping the answer to {operation}").into())
        }
    }
}

/// Sends the request on to the upstream emulator, path and headers unchanged.
async fn forward(
    request: Request<Incoming>,
    client: &Upstream,
    upstream: &Uri,
) -> Result<Response<Full<Bytes>>, ProxyError> {
    let (mut parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("{}{path}", upstream.to_string().trim_end_matches('/')).parse()?;
    let response = client.request(Request::from_parts(parts, Full::new(body))).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// An AWS JSON-protocol error, as DynamoDB sends it.
fn aws_error(status: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
    json_response(status, kind, serde_json::json!({"__type": kind, "message": message}))
}

fn json_response(status: StatusCode, kind: &str, body: serde_json::Value) -> Response<Full<Bytes>> {
    let body = body.to_string();
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-errortype", kind)
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string())
        .body(Full::new(Bytes::from(body)))
        .expect("a valid error response")
}
