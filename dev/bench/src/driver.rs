//! Runs each function's release bootstrap under the local runtime API, with its AWS calls going
//! through the counting proxies, and measures init, latency, CPU, memory and calls; or, for
//! `bench invoke`, invokes each deployable bootstrap once (through a runner such as qemu-user).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::baseline::Measurement;
use crate::procfs;
use crate::proxy::{round_trips, Call, CallLog, CountingProxy, Counts, Service};
use localdev::runtime::{Outcome, RuntimeApi, Signal};

/// The functions, in the order they run (each needs what the one before produced).
pub const FUNCTIONS: [&str; 5] = ["register", "login", "refresh", "get-user", "health"];
pub const ARCHES: [&str; 2] = ["arm64", "x86_64"];
const PASSWORD: &str = "correct horse battery staple";
/// How long to wait for init or an invocation before giving up.
const PATIENCE: Duration = Duration::from_secs(30);

/// Where the functions run: the template, the local stack, the emulators, the events they get.
#[derive(clap::Args)]
pub struct Local {
    #[arg(long, default_value = "template.yaml")]
    pub template: PathBuf,
    /// The local stack `localdev setup` created.
    #[arg(long, env = "LOCAL_STACK")]
    pub stack: String,
    #[arg(long = "events", value_name = "EVENTS", default_value = "events")]
    pub events_dir: PathBuf,
    /// Function stdout/stderr go to `<log-dir>/<function>.log`.
    #[arg(long, default_value = ".local/bench")]
    pub log_dir: PathBuf,
    #[arg(long = "dynamodb", value_name = "URL", env = "AWS_ENDPOINT_URL_DYNAMODB")]
    pub dynamodb_upstream: String,
    #[arg(long = "secrets-manager", value_name = "URL", env = "AWS_ENDPOINT_URL_SECRETS_MANAGER")]
    pub secrets_upstream: String,
}

pub struct Options {
    pub local: Local,
    pub bin_dir: PathBuf,
    pub artifacts: PathBuf,
    pub cold_starts: usize,
    pub warm_heavy: usize,
    pub warm_light: usize,
    pub baseline_runs: usize,
}

/// The fewest and the most calls (and round trips) seen per invocation.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CallRange {
    pub min: Counts,
    pub max: Counts,
}

impl CallRange {
    fn add(&mut self, counts: Counts, first: bool) {
        if first {
            *self = Self { min: counts, max: counts };
        } else {
            self.min = self.min.zip(counts, usize::min);
            self.max = self.max.zip(counts, usize::max);
        }
    }
}

/// Where the init time of one cold start went, from the proxies' timestamps.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct InitBreakdown {
    /// Spawn → first AWS request (process start, telemetry, config, SDK config, clients).
    pub before_first_call_ms: f64,
    /// Time at least one AWS call of init was outstanding at the proxy (emulator time included;
    /// concurrent calls count once).
    pub in_calls_ms: f64,
    /// Everything else: between and after the calls (key decoding, the graceful-shutdown
    /// extension's registration, runtime start-up). With no AWS call, all of init is "before".
    pub other_ms: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Size {
    pub bootstrap_bytes: Option<u64>,
    pub zip_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FunctionResult {
    pub name: String,
    pub memory_mb: u64,
    pub init_ms: Vec<f64>,
    pub init_breakdown: InitBreakdown,
    pub first_invocation_ms: Vec<f64>,
    pub warm_ms: Vec<f64>,
    pub warm_cpu_ms: f64,
    pub peak_rss_kib: u64,
    /// Threads of the process after the warm invocations.
    pub threads: u64,
    pub init_calls: Counts,
    pub init_operations: Vec<String>,
    pub cold_calls: CallRange,
    pub warm_calls: CallRange,
    pub sizes: BTreeMap<String, Size>,
    /// The reference operation, measured right after the function: one argon2id hash for
    /// register and login, the DynamoDB call alone for refresh and get-user; none for health.
    pub reference: Option<Measurement>,
}

#[derive(Debug, Default, Serialize)]
pub struct Results {
    pub functions: Vec<FunctionResult>,
    /// Fuzzers seen running between the functions' runs.
    pub fuzzers: Vec<String>,
}

/// What the functions produce for each other: the registered user and the latest tokens.
#[derive(Default)]
struct Flow {
    run: String,
    registered: usize,
    email: Option<String>,
    user_id: Option<String>,
    access_token: Option<String>,
    refresh_token: Option<String>,
}

struct Events {
    register: Value,
    login: Value,
    refresh: Value,
    get_user: Value,
    health: Value,
}

impl Events {
    fn load(dir: &Path) -> Result<Self, String> {
        let read = |name: &str| -> Result<Value, String> {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
        };
        Ok(Self {
            register: read("register.json")?,
            login: read("login.json")?,
            refresh: read("refresh.json")?,
            get_user: read("get-user.me.json")?,
            health: read("health.json")?,
        })
    }
}

fn with_body(event: &Value, body: Value) -> Value {
    let mut event = event.clone();
    event["body"] = Value::String(body.to_string());
    event
}

/// The fixture's body as JSON (the fixtures hold realistic values to keep).
fn body_of(event: &Value) -> Value {
    event["body"].as_str().and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null)
}

impl Flow {
    fn event(&mut self, function: &str, events: &Events) -> Result<Bytes, String> {
        let event = match function {
            "register" => {
                let mut body = body_of(&events.register);
                self.registered += 1;
                body["email"] = format!("bench-{}-{}@example.com", self.run, self.registered).into();
                body["password"] = PASSWORD.into();
                with_body(&events.register, body)
            }
            "login" => {
                let mut body = body_of(&events.login);
                body["email"] = self.email.clone().ok_or("no registered user")?.into();
                body["password"] = PASSWORD.into();
                with_body(&events.login, body)
            }
            "refresh" => {
                let token = self.refresh_token.as_deref().ok_or("no refresh token")?;
                with_body(&events.refresh, json!({"refresh_token": token}))
            }
            "get-user" => {
                let token = self.access_token.as_deref().ok_or("no access token")?;
                let text = events.get_user.to_string().replace("{{access_token}}", token);
                serde_json::from_str(&text).map_err(|e| e.to_string())?
            }
            "health" => events.health.clone(),
            other => return Err(format!("unknown function {other}")),
        };
        Ok(Bytes::from(event.to_string()))
    }

    /// Checks the answer is the happy path's and keeps what later invocations need; returns its status.
    fn accept(&mut self, function: &str, response: &[u8]) -> Result<u64, String> {
        let response: Value = serde_json::from_slice(response).map_err(|e| format!("{function}: {e}"))?;
        let status = response["statusCode"].as_u64().unwrap_or(0);
        let expected = if function == "register" { 201 } else { 200 };
        let body: Value = response["body"].as_str().and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
        if status != expected {
            return Err(format!("{function}: status {status}, expected {expected}: {body}"));
        }
        match function {
            "register" if self.user_id.is_none() => {
                self.user_id = body["id"].as_str().map(str::to_owned);
                self.email = body["email"].as_str().map(str::to_owned);
            }
            "login" | "refresh" => {
                self.access_token = body["access_token"].as_str().map(str::to_owned);
                self.refresh_token = body["refresh_token"].as_str().map(str::to_owned);
            }
            _ => {}
        }
        Ok(status)
    }
}

/// The template's facts about one function: memory, timeout and the environment Lambda gives it.
struct FunctionSpec {
    name: String,
    logical_id: String,
    memory_mb: u64,
    timeout: Duration,
    env: BTreeMap<String, String>,
}

/// Every function's spec, its environment resolved for the stack with AWS calls going to the
/// local IAM check at `iam_url`.
async fn function_specs(local: &Local, iam_url: &str) -> Result<BTreeMap<String, FunctionSpec>, String> {
    let template = localdev::Template::load(&local.template).map_err(|e| e.to_string())?;
    let stack = localdev::LocalStack::new(&local.stack).map_err(|e| e.to_string())?;
    let admin = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(template.region().to_owned()))
        .endpoint_url(&local.secrets_upstream)
        .credentials_provider(aws_sdk_secretsmanager::config::SharedCredentialsProvider::new(
            aws_sdk_secretsmanager::config::Credentials::new("local", "local", None, None, "bench"),
        ))
        .build();
    let secrets = aws_sdk_secretsmanager::Client::new(&admin);
    let resources = localdev::StackResources::discover(&template, stack, &secrets).await.map_err(|e| e.to_string())?;
    let mut specs = BTreeMap::new();
    for function in template.functions().map_err(|e| e.to_string())? {
        let env = template.lambda_environment(&function.logical_id, &resources, iam_url).map_err(|e| e.to_string())?;
        specs.insert(
            function.binary.clone(),
            FunctionSpec {
                name: function.binary,
                logical_id: function.logical_id,
                memory_mb: function.memory_mb,
                timeout: Duration::from_secs(function.timeout_seconds),
                env,
            },
        );
    }
    Ok(specs)
}

/// The function's environment as Lambda gives it, with the runtime API of this run and the AWS
/// calls going through the counting proxies (which forward to the IAM check).
fn process_env(
    spec: &FunctionSpec,
    runtime_api: &str,
    proxies: &(CountingProxy, CountingProxy),
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = spec.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    env.push(("AWS_LAMBDA_RUNTIME_API".to_owned(), runtime_api.to_owned()));
    env.push(("AWS_LAMBDA_LOG_STREAM_NAME".to_owned(), "2026/01/01/[$LATEST]bench".to_owned()));
    env.push(("AWS_ENDPOINT_URL_DYNAMODB".to_owned(), proxies.0.url()));
    env.push(("AWS_ENDPOINT_URL_SECRETS_MANAGER".to_owned(), proxies.1.url()));
    env
}

async fn wait_signal(api: &mut RuntimeApi, child: &mut Child, what: &str) -> Result<Signal, String> {
    tokio::select! {
        signal = api.signal(PATIENCE) => match signal {
            Some(Signal::InitError(error)) => Err(format!("init failed: {error}")),
            Some(signal) => Ok(signal),
            None => Err(format!("no answer within {PATIENCE:?} while waiting for {what}")),
        },
        status = child.wait() => Err(format!("the function exited ({status:?}) while waiting for {what}")),
    }
}

/// Waits until the process asks for its next event; returns when it asked.
async fn idle(api: &mut RuntimeApi, child: &mut Child) -> Result<Instant, String> {
    match wait_signal(api, child, "GET /next").await? {
        Signal::Poll(at) => Ok(at),
        other => Err(format!("expected GET /next, got {other:?}")),
    }
}

/// One invocation: its latency (event handed out → response received) and the response.
async fn invoke(api: &mut RuntimeApi, child: &mut Child, event: Bytes) -> Result<(f64, Bytes), String> {
    api.submit(event);
    match wait_signal(api, child, "the invocation's response").await? {
        Signal::Done { delivered, at, outcome: Outcome::Response(body) } => {
            Ok((at.duration_since(delivered).as_secs_f64() * 1000.0, body))
        }
        Signal::Done { outcome: Outcome::Error(error), .. } => Err(format!("invocation error: {error}")),
        other => Err(format!("expected a response, got {other:?}")),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn breakdown(spawned: Instant, polled: Instant, calls: &[Call]) -> InitBreakdown {
    let total = ms(polled.duration_since(spawned));
    let Some(first) = calls.iter().map(|c| c.arrived).min() else {
        return InitBreakdown { before_first_call_ms: total, in_calls_ms: 0.0, other_ms: 0.0 };
    };
    let before = ms(first.duration_since(spawned));
    // The union of the calls' intervals: login and refresh read their two secrets concurrently.
    let in_calls: f64 = round_trips(calls).iter().map(|(start, end)| ms(end.duration_since(*start))).sum();
    InitBreakdown {
        before_first_call_ms: before,
        in_calls_ms: in_calls,
        other_ms: (total - before - in_calls).max(0.0),
    }
}

/// Starts `binary` in its own directory, as Lambda starts `bootstrap` in /var/task; with a
/// `runner` (e.g. `qemu-aarch64 -L <sysroot>`), as `runner... binary`.
fn spawn(runner: &[String], binary: &Path, env: &[(String, String)], log: &Path) -> Result<Child, String> {
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log).map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut command = match runner.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(binary);
            command
        }
        None => Command::new(binary),
    };
    command
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(binary.parent().unwrap_or(Path::new(".")))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", runner.first().map_or(binary, Path::new).display()))
}

/// Stops a function process as Lambda stops an instance whose runtime registered an extension:
/// SIGTERM, then SIGKILL if it is still there 500 ms later.
async fn stop(mut child: Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) has no memory effects; the pid is our own child's, still unreaped.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        if tokio::time::timeout(Duration::from_millis(500), child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
}

async fn run_function(
    options: &Options,
    spec: &FunctionSpec,
    flow: &mut Flow,
    events: &Events,
    proxies: &(CountingProxy, CountingProxy),
    log: &CallLog,
) -> Result<FunctionResult, String> {
    let name = spec.name.as_str();
    let binary = options.bin_dir.join(name);
    let binary = binary.canonicalize().map_err(|e| format!("{}: {e}", binary.display()))?;
    let log_file = options.local.log_dir.join(format!("{name}.log"));
    let warm = if matches!(name, "register" | "login") { options.warm_heavy } else { options.warm_light };
    let mut result = FunctionResult { name: name.to_owned(), memory_mb: spec.memory_mb, ..FunctionResult::default() };
    let cold_starts = options.cold_starts.max(1);
    for start in 0..cold_starts {
        let mut api = RuntimeApi::start(name, spec.timeout).await.map_err(|e| e.to_string())?;
        let env = process_env(spec, &api.host_port(), proxies);
        log.drain();
        let spawned = Instant::now();
        let mut child = spawn(&[], &binary, &env, &log_file)?;
        let pid = child.id().ok_or("the function exited at once")?.to_string();
        let polled = idle(&mut api, &mut child).await?;
        let init_calls = log.drain();
        result.init_ms.push(ms(polled.duration_since(spawned)));
        if start + 1 == cold_starts {
            result.init_breakdown = breakdown(spawned, polled, &init_calls);
            result.init_calls = Counts::of(&init_calls);
            result.init_operations = init_calls.iter().map(|c| c.operation.clone()).collect();
        }

        let (latency, response) = invoke(&mut api, &mut child, flow.event(name, events)?).await?;
        flow.accept(name, &response)?;
        result.first_invocation_ms.push(latency);
        result.cold_calls.add(Counts::of(&log.drain()), start == 0);
        idle(&mut api, &mut child).await?;
        if start + 1 < cold_starts {
            stop(child).await;
            continue;
        }

        let cpu_before = procfs::cpu_ms(&pid).ok_or("cannot read the function's /proc/<pid>/stat")?;
        for i in 0..warm {
            let (latency, response) = invoke(&mut api, &mut child, flow.event(name, events)?).await?;
            flow.accept(name, &response)?;
            result.warm_ms.push(latency);
            result.warm_calls.add(Counts::of(&log.drain()), i == 0);
            if std::env::var_os("BENCH_TRACE_RSS").is_some() {
                eprintln!("{name} {i}: VmRSS {:?} VmHWM {:?}", procfs::rss_kib(&pid), procfs::peak_rss_kib(&pid));
            }
            idle(&mut api, &mut child).await?;
        }
        let cpu_after = procfs::cpu_ms(&pid).ok_or("cannot read the function's /proc/<pid>/stat")?;
        result.warm_cpu_ms = (cpu_after - cpu_before) / warm.max(1) as f64;
        result.peak_rss_kib = procfs::peak_rss_kib(&pid).unwrap_or(0);
        result.threads = procfs::threads(&pid).unwrap_or(0);
        stop(child).await;
    }
    for arch in ARCHES {
        let dir = options.artifacts.join(arch);
        let size = |path: PathBuf| std::fs::metadata(path).ok().map(|m| m.len());
        result.sizes.insert(
            arch.to_owned(),
            Size {
                bootstrap_bytes: size(dir.join(name).join("bootstrap")),
                zip_bytes: size(dir.join(format!("{name}.zip"))),
            },
        );
    }
    Ok(result)
}

/// Runs `bench baseline` in a child process with a function's environment.
async fn measure_baseline(
    options: &Options,
    spec: &FunctionSpec,
    op: &str,
    flow: &Flow,
    proxies: &(CountingProxy, CountingProxy),
) -> Result<Measurement, String> {
    let mut env = process_env(spec, "127.0.0.1:9", proxies);
    if let Some(token) = &flow.refresh_token {
        env.push(("BENCH_REFRESH_TOKEN".to_owned(), token.clone()));
    }
    let user_id = flow.user_id.as_deref();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let n = if op == "argon2" { (options.baseline_runs / 5).max(20) } else { options.baseline_runs };
    let mut command = Command::new(exe);
    command.env_clear().envs(env).args(["baseline", "--op", op, "--n", &n.to_string()]);
    if let Some(id) = user_id {
        command.args(["--user-id", id]);
    }
    let output = command.output().await.map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!("baseline {op}: {}", String::from_utf8_lossy(&output.stderr)));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("baseline {op}: {e}"))
}

/// What every run needs: the IAM check every AWS call goes through (as on Lambda), the counting
/// proxies in front of it, each function's spec and the event fixtures.
struct Harness {
    iam: localdev::iam::IamProxy,
    proxies: (CountingProxy, CountingProxy),
    log: CallLog,
    specs: BTreeMap<String, FunctionSpec>,
    events: Events,
}

impl Harness {
    async fn start(local: &Local) -> Result<Self, String> {
        std::fs::create_dir_all(&local.log_dir).map_err(|e| e.to_string())?;
        let log = CallLog::default();
        let iam = localdev::iam::IamProxy::start(
            localdev::iam::IamProxyOptions {
                template: local.template.clone(),
                parameter_overrides: String::new(),
                region: "us-east-1".into(),
                dynamodb: local.dynamodb_upstream.clone(),
                secrets_manager: local.secrets_upstream.clone(),
                record: None,
                log_denials: true,
            },
            "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        )
        .await
        .map_err(|e| e.to_string())?;
        let proxies = (
            CountingProxy::start(&iam.url(), Service::DynamoDb, log.clone()).await.map_err(|e| e.to_string())?,
            CountingProxy::start(&iam.url(), Service::SecretsManager, log.clone()).await.map_err(|e| e.to_string())?,
        );
        let specs = function_specs(local, &iam.url()).await?;
        let events = Events::load(&local.events_dir)?;
        Ok(Self { iam, proxies, log, specs, events })
    }

    fn spec(&self, name: &str) -> Result<&FunctionSpec, String> {
        self.specs.get(name).ok_or_else(|| format!("no function builds {name}"))
    }

    fn flow() -> Flow {
        Flow { run: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(), ..Flow::default() }
    }

    /// A denied call is a failed run, even when the function coped with it.
    fn check_denials(&self) -> Result<(), String> {
        match self.iam.denials() {
            0 => Ok(()),
            n => Err(format!("the IAM check denied {n} call(s); see the lines starting with `iam:` above")),
        }
    }
}

pub async fn run(options: &Options) -> Result<Results, String> {
    let harness = Harness::start(&options.local).await?;
    let (proxies, events) = (&harness.proxies, &harness.events);
    let mut flow = Harness::flow();
    let mut results = Results::default();
    for name in FUNCTIONS {
        eprintln!("bench: {name}");
        for fuzzer in crate::report::fuzzers() {
            if !results.fuzzers.contains(&fuzzer) {
                results.fuzzers.push(fuzzer);
            }
        }
        let mut result = run_function(options, harness.spec(name)?, &mut flow, events, proxies, &harness.log).await?;
        let op = match name {
            "refresh" => Some("rotate-session"),
            "get-user" => Some("get-user"),
            "register" | "login" => Some("argon2"),
            _ => None,
        };
        // Each reference operation runs with the permissions of the function it stands for.
        // The refresh baseline rotates the flow's family past its token; only get-user (an
        // access token) and health (none) run after it.
        if let Some(op) = op {
            result.reference = Some(measure_baseline(options, harness.spec(name)?, op, &flow, proxies).await?);
        }
        let median = crate::report::percentile(&result.warm_ms, 50.0);
        let reference = match (op, &result.reference) {
            (Some(op), Some(r)) => format!("{op}: {:.3} ms", r.cpu_ms),
            _ => "none".to_owned(),
        };
        eprintln!(
            "bench: {name}: init {:.1} ms, warm p50 {median:.2} ms, {:.3} ms CPU per warm invocation \
             (reference {reference})",
            result.init_ms.last().copied().unwrap_or_default(),
            result.warm_cpu_ms,
        );
        results.functions.push(result);
    }
    harness.check_denials()?;
    Ok(results)
}

/// One function's single invocation by `bench invoke`.
pub struct Invocation {
    pub name: String,
    pub bootstrap: PathBuf,
    /// Spawn → first `GET /next`.
    pub init_ms: f64,
    /// Event handed out → response received.
    pub latency_ms: f64,
    pub status: u64,
}

/// Invokes each function's deployable bootstrap once, in flow order (register → login → refresh →
/// get-user → health), with the environment `run` gives it; `runner` runs foreign-architecture binaries.
/// Fails on the first function that does not init or answer its happy-path status.
pub async fn invoke_each(local: &Local, bootstrap_dir: &Path, runner: &[String]) -> Result<Vec<Invocation>, String> {
    let harness = Harness::start(local).await?;
    let mut flow = Harness::flow();
    let mut done = Vec::new();
    for name in FUNCTIONS {
        let spec = harness.spec(name)?;
        // `sam build` names the directories by logical id, `cargo lambda build` by binary.
        let candidates = [bootstrap_dir.join(name), bootstrap_dir.join(&spec.logical_id)].map(|d| d.join("bootstrap"));
        let bootstrap = candidates.iter().find(|p| p.is_file()).ok_or_else(|| {
            let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
            format!("{name}: none of {} exists", tried.join(", "))
        })?;
        let bootstrap = bootstrap.canonicalize().map_err(|e| format!("{}: {e}", bootstrap.display()))?;
        let log_file = local.log_dir.join(format!("{name}.log"));
        let fail = |e: String| format!("{name}: {e} (function log: {})", log_file.display());
        let mut api = RuntimeApi::start(name, spec.timeout).await.map_err(|e| e.to_string())?;
        let env = process_env(spec, &api.host_port(), &harness.proxies);
        let spawned = Instant::now();
        let mut child = spawn(runner, &bootstrap, &env, &log_file)?;
        let polled = idle(&mut api, &mut child).await.map_err(fail)?;
        let event = flow.event(name, &harness.events)?;
        let (latency_ms, response) = invoke(&mut api, &mut child, event).await.map_err(fail)?;
        let status = flow.accept(name, &response).map_err(fail)?;
        // Back to polling: the runtime loop survived the invocation.
        idle(&mut api, &mut child).await.map_err(fail)?;
        stop(child).await;
        let init_ms = ms(polled.duration_since(spawned));
        done.push(Invocation { name: name.to_owned(), bootstrap, init_ms, latency_ms, status });
    }
    for spec in harness.specs.values().filter(|s| !FUNCTIONS.contains(&s.name.as_str())) {
        eprintln!("bench: {} ({}) not invoked: it has no step in the flow", spec.name, spec.logical_id);
    }
    harness.check_denials()?;
    Ok(done)
}
