//! A counting HTTP proxy in front of one emulator.
//!
//! The functions reach DynamoDB, Secrets Manager and SES through it (`AWS_ENDPOINT_URL_DYNAMODB`,
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL_SESV2`), so every AWS call they make is
//! logged with its operation (the `X-Amz-Target` header; for SES's REST API, the request's path)
//! and the times it arrived and was answered. The driver drains the log at invocation boundaries
//! to count calls and round trips per invocation.
//!
//! Every DynamoDB request is sent with `ReturnConsumedCapacity: TOTAL` (unless it asks for
//! more), so the log also holds the read and write request units each call is billed; the
//! function's SDK parses the extra field like any other response member.

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
use serde_json::Value;
use tokio::net::TcpListener;

/// Which emulator a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    SecretsManager,
    Ses,
}

/// One AWS call seen by a proxy.
#[derive(Debug, Clone)]
pub struct Call {
    pub service: Service,
    pub operation: String,
    pub arrived: Instant,
    pub answered: Instant,
    /// DynamoDB request units billed for the call (zero for the other services).
    pub units: Units,
}

/// DynamoDB on-demand request units.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Units {
    pub read: f64,
    pub write: f64,
}

impl Units {
    pub fn of(calls: &[Call]) -> Self {
        calls
            .iter()
            .fold(Self::default(), |sum, c| Self { read: sum.read + c.units.read, write: sum.write + c.units.write })
    }
}

const READS: [&str; 5] = ["GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"];
const WRITES: [&str; 5] = ["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"];

/// The units a DynamoDB call is billed, from its request and DynamoDB Local's answer.
///
/// Local reports `ConsumedCapacity` by AWS's rules for single-item calls (0.5 / 1 unit per 4 KB
/// read, 1 per 1 KB written), but sizes a transaction by its items' total, where AWS bills each
/// action at least 2 units: a transaction is floored at 2 units per action. A write that fails
/// its condition is billed too and answered without the field: 1 unit (2 per action in a
/// transaction), the floor for items under 1 KB, as all of this table's are.
fn units(operation: &str, request: &Value, status: http::StatusCode, response: &[u8]) -> Units {
    let actions = request.get("TransactItems").and_then(Value::as_array).map(Vec::len);
    let floor = actions.map_or(1.0, |n| 2.0 * n as f64);
    let reported = serde_json::from_slice::<Value>(response).ok().and_then(|answer| {
        let consumed = answer.get("ConsumedCapacity")?.clone();
        let entries = match consumed {
            Value::Array(entries) => entries,
            entry => vec![entry],
        };
        Some(entries.iter().filter_map(|e| e.get("CapacityUnits").and_then(Value::as_f64)).sum::<f64>())
    });
    let billed = match reported {
        Some(units) if actions.is_some() => units.max(floor),
        Some(units) => units,
        None if status.is_success() || READS.contains(&operation) => 0.0,
        // Only a failed condition is billed; throttling or a validation error is not.
        None if ["ConditionalCheckFailed", "TransactionCanceled"]
            .iter()
            .any(|error| String::from_utf8_lossy(response).contains(error)) =>
        {
            floor
        }
        None => 0.0,
    };
    if READS.contains(&operation) {
        Units { read: billed, write: 0.0 }
    } else {
        Units { read: 0.0, write: billed }
    }
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

/// Calls per service in a slice of the log, and the sequential round trips they took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub dynamodb: usize,
    pub secrets_manager: usize,
    pub ses: usize,
    pub round_trips: usize,
}

impl Counts {
    pub fn of(calls: &[Call]) -> Self {
        let count = |service| calls.iter().filter(|c| c.service == service).count();
        Self {
            dynamodb: count(Service::DynamoDb),
            secrets_manager: count(Service::SecretsManager),
            ses: count(Service::Ses),
            round_trips: round_trips(calls).len(),
        }
    }

    /// `f` applied field by field.
    pub fn zip(self, other: Self, f: fn(usize, usize) -> usize) -> Self {
        Self {
            dynamodb: f(self.dynamodb, other.dynamodb),
            secrets_manager: f(self.secrets_manager, other.secrets_manager),
            ses: f(self.ses, other.ses),
            round_trips: f(self.round_trips, other.round_trips),
        }
    }
}

/// The sequential round trips in `calls`, each as (first arrival, last answer). Calls whose
/// intervals at the proxy overlap were in flight together, so they cost one round trip: sorted
/// by arrival, a call that arrives before the current group's latest answer joins the group.
/// (A call made after another's answer always arrives after it is logged as answered.)
pub fn round_trips(calls: &[Call]) -> Vec<(Instant, Instant)> {
    let mut calls: Vec<&Call> = calls.iter().collect();
    calls.sort_by_key(|c| c.arrived);
    let mut trips: Vec<(Instant, Instant)> = Vec::new();
    for call in calls {
        match trips.last_mut() {
            Some((_, end)) if call.arrived < *end => *end = (*end).max(call.answered),
            _ => trips.push((call.arrived, call.answered)),
        }
    }
    trips
}

/// The calls as their round trips: operations in flight together joined by ` ‖ ` (sorted, for
/// one spelling), round trips in order joined by ` → `; `none` when there was no call.
pub fn sequence(calls: &[Call]) -> String {
    let mut sorted: Vec<&Call> = calls.iter().collect();
    sorted.sort_by_key(|c| c.arrived);
    let mut trips: Vec<(Instant, Vec<&str>)> = Vec::new();
    for call in sorted {
        match trips.last_mut() {
            Some((end, ops)) if call.arrived < *end => {
                *end = (*end).max(call.answered);
                ops.push(&call.operation);
            }
            _ => trips.push((call.answered, vec![&call.operation])),
        }
    }
    if trips.is_empty() {
        return "none".to_owned();
    }
    let trips: Vec<String> = trips
        .into_iter()
        .map(|(_, mut ops)| {
            ops.sort_unstable();
            ops.join(" ‖ ")
        })
        .collect();
    trips.join(" → ")
}

/// The operation's short name: `DynamoDB_20120810.GetItem` → `GetItem`; SESv2's REST
/// `POST /v2/email/outbound-emails` → `SendEmail`.
fn operation(request: &Request<Incoming>, service: Service) -> String {
    if service == Service::Ses {
        let path = request.uri().path();
        return if path.starts_with("/v2/email/outbound-emails") {
            "SendEmail".to_owned()
        } else {
            format!("{} {path}", request.method())
        };
    }
    let target = request.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    target.rsplit('.').next().unwrap_or(target).to_owned()
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
    let operation = operation(&request, service);
    let (mut parts, body) = request.into_parts();
    let mut body = body.collect().await?.to_bytes();
    let mut sent = Value::Null;
    // Only the data-plane calls are billed in units. DynamoDB Local checks neither the request's
    // signature nor its payload hash, so the body can change under it.
    let priced =
        service == Service::DynamoDb && (READS.contains(&operation.as_str()) || WRITES.contains(&operation.as_str()));
    if priced {
        sent = serde_json::from_slice(&body)?;
        if let Some(fields) = sent.as_object_mut() {
            fields.entry("ReturnConsumedCapacity").or_insert_with(|| "TOTAL".into());
        }
        body = serde_json::to_vec(&sent)?.into();
        parts.headers.insert(http::header::CONTENT_LENGTH, body.len().into());
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("{}{path}", upstream.to_string().trim_end_matches('/')).parse()?;
    let response = client.request(Request::from_parts(parts, Full::new(body))).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    let units = if priced { units(&operation, &sent, parts.status, &body) } else { Units::default() };
    log.push(Call { service, operation, arrived, answered: Instant::now(), units });
    Ok(Response::from_parts(parts, Full::new(body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn given_overlapping_calls_when_counting_then_they_are_one_round_trip() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let call = |from, to| Call {
            service: Service::DynamoDb,
            operation: String::new(),
            arrived: at(from),
            answered: at(to),
            units: Units::default(),
        };
        // Login: two concurrent calls (logged in answer order), then one after both answers.
        let login = [call(1, 5), call(0, 3), call(6, 9)];
        assert_eq!(round_trips(&login), [(at(0), at(5)), (at(6), at(9))]);
        assert_eq!(Counts::of(&login), Counts { dynamodb: 3, secrets_manager: 0, ses: 0, round_trips: 2 });
        // A call joins a group it overlaps through another member only.
        assert_eq!(round_trips(&[call(0, 3), call(2, 6), call(5, 8)]).len(), 1);
        assert!(round_trips(&[]).is_empty());
    }

    #[test]
    fn given_calls_when_spelling_their_sequence_then_concurrent_ones_share_a_round_trip() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let call = |operation: &str, from, to| Call {
            service: Service::DynamoDb,
            operation: operation.to_owned(),
            arrived: at(from),
            answered: at(to),
            units: Units::default(),
        };
        let change =
            [call("TransactWriteItems", 9, 12), call("GetItem", 0, 2), call("UpdateItem", 3, 6), call("GetItem", 4, 5)];
        assert_eq!(sequence(&change), "GetItem → GetItem ‖ UpdateItem → TransactWriteItems");
        assert_eq!(sequence(&[]), "none");
    }

    #[test]
    fn given_dynamodb_answers_when_pricing_a_call_then_units_follow_awss_billing_rules() {
        let ok = http::StatusCode::OK;
        let bad = http::StatusCode::BAD_REQUEST;
        let none = Value::Null;
        // GIVEN Local's report for a single-item read and write, THEN it is taken as is.
        let get = units("GetItem", &none, ok, br#"{"ConsumedCapacity":{"CapacityUnits":0.5}}"#);
        assert_eq!(get, Units { read: 0.5, write: 0.0 });
        let put = units("PutItem", &none, ok, br#"{"ConsumedCapacity":{"CapacityUnits":3.0}}"#);
        assert_eq!(put, Units { read: 0.0, write: 3.0 });
        // GIVEN a three-action transaction Local sized by its total, THEN 2 units per action.
        let actions = serde_json::json!({"TransactItems": [{}, {}, {}]});
        let transaction = units("TransactWriteItems", &actions, ok, br#"{"ConsumedCapacity":[{"CapacityUnits":2.0}]}"#);
        assert_eq!(transaction.write, 6.0);
        // GIVEN failed conditions, THEN they are billed; a validation error is not.
        let failed = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}"#;
        assert_eq!(units("UpdateItem", &none, bad, failed).write, 1.0);
        let cancelled = br#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException"}"#;
        assert_eq!(units("TransactWriteItems", &actions, bad, cancelled).write, 6.0);
        let invalid = br#"{"__type":"com.amazon.coral.validate#ValidationException"}"#;
        assert_eq!(units("PutItem", &none, bad, invalid), Units::default());
    }
}
