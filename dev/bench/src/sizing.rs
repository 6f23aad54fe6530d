//! The report on Lambda's terms: each case over the memory sizes measured at their CPU share, the
//! size the rule picks, the targets at that size, init against the floor, a plot per case, and
//! the monthly cost of a usage profile against Amazon Cognito's tiers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::cost::{self, Cost, Prices};
use crate::driver::{FunctionResult, Results, DEFAULT_PERIOD_MS, FLOOR};
use crate::plot::{Curve, CurvePoint};
use crate::report::percentile;

/// Cold starts per invocation the costs assume (AWS: "typically under 1 %").
pub const COLD_RATE: f64 = 0.01;
/// Time on Lambda's arm64 per time here, for CPU-bound work: the band the plots draw around p95
/// (`text/lambda.md`: two workloads timed on Lambda by a third party and here; no argon2id or
/// P-256 figure exists).
pub const ARM64_BAND: (f64, f64) = (1.4, 2.2);

const FIRST_INVOCATION_SLACK_MS: f64 = 20.0;
const LOGIN_ARGON2_FACTOR: f64 = 2.0;
const BEYOND_CALL_MS: f64 = 10.0;
const COST_VS_128: f64 = 1.05;
const INIT_VS_FLOOR: f64 = 2.0;

/// One case at the Lambda sizes of the default period, smallest first, with their costs.
pub struct CaseCurve<'a> {
    pub label: &'a str,
    pub points: Vec<(&'a FunctionResult, Cost)>,
    /// The sizes the rule accepts for this case, smallest first.
    pub acceptable: Vec<u64>,
    /// The size this case runs at: the template's default while the rule accepts it.
    pub chosen: Option<u64>,
}

impl CaseCurve<'_> {
    fn at(&self, mb: u64) -> Option<&(&FunctionResult, Cost)> {
        self.points.iter().find(|(f, _)| f.limits.memory_mb == Some(mb))
    }

    /// The template's `MemorySize` for this case's function.
    fn template_mb(&self) -> u64 {
        self.points.first().map_or(0, |(f, _)| f.memory_mb)
    }
}

pub fn curves<'a>(results: &'a Results, prices: &Prices) -> Vec<CaseCurve<'a>> {
    let mut labels: Vec<&str> = Vec::new();
    for f in &results.functions {
        if f.limits.memory_mb.is_some() && !labels.contains(&f.name.as_str()) {
            labels.push(&f.name);
        }
    }
    labels
        .into_iter()
        .map(|label| {
            let mut points: Vec<(&FunctionResult, Cost)> = results
                .functions
                .iter()
                .filter(|f| f.name == label && f.limits.period_ms == DEFAULT_PERIOD_MS && !f.warm_ms.is_empty())
                .filter_map(|f| Some((f, cost::per_million(f, prices, COLD_RATE)?)))
                .collect();
            points.sort_by_key(|(f, _)| f.limits.memory_mb);
            let acceptable = cost::acceptable(&points);
            let mut curve = CaseCurve { label, points, acceptable, chosen: None };
            curve.chosen = cost::choose(&curve.acceptable, curve.template_mb());
            curve
        })
        .collect()
}

/// The size each function's template parameter should default to: its cases' largest choice
/// (the mailer sends two kinds of mail with one size).
pub fn chosen_by_binary(curves: &[&CaseCurve]) -> BTreeMap<String, u64> {
    let mut chosen: BTreeMap<String, u64> = BTreeMap::new();
    for curve in curves {
        if let (Some(mb), Some((f, _))) = (curve.chosen, curve.points.first()) {
            let entry = chosen.entry(f.binary.clone()).or_default();
            *entry = (*entry).max(mb);
        }
    }
    chosen
}

/// The plot of each case, by file name.
pub fn plots(curves: &[CaseCurve]) -> Result<Vec<(String, String)>, String> {
    let mut plots = Vec::new();
    for curve in curves.iter().filter(|c| c.label != FLOOR && !c.points.is_empty()) {
        let points = curve
            .points
            .iter()
            .filter_map(|(f, cost)| {
                let p95 = percentile(&f.warm_ms, 95.0);
                Some(CurvePoint {
                    memory_mb: f.limits.memory_mb?,
                    p50_ms: percentile(&f.warm_ms, 50.0),
                    p95_ms: p95,
                    p95_arm64_ms: (p95 * ARM64_BAND.0, p95 * ARM64_BAND.1),
                    cost_per_million_usd: cost.total(),
                })
            })
            .collect();
        let svg = crate::plot::svg(&Curve { function: curve.label.to_owned(), points, chosen_mb: curve.chosen })?;
        plots.push((plot_file(curve.label), svg));
    }
    Ok(plots)
}

/// `get-user` → `GetUser`, the stem of its template parameters.
fn parameter_stem(binary: &str) -> String {
    binary
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or(String::new(), |c| c.to_ascii_uppercase().to_string() + chars.as_str())
        })
        .collect()
}

pub fn plot_file(label: &str) -> String {
    let name: String = label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    format!("{}.svg", name.trim_matches('-').replace("--", "-"))
}

fn usd(value: f64) -> String {
    if value >= 100.0 {
        format!("${value:.0}")
    } else if value >= 1.0 {
        format!("${value:.2}")
    } else {
        format!("${value:.3}")
    }
}

fn median(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| percentile(values, 50.0))
}

/// Init without its AWS round trips, median: under the share and unthrottled.
fn init_local(f: &FunctionResult) -> (Option<f64>, Option<f64>) {
    let local = |init: &[f64], calls: &[f64]| {
        let own: Vec<f64> = init.iter().zip(calls).map(|(i, c)| i - c).collect();
        median(&own)
    };
    (local(&f.init_ms, &f.init_in_calls_ms), local(&f.init_unthrottled_ms, &f.init_unthrottled_in_calls_ms))
}

/// Init's CPU time, median of every cold start (the quota hardly changes the CPU a run takes).
fn init_cpu(f: &FunctionResult) -> Option<f64> {
    median(&[f.init_cpu_ms.as_slice(), &f.init_unthrottled_cpu_ms].concat())
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

/// The sections, in order: memory per function, costs, targets, init against the floor.
pub fn render(w: &mut String, results: &Results, curves: &[CaseCurve], prices: &Prices, plots_dir: &str) {
    let curves: Vec<&CaseCurve> = curves.iter().filter(|c| c.label != FLOOR && !c.points.is_empty()).collect();
    if curves.is_empty() {
        return;
    }
    let _ = writeln!(w, "\n## Memory size per function\n");
    let _ = writeln!(
        w,
        "The rule accepts a size when its cost per million invocations ({:.0} % of them cold starts, init billed, \
         request charge, DynamoDB units, Secrets Manager calls, mail and log ingestion included) is at most {:.0} % \
         above the cheapest size's, and its warm p95 is within {:.0} % or {:.0} ms of the fastest such size's (no \
         user tells two milliseconds apart, and a p95 of a few milliseconds moves by that much from run to run \
         here). A user gets the speed that money cannot buy more cheaply. A function runs at its template default \
         while the rule accepts it, else at the smallest size the rule accepts: a rerun's noise reorders sizes the \
         rule finds equal, and a default should not move with it. The slack applies to the whole cost, most of \
         which (requests, DynamoDB, logs) does not change with memory: for a function that mostly waits, 5 % of \
         the total is several times its duration charge. The durations are this machine's x86_64 build's, priced \
         at arm64's rate. Each function's `MemorySize` is a template parameter (`<Function>MemorySize`); the \
         mailer's serves its two kinds of mail. The plots draw an arm64 estimate as a band of ×{}–×{} around p95: \
         two workloads timed on Lambda by a third party and here, see \"arm64 on Graviton\" below.\n",
        COLD_RATE * 100.0,
        cost::COST_SLACK * 100.0,
        cost::SPEED_SLACK * 100.0,
        cost::SPEED_SLACK_MS,
        ARM64_BAND.0,
        ARM64_BAND.1,
    );
    let _ = writeln!(
        w,
        "| function | sizes the rule accepts | size chosen | warm p95 there | cost per million there | at 128 MB | \
         peak memory charged there | plot |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|");
    for curve in &curves {
        let Some(mb) = curve.chosen else { continue };
        let Some((f, c)) = curve.at(mb) else { continue };
        let at_128 = curve.at(128).map_or("–".to_owned(), |(_, c128)| {
            format!("{} ({:.0} % of it)", usd(c128.total()), 100.0 * c.total() / c128.total())
        });
        let accepted: Vec<String> = curve.acceptable.iter().map(u64::to_string).collect();
        let template = curve.template_mb();
        let chosen = if template == mb { format!("{mb} MB (the default)") } else { format!("**{mb} MB**") };
        let charged =
            f.peak_memory_kib.map_or("–".to_owned(), |kib| format!("{:.1} of {mb} MiB", kib as f64 / 1024.0));
        let _ = writeln!(
            w,
            "| {} | {} MB | {chosen} | {:.1} ms | {} | {at_128} | {charged} | [svg]({plots_dir}/{}) |",
            curve.label,
            accepted.join(", "),
            percentile(&f.warm_ms, 95.0),
            usd(c.total()),
            plot_file(curve.label),
        );
    }

    let _ = writeln!(
        w,
        "\nArgon2id runs at m = {} MiB, t = {}, p = {} (OWASP's minimum), one hash at a time per instance (Lambda \
         sends an instance one request at a time): \"peak memory charged\" is the function's whole group at its \
         peak, the hash's memory included, against the size's hard limit; an out-of-memory kill would show in \
         the per-point table above.",
        shared::password::MEMORY_KIB / 1024,
        shared::password::ITERATIONS,
        shared::password::PARALLELISM,
    );
    let outside: Vec<String> = curves
        .iter()
        .filter(|c| c.chosen.is_some_and(|mb| mb != c.template_mb()))
        .map(|c| {
            let stem = c.points.first().map_or(String::new(), |(f, _)| parameter_stem(&f.binary));
            format!("`{stem}MemorySize={}` for {}", c.template_mb(), c.label)
        })
        .collect();
    if outside.is_empty() {
        let _ = writeln!(w, "\nThe rule accepts every measured function's template default.");
    } else {
        let _ = writeln!(
            w,
            "\n**Template defaults the rule does not accept** (the table prices the smallest size it does): {}.",
            outside.join(", ")
        );
    }

    let sizes: Vec<u64> = {
        let mut sizes: Vec<u64> =
            curves.iter().flat_map(|c| c.points.iter().filter_map(|(f, _)| f.limits.memory_mb)).collect();
        sizes.sort_unstable();
        sizes.dedup();
        sizes
    };
    let _ = writeln!(w, "\n### Cost per million invocations and warm p95, by memory size\n");
    let _ = writeln!(
        w,
        "USD per million invocations: this machine's x86_64 durations at arm64's price (`docs/prices.yaml`, {}), \
         {:.0} % cold starts; then the warm p95. The size chosen in bold.\n",
        prices.region,
        COLD_RATE * 100.0
    );
    let _ = writeln!(w, "| function | {} |", sizes.iter().map(|mb| format!("{mb} MB")).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(w, "|---|{}", "---|".repeat(sizes.len()));
    for curve in &curves {
        let cells: Vec<String> = sizes
            .iter()
            .map(|&mb| {
                curve.at(mb).map_or("–".to_owned(), |(f, c)| {
                    let cell = format!("{} · {:.1} ms", usd(c.total()), percentile(&f.warm_ms, 95.0));
                    if curve.chosen == Some(mb) {
                        format!("**{cell}**")
                    } else {
                        cell
                    }
                })
            })
            .collect();
        let _ = writeln!(w, "| {} | {} |", curve.label, cells.join(" | "));
    }

    let _ = writeln!(w, "\n### What a million invocations pay for, at the size chosen\n");
    let _ = writeln!(
        w,
        "| function | Lambda duration | requests | DynamoDB (read / write units per invocation) | Secrets Manager | SES | \
         logs (bytes per invocation) | total |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|");
    for curve in &curves {
        let Some((f, c)) = curve.chosen.and_then(|mb| curve.at(mb)) else { continue };
        let units = f.warm_billed.dynamodb;
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} ({:.2} / {:.2}) | {} | {} | {} ({:.0}) | {} |",
            curve.label,
            usd(c.lambda_duration),
            usd(c.lambda_requests),
            usd(c.dynamodb),
            units.read,
            units.write,
            usd(c.secrets_manager),
            usd(c.ses),
            usd(c.logs),
            f.warm_log_bytes + cost::PLATFORM_LOG_BYTES,
            usd(c.total()),
        );
    }

    render_targets(w, results, &curves);
    render_cross_check(w, results, &curves);
}

/// The model on one whole CPU (1,769 MB: a quota of one CPU) against the measurement without a
/// quota, as the earlier reports made it (both CPUs, no memory limit).
fn render_cross_check(w: &mut String, results: &Results, curves: &[&CaseCurve]) {
    let pairs: Vec<(&FunctionResult, &FunctionResult)> = curves
        .iter()
        .filter_map(|c| Some((c.at(crate::sandbox::MB_PER_VCPU)?.0, results.unlimited(c.label)?)))
        .collect();
    if pairs.is_empty() {
        return;
    }
    let _ = writeln!(w, "\n### Cross-check: one whole CPU by quota against no quota\n");
    let _ = writeln!(
        w,
        "At 1,769 MB the quota is one CPU: a function that does not use two threads at once should run as it \
         does without a quota (the earlier reports' method), within the run-to-run noise.\n"
    );
    let _ =
        writeln!(w, "| function | warm p50, no quota / 1,769 MB | warm p95 | CPU per warm invocation | init, median |");
    let _ = writeln!(w, "|---|---|---|---|---|");
    for (at_share, free) in pairs {
        let pct = |f: &FunctionResult, p| percentile(&f.warm_ms, p);
        let _ = writeln!(
            w,
            "| {} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.3} / {:.3} ms | {:.1} / {:.1} ms |",
            free.name,
            pct(free, 50.0),
            pct(at_share, 50.0),
            pct(free, 95.0),
            pct(at_share, 95.0),
            free.warm_cpu_ms,
            at_share.warm_cpu_ms,
            median(&free.init_ms).unwrap_or(f64::NAN),
            median(&at_share.init_ms).unwrap_or(f64::NAN),
        );
    }
}

/// The targets at each function's chosen size, under its CPU share.
fn render_targets(w: &mut String, results: &Results, curves: &[&CaseCurve]) {
    let _ = writeln!(w, "\n## Targets at the chosen sizes, under Lambda's CPU share\n");
    if !results.functions.iter().any(|f| f.name == FLOOR && f.limits.memory_mb.is_some()) {
        let _ = writeln!(w, "**The floor was not measured at a Lambda size in these results: init is not checked.**\n");
    }
    let _ = writeln!(
        w,
        "- First invocation after a cold start (median) ≤ warm p95 + {FIRST_INVOCATION_SLACK_MS:.0} ms.\n\
         - login warm p95 ≤ {LOGIN_ARGON2_FACTOR} × one argon2id hash at the same share (the reference operation, \
         mean wall time); get-user and refresh warm p95 ≤ {BEYOND_CALL_MS:.0} ms beyond their DynamoDB call (the \
         reference: the store's call alone, mean wall time, same share).\n\
         - Cost per million at the chosen size ≤ {:.0} % of the cost at 128 MB (the issue sets it for login). The \
         rule keeps every function within 5 % of its cheapest size, so this holds by construction wherever 128 MB \
         was measured; the column shows by how much.\n\
         - Init without its AWS round trips (median) ≤ {INIT_VS_FLOOR} × the floor's (`src/bin/floor.rs`: a \
         `lambda_runtime` binary that answers every event and does nothing else) at the same point: unthrottled, as \
         Lambda runs init, and under the share, in wall time; and init's CPU time (all threads, from the \
         scheduler), which no wait for the CPU or for a round trip inflates.\n",
        COST_VS_128 * 100.0
    );
    let _ = writeln!(
        w,
        "| function | size | first invocation vs p95 + {FIRST_INVOCATION_SLACK_MS:.0} | latency target | cost vs 128 MB | \
         init unthrottled vs floor | init under the share vs floor | init's CPU vs floor's |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|");
    for curve in curves {
        let Some(mb) = curve.chosen else { continue };
        let Some((f, c)) = curve.at(mb) else { continue };
        let p95 = percentile(&f.warm_ms, 95.0);
        let first = median(&f.first_invocation_ms).unwrap_or(f64::NAN);
        let first_cell = format!(
            "{first:.1} vs {:.1} ms: {}",
            p95 + FIRST_INVOCATION_SLACK_MS,
            verdict(first <= p95 + FIRST_INVOCATION_SLACK_MS)
        );
        let reference = f.reference.as_ref().map(|r| r.wall_ms);
        let latency = match (curve.label, reference) {
            ("login", Some(argon2)) => format!(
                "p95 {p95:.1} ≤ {LOGIN_ARGON2_FACTOR} × {argon2:.1} ms: {}",
                verdict(p95 <= LOGIN_ARGON2_FACTOR * argon2)
            ),
            ("get-user" | "refresh", Some(call)) => {
                format!("p95 {p95:.1} − {call:.1} = {:.1} ms: {}", p95 - call, verdict(p95 - call <= BEYOND_CALL_MS))
            }
            _ => "–".to_owned(),
        };
        let cost_cell = curve.at(128).map_or("–".to_owned(), |(_, c128)| {
            let ratio = c.total() / c128.total();
            format!("{:.0} %: {}", ratio * 100.0, verdict(ratio <= COST_VS_128))
        });
        let (share, unthrottled) = init_local(f);
        let floor_result = results.functions.iter().find(|g| g.name == FLOOR && g.limits == f.limits);
        let (floor_share, floor_unthrottled) = floor_result.map(init_local).unwrap_or((None, None));
        let against = |own: Option<f64>, floor: Option<f64>| match (own, floor) {
            (Some(own), Some(floor)) if floor > 0.0 => {
                format!("{own:.1} vs {floor:.1} ms (×{:.1}): {}", own / floor, verdict(own <= INIT_VS_FLOOR * floor))
            }
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            w,
            "| {} | {mb} MB | {first_cell} | {latency} | {cost_cell} | {} | {} | {} |",
            curve.label,
            against(unthrottled, floor_unthrottled),
            against(share, floor_share),
            against(init_cpu(f), floor_result.and_then(init_cpu)),
        );
    }
}

/// What one monthly active user does in a month, by case (the profile the cost model assumes).
pub const PROFILE: [(&str, f64); 17] = [
    ("register", 0.10),
    // Sign-ups, resends and email changes each mail a link.
    ("mailer (sign-up)", 0.13),
    ("email-verify", 0.10),
    ("login", 4.0),
    ("refresh", 30.0),
    ("get-user", 20.0),
    ("logout", 2.0),
    ("logout-all", 0.01),
    ("email-verify-resend", 0.02),
    ("password-forgot", 0.05),
    ("mailer (reset)", 0.05),
    ("password-reset", 0.05),
    ("password-change", 0.02),
    ("email-change", 0.01),
    ("delete-user", 0.005),
    ("jwks", 0.0),
    ("health", 0.0),
];
/// Calls that do not grow with users: a monitor on /health every 30 s, and /jwks fetched by
/// verifiers once per `max-age` (an hour) each, ten of them.
pub const FIXED_PER_MONTH: [(&str, f64); 2] = [("health", 86_400.0), ("jwks", 7_200.0)];
/// The stack's secrets and its web ACL's rules (template.yaml).
const SECRETS: f64 = 4.0;
const WAF_RULES: f64 = 4.0;
/// One access-log line per API request (template.yaml's format, filled in), bytes.
const ACCESS_LOG_BYTES: f64 = 450.0;
/// Table storage per user: the user, its email claim and a few session families, bytes.
const STORAGE_PER_USER: f64 = 3_000.0;
pub const MAUS: [u64; 4] = [10_000, 100_000, 1_000_000, 10_000_000];

/// The monthly cost model: this stack at each function's chosen size against Cognito.
pub fn render_cost_model(w: &mut String, curves: &[CaseCurve], prices: &Prices) {
    // Each case at its function's size (the mailer's two kinds of mail share one).
    let all: Vec<&CaseCurve> = curves.iter().collect();
    let sizes = chosen_by_binary(&all);
    let per_million: BTreeMap<&str, f64> = curves
        .iter()
        .filter_map(|c| {
            let (f, _) = c.points.first()?;
            Some((c.label, c.at(*sizes.get(&f.binary)?)?.1.total()))
        })
        .collect();
    if per_million.is_empty() {
        return;
    }
    let _ = writeln!(w, "\n## Cost per user, against Amazon Cognito\n");
    let _ = writeln!(w, "The usage profile, per monthly active user (MAU) per month:\n");
    let profile: Vec<String> =
        PROFILE.iter().filter(|(_, n)| *n > 0.0).map(|(case, n)| format!("{case} {n}")).collect();
    let _ = writeln!(
        w,
        "- {}; besides, {} calls a month whatever the users (a monitor every 30 s; ten verifiers fetching the JWKS \
         once an hour).\n\
         - Every HTTP call goes through API Gateway (REST) and the web ACL ({WAF_RULES:.0} rules); each writes one \
         access-log line of about {ACCESS_LOG_BYTES:.0} bytes. Lambda, DynamoDB units, Secrets Manager calls, mail and \
         the functions' own logs are the measured cost per million of each case at its chosen size. {SECRETS:.0} \
         secrets; {:.0} KB of table per user (an estimate). No free tier on this side; Cognito's free 10,000 MAU \
         counted on its side.\n",
        profile.join(", "),
        FIXED_PER_MONTH.iter().map(|(case, n)| format!("{case} {n:.0}")).collect::<Vec<_>>().join(", "),
        STORAGE_PER_USER / 1000.0,
    );
    let missing: Vec<&str> =
        PROFILE.iter().map(|(case, _)| *case).filter(|case| !per_million.contains_key(case)).collect();
    if !missing.is_empty() {
        let _ = writeln!(w, "Not measured at a Lambda size in this run, so left out: {}.\n", missing.join(", "));
    }
    let _ = writeln!(
        w,
        "| MAU | API Gateway | WAF | Lambda, DynamoDB, Secrets Manager calls, SES, logs | secrets, storage, access logs | \
         this stack | per MAU | Cognito Lite | Cognito Essentials |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|");
    for mau in MAUS {
        let users = mau as f64;
        let calls = |case: &str| {
            let per_user = PROFILE.iter().find(|(c, _)| *c == case).map_or(0.0, |(_, n)| *n);
            let fixed = FIXED_PER_MONTH.iter().find(|(c, _)| *c == case).map_or(0.0, |(_, n)| *n);
            users * per_user + fixed
        };
        let http: f64 =
            PROFILE.iter().filter(|(case, _)| !case.starts_with("mailer")).map(|(case, _)| calls(case)).sum();
        let gateway = http / 1e6 * prices.api_gateway_rest_per_million.usd;
        let waf = prices.waf_web_acl_month.usd
            + WAF_RULES * prices.waf_rule_month.usd
            + http / 1e6 * prices.waf_requests_per_million.usd;
        let functions: f64 =
            PROFILE.iter().map(|(case, _)| calls(case) / 1e6 * per_million.get(case).unwrap_or(&0.0)).sum();
        let fixed = SECRETS * prices.secrets_manager_secret_month.usd
            + users * STORAGE_PER_USER / 1e9 * prices.dynamodb_storage_gb_month.usd
            + http * ACCESS_LOG_BYTES / 1e9 * prices.cloudwatch_logs_ingested_gb.usd;
        let total = gateway + waf + functions + fixed;
        let _ = writeln!(
            w,
            "| {mau} | {} | {} | {} | {} | **{}** | ${:.5} | {} | {} |",
            usd(gateway),
            usd(waf),
            usd(functions),
            usd(fixed),
            usd(total),
            total / users,
            usd(prices.cognito_lite.monthly(mau)),
            usd(prices.cognito_essentials.monthly(mau)),
        );
    }
}

/// The prices used, with their sources.
pub fn render_prices(w: &mut String, prices: &Prices) {
    let _ = writeln!(w, "\n### Prices\n");
    let _ = writeln!(w, "From `docs/prices.yaml` ({}, on-demand, USD):\n", prices.region);
    let _ = writeln!(w, "| item | USD | per | source | read |");
    let _ = writeln!(w, "|---|---|---|---|---|");
    for (name, price) in prices.listed() {
        let _ = writeln!(w, "| {name} | {} | {} | {} | {} |", price.usd, price.per, price.source, price.read);
    }
    for (name, tiers) in [("Cognito Lite", &prices.cognito_lite), ("Cognito Essentials", &prices.cognito_essentials)] {
        let text: Vec<String> =
            tiers.tiers.iter().map(|t| format!("{} above {} MAU", t.usd_per_mau, t.above_mau)).collect();
        let _ = writeln!(w, "| {name} | {} | MAU a month | {} | {} |", text.join("; "), tiers.source, tiers.read);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(name: &str, mb: Option<u64>, warm_ms: f64) -> FunctionResult {
        cost::point(name, mb, warm_ms, 10.0)
    }

    #[test]
    fn given_a_run_when_drawing_curves_then_each_case_has_its_lambda_sizes_and_a_choice() {
        let prices = cost::repository_prices();
        // GIVEN a CPU-bound case at two sizes and without a quota, and the mailer's two cases
        let results = Results {
            functions: vec![
                point("login", None, 30.0),
                point("login", Some(128), 480.0),
                point("login", Some(1769), 30.0),
                point("mailer (sign-up)", Some(128), 10.0),
                point("mailer (reset)", Some(128), 400.0),
                point("mailer (reset)", Some(1769), 20.0),
            ],
            ..Results::default()
        };
        // WHEN the curves are drawn
        let curves = curves(&results, &prices);
        // THEN the point without a quota is no Lambda size, and the faster size that costs no
        // more is chosen; the mailer gets the larger of its cases' sizes
        let login = curves.iter().find(|c| c.label == "login").expect("login");
        assert_eq!(login.points.len(), 2);
        assert_eq!(login.chosen, Some(1769));
        let all: Vec<&CaseCurve> = curves.iter().collect();
        let by_binary = chosen_by_binary(&all);
        assert_eq!(by_binary.get("mailer"), Some(&1769));
        assert_eq!(plots(&curves).expect("plots").len(), 3);
    }

    #[test]
    fn given_a_default_the_rule_accepts_when_drawing_curves_then_it_stays_and_the_report_says_so() {
        let prices = cost::repository_prices();
        // GIVEN a function whose cost is mostly a mail, as fast at 256 as at 512 MB, and whose
        // template default is 512 MB
        let mailing = |mb: u64, warm_ms: f64| FunctionResult {
            memory_mb: 512,
            warm_billed: crate::driver::Billed { ses_mails: 1.0, ..Default::default() },
            ..point("mailer (sign-up)", Some(mb), warm_ms)
        };
        let results = Results { functions: vec![mailing(256, 10.0), mailing(512, 9.0)], ..Results::default() };
        // WHEN the curves are drawn
        let drawn = curves(&results, &prices);
        // THEN the rule accepts both, and the default stays
        assert_eq!(drawn[0].acceptable, [256, 512]);
        assert_eq!(drawn[0].chosen, Some(512));
        let mut report = String::new();
        render(&mut report, &results, &drawn, &prices, "plots");
        assert!(report.contains("The rule accepts every measured function's template default."));

        // GIVEN the same function with a 128 MB default, twice as slow at 128 MB
        let at_128 = |f: FunctionResult| FunctionResult { memory_mb: 128, ..f };
        let results = Results {
            functions: vec![at_128(mailing(128, 20.0)), at_128(mailing(256, 10.0)), at_128(mailing(512, 9.0))],
            ..Results::default()
        };
        // WHEN the curves are drawn, THEN the smallest accepted size is chosen, and the report
        // names the default it does not accept
        let narrowed = curves(&results, &prices);
        assert_eq!(narrowed[0].chosen, Some(256));
        let mut report = String::new();
        render(&mut report, &results, &narrowed, &prices, "plots");
        assert!(report.contains("`MailerMemorySize=128` for mailer (sign-up)"), "{report}");
    }

    #[test]
    fn given_names_when_spelling_files_and_parameters_then_they_are_plain() {
        assert_eq!(plot_file("mailer (sign-up)"), "mailer-sign-up.svg");
        assert_eq!(parameter_stem("email-verify-resend"), "EmailVerifyResend");
    }
}
