//! `bench`: the benchmark driver behind `dev/scripts/bench.sh`.
//!
//! `bench run` runs each function's release bootstrap under a local Lambda Runtime API against
//! the emulators (through counting proxies) and writes the results as JSON; `bench report`
//! writes `docs/performance.md` from them (a run on the default stack, and the smaller runs on
//! stacks signing with another algorithm); `bench invoke` invokes each deployable bootstrap once
//! (e.g. `sam build`'s arm64 ones under qemu-user, for `dev/scripts/check-artifacts.sh`); `bench
//! baseline` is the child process that measures the reference operations.

mod baseline;
mod cost;
mod driver;
mod flow;
mod plot;
mod procfs;
mod proxy;
mod report;
mod sandbox;
mod sizing;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Cold start, per-invocation cost and size of the auth functions")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure the functions (every case, or those of `--cases`) and write the results as JSON.
    Run(Box<RunArgs>),
    /// Write the report from the results of `bench run`.
    Report(ReportArgs),
    /// Invoke each function's bootstrap once, in flow order, and check its status.
    Invoke(Box<InvokeArgs>),
    /// Measure one reference operation in this process (run by `bench run`; its input, the
    /// state it works on, as JSON on stdin).
    #[command(hide = true)]
    Baseline {
        #[arg(long, value_enum)]
        op: baseline::Op,
        #[arg(long, default_value_t = 1000)]
        n: usize,
    },
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    options: driver::Options,
    /// The results, as JSON.
    #[arg(long, default_value = ".local/bench/results.json")]
    json: PathBuf,
    /// Add to the results already in `--json` (a part of a split run) instead of replacing them.
    #[arg(long)]
    merge: bool,
}

#[derive(Args)]
struct ReportArgs {
    /// The results of the full run (the template's default `SigningAlgorithm`).
    #[arg(long, default_value = ".local/bench/results.json")]
    json: PathBuf,
    /// The results of a smaller run on a stack with another `SigningAlgorithm` (repeatable).
    #[arg(long = "algorithm-json")]
    algorithm_json: Vec<PathBuf>,
    /// Criterion's output directory (`target/criterion`), for the hot-path table.
    #[arg(long, default_value = "target/criterion")]
    criterion: PathBuf,
    /// The report to write.
    #[arg(long, default_value = "docs/performance.md")]
    out: PathBuf,
    /// The prices the costs are computed at.
    #[arg(long, default_value = "docs/prices.yaml")]
    prices: PathBuf,
    /// Where the plots go (one SVG per case), linked from the report relative to it.
    #[arg(long, default_value = "docs/plots")]
    plots: PathBuf,
    /// The template whose `MemorySize` defaults the report holds against the sizes the rule
    /// accepts (as it is now, not as it was when the results were taken).
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
}

#[derive(Args)]
struct InvokeArgs {
    #[command(flatten)]
    local: driver::Local,
    /// Directory with `<binary>/bootstrap` or `<LogicalId>/bootstrap` per function
    /// (`.aws-sam/build`, `target/lambda`).
    #[arg(long)]
    bootstrap_dir: PathBuf,
    /// Run each bootstrap as `<runner> [runner-arg]... <bootstrap>` (e.g. qemu-aarch64).
    #[arg(long)]
    runner: Option<String>,
    /// An argument for the runner, before the bootstrap (repeatable).
    #[arg(long = "runner-arg", allow_hyphen_values = true, requires = "runner")]
    runner_args: Vec<String>,
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Baseline { op, n } => baseline::run(op, n),
        Command::Run(args) => run(&args.options, &args.json, args.merge),
        Command::Report(args) => report(&args),
        Command::Invoke(args) => invoke(*args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &driver::Options, json: &Path, merge: bool) -> Result<(), String> {
    let started = std::time::Instant::now();
    let mut machine = report::Machine::describe();
    machine.busy = report::busy_processes();
    // The driver, the proxies and the runtime API share one thread: the other core stays free
    // for the function under test (and the emulators).
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let mut results = runtime.block_on(driver::run(options))?;
    machine.load_after = report::load_average();
    for busy in report::busy_processes().into_iter().chain(results.fuzzers.iter().cloned()) {
        if !machine.busy.contains(&busy) {
            machine.busy.push(busy);
        }
    }
    if let Some(run) = results.runs.last_mut() {
        run.date.clone_from(&machine.date);
        run.seconds = started.elapsed().as_secs_f64();
        run.load = format!("{} → {}", machine.load_before, machine.load_after);
        run.busy.clone_from(&machine.busy);
    }
    results.machine = machine;
    if merge && json.exists() {
        let mut all = read_results(json)?;
        if all.signing_algorithm != results.signing_algorithm {
            return Err(format!(
                "{} holds {} results, this run signed with {}",
                json.display(),
                all.signing_algorithm,
                results.signing_algorithm
            ));
        }
        all.merge(results)?;
        results = all;
    }
    write(json, &serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?)?;
    eprintln!("bench: wrote {}", json.display());
    Ok(())
}

fn read_results(path: &Path) -> Result<driver::Results, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The report of the full run and the other algorithms' runs: the machine as the full run found
/// it, with the load at the end of the last run and whatever was busy during any of them.
fn report(args: &ReportArgs) -> Result<(), String> {
    let mut results = read_results(&args.json)?;
    let template = localdev::Template::load(&args.template).map_err(|e| format!("{}: {e}", args.template.display()))?;
    for f in &mut results.functions {
        if let Ok(function) = template.function_for_binary(&f.binary) {
            f.memory_mb = function.memory_mb;
        }
    }
    let others = args.algorithm_json.iter().map(|p| read_results(p)).collect::<Result<Vec<_>, _>>()?;
    let mut machine = results.machine.clone();
    for other in &others {
        machine.load_after.clone_from(&other.machine.load_after);
        for busy in &other.machine.busy {
            if !machine.busy.contains(busy) {
                machine.busy.push(busy.clone());
            }
        }
    }
    let prices = cost::Prices::load(&args.prices)?;
    let curves = sizing::curves(&results, &prices);
    std::fs::create_dir_all(&args.plots).map_err(|e| format!("{}: {e}", args.plots.display()))?;
    for (file, svg) in sizing::plots(&curves)? {
        write(&args.plots.join(file), &svg)?;
    }
    let report_dir = args.out.parent().unwrap_or(Path::new("."));
    let plots_dir = args.plots.strip_prefix(report_dir).unwrap_or(&args.plots).display().to_string();
    let lambda = report::LambdaTerms { prices, curves, plots_dir };
    let markdown = report::render(&results, &others, &machine, &report::criterion_results(&args.criterion), &lambda);
    write(&args.out, &markdown)?;
    eprintln!("bench: wrote {} and the plots in {}", args.out.display(), args.plots.display());
    Ok(())
}

fn invoke(args: InvokeArgs) -> Result<(), String> {
    let runner: Vec<String> = args.runner.into_iter().chain(args.runner_args).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let done = runtime.block_on(driver::invoke_each(&args.local, &args.bootstrap_dir, &runner))?;
    let via = if runner.is_empty() { "natively".to_owned() } else { format!("under `{}`", runner.join(" ")) };
    println!("one invocation of each function {via}:");
    for d in done {
        println!(
            "  {:<19} {:<23} init {:>7.1} ms  invocation {:>7.1} ms  ({})",
            d.name,
            d.status,
            d.init_ms,
            d.latency_ms,
            d.bootstrap.display()
        );
    }
    Ok(())
}
