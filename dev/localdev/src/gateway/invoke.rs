//! Invoking a function through `cargo lambda watch`'s Lambda Invoke API.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

/// Why an invocation produced no payload.
#[derive(Debug)]
pub enum InvokeError {
    /// The function did not answer within the integration timeout.
    Timeout,
    /// Connection or protocol failure, a non-2xx status, or a function error.
    Failed(String),
}

/// A client for `POST {endpoint}/2015-03-31/functions/{name}/invocations`.
#[derive(Clone)]
pub struct Invoker {
    client: Client<HttpConnector, Full<Bytes>>,
    endpoint: String,
    timeout: Duration,
}

impl Invoker {
    /// A client for the Lambda endpoint `endpoint` (e.g. `http://127.0.0.1:9000`).
    pub fn new(endpoint: &str, timeout: Duration) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self { client, endpoint: endpoint.trim_end_matches('/').to_owned(), timeout }
    }

    /// Invokes `function` with `payload` and returns the function's response payload.
    pub async fn invoke(&self, function: &str, payload: Bytes) -> Result<Bytes, InvokeError> {
        let uri: Uri = format!("{}/2015-03-31/functions/{function}/invocations", self.endpoint)
            .parse()
            .map_err(|e| InvokeError::Failed(format!("bad Lambda endpoint: {e}")))?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(payload))
            .map_err(|e| InvokeError::Failed(e.to_string()))?;
        let call = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| InvokeError::Failed(format!("invoke {function}: {e}")))?;
            let status = response.status();
            let function_error = response.headers().get("x-amz-function-error").cloned();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| InvokeError::Failed(format!("invoke {function}: {e}")))?
                .to_bytes();
            if !status.is_success() {
                return Err(InvokeError::Failed(format!("invoke {function}: HTTP {status}")));
            }
            if let Some(kind) = function_error {
                return Err(InvokeError::Failed(format!("{function} failed: {kind:?}")));
            }
            Ok(body)
        };
        tokio::time::timeout(self.timeout, call).await.unwrap_or(Err(InvokeError::Timeout))
    }
}
