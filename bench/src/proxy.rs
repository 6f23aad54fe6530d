//! A counting HTTP proxy in front of one emulator.
//!
//! The functions reach DynamoDB and Secrets Manager through it (`AWS_ENDPOINT_URL_DYNAMODB`,
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER`), so every AWS call they make is logged with its operation
//! (the `X-Amz-Target` header) and the times it arrived and was answered. The driver drains the
//! log at invocation boundaries to count calls per invocation.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// Which emulator a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    SecretsManager,
}

/// One AWS call seen by a proxy.
#[derive(Debug, Clone)]
pub struct Call {
    pub service: Service,
    pub operation: String,
    pub arrived: Instant,
    pub answered: Instant,
}

/// The calls both proxies saw, in arrival order of their answers.
#[derive(Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<Call>>>);

impl CallLog {
    /// Everything logged since the last drain.
    pub fn drain(&self) -> Vec<Call> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn push(&self, call: Call) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(call);
    }
}

/// Calls per service in a slice of the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub dynamodb: usize,
    pub secrets_manager: usize,
}

impl Counts {
    pub fn of(calls: &[Call]) -> Self {
        let count = |service| calls.iter().filter(|c| c.service == service).count();
        Self { dynamodb: count(Service::DynamoDb), secrets_manager: count(Service::SecretsManager) }
    }
}

type Upstream = Client<HttpConnector, Full<Bytes>>;
type ProxyError = Box<dyn std::error::Error + Send + Sync>;

/// A pass-through proxy to one upstream; it stops when dropped.
pub struct CountingProxy {
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    pub async fn start(upstream: &str, service: Service, log: CallLog) -> std::io::Result<Self> {
        let upstream: Uri = upstream
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{upstream}: {e}")))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let client: Upstream = Client::builder(TokioExecutor::new()).build_http();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let (client, upstream, log) = (client.clone(), upstream.clone(), log.clone());
                let service =
                    service_fn(move |request| forward(request, client.clone(), upstream.clone(), service, log.clone()));
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Ok(Self { addr, server })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn forward(
    request: Request<Incoming>,
    client: Upstream,
    upstream: Uri,
    service: Service,
    log: CallLog,
) -> Result<Response<Full<Bytes>>, ProxyError> {
    let arrived = Instant::now();
    let operation = request.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let (mut parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("{}{path}", upstream.to_string().trim_end_matches('/')).parse()?;
    let response = client.request(Request::from_parts(parts, Full::new(body))).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    log.push(Call { service, operation, arrived, answered: Instant::now() });
    Ok(Response::from_parts(parts, Full::new(body)))
}
