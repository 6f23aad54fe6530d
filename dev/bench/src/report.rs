//! `docs/performance.md`: the machine, the results against the targets of the performance
//! issue (the first five functions), the account functions and the public keys' function against
//! their designed calls and the first five's figures, login, refresh and get-user signing with
//! RS256 against ES256, the hot-path micro-benchmarks, and what misses a target with its reason
//! and next step.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::driver::{CallRange, FunctionResult, Results};
use crate::proxy::Counts;

/// Targets (this machine).
const INIT_TARGET_MS: f64 = 15.0;
const BEYOND_DYNAMODB_TARGET_MS: f64 = 0.3;
const ARGON2_RATIO_TARGET: f64 = 1.05;
const ZIP_TARGET_BYTES: u64 = 3_000_000;

/// The functions the performance issue set targets for, in the report's order.
pub const WITH_TARGETS: [&str; 5] = ["register", "login", "refresh", "get-user", "health"];
/// The account functions (the issue asks for their figures, not targets), then the public keys'
/// function (none either), in the report's order.
pub const ACCOUNT: [&str; 12] = [
    "logout",
    "logout-all",
    "email-verify",
    "email-verify-resend",
    "password-forgot",
    "password-reset",
    "password-change",
    "email-change",
    "delete-user",
    "mailer (sign-up)",
    "mailer (reset)",
    "jwks",
];
/// The cases measured again on a stack signing with another algorithm.
pub const BY_ALGORITHM: [&str; 3] = ["login", "refresh", "get-user"];

/// The AWS calls a function should make, and the sequential round trips they should take:
/// during init, on a new process's first invocation, and on every warm one.
struct CallTargets {
    init: Counts,
    cold: Counts,
    warm: Counts,
}

const fn n(dynamodb: usize, secrets_manager: usize, ses: usize, round_trips: usize) -> Counts {
    Counts { dynamodb, secrets_manager, ses, round_trips }
}

const NONE: Counts = n(0, 0, 0, 0);

fn call_targets(function: &str) -> CallTargets {
    let same = |init, each| CallTargets { init, cold: each, warm: each };
    // Init reads the keys the function's requests need and opens the DynamoDB connection (a
    // GetItem of the `WARM-UP#` key), concurrently: one round trip.
    let keys = |k| n(1, k, 0, 1);
    // Two connections where the requests make two DynamoDB calls at once.
    let two = |k| n(2, k, 0, 1);
    match function {
        // The mail key (its link's token is derived with it).
        "register" => same(keys(1), n(1, 0, 0, 1)),
        // A login reserves the attempt while it reads the credentials, then writes one
        // transaction.
        "login" => same(two(2), n(3, 0, 0, 2)),
        "refresh" => same(keys(2), n(1, 0, 0, 1)),
        "get-user" => same(keys(1), n(1, 0, 0, 1)),
        // DescribeTable and the public JWKS's GetSecretValue (is a key published), concurrently,
        // during init; the result is then cached for 30 s, longer than the warm invocations take.
        "health" => same(n(1, 1, 0, 1), NONE),
        "logout" => same(keys(0), n(1, 0, 0, 1)),
        "logout-all" => same(keys(1), n(2, 0, 0, 2)),
        "email-verify" => same(keys(0), n(3, 0, 0, 3)),
        // A first request for an address: one transaction.
        "email-verify-resend" | "password-forgot" => same(keys(1), n(1, 0, 0, 1)),
        "password-reset" => same(keys(1), n(3, 0, 0, 3)),
        "password-change" => same(two(2), n(4, 0, 0, 3)),
        "email-change" => same(two(3), n(6, 0, 0, 4)),
        // The account's transaction, then what it owns (one page, one batch here).
        "delete-user" => same(two(2), n(6, 0, 0, 5)),
        // The mail key only: the first batch opens the connections (no user waits for a mail).
        "mailer (sign-up)" => same(n(0, 1, 0, 1), n(3, 0, 1, 4)),
        "mailer (reset)" => same(n(0, 1, 0, 1), n(6, 0, 1, 7)),
        // The public JWKS, read during init and cached KEY_CACHE_TTL_SECONDS (longer than the
        // warm invocations take): no call on any invocation, and no table.
        "jwks" => same(n(0, 1, 0, 1), NONE),
        _ => same(NONE, n(1, 0, 0, 1)),
    }
}

/// The calls of a warm invocation as the handler and `shared::store` make them: round trips in
/// order (` → `), calls in flight together joined by ` ‖ ` (as [`crate::proxy::sequence`] spells
/// them).
fn designed_sequence(function: &str) -> &'static str {
    match function {
        "register" | "email-verify-resend" | "password-forgot" => "TransactWriteItems",
        "login" => "GetItem ‖ UpdateItem → TransactWriteItems",
        "refresh" => "TransactWriteItems",
        "get-user" => "GetItem",
        "health" | "jwks" => "none",
        "logout" => "UpdateItem",
        "logout-all" => "GetItem → TransactWriteItems",
        "email-verify" => "GetItem → TransactWriteItems → GetItem",
        "password-reset" => "GetItem → GetItem → TransactWriteItems",
        "password-change" => "GetItem → GetItem ‖ UpdateItem → TransactWriteItems",
        "email-change" => "GetItem → GetItem ‖ UpdateItem → GetItem ‖ GetItem → TransactWriteItems",
        "delete-user" => "GetItem → GetItem ‖ UpdateItem → TransactWriteItems → Query → BatchWriteItem",
        "mailer (sign-up)" => "GetItem → UpdateItem → SendEmail → UpdateItem",
        "mailer (reset)" => "GetItem → UpdateItem → GetItem → GetItem → PutItem → SendEmail → UpdateItem",
        _ => "",
    }
}

/// Argon2id computations per invocation: a hash (register, reset), a verification (login,
/// email change, delete), or both (a password change).
fn argon2_computations(function: &str) -> Option<f64> {
    match function {
        "register" | "login" | "password-reset" | "email-change" | "delete-user" => Some(1.0),
        "password-change" => Some(2.0),
        _ => None,
    }
}

/// Whether every cold and warm invocation made exactly the target calls in the target round trips.
fn invocation_calls_met(f: &FunctionResult) -> bool {
    let t = call_targets(&f.name);
    let exactly = |range: &CallRange, target: Counts| range.min == target && range.max == target;
    exactly(&f.cold_calls, t.cold) && exactly(&f.warm_calls, t.warm)
}

/// Whether `measured` is `designed` with calls designed to be in flight together made one after
/// the other: every designed round trip is one or more consecutive measured ones with the same
/// calls. The process was descheduled between sending them long enough for the first answer to
/// come back (a busy machine), or the code serialised them.
fn split_of(designed: &str, measured: &str) -> bool {
    fn trips(sequence: &str) -> Vec<Vec<&str>> {
        if sequence == "none" {
            return Vec::new();
        }
        sequence.split(" → ").map(|trip| trip.split(" ‖ ").collect()).collect()
    }
    let mut measured = trips(measured).into_iter();
    for mut want in trips(designed) {
        want.sort_unstable();
        let mut got: Vec<&str> = Vec::new();
        while got.len() < want.len() {
            let Some(trip) = measured.next() else { return false };
            got.extend(trip);
        }
        got.sort_unstable();
        if got != want {
            return false;
        }
    }
    measured.next().is_none()
}

/// How a function's calls compare with the design.
#[derive(Debug, PartialEq, Eq)]
enum Design {
    /// The designed calls, in the designed round trips, every time.
    Met,
    /// The designed calls, but in this many warm invocations (or a cold one) calls designed to
    /// be concurrent reached the proxy one after the other.
    Split(usize),
    Deviates,
}

fn design(f: &FunctionResult) -> Design {
    let t = call_targets(&f.name);
    let calls = |c: Counts| Counts { round_trips: 0, ..c };
    let exactly =
        |range: &CallRange, target: Counts| calls(range.min) == calls(target) && calls(range.max) == calls(target);
    if f.init_calls != t.init || !exactly(&f.cold_calls, t.cold) || !exactly(&f.warm_calls, t.warm) {
        return Design::Deviates;
    }
    if f.cold_calls.min.round_trips < t.cold.round_trips || f.warm_calls.min.round_trips < t.warm.round_trips {
        return Design::Deviates;
    }
    let designed = designed_sequence(&f.name);
    let mut split = 0;
    for (sequence, n) in &f.warm_sequences {
        if sequence == designed {
            continue;
        }
        if !split_of(designed, sequence) {
            return Design::Deviates;
        }
        split += n;
    }
    if split == 0 && f.cold_calls.max.round_trips == t.cold.round_trips {
        Design::Met
    } else {
        Design::Split(split)
    }
}

/// "cold / warm" for one count (min–max over the invocations), and whether it met its target.
fn cold_warm(f: &FunctionResult, count: fn(&Counts) -> usize) -> (String, bool) {
    let t = call_targets(&f.name);
    let range = |r: &CallRange| calls(count(&r.min), count(&r.max));
    let met = |r: &CallRange, target: &Counts| count(&r.min) == count(target) && count(&r.max) == count(target);
    let text = format!("{} / {}", range(&f.cold_calls), range(&f.warm_calls));
    (text, met(&f.cold_calls, &t.cold) && met(&f.warm_calls, &t.warm))
}

fn describe_counts(min: &Counts, max: &Counts) -> String {
    let mut text = format!(
        "DynamoDB {}, Secrets Manager {}",
        calls(min.dynamodb, max.dynamodb),
        calls(min.secrets_manager, max.secrets_manager),
    );
    if max.ses > 0 {
        let _ = write!(text, ", SES {}", calls(min.ses, max.ses));
    }
    let _ = write!(text, ", round trips {}", calls(min.round_trips, max.round_trips));
    text
}

/// The warm invocations' sequences, most frequent first, with how many made each when they
/// differ.
fn warm_sequences(f: &FunctionResult) -> String {
    let mut seen: Vec<(&String, &usize)> = f.warm_sequences.iter().collect();
    seen.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    match seen.as_slice() {
        [] => "–".to_owned(),
        [(only, _)] => (*only).clone(),
        many => many.iter().map(|(s, n)| format!("{s} ({n}×)")).collect::<Vec<_>>().join("; "),
    }
}

fn rss_target_mib(function: &str) -> f64 {
    if matches!(function, "register" | "login") {
        48.0
    } else {
        24.0
    }
}

/// The `p`th percentile (nearest rank) of `values`.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What the machine was and how busy it was.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory: String,
    pub kernel: String,
    pub rustc: String,
    pub date: String,
    pub load_before: String,
    pub load_after: String,
    /// Other processes seen using CPU at the start or end of the run.
    pub busy: Vec<String>,
}

impl Machine {
    pub fn describe() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or_else(|| "unknown".to_owned(), |m| m.trim().to_owned());
        let memory = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or_else(|| "unknown".to_owned(), |kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0));
        let rustc = std::process::Command::new("rustc")
            .arg("-V")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        let date =
            time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            rustc,
            date,
            load_before: load_average(),
            ..Self::default()
        }
    }
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Processes other than this one and the emulators using at least 10 % of a core over one
/// second, and any fuzzer.
pub fn busy_processes() -> Vec<String> {
    fn snapshot() -> BTreeMap<u32, (f64, String)> {
        let mut map = BTreeMap::new();
        let own = std::process::id();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            if pid == own {
                continue;
            }
            let Some(cpu) = crate::procfs::cpu_ms(&pid.to_string()) else { continue };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            map.insert(pid, (cpu, String::from_utf8_lossy(&cmdline).replace('\0', " ").trim().to_owned()));
        }
        map
    }
    let before = snapshot();
    std::thread::sleep(Duration::from_secs(1));
    let after = snapshot();
    let mut busy = Vec::new();
    for (pid, (cpu, cmdline)) in &after {
        let used = before.get(pid).map_or(0.0, |(b, _)| cpu - b) / 10.0;
        let fuzzer = ["cargo fuzz", "cargo-fuzz", "fuzz_target", "libfuzzer"].iter().any(|f| cmdline.contains(f));
        // The emulators work for the benchmark itself. (DynamoDB Local's jar comes after its long
        // java.library.path, so the whole command line is searched and only the report shortens it.)
        let emulator = ["DynamoDBLocal.jar", "moto_server"].iter().any(|e| cmdline.contains(e));
        if (used >= 10.0 && !emulator) || fuzzer {
            let shown: String = cmdline.chars().take(100).collect();
            busy.push(format!("`{shown}` ({used:.0} % of a core)"));
        }
    }
    busy
}

/// Fuzzers running now (a quick scan of the process list, for checks during the run).
pub fn fuzzers() -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if entry.file_name().to_str().is_none_or(|s| s.parse::<u32>().is_err()) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline: String = String::from_utf8_lossy(&cmdline).replace('\0', " ").trim().chars().take(100).collect();
        if ["cargo fuzz", "cargo-fuzz", "fuzz_target", "libfuzzer"].iter().any(|f| cmdline.contains(f)) {
            found.push(format!("`{cmdline}` (running during the measurements)"));
        }
    }
    found
}

/// Criterion results under `dir`: full id → (mean, lower, upper) in nanoseconds.
pub fn criterion_results(dir: &Path) -> BTreeMap<String, (f64, f64, f64)> {
    fn walk(dir: &Path, out: &mut BTreeMap<String, (f64, f64, f64)>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if path.file_name().is_some_and(|n| n == "new") {
                let json = |name: &str| -> Option<Value> {
                    serde_json::from_str(&std::fs::read_to_string(path.join(name)).ok()?).ok()
                };
                if let (Some(benchmark), Some(estimates)) = (json("benchmark.json"), json("estimates.json")) {
                    let mean = &estimates["mean"];
                    let ci = &mean["confidence_interval"];
                    if let (Some(id), Some(m), Some(lo), Some(hi)) = (
                        benchmark["full_id"].as_str(),
                        mean["point_estimate"].as_f64(),
                        ci["lower_bound"].as_f64(),
                        ci["upper_bound"].as_f64(),
                    ) {
                        out.insert(id.to_owned(), (m, lo, hi));
                    }
                }
            } else if path.file_name().is_none_or(|n| n != "base" && n != "report") {
                walk(&path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &mut out);
    out
}

fn duration(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn mb(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "n/a".to_owned(), |b| format!("{:.2} MB", b as f64 / 1e6))
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn calls(min: usize, max: usize) -> String {
    if min == max {
        min.to_string()
    } else {
        format!("{min}–{max}")
    }
}

/// One missed target: what, why, what next.
struct Miss {
    what: String,
    reason: String,
    next: String,
}

/// CPU per warm invocation beyond the reference: its store (and SES) calls made alone, or its
/// argon2id computations.
fn beyond_reference(f: &FunctionResult) -> Option<f64> {
    let reference = f.reference.as_ref()?.cpu_ms * argon2_computations(&f.name).unwrap_or(1.0);
    Some(f.warm_cpu_ms - reference)
}

fn beyond_dynamodb(f: &FunctionResult) -> Option<f64> {
    matches!(f.name.as_str(), "get-user" | "refresh").then_some(())?;
    beyond_reference(f)
}

/// CPU per warm invocation over one argon2id hash (for the functions that compute one or two).
fn argon2_ratio_any(f: &FunctionResult) -> Option<f64> {
    argon2_computations(&f.name)?;
    Some(f.warm_cpu_ms / f.reference.as_ref()?.cpu_ms)
}

fn argon2_ratio(f: &FunctionResult) -> Option<f64> {
    matches!(f.name.as_str(), "register" | "login").then_some(())?;
    argon2_ratio_any(f)
}

fn zip_arm64(f: &FunctionResult) -> Option<u64> {
    f.sizes.get("arm64").and_then(|s| s.zip_bytes)
}

fn init_median(f: &FunctionResult) -> f64 {
    percentile(&f.init_ms, 50.0)
}

fn misses(results: &Results) -> Vec<Miss> {
    let mut misses = Vec::new();
    for f in in_order(results, &WITH_TARGETS) {
        let init = init_median(f);
        if init > INIT_TARGET_MS {
            let b = f.init_breakdown;
            let reason = if f.init_operations.is_empty() {
                format!(
                    "init makes no AWS call: its {:.1} ms are process start, logging, configuration, SDK config \
                     and clients, the graceful-shutdown extension's registration (a request to the runtime API) \
                     and the runtime's start-up",
                    b.before_first_call_ms
                )
            } else if b.in_calls_ms >= b.before_first_call_ms && b.in_calls_ms >= b.other_ms {
                format!(
                    "the AWS calls of init ({}) were outstanding {:.1} ms (concurrent calls counted once), most \
                     of it the emulator's own answer time; the process reached its first AWS call after {:.1} ms",
                    f.init_operations.join(", "),
                    b.in_calls_ms,
                    b.before_first_call_ms
                )
            } else if b.before_first_call_ms >= b.other_ms {
                format!(
                    "{:.1} ms pass before the first AWS call (process start, logging, configuration, SDK \
                     config and client construction); the AWS calls took {:.1} ms",
                    b.before_first_call_ms, b.in_calls_ms
                )
            } else {
                // The argon2id reserve runs on a blocking thread beside the calls and outlasts them.
                let reserve = if argon2_computations(&f.name).is_some() {
                    "mostly argon2id's 19 MiB of working memory, allocated and written during init on purpose \
                     (`shared::password::reserve_memory`: about 4,900 page faults the first password request \
                     would otherwise pay at the function's share), then "
                } else {
                    ""
                };
                format!(
                    "{:.1} ms of init is neither before the first AWS call ({:.1} ms) nor inside one \
                     ({:.1} ms): {reserve}key decoding, the graceful-shutdown extension's registration (a request \
                     to the runtime API) and the runtime's start-up",
                    b.other_ms, b.before_first_call_ms, b.in_calls_ms
                )
            };
            let fastest = f.init_ms.iter().copied().fold(f64::INFINITY, f64::min);
            let reason = format!(
                "{reason}; the fastest of the {} cold starts took {fastest:.1} ms{}",
                f.init_ms.len(),
                if fastest <= INIT_TARGET_MS { " (so the median is also noise from other work)" } else { "" }
            );
            misses.push(Miss {
                what: format!("{}: init {init:.1} ms (target ≤ {INIT_TARGET_MS} ms)", f.name),
                reason,
                next: "where the AWS calls dominate, measure them against the real services before changing \
                       the design (DynamoDB Local's DescribeTable counts the table's items, which grow through a \
                       run; moto is a Python server); otherwise profile init with symbols (a release build with \
                       `strip = \"none\"`, `RUNNER=\"perf record -g\"`) and compare its CPU time with the floor's \
                       (\"Targets at the chosen sizes\")"
                    .to_owned(),
            });
        }
        if let Some(beyond) = beyond_dynamodb(f).filter(|b| *b > BEYOND_DYNAMODB_TARGET_MS) {
            misses.push(Miss {
                what: format!(
                    "{}: {beyond:.3} ms of CPU per warm invocation beyond the DynamoDB call (target ≤ \
                     {BEYOND_DYNAMODB_TARGET_MS} ms)",
                    f.name
                ),
                reason: format!(
                    "the process used {:.3} ms per invocation; the same DynamoDB call made alone costs {:.3} ms. \
                     The rest is the runtime loop (two HTTP exchanges with the runtime API per invocation), \
                     event and response JSON, the JWT work and the JSON log lines",
                    f.warm_cpu_ms,
                    f.warm_cpu_ms - beyond
                ),
                next: "profile a warm loop with `perf record -g` and cut the largest item (see the hot-path \
                       micro-benchmarks below for what the handler's own work costs)"
                    .to_owned(),
            });
        }
        if let Some(ratio) = argon2_ratio(f).filter(|r| *r > ARGON2_RATIO_TARGET) {
            misses.push(Miss {
                what: format!(
                    "{}: CPU per warm invocation is {ratio:.3}× one argon2id hash (target ≤ {ARGON2_RATIO_TARGET}×)",
                    f.name
                ),
                reason: format!(
                    "{:.2} ms per invocation against {:.2} ms for one hash measured right after it, so {:.2} ms \
                     beyond the hash, while refresh and get-user need about 0.3 ms for a whole invocation with \
                     its DynamoDB call and JSON. Sampling a warm register process with `perf` (stripped binary) \
                     put about 96 % of the samples in argon2, blake2 and their block copies, and twice login's \
                     share in the kernel; CPU time on this 2-core machine also varies by a few per cent with \
                     what the other core runs",
                    f.warm_cpu_ms,
                    f.reference.as_ref().map_or(0.0, |b| b.cpu_ms),
                    f.warm_cpu_ms - f.reference.as_ref().map_or(0.0, |b| b.cpu_ms)
                ),
                next: "profile the warm loop with symbols (a release build with `strip = \"none\"`, `perf record -g \
                       -p <pid>`) to attribute the CPU beyond the hash; rerun the benchmark on an idle machine \
                       before acting on a difference of a few per cent"
                    .to_owned(),
            });
        }
        let t = call_targets(&f.name);
        if !invocation_calls_met(f) || f.init_calls != t.init {
            misses.push(Miss {
                what: format!("{}: AWS calls or round trips differ from the target", f.name),
                reason: format!(
                    "cold invocation: {}; warm: {}; init: {}. Expected cold: {}; warm: {}; init: {}",
                    describe_counts(&f.cold_calls.min, &f.cold_calls.max),
                    describe_counts(&f.warm_calls.min, &f.warm_calls.max),
                    describe_counts(&f.init_calls, &f.init_calls),
                    describe_counts(&t.cold, &t.cold),
                    describe_counts(&t.warm, &t.warm),
                    describe_counts(&t.init, &t.init)
                ),
                next: "read the function's log in `.local/bench/` for retries, and the store code for an extra or \
                       a serialised call (two concurrent calls count as two round trips when the second reaches \
                       the proxy only after the first was answered)"
                    .to_owned(),
            });
        }
        if zip_arm64(f).is_some_and(|z| z > ZIP_TARGET_BYTES) {
            misses.push(Miss {
                what: format!("{}: arm64 zip {} (target ≤ 3 MB)", f.name, mb(zip_arm64(f))),
                reason: "the AWS SDK clients and their TLS stack are most of the binary; since ES256, aws-lc is \
                         built with its full-speed P-256 tables (`AWS_LC_SYS_SMALL=0`, about +0.4 MB zipped): \
                         signing 26 µs and verifying 53 µs instead of 131 and 192 µs, which kept refresh and \
                         get-user near the warm-CPU target"
                    .to_owned(),
                next: "compare `cargo bloat --release --crates` output and drop unused SDK features".to_owned(),
            });
        }
        let rss = f.peak_rss_kib as f64 / 1024.0;
        if rss > rss_target_mib(&f.name) {
            misses.push(Miss {
                what: format!("{}: peak RSS {rss:.1} MiB (target ≤ {} MiB)", f.name, rss_target_mib(&f.name)),
                reason: "see the breakdown of the mappings in `/proc/<pid>/smaps_rollup`".to_owned(),
                next: "check allocator retention after the argon2 buffer is freed".to_owned(),
            });
        }
    }
    misses
}

/// The unlimited results of `names`, in that order (those that ran).
fn in_order<'a>(results: &'a Results, names: &[&str]) -> Vec<&'a FunctionResult> {
    names.iter().filter_map(|name| results.unlimited(name)).collect()
}

/// The report of `results` (the full run), with a section for each of `others` (the smaller runs
/// on stacks signing with another algorithm).
pub fn render(
    results: &Results,
    others: &[Results],
    machine: &Machine,
    criterion: &BTreeMap<String, (f64, f64, f64)>,
    lambda: &LambdaTerms,
) -> String {
    let mut md = String::new();
    let w = &mut md;
    let fns = &in_order(results, &WITH_TARGETS);
    let _ = writeln!(w, "# Performance\n");
    let _ = writeln!(
        w,
        "Generated by `dev/scripts/bench.sh` on {}; rerun it to regenerate this file (do not edit it by hand).\n",
        machine.date
    );

    let _ = writeln!(w, "## Machine\n");
    let _ = writeln!(w, "- CPU: {} ({} cores available)", machine.cpu, machine.cores);
    let _ = writeln!(w, "- Memory: {}", machine.memory);
    let _ = writeln!(w, "- Kernel: Linux {}; {}", machine.kernel, machine.rustc);
    let _ = writeln!(
        w,
        "- Load average (1, 5, 15 min): {} at the start, {} at the end",
        machine.load_before, machine.load_after
    );
    if machine.busy.is_empty() {
        let _ = writeln!(
            w,
            "- Busy: no other process used 10 % of a core or more at the start or end of the run, and no fuzzer ran."
        );
    } else {
        let _ = writeln!(
            w,
            "- **Busy**: other work ran at the start or end of the run, so latencies and CPU figures may be high:"
        );
        for busy in &machine.busy {
            let _ = writeln!(w, "  - {busy}");
        }
    }

    let header = |w: &mut String, first: &str| {
        let names: Vec<&str> = fns.iter().map(|f| f.name.as_str()).collect();
        let _ = writeln!(w, "| {first} | {} |", names.join(" | "));
        let _ = writeln!(w, "|---|{}", "---|".repeat(names.len()));
    };
    let row = |w: &mut String, name: &str, cell: &dyn Fn(&FunctionResult) -> String| {
        let cells: Vec<String> = fns.iter().map(|f| cell(f)).collect();
        let _ = writeln!(w, "| {name} | {} |", cells.join(" | "));
    };
    // A target row's label lists each column's target.
    let targets = |each: &dyn Fn(&CallTargets) -> String| {
        fns.iter().map(|f| each(&call_targets(&f.name))).collect::<Vec<_>>().join(", ")
    };

    let _ = writeln!(w, "\n## Results against the targets\n");
    header(w, "target");
    row(w, "init ≤ 15 ms (median of cold starts)", &|f| {
        let init = init_median(f);
        format!("{init:.1} ms {}", verdict(init <= INIT_TARGET_MS))
    });
    row(w, "warm CPU beyond the DynamoDB call ≤ 0.3 ms", &|f| match beyond_dynamodb(f) {
        Some(b) => format!("{b:.3} ms {}", verdict(b <= BEYOND_DYNAMODB_TARGET_MS)),
        None => "–".to_owned(),
    });
    row(w, "warm CPU ≤ 1.05 × one argon2id hash", &|f| match argon2_ratio(f) {
        Some(r) => format!("{r:.3}× {}", verdict(r <= ARGON2_RATIO_TARGET)),
        None => "–".to_owned(),
    });
    let per_invocation = |w: &mut String, what: &str, count: fn(&Counts) -> usize| {
        let label = format!(
            "{what} per invocation, cold / warm: {}",
            targets(&|t| format!("{} / {}", count(&t.cold), count(&t.warm)))
        );
        row(w, &label, &|f| {
            let (text, met) = cold_warm(f, count);
            format!("{text} {}", verdict(met))
        });
    };
    per_invocation(w, "DynamoDB calls", |c| c.dynamodb);
    per_invocation(w, "sequential round trips to AWS", |c| c.round_trips);
    per_invocation(w, "Secrets Manager calls", |c| c.secrets_manager);
    let label = format!(
        "calls during init, Secrets Manager + DynamoDB (round trips): {}",
        targets(&|t| format!("{} + {} ({})", t.init.secrets_manager, t.init.dynamodb, t.init.round_trips))
    );
    row(w, &label, &|f| {
        let c = f.init_calls;
        format!(
            "{} + {} ({}) {}",
            c.secrets_manager,
            c.dynamodb,
            c.round_trips,
            verdict(c == call_targets(&f.name).init)
        )
    });
    row(w, "arm64 zip ≤ 3 MB", &|f| {
        format!("{} {}", mb(zip_arm64(f)), verdict(zip_arm64(f).is_some_and(|z| z <= ZIP_TARGET_BYTES)))
    });
    row(w, "peak RSS ≤ 48 MiB (register, login), ≤ 24 MiB (others)", &|f| {
        let rss = f.peak_rss_kib as f64 / 1024.0;
        format!("{rss:.1} MiB {}", verdict(rss <= rss_target_mib(&f.name)))
    });

    let _ = writeln!(w, "\n## Per function\n");
    header(w, "");
    row(w, "init, median (min–max) of the cold starts", &|f| {
        let min = f.init_ms.iter().copied().fold(f64::INFINITY, f64::min);
        let max = f.init_ms.iter().copied().fold(0.0, f64::max);
        format!("{:.1} ms ({min:.1}–{max:.1})", init_median(f))
    });
    row(w, "init: before the first AWS call / in AWS calls / other (last cold start)", &|f| {
        let b = f.init_breakdown;
        if f.init_operations.is_empty() {
            format!("{:.1} ms, no AWS call", b.before_first_call_ms)
        } else {
            format!("{:.1} / {:.1} / {:.1} ms", b.before_first_call_ms, b.in_calls_ms, b.other_ms)
        }
    });
    row(w, "AWS calls during init", &|f| describe_counts(&f.init_calls, &f.init_calls));
    row(w, "first invocation, median of the cold starts", &|f| {
        format!("{:.2} ms", percentile(&f.first_invocation_ms, 50.0))
    });
    row(w, "warm invocations", &|f| f.warm_ms.len().to_string());
    row(w, "warm latency p50", &|f| format!("{:.2} ms", percentile(&f.warm_ms, 50.0)));
    row(w, "warm latency p95", &|f| format!("{:.2} ms", percentile(&f.warm_ms, 95.0)));
    row(w, "process CPU per warm invocation (user + sys)", &|f| format!("{:.3} ms", f.warm_cpu_ms));
    row(w, "peak RSS (VmHWM)", &|f| format!("{:.1} MiB", f.peak_rss_kib as f64 / 1024.0));
    row(w, "DynamoDB calls: cold invocation / warm", &|f| cold_warm(f, |c| c.dynamodb).0);
    row(w, "Secrets Manager calls: cold invocation / warm", &|f| cold_warm(f, |c| c.secrets_manager).0);
    row(w, "sequential round trips to AWS: cold invocation / warm", &|f| cold_warm(f, |c| c.round_trips).0);
    row(w, "warm calls, by round trip (→; ‖: in flight together)", &|f| warm_sequences(f));
    for arch in crate::driver::ARCHES {
        row(w, &format!("{arch} bootstrap / zip"), &|f| {
            let size = f.sizes.get(arch).cloned().unwrap_or_default();
            format!("{} / {}", mb(size.bootstrap_bytes), mb(size.zip_bytes))
        });
    }

    let _ = writeln!(w, "\n### References measured the same way\n");
    let _ = writeln!(w, "Right after each function's run, a child process of the benchmark driver, built with the same release profile and SDK set-up as the functions, makes the reference operation alone in a loop on a current-thread runtime and reads its own `/proc/self/stat`:\n");
    let _ = writeln!(w, "| function | reference operation | runs | CPU per operation | wall per operation |");
    let _ = writeln!(w, "|---|---|---|---|---|");
    for f in fns {
        let operation = reference_operation(&f.name);
        match &f.reference {
            Some(m) => {
                let _ =
                    writeln!(w, "| {} | {operation} | {} | {:.3} ms | {:.3} ms |", f.name, m.n, m.cpu_ms, m.wall_ms);
            }
            None => {
                let _ = writeln!(w, "| {} | none | – | – | – |", f.name);
            }
        }
    }
    render_account(w, results);
    for other in others {
        render_algorithm(w, results, other, criterion);
    }
    render_shares(w, results);
    crate::sizing::render(w, results, &lambda.curves, &lambda.prices, &lambda.plots_dir);
    crate::sizing::render_cost_model(w, &lambda.curves, &lambda.prices);
    crate::sizing::render_prices(w, &lambda.prices);
    let _ = w.write_str(LAMBDA_TEXT);
    let _ = w.write_str(SCALE_TEXT);
    render_runs(w, results, others);

    let _ = writeln!(w, "\n## Hot paths (`cargo bench -p shared`)\n");
    if criterion.is_empty() {
        let _ = writeln!(w, "Not run this time (`SKIP_CRITERION=1`).");
    } else {
        let _ = writeln!(w, "Criterion, release profile; mean with its 95 % confidence interval.\n");
        let _ = writeln!(w, "| benchmark | mean | 95 % CI |");
        let _ = writeln!(w, "|---|---|---|");
        let missing = JWT_BENCHMARKS.iter().filter(|id| !criterion.contains_key(**id)).map(|id| (*id, None));
        let mut rows: Vec<(&str, Option<&Estimate>)> =
            criterion.iter().map(|(id, m)| (id.as_str(), Some(m))).chain(missing).collect();
        rows.sort_by_key(|(id, _)| *id);
        for (id, measured) in rows {
            let _ = match measured {
                Some((mean, lo, hi)) => {
                    writeln!(w, "| `{id}` | {} | {} – {} |", duration(*mean), duration(*lo), duration(*hi))
                }
                None => writeln!(w, "| `{id}` | not measured (criterion's results predate it) | – |"),
            };
        }
        let _ = writeln!(
            w,
            "\n`jwt/sign` and `jwt/verify` issue and verify an access token with ES256 (the default), \
             `jwt/sign_rs256` and `jwt/verify_rs256` with RS256 (`SigningAlgorithm=RS256`)."
        );
    }

    let _ = writeln!(w, "\n## Method\n");
    let _ = w.write_str(METHOD);

    let _ = writeln!(w, "\n## Misses and next steps\n");
    let misses = misses(results);
    if misses.is_empty() {
        let _ = writeln!(w, "None: every target above is met on this machine.");
    }
    for miss in misses {
        let _ = writeln!(w, "- **{}**. Reason: {}. Next step: {}.", miss.what, miss.reason, miss.next);
    }
    let _ = w.write_str(CAVEATS);
    md
}

/// What the report needs besides the results to put them in Lambda's terms.
pub struct LambdaTerms<'a> {
    pub prices: crate::cost::Prices,
    pub curves: Vec<crate::sizing::CaseCurve<'a>>,
    /// Where the plots are, relative to the report.
    pub plots_dir: String,
}

/// arm64 on Graviton, how far a cgroup quota is from Lambda's, init's CPU: hand-written, sourced.
const LAMBDA_TEXT: &str = include_str!("../text/lambda.md");
/// Scale on paper.
const SCALE_TEXT: &str = include_str!("../text/scale.md");

/// Each run the results came from (a full run may be split into parts), and its time.
fn render_runs(w: &mut String, results: &Results, others: &[Results]) {
    let runs: Vec<(&str, &crate::driver::Run)> = std::iter::once(results)
        .chain(others)
        .flat_map(|r| r.runs.iter().map(move |run| (r.signing_algorithm.as_str(), run)))
        .collect();
    if runs.is_empty() {
        return;
    }
    let _ = writeln!(w, "\n## Runs\n");
    let _ = writeln!(w, "| started | signing | cases | points | took | load average | busy |");
    let _ = writeln!(w, "|---|---|---|---|---|---|---|");
    let mut total = 0.0;
    for (algorithm, run) in runs {
        total += run.seconds;
        let cases = if run.cases.len() == crate::flow::CASES.len() { "all".to_owned() } else { run.cases.join(", ") };
        let busy = if run.busy.is_empty() { "nothing".to_owned() } else { run.busy.join("; ") };
        let _ = writeln!(
            w,
            "| {} | {algorithm} | {cases} | {} | {:.1} min | {} | {busy} |",
            run.date,
            run.points.join(", "),
            run.seconds / 60.0,
            run.load,
        );
    }
    let _ =
        writeln!(w, "\nAll runs together: {:.1} min (the builds and the micro-benchmarks not included).", total / 60.0);
}

/// A criterion mean with its confidence interval, in nanoseconds.
type Estimate = (f64, f64, f64);

/// The micro-benchmarks of access tokens, for each algorithm: the report lists them even when
/// criterion's results lack one.
const JWT_BENCHMARKS: [&str; 4] = ["jwt/sign", "jwt/sign_rs256", "jwt/verify", "jwt/verify_rs256"];

/// The criterion mean of `id`, as text.
fn criterion_mean(criterion: &BTreeMap<String, (f64, f64, f64)>, id: &str) -> Option<String> {
    criterion.get(id).map(|(mean, _, _)| duration(*mean))
}

/// Each case at each of Lambda's memory sizes measured: its CPU share and memory limit.
fn render_shares(w: &mut String, results: &Results) {
    let at_share: Vec<&FunctionResult> = results.functions.iter().filter(|f| f.limits.memory_mb.is_some()).collect();
    if at_share.is_empty() {
        return;
    }
    let _ = writeln!(w, "\n## At Lambda's CPU share\n");
    let _ = writeln!(
        w,
        "Each function's process in cgroups of its own (`dev/bench/src/sandbox.rs`): a CFS quota of period × memory / \
         {} of a CPU (both CPUs visible), the memory size as a hard limit, swap included, from before `exec`. Half \
         the cold starts run init under the quota, half without it (lifted until the process asks for its first \
         event), as Lambda is reported to run init; the last, whose process serves the warm invocations, runs \
         under it. The reference operation runs at the same share. p99 only where n ≥ 1,000; \
         \"throttled\" is the time the quota held the function back, all its runs at that point together; \
         \"charged to the group\" leaves out the binary's pages another process loaded first, which peak RSS \
         (VmHWM) counts.\n",
        crate::sandbox::MB_PER_VCPU
    );
    let _ = writeln!(
        w,
        "| function | point | CPUs | init, median: under the share / unthrottled | init's CPU time, median: under the share / unthrottled | init under the share, throttled, median | first invocation, median | warm n | warm p50 / p95 / p99 | reference, wall | peak RSS / charged to the group | throttled | OOM kills | took |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for f in results.functions.iter() {
        let p99 = if f.warm_ms.len() >= 1_000 { format!("{:.2}", percentile(&f.warm_ms, 99.0)) } else { "–".into() };
        let reference = f.reference.as_ref().map_or("–".to_owned(), |r| format!("{:.2} ms", r.wall_ms));
        let rss = rss_mib(f);
        let charged = f.peak_memory_kib.map_or("–".to_owned(), |kib| format!("{:.1} MiB", kib as f64 / 1024.0));
        let cpus = f.limits.cpus().map_or("2 (no quota)".to_owned(), |cpus| format!("{cpus:.3}"));
        let median = |values: &[f64]| {
            if values.is_empty() {
                "–".to_owned()
            } else {
                format!("{:.1}", percentile(values, 50.0))
            }
        };
        let unthrottled = median(&f.init_unthrottled_ms);
        let cpu = format!("{} / {}", median(&f.init_cpu_ms), median(&f.init_unthrottled_cpu_ms));
        let init_throttled = median(&f.init_throttled_ms);
        let _ = writeln!(
            w,
            "| {} | {} | {cpus} | {:.1} / {unthrottled} ms | {cpu} ms | {init_throttled} ms | {:.2} ms | {} | {:.2} / {:.2} / {p99} ms | {reference} | {rss:.1} MiB / {charged} | {:.0} ms | {} | {:.0} s |",
            f.name,
            f.limits.label(crate::driver::DEFAULT_PERIOD_MS),
            init_median(f),
            percentile(&f.first_invocation_ms, 50.0),
            f.warm_ms.len(),
            percentile(&f.warm_ms, 50.0),
            percentile(&f.warm_ms, 95.0),
            f.throttled_ms,
            f.oom_kills,
            f.seconds,
        );
    }
}

/// login, refresh and get-user on a stack signing with `other.signing_algorithm`, against the
/// same functions in `results` (the full run, the default algorithm). No targets.
fn render_algorithm(w: &mut String, results: &Results, other: &Results, criterion: &BTreeMap<String, (f64, f64, f64)>) {
    let (base, alg) = (results.signing_algorithm.as_str(), other.signing_algorithm.as_str());
    let pairs: Vec<(&FunctionResult, &FunctionResult)> =
        in_order(other, &BY_ALGORITHM).into_iter().filter_map(|o| results.unlimited(&o.name).map(|f| (f, o))).collect();
    if pairs.is_empty() {
        return;
    }
    let names: Vec<&str> = pairs.iter().map(|(f, _)| f.name.as_str()).collect();
    let _ = writeln!(w, "\n## Access tokens signed with {alg}\n");
    let _ = writeln!(
        w,
        "`SigningAlgorithm={alg}` (the template's parameter; {base} is the default): {} measured again, the same \
         way and with the same counts, on a fresh stack set up with that override (its key ring rotated once \
         before anything was measured, so that it holds a key of that algorithm), right after the run above; login's user is \
         signed up and verified first by the functions' own binaries. No targets; {base} is the run above.\n",
        names.join(", ")
    );
    let _ = writeln!(
        w,
        "| function | algorithm | init, median (min–max) | first invocation | warm p50 / p95 | CPU per warm \
         invocation | reference, CPU per operation | CPU beyond the reference |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|");
    for (f, o) in &pairs {
        for (r, algorithm) in [(f, base), (o, alg)] {
            let min = r.init_ms.iter().copied().fold(f64::INFINITY, f64::min);
            let max = r.init_ms.iter().copied().fold(0.0, f64::max);
            let reference = r.reference.as_ref().map_or_else(|| "–".to_owned(), |m| format!("{:.3} ms", m.cpu_ms));
            let beyond = beyond_reference(r).map_or_else(|| "–".to_owned(), |b| format!("{b:.3} ms"));
            let _ = writeln!(
                w,
                "| {} | {algorithm} | {:.1} ms ({min:.1}–{max:.1}) | {:.2} ms | {:.2} / {:.2} ms | {:.3} ms | \
                 {reference} | {beyond} |",
                r.name,
                init_median(r),
                percentile(&r.first_invocation_ms, 50.0),
                percentile(&r.warm_ms, 50.0),
                percentile(&r.warm_ms, 95.0),
                r.warm_cpu_ms,
            );
        }
    }
    let _ = writeln!(w);
    for (f, o) in &pairs {
        let beyond = match (beyond_reference(f), beyond_reference(o)) {
            (Some(b), Some(a)) => format!("{:+.3} ms of CPU per warm invocation beyond the reference", a - b),
            _ => format!("{:+.3} ms of CPU per warm invocation", o.warm_cpu_ms - f.warm_cpu_ms),
        };
        let _ = writeln!(
            w,
            "- {}: {alg} against {base}: {beyond}; init {:+.1} ms (medians); first invocation {:+.2} ms, warm p50 \
             {:+.2} ms (medians).",
            f.name,
            init_median(o) - init_median(f),
            percentile(&o.first_invocation_ms, 50.0) - percentile(&f.first_invocation_ms, 50.0),
            percentile(&o.warm_ms, 50.0) - percentile(&f.warm_ms, 50.0),
        );
    }
    let suffix = format!("_{}", alg.to_ascii_lowercase());
    let micro = |what: &str| {
        let (b, a) = (
            criterion_mean(criterion, &format!("jwt/{what}")),
            criterion_mean(criterion, &format!("jwt/{what}{suffix}")),
        );
        b.zip(a).map(|(b, a)| format!("{a} with {alg} against {b} with {base}"))
    };
    if let (Some(sign), Some(verify)) = (micro("sign"), micro("verify")) {
        let _ = writeln!(
            w,
            "- Hot paths (below): issuing an access token takes {sign} (login and refresh issue one per \
             invocation), verifying one {verify} (get-user verifies one)."
        );
    }
    let mut splits = Vec::new();
    let mut deviations = 0;
    for (_, o) in &pairs {
        match design(o) {
            Design::Met => {}
            Design::Split(k) => {
                let cold = o.cold_calls.max.round_trips > call_targets(&o.name).cold.round_trips;
                let cold = if cold { ", and a cold one" } else { "" };
                splits.push(format!("{} ({k} of {} warm invocations{cold})", o.name, o.warm_ms.len()));
            }
            Design::Deviates => {
                deviations += 1;
                let _ = writeln!(
                    w,
                    "- **{} with {alg}: AWS calls differ from the design**: init {}; cold invocation {}; warm {} \
                     ({}).",
                    o.name,
                    describe_counts(&o.init_calls, &o.init_calls),
                    describe_counts(&o.cold_calls.min, &o.cold_calls.max),
                    describe_counts(&o.warm_calls.min, &o.warm_calls.max),
                    warm_sequences(o),
                );
            }
        }
    }
    if deviations == 0 {
        let split = if splits.is_empty() {
            String::new()
        } else {
            format!(
                "; in some invocations two calls made concurrently reached the proxy one after the other, one \
                 more round trip (a busy machine, see Account functions): {}",
                splits.join(", ")
            )
        };
        let _ = writeln!(w, "- AWS calls during init and per invocation: as designed, as with {base}{split}.");
    }
}

/// What each warm invocation of an account function does, on what state prepared before the
/// clock started.
fn warm_work(function: &str) -> &'static str {
    match function {
        "logout" => {
            "`POST /logout` with the refresh token of a login of its own (one account, logged in once per \
             invocation before the clock): its family is revoked (204)."
        }
        "logout-all" => {
            "`POST /logout/all` with one account's access token every time: the session epoch moves on the \
             `USER#` and `EMAIL#` items (204). That is the whole work however many sessions there are, so \
             repeating it on one account is the same work each time."
        }
        "email-verify" => {
            "`POST /email/verify` with the token of a sign-up link not used yet: register's sign-ups and more \
             signed up by the register binary, their mail sent by the mailer (sign-up) run, the token read \
             from the link SES accepted. The address is verified (200); the first is login's user."
        }
        "email-verify-resend" => {
            "`POST /email/verify/resend` for an address never asked for before (one per invocation; none has \
             an account, and the request does the same work either way): one mail request written (202)."
        }
        "password-forgot" => {
            "`POST /password/forgot` for an address never asked for before (as for resend): one mail request \
             written (202)."
        }
        "password-reset" => {
            "`POST /password/reset` with the token of a reset link not used yet and a new password: an account \
             of its own per invocation, signed up, `POST /password/forgot` asked, the mail sent by the mailer \
             (reset) run. One argon2id hash; the password set, the sessions ended, a notice written (204)."
        }
        "password-change" => {
            "`POST /password/change` by an account of its own per invocation (signed up, verified through its \
             link and logged in before the clock): the current password verified and the new one hashed (two \
             argon2id computations), the sessions ended and a new one begun, a notice written (200)."
        }
        "email-change" => {
            "`POST /email/change` by an account of its own per invocation (prepared as for password-change), to \
             an address never registered: the password verified (one argon2id computation), the new address \
             checked, the link's token and both mails written (202)."
        }
        "delete-user" => {
            "`DELETE /users/me` by an account of its own per invocation (prepared as for password-change; it \
             owns its sign-up mail and one session): the password verified (one argon2id computation), the \
             account deleted, then what it owns (204)."
        }
        "mailer (sign-up)" => {
            "a stream event of one inserted `OUTBOX#` record (keys only, as the event source mapping sends it, \
             one record per batch) of a sign-up's verification mail (register's sign-ups and more): the mail \
             read, its attempt counted, its link's token derived, sent through SES, marked sent."
        }
        "mailer (reset)" => {
            "as for sign-up, one `POST /password/forgot` mail to an account each (the accounts password-reset \
             then uses): the account's credentials and generations read and the link's token stored before \
             the mail is sent."
        }
        "jwks" => {
            "`GET /.well-known/jwks.json` (`events/jwks.json` as is, no API key) once the key ring's first \
             rotation published a key: the public keys as read from the JWKS secret during init and cached \
             `KEY_CACHE_TTL_SECONDS` (300 s, longer than the warm invocations take), with their cache headers \
             (200)."
        }
        _ => "",
    }
}

/// The reference operation of a function, as the report names it.
fn reference_operation(function: &str) -> &'static str {
    match function {
        "get-user" => "its DynamoDB call alone (`Store::user`: `GetItem`, consistent)",
        "refresh" => {
            "its DynamoDB call alone (`Store::rotate_session`: `TransactWriteItems`, the family's conditional update \
             and the user's check)"
        }
        "register" | "login" | "password-reset" | "email-change" | "delete-user" => {
            "one argon2id hash (`password::hash`, m=19456 KiB, t=2, p=1)"
        }
        "password-change" => "one argon2id hash (`password::hash`); the invocation computes two",
        "logout" => {
            "its DynamoDB call alone (`Store::end_session`: conditional `UpdateItem`), a session of its own each"
        }
        "logout-all" => "its DynamoDB calls alone (`Store::revoke_all_sessions`: `GetItem`, `TransactWriteItems`)",
        "email-verify" => {
            "its DynamoDB calls alone (`Store::mail_token`, `Store::verify_email`, `Store::user`), an unused \
             sign-up token each"
        }
        "email-verify-resend" | "password-forgot" => {
            "its DynamoDB call alone (`Store::request_mail`: `TransactWriteItems`), a new address each"
        }
        "mailer (sign-up)" => {
            "its DynamoDB calls alone (`Store::mail`, `Store::start_sending`, `Store::finish_mail`), a pending \
             mail each; not its SES call"
        }
        "mailer (reset)" => {
            "its DynamoDB calls alone (`Store::mail`, `start_sending`, `credentials`, `generations`, \
             `store_mail_token`, `finish_mail`), a pending mail each; not its SES call"
        }
        _ => "none",
    }
}

fn range_of(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values.into_iter().filter(|v| v.is_finite()).fold(None, |range, v| match range {
        None => Some((v, v)),
        Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
    })
}

fn span(range: Option<(f64, f64)>, unit: &str, decimals: usize) -> String {
    match range {
        Some((lo, hi)) if (hi - lo).abs() < f64::EPSILON => format!("{lo:.decimals$} {unit}"),
        Some((lo, hi)) => format!("{lo:.decimals$}–{hi:.decimals$} {unit}"),
        None => "–".to_owned(),
    }
}

fn rss_mib(f: &FunctionResult) -> f64 {
    f.peak_rss_kib as f64 / 1024.0
}

/// The account functions and jwks: what each warm invocation does, their figures, their calls
/// against the design, and how they compare with the five functions the issue set targets for.
fn render_account(w: &mut String, results: &Results) {
    let fns = in_order(results, &ACCOUNT);
    if fns.is_empty() {
        return;
    }
    let old = in_order(results, &WITH_TARGETS);
    let _ = writeln!(w, "\n## Account functions and the public keys\n");
    let _ = writeln!(
        w,
        "Measured as the five functions above, one after the other in the same run (the mailer twice: sign-up \
         mail, reset mail; jwks, the public keys' function, right after health). The issue asks for the account \
         functions' figures, not targets of their own (jwks has none either); the comparison below is with the \
         five above. Each warm invocation does real work of the same kind, on state prepared before the \
         function's process started, through the functions' own binaries (see Method):\n"
    );
    for f in &fns {
        let _ = writeln!(w, "- **{}** ({} warm): {}", f.name, f.warm_ms.len(), warm_work(&f.name));
    }

    let _ = writeln!(w, "\n### Figures\n");
    let _ = writeln!(
        w,
        "| function | init, median (min–max) | AWS calls during init | first invocation | warm p50 / p95 | CPU per \
         warm invocation | reference, CPU per operation | CPU beyond the reference | peak RSS |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|");
    for f in &fns {
        let min = f.init_ms.iter().copied().fold(f64::INFINITY, f64::min);
        let max = f.init_ms.iter().copied().fold(0.0, f64::max);
        let init_calls = if f.init_operations.is_empty() {
            "none".to_owned()
        } else {
            let c = f.init_calls;
            format!("Secrets Manager {}, DynamoDB {} ({} round trip)", c.secrets_manager, c.dynamodb, c.round_trips)
        };
        let reference = match (&f.reference, argon2_computations(&f.name)) {
            (Some(r), Some(_)) => format!("{:.3} ms (argon2id hash)", r.cpu_ms),
            (Some(r), None) if f.binary == "mailer" => format!("{:.3} ms (its DynamoDB calls, not SES)", r.cpu_ms),
            (Some(r), None) => format!("{:.3} ms (its DynamoDB calls)", r.cpu_ms),
            (None, _) => "–".to_owned(),
        };
        let beyond = match (beyond_reference(f), argon2_computations(&f.name), argon2_ratio_any(f)) {
            (Some(b), Some(k), Some(ratio)) => {
                format!("{b:.3} ms ({ratio:.3}× one hash; {k:.0} computed)")
            }
            (Some(b), _, _) => format!("{b:.3} ms"),
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            w,
            "| {} | {:.1} ms ({min:.1}–{max:.1}) | {init_calls} | {:.2} ms | {:.2} / {:.2} ms | {:.3} ms | {reference} \
             | {beyond} | {:.1} MiB |",
            f.name,
            init_median(f),
            percentile(&f.first_invocation_ms, 50.0),
            percentile(&f.warm_ms, 50.0),
            percentile(&f.warm_ms, 95.0),
            f.warm_cpu_ms,
            rss_mib(f)
        );
    }

    let _ = writeln!(w, "\n### AWS calls per invocation against the design\n");
    let _ = writeln!(
        w,
        "Designed: the calls the handler and `shared::store` make on this path, by round trip (→), calls in flight \
         together joined by ‖. Measured: every warm invocation's calls, as the proxies saw them (with how many \
         invocations made each sequence when they differ). Counts are cold invocation / warm (min–max).\n"
    );
    let _ = writeln!(
        w,
        "| function | designed | measured, warm | DynamoDB | SES | Secrets Manager: init / cold / warm | round \
         trips | as designed |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|");
    for f in &fns {
        let secrets = format!("{} / {}", f.init_calls.secrets_manager, cold_warm(f, |c| c.secrets_manager).0);
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {secrets} | {} | {} |",
            f.name,
            designed_sequence(&f.name),
            warm_sequences(f),
            cold_warm(f, |c| c.dynamodb).0,
            cold_warm(f, |c| c.ses).0,
            cold_warm(f, |c| c.round_trips).0,
            match design(f) {
                Design::Met => "yes".to_owned(),
                Design::Split(n) => format!("yes, {n} of {} split (see below)", f.warm_ms.len()),
                Design::Deviates => "**no**".to_owned(),
            }
        );
    }

    let _ = writeln!(w, "\n### Sizes\n");
    let _ = writeln!(w, "| function | arm64 bootstrap / zip | x86_64 bootstrap / zip |");
    let _ = writeln!(w, "|---|---|---|");
    let mut binaries: Vec<&str> = Vec::new();
    for f in &fns {
        if binaries.contains(&f.binary.as_str()) {
            continue;
        }
        binaries.push(&f.binary);
        let size = |arch: &str| {
            let size = f.sizes.get(arch).cloned().unwrap_or_default();
            format!("{} / {}", mb(size.bootstrap_bytes), mb(size.zip_bytes))
        };
        let _ = writeln!(w, "| {} | {} | {} |", f.binary, size("arm64"), size("x86_64"));
    }

    let _ = writeln!(w, "\n### Compared with the five functions above\n");
    let inits = |set: &[&FunctionResult]| range_of(set.iter().map(|f| init_median(f)));
    let over: Vec<String> = fns
        .iter()
        .filter(|f| init_median(f) > INIT_TARGET_MS)
        .map(|f| format!("{} {:.1} ms", f.name, init_median(f)))
        .collect();
    let _ = writeln!(
        w,
        "- Init (median of the cold starts): {} against {} for the five above (their target: ≤ {INIT_TARGET_MS} \
         ms); {}. Those that make no AWS call during init: {}.",
        span(inits(&fns), "ms", 1),
        span(inits(&old), "ms", 1),
        if over.is_empty() { "none above 15 ms".to_owned() } else { format!("above 15 ms: {}", over.join(", ")) },
        {
            let none: Vec<&str> =
                fns.iter().filter(|f| f.init_operations.is_empty()).map(|f| f.name.as_str()).collect();
            if none.is_empty() {
                "none".to_owned()
            } else {
                none.join(", ")
            }
        }
    );
    fn hashing<'a>(set: &[&'a FunctionResult], yes: bool) -> Vec<&'a FunctionResult> {
        set.iter().copied().filter(|f| argon2_computations(&f.name).is_some() == yes).collect()
    }
    let rss = |set: Vec<&FunctionResult>| range_of(set.iter().map(|f| rss_mib(f)));
    let _ = writeln!(
        w,
        "- Peak RSS: {} for the password routes (argon2id's 19 MiB of working memory) against {} for register and \
         login (target ≤ 48 MiB); {} for the others against {} for refresh, get-user and health (target ≤ 24 MiB).",
        span(rss(hashing(&fns, true)), "MiB", 1),
        span(rss(hashing(&old, true)), "MiB", 1),
        span(rss(hashing(&fns, false)), "MiB", 1),
        span(rss(hashing(&old, false)), "MiB", 1),
    );
    let beyond = |set: Vec<&FunctionResult>| range_of(set.iter().filter_map(|f| beyond_reference(f)));
    let (mailer, http): (Vec<&FunctionResult>, Vec<&FunctionResult>) =
        hashing(&fns, false).into_iter().partition(|f| f.binary == "mailer");
    let _ = writeln!(
        w,
        "- CPU per warm invocation beyond the reference: {} for the routes without a password against {} for \
         refresh and get-user (target ≤ {BEYOND_DYNAMODB_TARGET_MS} ms); {} for the mailer, its SES call and the \
         message included; {} beyond their argon2id work for the password routes against {} for register and \
         login.",
        span(beyond(http), "ms", 3),
        span(range_of(old.iter().filter_map(|f| beyond_dynamodb(f))), "ms", 3),
        span(beyond(mailer), "ms", 3),
        span(beyond(hashing(&fns, true)), "ms", 3),
        span(range_of(old.iter().filter(|f| argon2_ratio(f).is_some()).filter_map(|f| beyond_reference(f))), "ms", 3),
    );
    let zips = |set: &[&FunctionResult]| range_of(set.iter().filter_map(|f| zip_arm64(f)).map(|z| z as f64 / 1e6));
    let _ = writeln!(
        w,
        "- arm64 zip: {} against {} for the five above (target ≤ 3 MB).",
        span(zips(&fns), "MB", 2),
        span(zips(&old), "MB", 2)
    );

    let _ = writeln!(w, "\n### Deviations from the design\n");
    let mut deviations = 0;
    let mut splits = Vec::new();
    for f in &fns {
        let t = call_targets(&f.name);
        if f.warm_calls.max.secrets_manager > 0 {
            deviations += 1;
            let _ = writeln!(
                w,
                "- **{}: {} Secrets Manager call(s) in a warm invocation** (designed: none; the keys are read during \
                 init and cached).",
                f.name, f.warm_calls.max.secrets_manager
            );
        }
        match design(f) {
            Design::Met => {}
            Design::Split(n) => splits.push(format!(
                "{} ({n} of {} warm invocations{})",
                f.name,
                f.warm_ms.len(),
                if f.cold_calls.max.round_trips > t.cold.round_trips { ", and a cold one" } else { "" }
            )),
            Design::Deviates => {
                deviations += 1;
                let _ = writeln!(
                    w,
                    "- **{}**: init {}; cold invocation {}; warm {} ({}). Designed: init {}; each invocation {} \
                     ({}). Next step: read the function's log in `.local/bench/` for retries, and the handler \
                     and the store code for an extra or a serialised call.",
                    f.name,
                    describe_counts(&f.init_calls, &f.init_calls),
                    describe_counts(&f.cold_calls.min, &f.cold_calls.max),
                    describe_counts(&f.warm_calls.min, &f.warm_calls.max),
                    warm_sequences(f),
                    describe_counts(&t.init, &t.init),
                    describe_counts(&t.warm, &t.warm),
                    designed_sequence(&f.name)
                );
            }
        }
    }
    if deviations == 0 {
        let _ = writeln!(
            w,
            "None: every function of this section made the designed calls on every cold and warm invocation, \
             and no Secrets Manager call when warm."
        );
    }
    if !splits.is_empty() {
        let _ = writeln!(
            w,
            "\nNot a deviation in the calls, but counted as one more round trip: in some invocations two calls the \
             code makes concurrently (`tokio::join!`: the attempt's reservation and the credentials' read) reached \
             the proxy one after the other, the second only after the first was answered: {}. The code sends \
             them together; that happens when the process is descheduled between the two sends long enough for \
             the first answer to come back, as on a busy 2-core machine (see its load above).",
            splits.join("; ")
        );
    }
    let _ = w.write_str(ACCOUNT_NOTES);
}

/// What the measurements show about the design that is not a deviation from it.
const ACCOUNT_NOTES: &str = "
### Notes

- email-change reads the `USER#` item twice: the profile (`current_user`, for the current address) before the \
password check, and the mail-token generations (`Store::generations`) after it, in the same round trip as the \
new address's check.
- password-change computes argon2id twice (the current password's verification, the new one's hash), so its CPU \
is about twice login's; the column above compares it with two hashes.
- The mailer's reset mail takes seven sequential round trips (the credentials, then the generations, which need \
the user id the credentials hold, then the token's `PutItem` before the mail goes out); it runs off the request's \
path, on the stream.
";

const METHOD: &str = "\
- `dev/scripts/bench.sh` builds every function with `cargo build --release` (x86_64, run here) and \
`cargo lambda build --release --arm64` (sizes only), runs `cargo bench -p shared`, starts DynamoDB Local and moto, \
creates a fresh table, secrets and SES sender identity with `localdev setup`, and runs `target/release/bench run`; then, for RS256, the same on another fresh stack set up with `SigningAlgorithm=RS256`, for login, refresh and get-user only (see Access tokens signed with RS256); `target/release/bench report` writes this file.
- Before anything is measured, the stack's key ring is rotated once, as Secrets Manager does when the stack is created (`RotateImmediatelyOnUpdate`): the rotation function's own release binary, under the same runtime API and proxies (its calls checked against its policy), gets the `createSecret`, `setSecret`, `testSecret` and `finishSecret` events in order under one `ClientRequestToken`. The ring then holds one key, which signs at once (a ring's only key), and the JWKS publishes it. Not measured.
- Each function's release bootstrap runs as its own process under a minimal Lambda Runtime API served by the \
driver (`GET /runtime/invocation/next`, `POST .../response`, `.../error`, `/runtime/init/error`, and the \
Extensions API's `POST /extension/register` for the graceful-shutdown handler), with the variables Lambda sets \
(`AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` from the template, …) and \
the function's environment resolved from `template.yaml` with its default parameters (so login refuses an \
unverified email: `RequireVerifiedEmail` is `true`; `SigningAlgorithm` is ES256 except in Access tokens signed with RS256). One function runs at a time; a process is stopped as \
Lambda stops it, with SIGTERM (SIGKILL if it is still there 500 ms later).
- `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SECRETS_MANAGER` and `AWS_ENDPOINT_URL_SESV2` point at three \
counting proxies in the driver, which forward to the emulators (through the local IAM check of the function's \
policy, which forwards SES to moto and keeps what SES accepted) and log each call's operation, arrival and \
answer. Calls are counted between runtime-API events: init (spawn → first `GET /next`), the first invocation, \
each warm invocation. Calls in flight together take one round trip: sorted by arrival, a call that reaches the \
proxy before the latest answer of the current group joins it, else it starts the next sequential round trip. \
Cold counts are min–max over the cold starts, warm counts over the warm invocations. A call the IAM check \
denies fails the run.
- Init time is the binary's exec → first `GET /next` (see \"When init starts\"), over several cold starts (a new process each). Invocation \
latency is event handed out by `GET /next` → `POST .../response` received, as Lambda's `Duration`; it includes \
one extra local hop per AWS call (the proxy) and the emulators' own time.
- Events are the fixtures in `events/`, with real values. Run order: register (a fresh email per invocation), \
the mailer (sign-up mail), email-verify, login (the first registered user, verified by then through its link), \
refresh (the refresh token of the previous login or refresh: each token is spent), get-user \
(`get-user.me.json`, the access token of the last login), health (`health.json` as is), then the account \
functions, each on state of its own (see Account functions).
- State for an invocation is prepared before the function's process starts, by the functions' own release \
binaries run as helpers under the same runtime API and proxies (not measured; stopped before the function \
starts): accounts are signed up by register, their mail is sent by the mailer, fed the table's stream as the \
event source mapping feeds it (`localdev::stream::StreamFeed`: inserted `OUTBOX#` records, keys only), and a \
link's token is read from the message SES accepted (the IAM check's outbox); accounts are verified by \
email-verify with that token and logged in by login. Mail tokens are never computed by the benchmark. The \
mailer's measured events are single-record batches of the mail the step before caused, found by reading each \
record's `OUTBOX#` item directly from DynamoDB Local.
- CPU per warm invocation is the delta of `utime + stime` in `/proc/<pid>/stat` (every thread) across the warm \
invocations, read while the process waits in `GET /next`, divided by their number (10 ms resolution over the \
whole run). Peak RSS is `VmHWM` from `/proc/<pid>/status` after the warm invocations.
- \"CPU beyond the DynamoDB call\" (or the reference) is the function's CPU per warm invocation minus its reference: \
the same `shared::store` calls made alone in a loop, through the same proxy with the function's permissions, in a \
process built the same way, on state of the same kind prepared the same way (a session, a token, a pending mail, \
an address of its own per call where the function's work uses it up); what the handler computes besides the \
calls (HMACs, token hashes) is computed before the clock. The mailer's reference leaves out its SES call (the \
SDK's SES types are not a dependency of the benchmark), so its figure beyond the reference includes that call \
and the message. For the functions that hash or verify a password the reference is one argon2id hash, measured \
the same way (password-change computes two: its figure is beyond two hashes).
- Zip sizes are the bootstrap alone in a deflate zip, as deployed.
";

const CAVEATS: &str = "
### Changes made from these measurements

- argon2id working memory is allocated once per process and reused (`shared::password`). Allocating 19 MiB \
per hash left glibc's heap fragmented so that resident memory grew by 19 MiB with every login or sign-up \
(222 MiB after 11 sign-ups: a 128 MB function would have been killed after about five), and each fresh \
allocation cost about 4,900 page faults: 40 hashes in a loop took 0.11–0.13 s of system CPU with a fresh \
allocation each (about 3 ms per hash) and none with the memory reused.
- `AWS_LC_SYS_NO_JITTER_ENTROPY=1` for every build (`.cargo/config.toml`): aws-lc seeds from the kernel \
only, instead of spending tens of milliseconds on CPU-jitter entropy at the first TLS handshake, which on \
Lambda is made during init (every function). On this machine the first aws-lc random-number \
call took 30–33 ms with jitter entropy and 26 µs without (a one-line program calling `aws_lc_rs::rand::fill`). \
Not visible in the figures above: the emulators speak plain HTTP, so the functions make no TLS handshake here.

### What init does

Init loads configuration, the SDK config (environment credentials and region: no network) and the clients it calls (SES only in the mailer, Secrets Manager only where a key is read), then \
reads the keys the function's requests need and opens the DynamoDB connection, concurrently (one round trip): \
login, refresh and password-change \
the key ring (the private signing keys) and the throttle key, delete-user the public JWKS and the throttle key, \
email-change those and the mail key, get-user and logout-all the public JWKS, jwks the public JWKS it serves, \
password-reset the throttle key, register, email-verify-resend, password-forgot and the mailer the mail key; \
health checks the table and the public JWKS (its first report, cached 30 s, so that a new instance's first \
request does not wait for it); logout and email-verify read no key. Every function that uses the table, but the \
mailer, opens its DynamoDB connections with eventually consistent GetItems of the `WARM-UP#` key, which nothing \
writes and each policy allows alone (`Store::connect`, no retries): one, or two in flight together for login, \
password-change, email-change and delete-user, whose requests make two calls at once (the HTTP/1.1 pool holds one \
call per connection). On Lambda the TCP and TLS handshakes (a key exchange and the certificate chain's signature \
checks, at a fourteenth of a core at 128 MB) then fall in init, which is reported to run without the share, and \
not in the first request. Each read costs 0.5 read request unit per cold start (5,000 per million invocations at \
the 1 % cold-start rate, in the costs above); a control-plane call (`DescribeTable`) would cost nothing but is throttled \
per account (2,500 requests per second) and AWS advises against it in request paths. While those calls are out, \
every function registers the graceful-shutdown handler, an internal extension (one request to the runtime API); \
then it starts the runtime loop, which falls in \"other\" in the init breakdown above (after the last AWS call of \
init). The six functions \
that hash or verify a password also allocate and write argon2id's 19 MiB of working memory during init, on a \
blocking thread while the keys are read (`shared::password::reserve_memory`), so that the first password request \
does not pay for its 4,900 page faults at the function's share. Nothing else is \
done eagerly.

### What this machine cannot show

- The SDK's TLS set-up builds its trust store when it makes the first connection (during init for every \
function). The functions trust the five Amazon Trust Services roots built \
into them; with `CaBundlePath` set, they read that bundle instead (`SSL_CERT_FILE`; the local stack gives this \
host's bundle where the path does not exist here). Parsing this host's 144-certificate bundle cost get-user 1.2 ms \
of init's CPU (see \"Init's CPU\").
- The emulators speak plain HTTP on the loopback interface: there is no TLS handshake, no network latency and no \
IAM credential lookup. On Lambda the calls of init pay a TLS handshake per connection (Secrets Manager, \
DynamoDB); the first invocation's calls use those connections, unless it makes more calls at once than init \
opened or comes later than the pool's idle timeout (90 s: provisioned concurrency, or any environment Lambda \
initialises ahead of its first request). The mailer opens its DynamoDB and SES connections in its first batch: \
no user waits for a mail.
- The local stack points each SDK client at an emulator (`AWS_ENDPOINT_URL_*`), and with an endpoint given \
the SDK's endpoint rules never load the partition table (regions and their patterns, parsed from JSON embedded \
in each service's crate). On Lambda the first call to each service does: 0.10 to 0.16 ms per service on this \
machine (a `DefaultResolver`'s first resolution, dynamodb and secretsmanager crates, release build), so about \
0.25 ms more of init for a function that calls both.
- Lambda gives a 128 MB function a fraction of a core (a full vCPU only at 1,769 MB) and arm64 cores differ from \
this one: absolute times scale, ratios between the rows should hold.
";

#[cfg(test)]
mod tests {
    use super::*;

    fn no_lambda_terms() -> LambdaTerms<'static> {
        LambdaTerms { prices: crate::cost::repository_prices(), curves: Vec::new(), plots_dir: "plots".into() }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 100.0);
        assert_eq!(percentile(&values, 95.0), 190.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), 2.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn given_health_without_a_reference_when_rendering_then_it_says_none_and_meets_its_call_targets() {
        let once = |dynamodb, secrets_manager, round_trips| {
            let calls = Counts { dynamodb, secrets_manager, ses: 0, round_trips };
            CallRange { min: calls, max: calls }
        };
        // Init checks the table and the secret; every invocation uses the cached result.
        let health = FunctionResult {
            name: "health".into(),
            init_calls: Counts { dynamodb: 1, secrets_manager: 1, ses: 0, round_trips: 1 },
            cold_calls: once(0, 0, 0),
            ..FunctionResult::default()
        };
        let results = Results { functions: vec![health], ..Results::default() };
        let md = render(&results, &[], &Machine::default(), &BTreeMap::new(), &no_lambda_terms());
        assert!(md.contains("| health | none | – | – | – |"), "{md}");
        assert!(md.contains("| DynamoDB calls per invocation, cold / warm: 0 / 0 | 0 / 0 met |"), "{md}");
        assert!(!md.contains("differ from the target"), "{md}");
        assert!(!md.contains("## Account functions"), "{md}");
    }

    fn account(name: &str, init: Counts, each: Counts, sequence: &str) -> FunctionResult {
        FunctionResult {
            name: name.into(),
            binary: name.split(' ').next().unwrap_or(name).into(),
            init_ms: vec![8.0],
            init_calls: init,
            init_operations: vec!["GetSecretValue".into(); init.secrets_manager],
            cold_calls: CallRange { min: each, max: each },
            warm_calls: CallRange { min: each, max: each },
            warm_sequences: BTreeMap::from([(sequence.to_owned(), 200)]),
            ..FunctionResult::default()
        }
    }

    #[test]
    fn given_account_functions_as_designed_when_rendering_then_no_deviation_is_reported() {
        let logout_all = account("logout-all", n(1, 1, 0, 1), n(2, 0, 0, 2), "GetItem → TransactWriteItems");
        let mailer =
            account("mailer (sign-up)", n(0, 1, 0, 1), n(3, 0, 1, 4), "GetItem → UpdateItem → SendEmail → UpdateItem");
        let results = Results { functions: vec![mailer, logout_all], ..Results::default() };
        let md = render(&results, &[], &Machine::default(), &BTreeMap::new(), &no_lambda_terms());
        assert!(md.contains("## Account functions"), "{md}");
        // In the report's order, whatever the run's.
        assert!(md.find("- **logout-all**") < md.find("- **mailer (sign-up)**"), "{md}");
        assert!(md.contains("| 2 / 2 | 0 / 0 | 1 / 0 / 0 | 2 / 2 | yes |"), "{md}");
        assert!(md.contains("| 3 / 3 | 1 / 1 | 1 / 0 / 0 | 4 / 4 | yes |"), "{md}");
        assert!(md.contains("None: every function of this section made the designed calls"), "{md}");
    }

    #[test]
    fn given_sequences_when_comparing_with_the_design_then_only_concurrent_calls_made_in_turn_are_a_split() {
        let designed = "GetItem → GetItem ‖ UpdateItem → TransactWriteItems";
        assert!(split_of(designed, designed));
        assert!(split_of(designed, "GetItem → UpdateItem → GetItem → TransactWriteItems"));
        assert!(split_of(designed, "GetItem → GetItem → UpdateItem → TransactWriteItems"));
        assert!(!split_of(designed, "GetItem → UpdateItem → TransactWriteItems"));
        assert!(!split_of(designed, "GetItem → GetItem ‖ UpdateItem → TransactWriteItems → GetItem"));
        assert!(!split_of(designed, "GetItem ‖ UpdateItem → GetItem → TransactWriteItems"));
        assert!(split_of("none", "none"));

        let mut change = account(
            "password-change",
            n(2, 2, 0, 1),
            n(4, 0, 0, 3),
            "GetItem → GetItem ‖ UpdateItem → TransactWriteItems",
        );
        assert_eq!(design(&change), Design::Met);
        change.warm_sequences.insert("GetItem → UpdateItem → GetItem → TransactWriteItems".into(), 3);
        change.warm_calls.max.round_trips = 4;
        assert_eq!(design(&change), Design::Split(3));
        change.warm_calls.max.dynamodb = 5;
        assert_eq!(design(&change), Design::Deviates);
    }

    #[test]
    fn given_jwks_as_designed_when_rendering_then_it_is_listed_with_no_call_per_invocation() {
        let jwks = account("jwks", n(0, 1, 0, 1), NONE, "none");
        let results = Results { functions: vec![jwks], ..Results::default() };
        let md = render(&results, &[], &Machine::default(), &BTreeMap::new(), &no_lambda_terms());
        assert!(md.contains("## Account functions and the public keys"), "{md}");
        assert!(md.contains("- **jwks** (0 warm): `GET /.well-known/jwks.json`"), "{md}");
        assert!(md.contains("| jwks | none | none | 0 / 0 | 0 / 0 | 1 / 0 / 0 | 0 / 0 | yes |"), "{md}");
    }

    #[test]
    fn given_an_rs256_run_when_rendering_then_its_section_compares_each_function_with_es256() {
        let timed = |name: &str, init: f64, cpu: f64, reference: f64| FunctionResult {
            name: name.into(),
            init_ms: vec![init],
            first_invocation_ms: vec![2.0],
            warm_ms: vec![1.0, 3.0],
            warm_cpu_ms: cpu,
            reference: Some(crate::baseline::Measurement { n: 10, cpu_ms: reference, wall_ms: 1.0 }),
            init_calls: call_targets(name).init,
            cold_calls: CallRange { min: call_targets(name).cold, max: call_targets(name).cold },
            warm_calls: CallRange { min: call_targets(name).warm, max: call_targets(name).warm },
            ..FunctionResult::default()
        };
        let es256 = Results {
            signing_algorithm: "ES256".into(),
            functions: vec![timed("login", 12.0, 21.0, 20.0), timed("get-user", 9.0, 0.4, 0.2)],
            ..Results::default()
        };
        // One warm login whose concurrent calls reached the proxy in turn: not a deviation.
        let mut login = timed("login", 14.0, 22.5, 20.0);
        login.warm_calls.max.round_trips = 3;
        login.warm_sequences = BTreeMap::from([
            ("GetItem ‖ UpdateItem → TransactWriteItems".to_owned(), 1),
            ("UpdateItem → GetItem → TransactWriteItems".to_owned(), 1),
        ]);
        let rs256 = Results {
            signing_algorithm: "RS256".into(),
            functions: vec![timed("get-user", 10.5, 0.45, 0.2), login],
            ..Results::default()
        };
        let criterion = BTreeMap::from([
            ("jwt/sign".to_owned(), (2000.0, 1900.0, 2100.0)),
            ("jwt/sign_rs256".to_owned(), (900_000.0, 890_000.0, 910_000.0)),
            ("jwt/verify".to_owned(), (3000.0, 2900.0, 3100.0)),
        ]);
        let md = render(&es256, &[rs256], &Machine::default(), &criterion, &no_lambda_terms());
        assert!(md.contains("## Access tokens signed with RS256"), "{md}");
        assert!(md.contains("| login | ES256 | 12.0 ms (12.0–12.0) | 2.00 ms | 1.00 / 3.00 ms | 21.000 ms |"), "{md}");
        assert!(md.contains("| login | RS256 | 14.0 ms (14.0–14.0) |"), "{md}");
        assert!(md.find("| login | RS256") < md.find("| get-user | ES256"), "{md}");
        assert!(
            md.contains(
                "- login: RS256 against ES256: +1.500 ms of CPU per warm invocation beyond the reference; init +2.0 ms"
            ),
            "{md}"
        );
        assert!(md.contains("- get-user: RS256 against ES256: +0.050 ms"), "{md}");
        assert!(md.contains("as designed, as with ES256; in some invocations"), "{md}");
        assert!(md.contains(": login (1 of 2 warm invocations)."), "{md}");
        assert!(!md.contains("differ from the design"), "{md}");
        // The four token micro-benchmarks are listed, measured or not.
        assert!(md.contains("| `jwt/sign_rs256` | 900.00 µs |"), "{md}");
        assert!(md.contains("| `jwt/verify_rs256` | not measured"), "{md}");
        assert!(!md.contains("Hot paths (below)"), "{md}");
        assert!(md.find("`jwt/sign_rs256` |") < md.find("`jwt/verify` |"), "{md}");
    }

    #[test]
    fn given_a_key_read_when_warm_and_an_extra_call_when_rendering_then_both_are_deviations() {
        let mut logout = account("logout", NONE, n(1, 0, 0, 1), "UpdateItem");
        logout.warm_calls.max = n(2, 1, 0, 2);
        logout.warm_sequences.insert("GetSecretValue → UpdateItem".into(), 1);
        let results = Results { functions: vec![logout], ..Results::default() };
        let md = render(&results, &[], &Machine::default(), &BTreeMap::new(), &no_lambda_terms());
        assert!(md.contains("**logout: 1 Secrets Manager call(s) in a warm invocation**"), "{md}");
        assert!(md.contains("UpdateItem (200×); GetSecretValue → UpdateItem (1×)"), "{md}");
        assert!(md.contains("| **no** |"), "{md}");
    }
}
