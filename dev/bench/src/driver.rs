//! Runs each function's release bootstrap under the local runtime API, with its AWS calls going
//! through the counting proxies, and measures init, latency, CPU, memory and calls; or, for
//! `bench invoke`, invokes each deployable bootstrap once (through a runner such as qemu-user).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use crate::baseline::{Input, Measurement, Op};
use crate::flow::{Case, Session, CASES};
use crate::procfs;
use crate::proxy::{round_trips, sequence, Call, CallLog, CountingProxy, Counts, Service, Units};
use crate::report::Machine;
use crate::sandbox::{Limits, Sandbox};
use localdev::runtime::{Outcome, RuntimeApi, Signal};

pub const ARCHES: [&str; 2] = ["arm64", "x86_64"];
/// The CFS period of the Lambda points unless one says otherwise (`128@100`).
pub const DEFAULT_PERIOD_MS: u64 = 20;
/// The hello-world runtime binary (`src/bin/floor.rs`) measured beside the functions.
pub const FLOOR: &str = "floor";
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
    /// Function stdout/stderr go to `<log-dir>/<function>.log` (the processes that prepare
    /// state: `<log-dir>/prep.log`).
    #[arg(long, default_value = ".local/bench")]
    pub log_dir: PathBuf,
    #[arg(long = "dynamodb", value_name = "URL", env = "AWS_ENDPOINT_URL_DYNAMODB")]
    pub dynamodb_upstream: String,
    /// moto: Secrets Manager and SES.
    #[arg(long = "secrets-manager", value_name = "URL", env = "AWS_ENDPOINT_URL_SECRETS_MANAGER")]
    pub secrets_upstream: String,
    /// The template's parameter overrides the stack was set up with ("Name=Value ...", as for
    /// `localdev setup`): the functions' environment and the IAM check use them.
    #[arg(long, env = "PARAMETER_OVERRIDES", default_value = "")]
    pub parameter_overrides: String,
}

#[derive(clap::Args)]
pub struct Options {
    #[command(flatten)]
    pub local: Local,
    /// Directory holding the x86_64 release binaries to run (`target/release`).
    #[arg(long, default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// Directory with `<arch>/<function>/bootstrap` and `<arch>/<function>.zip`.
    #[arg(long, default_value = ".local/bench/artifacts")]
    pub artifacts: PathBuf,
    /// Cold starts (fresh processes) per function and point; at a Lambda size, half of them
    /// with init under the quota and half without.
    #[arg(long, default_value_t = 20)]
    pub cold_starts: usize,
    /// Warm invocations of the functions that hash or verify a password, and of the mailer's
    /// reset mails (each needs an account of its own).
    #[arg(long, default_value_t = 200)]
    pub warm_heavy: usize,
    /// Warm invocations of the others (more, for CPU resolution).
    #[arg(long, default_value_t = 1000)]
    pub warm_light: usize,
    /// Operations per reference measurement (argon2id: a fifth of it, at least 20).
    #[arg(long, default_value_t = 1000)]
    pub baseline_runs: usize,
    /// Only these cases (by label, comma-separated), in run order; the state a case needs from
    /// the cases before it (login's verified user) is prepared by the functions' binaries.
    #[arg(long, value_delimiter = ',')]
    pub cases: Vec<String>,
    /// The points to measure each case at, in order: a Lambda memory size in MB (its CPU
    /// share over a 20 ms CFS period, and its memory as a hard limit), `<MB>@<period ms>` for
    /// another period, or `unlimited` (no quota: both CPUs; no memory limit).
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = |p: &str| Limits::parse(p, DEFAULT_PERIOD_MS),
        default_value = "unlimited,128,256,512,1024,1769,3008,128@100,1769@100"
    )]
    pub points: Vec<Limits>,
    /// A program to run each function under, with its arguments (`strace -f -tt -o /tmp/init`,
    /// `perf record -g -o ...`), to see where its time goes; the figures are then its too.
    #[arg(long, value_delimiter = ' ', allow_hyphen_values = true)]
    pub runner: Vec<String>,
}

impl Options {
    /// The counts a run was made with, as text.
    pub fn counts(&self) -> String {
        format!(
            "{} cold starts, {} / {} warm invocations, {} reference operations",
            self.cold_starts, self.warm_heavy, self.warm_light, self.baseline_runs
        )
    }

    /// Warm invocations of `case`: fewer for the ones that cost an argon2id computation (or
    /// need a new account each), more for the others, for CPU resolution.
    pub fn warm(&self, case: &Case) -> usize {
        if case.heavy {
            self.warm_heavy
        } else {
            self.warm_light
        }
    }

    /// Operations of `op`'s reference measurement: a fifth for argon2id (at least 20).
    pub fn baseline_runs(&self, op: Op) -> usize {
        if op == Op::Argon2 {
            (self.baseline_runs / 5).max(20)
        } else {
            self.baseline_runs.max(1)
        }
    }
}

/// The fewest and the most calls (and round trips) seen per invocation.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
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

/// What calls billed beyond Lambda made, on average (per invocation, or per cold start for init).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Billed {
    pub dynamodb: Units,
    pub secrets_manager_calls: f64,
    pub ses_mails: f64,
}

impl Billed {
    fn add(&mut self, calls: &[Call]) {
        let units = Units::of(calls);
        let counts = Counts::of(calls);
        self.dynamodb.read += units.read;
        self.dynamodb.write += units.write;
        self.secrets_manager_calls += counts.secrets_manager as f64;
        self.ses_mails += counts.ses as f64;
    }

    fn mean(self, n: usize) -> Self {
        let n = n.max(1) as f64;
        Self {
            dynamodb: Units { read: self.dynamodb.read / n, write: self.dynamodb.write / n },
            secrets_manager_calls: self.secrets_manager_calls / n,
            ses_mails: self.ses_mails / n,
        }
    }
}

/// Where the init time of one cold start went, from the proxies' timestamps.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Size {
    pub bootstrap_bytes: Option<u64>,
    pub zip_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FunctionResult {
    /// The case: the function, or the function and the kind of work (`mailer (reset)`).
    pub name: String,
    pub binary: String,
    /// The template's `MemorySize`.
    pub memory_mb: u64,
    /// The CPU share and memory limit this result was measured at.
    pub limits: Limits,
    /// Peak memory of the function's group (resident and page cache charged to it), where it
    /// had a memory limit.
    pub peak_memory_kib: Option<u64>,
    /// Out-of-memory kills of the function's group.
    pub oom_kills: u64,
    /// Time the function's group was throttled by its quota, all runs of this point together.
    pub throttled_ms: f64,
    pub init_ms: Vec<f64>,
    /// Of each init, the time in AWS round trips (their union: concurrent calls count once).
    pub init_in_calls_ms: Vec<f64>,
    /// At a Lambda size: the inits run without the quota (every other cold start), as Lambda
    /// runs init; `init_ms` holds those under it.
    pub init_unthrottled_ms: Vec<f64>,
    pub init_unthrottled_in_calls_ms: Vec<f64>,
    /// CPU time each init spent (all threads, to the microsecond), under the share and
    /// unthrottled: what init costs without the waits for the CPU and for AWS, which the wall
    /// times above include.
    pub init_cpu_ms: Vec<f64>,
    pub init_unthrottled_cpu_ms: Vec<f64>,
    /// Of each init under the share, the time its group was throttled by the quota (what the
    /// wall time holds beyond CPU and round trips when the quota, not a wait, slowed it).
    pub init_throttled_ms: Vec<f64>,
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
    /// The warm invocations' DynamoDB units, Secrets Manager calls and mails, per invocation.
    pub warm_billed: Billed,
    /// The same for the first invocation after each cold start (calls a warm one does not make).
    pub cold_billed: Billed,
    /// The same for each cold start's init (the key reads, the connection's read).
    pub init_billed: Billed,
    /// Bytes the function logged per warm invocation (what CloudWatch Logs would ingest).
    pub warm_log_bytes: f64,
    /// How long this point took to measure (preparing its state not included), in seconds.
    pub seconds: f64,
    /// The calls of the last cold start's first invocation, as round trips (see
    /// [`crate::proxy::sequence`]).
    pub cold_sequence: String,
    /// Each sequence of calls seen in the warm invocations, with how many made it.
    pub warm_sequences: BTreeMap<String, usize>,
    pub sizes: BTreeMap<String, Size>,
    /// The reference operation, measured right after the function: argon2id for the functions
    /// that hash or verify a password, the store (and SES) calls alone for the others; none for
    /// health.
    pub reference: Option<Measurement>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Results {
    /// The template's `SigningAlgorithm` of the stack the functions ran on.
    #[serde(default)]
    pub signing_algorithm: String,
    pub functions: Vec<FunctionResult>,
    /// Fuzzers seen running between the functions' runs.
    pub fuzzers: Vec<String>,
    /// The machine, and how busy it was during the run.
    #[serde(default)]
    pub machine: Machine,
    /// The runs these results came from, in order (a full run may be split into parts).
    #[serde(default)]
    pub runs: Vec<Run>,
}

/// One `bench run`: when, what and how long.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Run {
    pub date: String,
    /// The counts per case and point: parts of one report must share them.
    pub counts: String,
    pub cases: Vec<String>,
    pub points: Vec<String>,
    pub seconds: f64,
    /// Load average at its start and end, and what else was busy.
    pub load: String,
    pub busy: Vec<String>,
}

impl Results {
    /// `part`'s results added to these: a case measured again at a point replaces the earlier
    /// figures; the machine is the first part's, busy with what any part saw.
    pub fn merge(&mut self, part: Results) -> Result<(), String> {
        let counts = |r: &Results| r.runs.first().map(|run| run.counts.clone());
        if self.runs.is_empty() || counts(self) != counts(&part) {
            return Err(format!(
                "the results to add to were made {}; this part with {}: run the whole benchmark again",
                counts(self).map_or_else(|| "by an older benchmark".to_owned(), |c| format!("with {c}")),
                counts(&part).unwrap_or_default()
            ));
        }
        for f in part.functions {
            match self.functions.iter_mut().find(|g| g.name == f.name && g.limits == f.limits) {
                Some(g) => *g = f,
                None => self.functions.push(f),
            }
        }
        for fuzzer in part.fuzzers {
            if !self.fuzzers.contains(&fuzzer) {
                self.fuzzers.push(fuzzer);
            }
        }
        for busy in part.machine.busy {
            if !self.machine.busy.contains(&busy) {
                self.machine.busy.push(busy);
            }
        }
        self.machine.load_after = part.machine.load_after;
        self.runs.extend(part.runs);
        // In the flow's order, then by point, whatever order the parts ran in.
        let order = |f: &FunctionResult| {
            let case = CASES.iter().position(|c| c.label == f.name).unwrap_or(usize::MAX);
            (case, f.limits.memory_mb.unwrap_or(0), f.limits.period_ms)
        };
        self.functions.sort_by_key(order);
        Ok(())
    }

    /// The case `name` measured without a quota (as the earlier reports measured).
    pub fn unlimited(&self, name: &str) -> Option<&FunctionResult> {
        self.functions.iter().find(|f| f.name == name && f.limits == Limits::NO_QUOTA)
    }
}

/// The template's facts about one function: memory, timeout and the environment Lambda gives it.
pub struct FunctionSpec {
    pub name: String,
    pub logical_id: String,
    pub memory_mb: u64,
    pub timeout: Duration,
    pub env: BTreeMap<String, String>,
}

/// Every function's spec, its environment resolved for the stack with AWS calls going to the
/// local IAM check at `iam_url`; and the stack's resources.
async fn function_specs(
    template: &localdev::Template,
    stack: &localdev::LocalStack,
    local: &Local,
    iam_url: &str,
) -> Result<(BTreeMap<String, FunctionSpec>, localdev::StackResources), String> {
    let admin = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(template.region().to_owned()))
        .endpoint_url(&local.secrets_upstream)
        .credentials_provider(aws_sdk_secretsmanager::config::SharedCredentialsProvider::new(
            aws_sdk_secretsmanager::config::Credentials::new("local", "local", None, None, "bench"),
        ))
        .build();
    let secrets = aws_sdk_secretsmanager::Client::new(&admin);
    let resources =
        localdev::StackResources::discover(template, stack.clone(), &secrets).await.map_err(|e| e.to_string())?;
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
    // The floor runs as health does (its memory, timeout and environment), being no function.
    let health = specs.get("health").ok_or("the template has no health function")?;
    let floor = FunctionSpec {
        name: FLOOR.to_owned(),
        logical_id: FLOOR.to_owned(),
        memory_mb: health.memory_mb,
        timeout: health.timeout,
        env: health.env.clone(),
    };
    specs.insert(FLOOR.to_owned(), floor);
    Ok((specs, resources))
}

/// The counting proxies, one per service the functions call.
pub struct Proxies {
    dynamodb: CountingProxy,
    secrets_manager: CountingProxy,
    ses: CountingProxy,
}

/// The function's environment as Lambda gives it, with the runtime API of this run and the AWS
/// calls going through the counting proxies (which forward to the IAM check).
pub fn process_env(spec: &FunctionSpec, runtime_api: &str, proxies: &Proxies) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = spec.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    env.push(("AWS_LAMBDA_RUNTIME_API".to_owned(), runtime_api.to_owned()));
    env.push(("AWS_LAMBDA_LOG_STREAM_NAME".to_owned(), "2026/01/01/[$LATEST]bench".to_owned()));
    env.push(("AWS_ENDPOINT_URL_DYNAMODB".to_owned(), proxies.dynamodb.url()));
    env.push(("AWS_ENDPOINT_URL_SECRETS_MANAGER".to_owned(), proxies.secrets_manager.url()));
    env.push(("AWS_ENDPOINT_URL_SESV2".to_owned(), proxies.ses.url()));
    env
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
    // The union of the calls' intervals: several functions read their secrets concurrently.
    let in_calls: f64 = round_trips(calls).iter().map(|(start, end)| ms(end.duration_since(*start))).sum();
    InitBreakdown {
        before_first_call_ms: before,
        in_calls_ms: in_calls,
        other_ms: (total - before - in_calls).max(0.0),
    }
}

/// Which binary runs a function, and how.
pub struct Launcher {
    /// `runner... binary` (e.g. `qemu-aarch64 -L <sysroot>`); empty: the binary itself.
    runner: Vec<String>,
    layout: Layout,
}

enum Layout {
    /// `<dir>/<binary>` (`target/release`).
    Binaries(PathBuf),
    /// `<dir>/<binary>/bootstrap` or `<dir>/<LogicalId>/bootstrap` (`cargo lambda build`,
    /// `sam build`).
    Bootstraps(PathBuf),
}

impl Launcher {
    /// The binaries of `bin_dir`, each under `runner` if one is given.
    pub fn native(bin_dir: &Path, runner: &[String]) -> Self {
        Self { runner: runner.to_vec(), layout: Layout::Binaries(bin_dir.to_owned()) }
    }

    pub fn bootstraps(dir: &Path, runner: &[String]) -> Self {
        Self { runner: runner.to_vec(), layout: Layout::Bootstraps(dir.to_owned()) }
    }

    pub fn binary(&self, spec: &FunctionSpec) -> Result<PathBuf, String> {
        let path = match &self.layout {
            Layout::Binaries(dir) => dir.join(&spec.name),
            Layout::Bootstraps(dir) => {
                let candidates = [dir.join(&spec.name), dir.join(&spec.logical_id)].map(|d| d.join("bootstrap"));
                candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
                    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
                    format!("{}: none of {} exists", spec.name, tried.join(", "))
                })?
            }
        };
        path.canonicalize().map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// One function process under its own runtime API.
pub struct Process {
    api: RuntimeApi,
    child: Child,
    pub pid: String,
    pub spawned: Instant,
}

/// The child's own clock reading just before `exec`, passed through a pipe.
struct ExecClock {
    read: std::io::PipeReader,
    write: std::io::PipeWriter,
}

fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given; async-signal-safe (used after fork).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

impl ExecClock {
    fn new() -> Result<Self, String> {
        let (read, write) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
        Ok(Self { read, write })
    }

    /// Makes the child write its CLOCK_MONOTONIC time as its last step before `exec`.
    fn stamp(&self, command: &mut Command) {
        use std::os::fd::AsRawFd;
        let fd = self.write.as_raw_fd();
        // SAFETY: the closure calls only clock_gettime(2) and write(2) on a descriptor it was given
        // open; it allocates nothing between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let ns = monotonic_ns().to_ne_bytes();
                libc::write(fd, ns.as_ptr().cast(), ns.len());
                Ok(())
            })
        };
    }

    /// The child's stamp as an `Instant` (std's `Instant` is CLOCK_MONOTONIC on Linux).
    fn read(mut self) -> Result<Instant, String> {
        use std::io::Read;
        drop(self.write);
        let mut ns = [0u8; 8];
        self.read.read_exact(&mut ns).map_err(|e| format!("the child's exec time: {e}"))?;
        let (now, now_ns) = (Instant::now(), monotonic_ns());
        Ok(now.checked_sub(Duration::from_nanos(now_ns.saturating_sub(u64::from_ne_bytes(ns)))).unwrap_or(now))
    }
}

impl Process {
    /// Starts the function's binary in its own directory, as Lambda starts `bootstrap` in
    /// /var/task, logging to `log`, inside `sandbox` (from before `exec`) if one is given;
    /// returns once it is spawned (see [`Process::idle`]).
    pub async fn spawn(
        launcher: &Launcher,
        spec: &FunctionSpec,
        proxies: &Proxies,
        log: &Path,
        sandbox: Option<&Sandbox>,
    ) -> Result<Self, String> {
        let binary = launcher.binary(spec)?;
        let api = RuntimeApi::start(&spec.name, spec.timeout).await.map_err(|e| e.to_string())?;
        let env = process_env(spec, &api.host_port(), proxies);
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut command = match launcher.runner.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        command
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(binary.parent().unwrap_or(Path::new(".")))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let attach = sandbox.map(|sandbox| sandbox.confine(&mut command)).transpose()?;
        let exec_clock = ExecClock::new()?;
        exec_clock.stamp(&mut command);
        let child = command
            .spawn()
            .map_err(|e| format!("{}: {e}", launcher.runner.first().map_or(binary.as_path(), Path::new).display()))?;
        // Init starts at the child's exec, where Lambda's Init phase starts bootstrapping the
        // runtime, timed by the child itself: after joining the cgroups, which waits for an RCU
        // grace period (5 to 20 ms on this machine, once a join is more than ~0.1 s after the
        // last: timed from the fork, even the floor looked slow), and not when `spawn` returns
        // here, which can be after the child's whole init: the driver was not always woken
        // before the child blocked (the floor's init under the share read 0.1 ms).
        let spawned = exec_clock.read()?;
        drop(attach);
        let pid = child.id().ok_or("the function exited at once")?.to_string();
        Ok(Self { api, child, pid, spawned })
    }

    async fn signal(&mut self, what: &str) -> Result<Signal, String> {
        tokio::select! {
            signal = self.api.signal(PATIENCE) => match signal {
                Some(Signal::InitError(error)) => Err(format!("init failed: {error}")),
                Some(signal) => Ok(signal),
                None => Err(format!("no answer within {PATIENCE:?} while waiting for {what}")),
            },
            status = self.child.wait() => Err(format!("the function exited ({status:?}) while waiting for {what}")),
        }
    }

    /// Waits until the process asks for its next event; returns when it asked.
    pub async fn idle(&mut self) -> Result<Instant, String> {
        match self.signal("GET /next").await? {
            Signal::Poll(at) => Ok(at),
            other => Err(format!("expected GET /next, got {other:?}")),
        }
    }

    /// One invocation: its latency (event handed out → response received) and the response.
    /// The process is busy until [`Process::idle`] returns.
    pub async fn invoke(&mut self, event: Bytes) -> Result<(f64, Bytes), String> {
        self.api.submit(event);
        match self.signal("the invocation's response").await? {
            Signal::Done { delivered, at, outcome: Outcome::Response(body) } => {
                Ok((ms(at.duration_since(delivered)), body))
            }
            Signal::Done { outcome: Outcome::Error(error), .. } => Err(format!("invocation error: {error}")),
            other => Err(format!("expected a response, got {other:?}")),
        }
    }

    /// Stops the process as Lambda stops an instance whose runtime registered an extension:
    /// SIGTERM, then SIGKILL if it is still there 500 ms later.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) has no memory effects; the pid is our own child's, still unreaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            if tokio::time::timeout(Duration::from_millis(500), self.child.wait()).await.is_ok() {
                return;
            }
        }
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// What every run needs: the IAM check every AWS call goes through (as on Lambda), the counting
/// proxies in front of it, each function's spec and the event fixtures.
pub struct Harness {
    pub iam: localdev::iam::IamProxy,
    pub proxies: Proxies,
    pub log: CallLog,
    pub specs: BTreeMap<String, FunctionSpec>,
    pub template: localdev::Template,
    pub stack: localdev::LocalStack,
    pub resources: localdev::StackResources,
}

impl Harness {
    pub async fn start(local: &Local) -> Result<Self, String> {
        std::fs::create_dir_all(&local.log_dir).map_err(|e| e.to_string())?;
        let log = CallLog::default();
        let iam = localdev::iam::IamProxy::start(
            localdev::iam::IamProxyOptions {
                template: local.template.clone(),
                parameter_overrides: local.parameter_overrides.clone(),
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
        let url = iam.url();
        let proxy = |service| CountingProxy::start(&url, service, log.clone());
        let proxies = Proxies {
            dynamodb: proxy(Service::DynamoDb).await.map_err(|e| e.to_string())?,
            secrets_manager: proxy(Service::SecretsManager).await.map_err(|e| e.to_string())?,
            ses: proxy(Service::Ses).await.map_err(|e| e.to_string())?,
        };
        let template = localdev::Template::load_with_overrides(&local.template, &local.parameter_overrides)
            .map_err(|e| format!("{}: {e}", local.template.display()))?;
        let stack = localdev::LocalStack::new(&local.stack).map_err(|e| e.to_string())?;
        let (specs, resources) = function_specs(&template, &stack, local, &iam.url()).await?;
        Ok(Self { iam, proxies, log, specs, template, stack, resources })
    }

    /// Plays Secrets Manager's part in a rotation of each secret the template schedules one for
    /// (the key ring), as `RotateImmediatelyOnUpdate` does once the stack is created: the
    /// rotation function's own binary, under a runtime API of its own and with its calls going
    /// through the proxies and the IAM check, gets the four step events in order under one
    /// `ClientRequestToken` ([`localdev::rotation`]). Until then the signers have no key.
    /// Returns the rotation functions' binaries.
    pub async fn rotate(&self, launcher: &Launcher, log_dir: &Path) -> Result<Vec<String>, String> {
        use localdev::rotation::{Schedule, STEPS};
        let mut rotated = Vec::new();
        for schedule in Schedule::all(&self.template).map_err(|e| e.to_string())? {
            let binary = self.template.function(&schedule.function).map_err(|e| e.to_string())?.binary;
            let spec = self.spec(&binary)?;
            let log = log_dir.join(format!("{binary}.log"));
            let fail = |step: &str, e: String| {
                format!("rotating {}: {step}: {e} (function log: {})", schedule.secret, log.display())
            };
            let mut process = Process::spawn(launcher, spec, &self.proxies, &log, None).await?;
            process.idle().await.map_err(|e| fail("init", e))?;
            let token = uuid::Uuid::new_v4().to_string();
            for step in STEPS {
                let event = schedule.event(&self.resources, step, &token).map_err(|e| e.to_string())?;
                process.invoke(Bytes::from(event.to_string())).await.map_err(|e| fail(step, e))?;
                process.idle().await.map_err(|e| fail(step, e))?;
            }
            process.stop().await;
            eprintln!("bench: rotated {} ({binary}, version {token})", schedule.secret);
            rotated.push(binary);
        }
        // The rotation's calls are no function's.
        self.log.drain();
        Ok(rotated)
    }

    pub fn spec(&self, name: &str) -> Result<&FunctionSpec, String> {
        self.specs.get(name).ok_or_else(|| format!("no function builds {name}"))
    }

    /// A denied call is a failed run, even when the function coped with it.
    pub fn check_denials(&self) -> Result<(), String> {
        match self.iam.denials() {
            0 => Ok(()),
            n => Err(format!("the IAM check denied {n} call(s); see the lines starting with `iam:` above")),
        }
    }
}

/// The cgroups of one case at one point (`login-128mb-20ms`); `None` without a quota.
fn sandbox_for(case: &Case, limits: Limits) -> Result<Option<Sandbox>, String> {
    let Some(mb) = limits.memory_mb else { return Ok(None) };
    let label: String = case.label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    Sandbox::create(&format!("{label}-{mb}mb-{}ms", limits.period_ms), limits).map(Some)
}

/// How long a quota set on a group whose process has just run without one is left to settle
/// before the first invocation, in CFS periods. Right after such a switch Linux 6.18 throttled the
/// first invocation of password-change at 1769 MB (a quota of one CPU, which its one busy thread
/// cannot exceed) by 38 to 55 ms; after 2 periods by 0 to 12 ms, after 5 by none (8 of 8). A
/// quota set before the process starts shows no such throttling, and on Lambda the switch is not
/// ours to reproduce, so the first invocation is measured once the group has settled.
const SETTLE_PERIODS: u64 = 5;

/// Waits [`SETTLE_PERIODS`] while the function, which has asked for its first event, is idle.
/// A function that still uses CPU then has work left that its init did not count: said aloud.
async fn settle(case: &Case, process: &Process, limits: Limits) {
    let before = procfs::exec_runtime_ms(&process.pid);
    tokio::time::sleep(Duration::from_millis(SETTLE_PERIODS * limits.period_ms)).await;
    let used = procfs::exec_runtime_ms(&process.pid).zip(before).map_or(0.0, |(after, before)| after - before);
    if used > 1.0 {
        eprintln!("bench: {}: {used:.1} ms of CPU after init asked for its first event", case.label);
    }
}

async fn run_case(
    options: &Options,
    session: &mut Session,
    case: &Case,
    limits: Limits,
    sandbox: Option<&Sandbox>,
) -> Result<FunctionResult, String> {
    let spec = session.harness.spec(case.binary)?;
    let log_file = options.local.log_dir.join(format!("{}.log", case.binary));
    let warm = options.warm(case);
    let mut result = FunctionResult {
        name: case.label.to_owned(),
        binary: case.binary.to_owned(),
        memory_mb: spec.memory_mb,
        limits,
        ..FunctionResult::default()
    };
    let throttled_before = sandbox.map(Sandbox::throttled).unwrap_or_default();
    let cold_starts = options.cold_starts.max(1);
    for start in 0..cold_starts {
        let log = session.harness.log.clone();
        log.drain();
        let spec = session.harness.spec(case.binary)?;
        // Lambda runs init without the share (sources in the report): every other cold start's
        // init runs so, its quota set once it asks for the first event; the others' under it.
        // The last start, whose process serves the warm invocations, runs init under the share
        // (its breakdown and calls are the ones reported).
        let unthrottled = sandbox.filter(|_| (cold_starts - 1 - start) % 2 == 1);
        // Each cold start gets the group's CFS bandwidth state new, as a new execution
        // environment does: writing the quota refills it and unthrottles every CPU's queue.
        // Left as the last process had left it, most starts under the share were throttled 39 to
        // 83 ms for 4 to 6 ms of CPU time (Linux 6.18, 512 MB).
        if let Some(sandbox) = sandbox {
            sandbox.set_cpu(if unthrottled.is_some() { Limits::NO_QUOTA } else { limits })?;
        }
        let throttled_before = sandbox.map(Sandbox::throttled);
        let mut process = Process::spawn(&session.launcher, spec, &session.harness.proxies, &log_file, sandbox).await?;
        let polled = process.idle().await?;
        let throttled = sandbox.zip(throttled_before).map(|(s, before)| ms(s.throttled().saturating_sub(before)));
        let init_cpu = procfs::exec_runtime_ms(&process.pid)
            .ok_or("cannot read the function's /proc/<pid>/task/<tid>/sched (CONFIG_SCHED_DEBUG)")?;
        let init_calls = log.drain();
        result.init_billed.add(&init_calls);
        let (init, in_calls) =
            (ms(polled.duration_since(process.spawned)), breakdown(process.spawned, polled, &init_calls).in_calls_ms);
        if let Some(sandbox) = unthrottled {
            sandbox.set_cpu(limits)?;
            settle(case, &process, limits).await;
            result.init_unthrottled_ms.push(init);
            result.init_unthrottled_in_calls_ms.push(in_calls);
            result.init_unthrottled_cpu_ms.push(init_cpu);
        } else {
            result.init_ms.push(init);
            result.init_in_calls_ms.push(in_calls);
            result.init_cpu_ms.push(init_cpu);
            result.init_throttled_ms.extend(throttled);
        }
        if start + 1 == cold_starts {
            result.init_breakdown = breakdown(process.spawned, polled, &init_calls);
            result.init_calls = Counts::of(&init_calls);
            result.init_operations = init_calls.iter().map(|c| c.operation.clone()).collect();
        }

        let invocation = session.flow.next(case)?;
        let (latency, response) = process.invoke(invocation.event.clone()).await?;
        session.flow.accept(case, &invocation, &response)?;
        result.first_invocation_ms.push(latency);
        let calls = log.drain();
        result.cold_calls.add(Counts::of(&calls), start == 0);
        result.cold_billed.add(&calls);
        result.cold_sequence = sequence(&calls);
        process.idle().await?;
        if start + 1 < cold_starts {
            process.stop().await;
            continue;
        }

        let pid = process.pid.clone();
        let cpu_before = procfs::cpu_ms(&pid).ok_or("cannot read the function's /proc/<pid>/stat")?;
        let log_size = || std::fs::metadata(&log_file).map_or(0, |m| m.len());
        let log_before = log_size();
        for i in 0..warm {
            let invocation = session.flow.next(case)?;
            let (latency, response) = process.invoke(invocation.event.clone()).await?;
            session.flow.accept(case, &invocation, &response)?;
            result.warm_ms.push(latency);
            let calls = log.drain();
            result.warm_calls.add(Counts::of(&calls), i == 0);
            result.warm_billed.add(&calls);
            *result.warm_sequences.entry(sequence(&calls)).or_default() += 1;
            if std::env::var_os("BENCH_TRACE_RSS").is_some() {
                eprintln!(
                    "{} {i}: VmRSS {:?} VmHWM {:?}",
                    case.label,
                    procfs::rss_kib(&pid),
                    procfs::peak_rss_kib(&pid)
                );
            }
            process.idle().await?;
        }
        let cpu_after = procfs::cpu_ms(&pid).ok_or("cannot read the function's /proc/<pid>/stat")?;
        result.warm_cpu_ms = (cpu_after - cpu_before) / warm.max(1) as f64;
        result.warm_billed = result.warm_billed.mean(warm);
        result.warm_log_bytes = log_size().saturating_sub(log_before) as f64 / warm.max(1) as f64;
        result.peak_rss_kib = procfs::peak_rss_kib(&pid).unwrap_or(0);
        result.threads = procfs::threads(&pid).unwrap_or(0);
        process.stop().await;
    }
    result.cold_billed = result.cold_billed.mean(cold_starts);
    result.init_billed = result.init_billed.mean(cold_starts);
    if let Some(sandbox) = sandbox {
        result.peak_memory_kib = sandbox.peak_memory_kib();
        result.oom_kills = sandbox.oom_kills();
        result.throttled_ms = ms(sandbox.throttled().saturating_sub(throttled_before));
    }
    for arch in ARCHES {
        let dir = options.artifacts.join(arch);
        let size = |path: PathBuf| std::fs::metadata(path).ok().map(|m| m.len());
        result.sizes.insert(
            arch.to_owned(),
            Size {
                bootstrap_bytes: size(dir.join(case.binary).join("bootstrap")),
                zip_bytes: size(dir.join(format!("{}.zip", case.binary))),
            },
        );
    }
    Ok(result)
}

/// Runs `bench baseline` in a child process with the function's environment (so its calls have
/// the function's permissions and go through the same proxies), the input on its stdin.
async fn measure_baseline(
    session: &Session,
    case: &Case,
    op: Op,
    n: usize,
    input: &Input,
    sandbox: Option<&Sandbox>,
) -> Result<Measurement, String> {
    let spec = session.harness.spec(case.binary)?;
    let env = process_env(spec, "127.0.0.1:9", &session.harness.proxies);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let op_name = op.name();
    let mut command = Command::new(exe);
    command
        .env_clear()
        .envs(env)
        .args(["baseline", "--op", op_name, "--n", &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // At the function's CPU share: "one argon2id hash at that share" is what login is held to.
    let attach = sandbox.map(|sandbox| sandbox.confine(&mut command)).transpose()?;
    let mut child = command.spawn().map_err(|e| e.to_string())?;
    drop(attach);
    let text = serde_json::to_vec(input).map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    stdin.write_all(&text).await.map_err(|e| e.to_string())?;
    drop(stdin);
    let output = child.wait_with_output().await.map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!("baseline {op_name}: {}", String::from_utf8_lossy(&output.stderr)));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("baseline {op_name}: {e}"))
}

pub async fn run(options: &Options) -> Result<Results, String> {
    let cases: Vec<&Case> = if options.cases.is_empty() {
        CASES.iter().collect()
    } else {
        let mut cases = Vec::new();
        for label in &options.cases {
            cases.push(CASES.iter().find(|c| c.label == label).ok_or_else(|| format!("no case {label:?}"))?);
        }
        // In run order, whatever the order asked.
        cases.sort_by_key(|c| CASES.iter().position(|k| k.label == c.label));
        cases
    };
    let harness = Harness::start(&options.local).await?;
    let launcher = Launcher::native(&options.bin_dir, &options.runner);
    harness.rotate(&launcher, &options.local.log_dir).await?;
    let mut session = Session::new(harness, launcher, &options.local).await?;
    let signing_algorithm = session.harness.template.parameter("SigningAlgorithm").unwrap_or_default().to_owned();
    let mut results = Results { signing_algorithm, ..Results::default() };
    results.runs.push(Run {
        counts: options.counts(),
        cases: cases.iter().map(|c| c.label.to_owned()).collect(),
        points: options.points.iter().map(|p| p.label(DEFAULT_PERIOD_MS)).collect(),
        ..Run::default()
    });
    for case in cases {
        eprintln!("bench: {}", case.label);
        for fuzzer in crate::report::fuzzers() {
            if !results.fuzzers.contains(&fuzzer) {
                results.fuzzers.push(fuzzer);
            }
        }
        for &limits in &options.points {
            let point = limits.label(DEFAULT_PERIOD_MS);
            let n = options.cold_starts.max(1) + options.warm(case);
            let runs = case.reference.map_or(0, |op| options.baseline_runs(op));
            let preparing = Instant::now();
            let mut input = session.prepare(case, n, runs).await?;
            eprintln!("bench: {} at {point}: prepared in {:.1} s", case.label, preparing.elapsed().as_secs_f64());
            // Nothing else of the benchmark's runs while a function is measured.
            session.stop_helpers().await;
            let sandbox = sandbox_for(case, limits)?;
            let started = Instant::now();
            let mut result = run_case(options, &mut session, case, limits, sandbox.as_ref()).await?;
            // Each reference operation runs with the permissions of the function it stands
            // for, at its CPU share, on state of its own where it uses state up (tokens,
            // sessions, pending mail).
            if let Some(op) = case.reference {
                session.flow.complete_input(case, &mut input);
                result.reference = Some(measure_baseline(&session, case, op, runs, &input, sandbox.as_ref()).await?);
            }
            result.seconds = started.elapsed().as_secs_f64();
            let median = crate::report::percentile(&result.warm_ms, 50.0);
            let p95 = crate::report::percentile(&result.warm_ms, 95.0);
            let reference = match (case.reference, &result.reference) {
                (Some(op), Some(r)) => format!("{}: {:.3} ms CPU, {:.3} ms", op.name(), r.cpu_ms, r.wall_ms),
                _ => "none".to_owned(),
            };
            eprintln!(
                "bench: {} at {point}: init {:.1} ms, first {:.1} ms, warm p50 {median:.2} ms, p95 {p95:.2} ms, \
                 {:.3} ms CPU per warm invocation, peak {} KiB{} (reference {reference}); warm calls {}",
                case.label,
                result.init_ms.last().copied().unwrap_or_default(),
                result.first_invocation_ms.last().copied().unwrap_or_default(),
                result.warm_cpu_ms,
                result.peak_memory_kib.unwrap_or(result.peak_rss_kib),
                if result.oom_kills > 0 { format!(", {} OOM kill(s)", result.oom_kills) } else { String::new() },
                result.warm_sequences.keys().cloned().collect::<Vec<_>>().join(" | "),
            );
            results.functions.push(result);
        }
    }
    session.stop_helpers().await;
    session.harness.check_denials()?;
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
    /// The HTTP status, or for the mailer what it reported.
    pub status: String,
}

/// Invokes each function's deployable bootstrap once, in flow order (see [`CASES`]), with the
/// environment `run` gives it; `runner` runs foreign-architecture binaries, the ones that
/// prepare state included. Fails on the first function that does not init or answer its happy
/// path.
pub async fn invoke_each(local: &Local, bootstrap_dir: &Path, runner: &[String]) -> Result<Vec<Invocation>, String> {
    let harness = Harness::start(local).await?;
    let launcher = Launcher::bootstraps(bootstrap_dir, runner);
    let rotated = harness.rotate(&launcher, &local.log_dir).await?;
    let mut session = Session::new(harness, launcher, local).await?;
    let mut done = Vec::new();
    // The mailer twice: a sign-up's mail, then a reset mail (which stores a token).
    // The floor is the benchmark's own binary, not a deployable function.
    for case in CASES.iter().filter(|c| c.binary != FLOOR) {
        session.prepare(case, 1, 0).await?;
        session.stop_helpers().await;
        let spec = session.harness.spec(case.binary)?;
        let bootstrap = session.launcher.binary(spec)?;
        let log_file = local.log_dir.join(format!("{}.log", case.binary));
        let fail = |e: String| format!("{}: {e} (function log: {})", case.label, log_file.display());
        let mut process = Process::spawn(&session.launcher, spec, &session.harness.proxies, &log_file, None).await?;
        let polled = process.idle().await.map_err(fail)?;
        let invocation = session.flow.next(case)?;
        let (latency_ms, response) = process.invoke(invocation.event.clone()).await.map_err(fail)?;
        let status = session.flow.accept(case, &invocation, &response).map_err(fail)?;
        // Back to polling: the runtime loop survived the invocation.
        process.idle().await.map_err(fail)?;
        let init_ms = ms(polled.duration_since(process.spawned));
        process.stop().await;
        done.push(Invocation { name: case.label.to_owned(), bootstrap, init_ms, latency_ms, status });
    }
    session.stop_helpers().await;
    let invoked = |name: &str| CASES.iter().any(|c| c.binary == name) || rotated.iter().any(|r| r == name);
    for spec in session.harness.specs.values().filter(|s| !invoked(&s.name)) {
        eprintln!("bench: {} ({}) not invoked: it has no step in the flow", spec.name, spec.logical_id);
    }
    session.harness.check_denials()?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn given_a_driver_that_resumes_late_when_timing_a_spawn_then_init_starts_at_the_childs_exec() {
        // GIVEN a child that stamps its exec
        let clock = ExecClock::new().expect("a pipe");
        let mut command = Command::new("true");
        clock.stamp(&mut command);
        let before = Instant::now();
        let mut child = command.spawn().expect("true runs");
        // WHEN the driver gets to read the stamp only 50 ms later
        std::thread::sleep(Duration::from_millis(50));
        let spawned = clock.read().expect("the stamp");
        // THEN init starts when the child exec'd, not when the driver resumed
        assert!(spawned >= before, "the stamp precedes the spawn");
        assert!(
            spawned.elapsed() >= Duration::from_millis(50),
            "the stamp is the driver's clock: {:?}",
            spawned.elapsed()
        );
        child.wait().await.expect("true exits");
    }
}
