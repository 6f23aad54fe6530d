//! `docs/performance.md`: the machine, the results against the targets of the performance
//! issue, the hot-path micro-benchmarks, and what misses a target with its reason and next step.

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

/// The AWS calls a function should make, and the sequential round trips they should take:
/// during init, on a new process's first invocation, and on every warm one.
struct CallTargets {
    init: Counts,
    cold: Counts,
    warm: Counts,
}

fn call_targets(function: &str) -> CallTargets {
    let n = |dynamodb, secrets_manager, round_trips| Counts { dynamodb, secrets_manager, round_trips };
    match function {
        // Init reads the signing key and the throttle key concurrently. A login reserves the
        // attempt while it reads the credentials, then writes one transaction.
        "login" => CallTargets { init: n(0, 2, 1), cold: n(3, 0, 2), warm: n(3, 0, 2) },
        "refresh" => CallTargets { init: n(0, 2, 1), cold: n(1, 0, 1), warm: n(1, 0, 1) },
        "get-user" => CallTargets { init: n(0, 1, 1), cold: n(1, 0, 1), warm: n(1, 0, 1) },
        // DescribeTable and DescribeSecret, concurrently, on a process's first request; the
        // result is then cached for 30 s, longer than the warm invocations take.
        "health" => CallTargets { init: n(0, 0, 0), cold: n(1, 1, 1), warm: n(0, 0, 0) },
        _ => CallTargets { init: n(0, 0, 0), cold: n(1, 0, 1), warm: n(1, 0, 1) },
    }
}

/// Whether every cold and warm invocation made exactly the target calls in the target round trips.
fn invocation_calls_met(f: &FunctionResult) -> bool {
    let t = call_targets(&f.name);
    let exactly = |range: &CallRange, target: Counts| range.min == target && range.max == target;
    exactly(&f.cold_calls, t.cold) && exactly(&f.warm_calls, t.warm)
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
    format!(
        "DynamoDB {}, Secrets Manager {}, round trips {}",
        calls(min.dynamodb, max.dynamodb),
        calls(min.secrets_manager, max.secrets_manager),
        calls(min.round_trips, max.round_trips)
    )
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
#[derive(Debug, Default)]
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

fn beyond_dynamodb(f: &FunctionResult) -> Option<f64> {
    matches!(f.name.as_str(), "get-user" | "refresh").then_some(())?;
    Some(f.warm_cpu_ms - f.reference.as_ref()?.cpu_ms)
}

fn argon2_ratio(f: &FunctionResult) -> Option<f64> {
    matches!(f.name.as_str(), "register" | "login").then_some(())?;
    Some(f.warm_cpu_ms / f.reference.as_ref()?.cpu_ms)
}

fn zip_arm64(f: &FunctionResult) -> Option<u64> {
    f.sizes.get("arm64").and_then(|s| s.zip_bytes)
}

fn init_median(f: &FunctionResult) -> f64 {
    percentile(&f.init_ms, 50.0)
}

fn misses(results: &Results) -> Vec<Miss> {
    let mut misses = Vec::new();
    for f in &results.functions {
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
                format!(
                    "{:.1} ms of init is neither before the first AWS call ({:.1} ms) nor inside one \
                     ({:.1} ms): key decoding, the graceful-shutdown extension's registration (a request to the \
                     runtime API) and the runtime's start-up",
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
                next: "rerun on an idle machine; if it still misses, point `SSL_CERT_FILE` at the image's CA \
                       bundle so that the SDK's TLS set-up reads one file instead of the whole certificate \
                       directory (see below; check the path on `provided.al2023` first), and if the secret fetch \
                       dominates, measure it against real Secrets Manager before changing the design (moto is a \
                       Python server)"
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
                reason: "the AWS SDK clients and their TLS stack are most of the binary".to_owned(),
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

pub fn render(results: &Results, machine: &Machine, criterion: &BTreeMap<String, (f64, f64, f64)>) -> String {
    let mut md = String::new();
    let w = &mut md;
    let fns = &results.functions;
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
        let cells: Vec<String> = fns.iter().map(cell).collect();
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
        "Secrets Manager calls during init (round trips), no DynamoDB call: {}",
        targets(&|t| format!("{} ({})", t.init.secrets_manager, t.init.round_trips))
    );
    row(w, &label, &|f| {
        let c = f.init_calls;
        let dynamodb = if c.dynamodb > 0 { format!(", DynamoDB {}", c.dynamodb) } else { String::new() };
        format!("{} ({}){dynamodb} {}", c.secrets_manager, c.round_trips, verdict(c == call_targets(&f.name).init))
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
        let operation = match f.name.as_str() {
            "get-user" => "its DynamoDB call alone (`Store::user`: `GetItem`, consistent)",
            "refresh" => "its DynamoDB call alone (`Store::rotate_session`: conditional `UpdateItem`)",
            "register" | "login" => "one argon2id hash (`password::hash`, m=19456 KiB, t=2, p=1)",
            _ => "none",
        };
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
    let _ = writeln!(w, "\n## Hot paths (`cargo bench -p shared`)\n");
    if criterion.is_empty() {
        let _ = writeln!(w, "Not run this time (`SKIP_CRITERION=1`).");
    } else {
        let _ = writeln!(w, "Criterion, release profile; mean with its 95 % confidence interval.\n");
        let _ = writeln!(w, "| benchmark | mean | 95 % CI |");
        let _ = writeln!(w, "|---|---|---|");
        for (id, (mean, lo, hi)) in criterion {
            let _ = writeln!(w, "| `{id}` | {} | {} – {} |", duration(*mean), duration(*lo), duration(*hi));
        }
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

const METHOD: &str = "\
- `dev/scripts/bench.sh` builds the five functions with `cargo build --release` (x86_64, run here) and \
`cargo lambda build --release --arm64` (sizes only), runs `cargo bench -p shared`, starts DynamoDB Local and moto, \
creates a fresh table and secrets with `localdev setup`, and runs `target/release/bench run`.
- Each function's release bootstrap runs as its own process under a minimal Lambda Runtime API served by the \
driver (`GET /runtime/invocation/next`, `POST .../response`, `.../error`, `/runtime/init/error`, and the \
Extensions API's `POST /extension/register` for the graceful-shutdown handler), with the variables Lambda sets \
(`AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` from the template, …) and \
the function's environment resolved from `template.yaml`. One function runs at a time; a process is stopped as \
Lambda stops it, with SIGTERM (SIGKILL if it is still there 500 ms later).
- `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL_SECRETS_MANAGER` point at two counting proxies in the driver, \
which forward to the emulators (through the local IAM check of the function's policy) and log each call's \
operation, arrival and answer. Calls are counted between runtime-API events: init (spawn → first `GET /next`), \
the first invocation, each warm invocation. Calls in flight together take one round trip: sorted by arrival, a \
call that reaches the proxy before the latest answer of the current group joins it, else it starts the next \
sequential round trip. Cold counts are min–max over the cold starts, warm counts over the warm invocations.
- Init time is process spawn → first `GET /next`, over several cold starts (a new process each). Invocation \
latency is event handed out by `GET /next` → `POST .../response` received, as Lambda's `Duration`; it includes \
one extra local hop per AWS call (the proxy) and the emulators' own time.
- Events are the fixtures in `events/`, with real values: register gets a fresh email per invocation, login \
the first registered user, refresh the refresh token of the previous login or refresh (each token is spent), \
get-user (`get-user.me.json`) the access token of the last login, health (`health.json`) the fixture as is.
- CPU per warm invocation is the delta of `utime + stime` in `/proc/<pid>/stat` (every thread) across the warm \
invocations, read while the process waits in `GET /next`, divided by their number (10 ms resolution over the \
whole run). Peak RSS is `VmHWM` from `/proc/<pid>/status` after the warm invocations.
- \"CPU beyond the DynamoDB call\" for get-user and refresh is the function's CPU per warm invocation minus the \
reference above: the same `shared::store` call made alone in a loop, through the same proxy, in a process built \
the same way. The argon2id reference for login and register is measured the same way.
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
Lambda is the key fetch during init (login, refresh, get-user). On this machine the first aws-lc random-number \
call took 30–33 ms with jitter entropy and 26 µs without (a one-line program calling `aws_lc_rs::rand::fill`). \
Not visible in the figures above: the emulators speak plain HTTP, so the functions make no TLS handshake here.

### What init does

Init loads configuration, the SDK config (environment credentials and region: no network) and the clients; login \
and refresh read the signing key and the throttle key concurrently (one round trip), get-user the signing key, \
which their first request needs; register and health make no AWS call (health checks the table and the secret \
on its first request). Every function then registers the graceful-shutdown handler, an internal extension (one \
request to the runtime API), and starts the runtime loop: both fall in \"other\" in the init breakdown above \
(after the last AWS call of init), and in the whole of init for a function that makes none. Nothing else is \
done eagerly. The DynamoDB connection is not warmed during init: that would move its TLS handshake out of the \
first request on Lambda but add a request to every cold start, so it is not cheaper overall.

### What this machine cannot show

- Init here includes about 3 ms in which the SDK's TLS set-up loads this machine's trust store (`/etc/ssl/certs`: \
a bundle and about 290 certificate files): a bootstrap that exits at its first runtime-API call took 7.4 ms, \
and 4.2 ms with `SSL_CERT_FILE` pointing at the bundle alone. A Lambda image has its own trust-store layout.
- The emulators speak plain HTTP on the loopback interface: there is no TLS handshake, no network latency and no \
IAM credential lookup. On Lambda the first DynamoDB call of a cold process also pays a TLS handshake (tens of \
milliseconds at 128 MB); the key fetches during init already pay it for Secrets Manager (health pays it on its \
first request; register makes no Secrets Manager call).
- Lambda gives a 128 MB function a fraction of a core (a full vCPU only at 1,769 MB) and arm64 cores differ from \
this one: absolute times scale, ratios between the rows should hold.
";

#[cfg(test)]
mod tests {
    use super::*;

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
            let calls = Counts { dynamodb, secrets_manager, round_trips };
            CallRange { min: calls, max: calls }
        };
        // Its first invocation checks the table and the secret; warm ones use the cached result.
        let health = FunctionResult { name: "health".into(), cold_calls: once(1, 1, 1), ..FunctionResult::default() };
        let results = Results { functions: vec![health], fuzzers: Vec::new() };
        let md = render(&results, &Machine::default(), &BTreeMap::new());
        assert!(md.contains("| health | none | – | – | – |"), "{md}");
        assert!(md.contains("| DynamoDB calls per invocation, cold / warm: 1 / 0 | 1 / 0 met |"), "{md}");
        assert!(!md.contains("differ from the target"), "{md}");
    }
}
