//! The check as an HTTP endpoint between the functions and the emulators.
//!
//! Functions reach every AWS service through it (`AWS_ENDPOINT_URL`). For each request it reads
//! the service and the access key id from the SigV4 `Authorization` header, finds the calling
//! function's policy in its stack, authorises every (action, resource) the request needs, and
//! either forwards the request unchanged to the emulator of that service or answers as AWS
//! answers a refused call (`AccessDeniedException`). Nothing about the functions changes:
//! they run the same code with the same SDK as on Lambda. Mail SES accepted is kept in the
//! check's [`Outbox`] (`GET /_local/outbox`).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use iam_rs::Decision;
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use super::policies::Policies;
use super::record::{key_prefix, Entry, Recorder};
use super::requests::{authorizations, Authorization, SendEmail, Service, TableKeys};
use crate::error::{Error, Result};
use crate::outbox::{self, Message, Outbox};
use crate::stack::{LocalStack, StackResources, TABLE_TYPE};
use crate::table::TableDefinition;
use crate::template::Template;

/// Largest request forwarded (DynamoDB's own limit is 16 MB per request).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Where the check reads its policies and sends allowed calls.
#[derive(Debug, Clone)]
pub struct IamProxyOptions {
    /// The SAM template (`template.yaml`): the check applies its transformed policies.
    pub template: PathBuf,
    /// `sam deploy --parameter-overrides` style values for the template's parameters.
    pub parameter_overrides: String,
    pub region: String,
    /// DynamoDB Local's URL.
    pub dynamodb: String,
    /// moto's URL: Secrets Manager, and SES (one moto serves both).
    pub secrets_manager: String,
    /// Append every decision to this file (JSON lines, see [`super::record`]).
    pub record: Option<PathBuf>,
    /// Print every denial on stderr.
    pub log_denials: bool,
}

/// One stack's resources, policies and table keys, resolved once.
struct StackContext {
    resources: StackResources,
    policies: Policies,
    /// Physical table name → definition.
    tables: BTreeMap<String, TableDefinition>,
    region: String,
    account: String,
}

impl TableKeys for StackContext {
    fn table_arn(&self, table: &str) -> String {
        if table.starts_with("arn:") {
            table.to_owned()
        } else {
            format!("arn:aws:dynamodb:{}:{}:table/{table}", self.region, self.account)
        }
    }

    fn partition_key(&self, table: &str, index: Option<&str>) -> Option<String> {
        let name = table.rsplit_once(":table/").map_or(table, |(_, name)| name);
        let definition = self.tables.get(name)?;
        let schema = match index {
            None => &definition.key_schema,
            Some(index) => {
                &definition
                    .global_secondary_indexes
                    .iter()
                    .chain(&definition.local_secondary_indexes)
                    .find(|ix| ix.name == index)?
                    .key_schema
            }
        };
        schema.iter().find(|k| k.key_type == "HASH").map(|k| k.name.clone())
    }

    fn secret_arn(&self, secret_id: &str) -> String {
        // A secret of the stack, by name or full ARN; anything else as a partial ARN (which no
        // statement of a stack grants).
        let stack_secret = self.resources.refs().iter().find(|(id, arn)| {
            arn.starts_with("arn:aws:secretsmanager:")
                && (arn.as_str() == secret_id || self.resources.stack.physical_name(id) == secret_id)
        });
        match stack_secret {
            Some((_, arn)) => arn.clone(),
            None if secret_id.starts_with("arn:") => secret_id.to_owned(),
            None => format!("arn:aws:secretsmanager:{}:{}:secret:{secret_id}", self.region, self.account),
        }
    }

    fn identity_arn(&self, identity: &str) -> String {
        format!("arn:aws:ses:{}:{}:identity/{identity}", self.region, self.account)
    }
}

struct State {
    cfn: Template,
    stacks: Mutex<HashMap<LocalStack, Arc<StackContext>>>,
    secrets_admin: aws_sdk_secretsmanager::Client,
    client: Client<HttpConnector, Full<Bytes>>,
    dynamodb: Uri,
    secrets_manager: Uri,
    recorder: Option<Recorder>,
    log_denials: bool,
    denials: AtomicUsize,
    outbox: Outbox,
}

/// The running check; it stops when dropped.
pub struct IamProxy {
    addr: SocketAddr,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

fn parse_uri(url: &str) -> Result<Uri> {
    url.parse().map_err(|e| Error::Override(format!("bad URL {url}: {e}")))
}

impl IamProxy {
    /// Loads the template's policies and listens on `listen` (port 0: any free port).
    pub async fn start(options: IamProxyOptions, listen: SocketAddr) -> Result<Self> {
        let transformed = super::transformed(&options.template)?;
        let cfn = Template::load_with_overrides(&transformed, &options.parameter_overrides)?
            .with_region(options.region.clone());
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(options.region.clone()))
            .endpoint_url(&options.secrets_manager)
            .credentials_provider(aws_sdk_secretsmanager::config::SharedCredentialsProvider::new(
                aws_sdk_secretsmanager::config::Credentials::new("local", "local", None, None, "localdev"),
            ))
            .build();
        let recorder = match &options.record {
            Some(path) => Some(Recorder::open(path).map_err(|source| Error::Io { path: path.clone(), source })?),
            None => None,
        };
        let state = Arc::new(State {
            cfn,
            stacks: Mutex::default(),
            secrets_admin: aws_sdk_secretsmanager::Client::new(&sdk),
            client: Client::builder(TokioExecutor::new()).build_http(),
            dynamodb: parse_uri(&options.dynamodb)?,
            secrets_manager: parse_uri(&options.secrets_manager)?,
            recorder,
            log_denials: options.log_denials,
            denials: AtomicUsize::new(0),
            outbox: Outbox::default(),
        });
        let listener =
            TcpListener::bind(listen).await.map_err(|e| Error::Aws(format!("cannot listen on {listen}: {e}")))?;
        let addr = listener.local_addr().map_err(|e| Error::Aws(e.to_string()))?;
        let serving = state.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let state = serving.clone();
                let service = service_fn(move |request| handle(request, state.clone()));
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Ok(Self { addr, state, server })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Calls refused so far (denied or unreadable).
    pub fn denials(&self) -> usize {
        self.state.denials.load(Ordering::SeqCst)
    }

    /// The mail SES accepted through this check, newest first (what `GET /_local/outbox` answers).
    pub fn outbox(&self) -> Vec<Message> {
        self.state.outbox.messages()
    }
}

impl Drop for IamProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The access key id and service of a SigV4 `Authorization` header.
fn credential(request: &Request<Incoming>) -> Option<(String, Option<Service>)> {
    let header = request.headers().get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let credential = header.split([' ', ',']).find_map(|part| part.trim().strip_prefix("Credential="))?;
    let mut scope = credential.split('/');
    let access_key_id = scope.next()?.to_owned();
    let service = scope.nth(2).and_then(Service::from_scope);
    Some((access_key_id, service))
}

/// An error answered the way the service's protocol answers it.
fn aws_error(service: Option<Service>, status: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
    let (content_type, body) = match service {
        // DynamoDB's authorisation errors come from its front end, namespaced so.
        Some(Service::DynamoDb) | None => (
            "application/x-amz-json-1.0",
            serde_json::json!({"__type": format!("com.amazon.coral.service#{kind}"), "Message": message}),
        ),
        Some(Service::SecretsManager) => {
            ("application/x-amz-json-1.1", serde_json::json!({"__type": kind, "Message": message}))
        }
        // REST JSON: the kind is a header, and a refusal is a 403.
        Some(Service::Ses) => ("application/json", serde_json::json!({"message": message})),
    };
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = match service {
        Some(Service::Ses) if kind == "AccessDeniedException" => StatusCode::FORBIDDEN,
        _ => status,
    };
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let (Some(Service::Ses), Ok(kind)) = (service, HeaderValue::from_str(kind)) {
        response.headers_mut().insert("x-amzn-errortype", kind);
    }
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

impl State {
    async fn stack(&self, stack: &LocalStack) -> Result<Arc<StackContext>> {
        let mut stacks = self.stacks.lock().await;
        if let Some(context) = stacks.get(stack) {
            return Ok(context.clone());
        }
        let resources = StackResources::discover(&self.cfn, stack.clone(), &self.secrets_admin).await?;
        let policies = Policies::load(&self.cfn, &resources)?;
        let mut tables = BTreeMap::new();
        for id in self.cfn.resources_of_type(TABLE_TYPE)? {
            tables.insert(stack.physical_name(&id), self.cfn.table_definition_of(&id)?);
        }
        let context = Arc::new(StackContext {
            resources,
            policies,
            tables,
            region: self.cfn.region().to_owned(),
            account: self.cfn.account_id().to_owned(),
        });
        stacks.insert(stack.clone(), context.clone());
        Ok(context)
    }

    fn record(&self, entry: Entry) {
        if !entry.allowed {
            self.denials.fetch_add(1, Ordering::SeqCst);
            if self.log_denials {
                eprintln!(
                    "iam: DENIED {} {} on {} (leading keys {:?}): {}",
                    entry.function,
                    entry.action,
                    entry.resource,
                    entry.leading_keys,
                    entry.reason.as_deref().unwrap_or("no statement allows it")
                );
            }
        }
        if let Some(recorder) = &self.recorder {
            recorder.record(&entry);
        }
    }

    fn entry(&self, context: &StackContext, function: &str, authorization: &Authorization) -> Entry {
        let resource = context
            .resources
            .logical_id_of(&self.cfn, &authorization.resource)
            .unwrap_or_else(|| authorization.resource.clone());
        let mut leading_keys: Vec<String> = authorization.leading_keys.iter().map(|k| key_prefix(k)).collect();
        leading_keys.sort();
        leading_keys.dedup();
        Entry {
            function: function.to_owned(),
            action: authorization.action.clone(),
            resource,
            leading_keys,
            allowed: false,
            statements: Vec::new(),
            reason: None,
        }
    }
}

async fn handle(request: Request<Incoming>, state: Arc<State>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    if request.method() == http::Method::GET && request.uri().path() == outbox::PATH {
        return Ok(outbox_response(&state));
    }
    let Some((access_key_id, service)) = credential(&request) else {
        return Ok(aws_error(
            None,
            StatusCode::BAD_REQUEST,
            "MissingAuthenticationTokenException",
            "Request is missing Authentication Token",
        ));
    };
    let Some(service) = service else {
        return Ok(aws_error(
            None,
            StatusCode::BAD_REQUEST,
            "UnrecognizedClientException",
            "The local stack emulates no such service.",
        ));
    };
    let unrecognized = || {
        aws_error(
            Some(service),
            StatusCode::BAD_REQUEST,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    };
    let Some((stack, function)) = LocalStack::parse_access_key_id(&access_key_id) else {
        return Ok(unrecognized());
    };
    let target = request.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let (mut parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(aws_error(
                Some(service),
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                "Request too large",
            ))
        }
    };
    let context = match state.stack(&stack).await {
        Ok(context) => context,
        Err(error) => {
            eprintln!("iam: stack {stack}: {error}");
            return Ok(unrecognized());
        }
    };
    let Some(policy) = context.policies.function(&function) else {
        return Ok(unrecognized());
    };
    let principal = format!(
        "arn:aws:sts::{}:assumed-role/{}/{}",
        context.account,
        stack.physical_name(&policy.role),
        stack.physical_name(&function)
    );
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    // Each requirement is granted when any one of its authorizations is (see SendEmail).
    let read = match service {
        Service::Ses => SendEmail::parse(&method, &path, &body)
            .map(|mail| (vec![mail.authorizations(context.as_ref())], Some(mail))),
        _ => authorizations(service, &target, &body, context.as_ref())
            .map(|all| (all.into_iter().map(|a| vec![a]).collect(), None)),
    };
    let (requirements, mail): (Vec<Vec<Authorization>>, _) = match read {
        Ok(read) => read,
        Err(malformed) => {
            let operation = match service {
                Service::Ses => format!("{method} {path}"),
                _ => target.rsplit('.').next().unwrap_or_default().to_owned(),
            };
            state.record(Entry {
                function: function.clone(),
                action: format!("{}:{operation}", service.prefix()),
                resource: String::new(),
                leading_keys: Vec::new(),
                allowed: false,
                statements: Vec::new(),
                reason: Some(format!("unreadable request: {malformed}")),
            });
            return Ok(aws_error(
                Some(service),
                StatusCode::BAD_REQUEST,
                "ValidationException",
                &format!("The local IAM check cannot read this request: {malformed}"),
            ));
        }
    };
    let mut entries = Vec::new();
    for alternatives in &requirements {
        let decided = policy.evaluate_any(&principal, alternatives);
        let index = decided.as_ref().map_or(0, |(index, _)| *index);
        let Some(authorization) = alternatives.get(index) else { continue };
        let mut entry = state.entry(&context, &function, authorization);
        let verdict = match decided {
            Ok((_, verdict)) => verdict,
            Err(error) => {
                entry.reason = Some(error.to_string());
                state.record(entry);
                return Ok(aws_error(
                    Some(service),
                    StatusCode::BAD_REQUEST,
                    "AccessDeniedException",
                    &error.to_string(),
                ));
            }
        };
        if verdict.decision != Decision::Allow {
            let why = if verdict.decision == Decision::Deny {
                "with an explicit deny in an identity-based policy".to_owned()
            } else {
                format!("because no identity-based policy allows the {} action", authorization.action)
            };
            let message = format!(
                "User: {principal} is not authorized to perform: {} on resource: {} {why}",
                authorization.action, authorization.resource
            );
            entry.reason = Some(why);
            state.record(entry);
            return Ok(aws_error(Some(service), StatusCode::BAD_REQUEST, "AccessDeniedException", &message));
        }
        entry.allowed = true;
        entry.statements = verdict.allowed_by;
        entries.push(entry);
    }
    for entry in entries {
        state.record(entry);
    }

    let upstream = match service {
        Service::DynamoDb => &state.dynamodb,
        Service::SecretsManager | Service::Ses => &state.secrets_manager,
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = match format!("{}{path}", upstream.to_string().trim_end_matches('/')).parse() {
        Ok(uri) => uri,
        Err(_) => return Ok(aws_error(Some(service), StatusCode::BAD_REQUEST, "ValidationException", "bad path")),
    };
    if let Some(authority) = upstream.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
        parts.headers.insert(http::header::HOST, authority);
    }
    // DynamoDB Local accepts only letters and digits in an access key id; neither emulator checks
    // signatures, so the caller's identity, now checked, is replaced by a plain one.
    let signed_as = format!("Credential={access_key_id}/");
    if let Some(rewritten) = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| HeaderValue::from_str(&v.replacen(&signed_as, "Credential=local/", 1)).ok())
    {
        parts.headers.insert(http::header::AUTHORIZATION, rewritten);
    }
    let forwarded = async {
        let response = state.client.request(Request::from_parts(parts, Full::new(body))).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Response::from_parts(parts, Full::new(body)))
    };
    let response = match forwarded.await {
        Ok(response) => response,
        Err(error) => {
            eprintln!("iam: forwarding to {upstream}: {error}");
            return Ok(aws_error(
                Some(service),
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "The emulator did not answer.",
            ));
        }
    };
    if let Some(mail) = mail.filter(|_| response.status().is_success()) {
        keep(&state, &mail, &response).await;
    }
    Ok(response)
}

/// Keeps a mail SES accepted, under the id SES gave it.
async fn keep(state: &State, mail: &SendEmail, response: &Response<Full<Bytes>>) {
    let body = response.body().clone().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|answer| answer.get("MessageId")?.as_str().map(str::to_owned));
    let Some(id) = id else {
        eprintln!("iam: SES accepted a mail without a MessageId; not kept");
        return;
    };
    let message = Message::new(id, mail);
    eprintln!("{}", message.summary());
    state.outbox.push(message);
}

/// `GET /_local/outbox`: the mail kept so far, newest first.
fn outbox_response(state: &State) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&state.outbox.messages()).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
