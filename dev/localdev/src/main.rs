//! `localdev`: set up, configure and front the local stack from `template.yaml`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use localdev::gateway::{Gateway, GatewayOptions};
use localdev::iam::{IamProxy, IamProxyOptions};
use localdev::{LocalStack, StackResources, Template};

#[derive(Parser)]
#[command(version, about = "Local development stack derived from template.yaml")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct TemplateArgs {
    /// SAM template.
    #[arg(long, env = "LOCAL_TEMPLATE", default_value = "template.yaml")]
    template: PathBuf,
    /// Parameter overrides, as for `sam deploy --parameter-overrides` ("Name=Value Name2=Value2").
    #[arg(long, env = "PARAMETER_OVERRIDES", default_value = "")]
    parameter_overrides: String,
}

#[derive(Args)]
struct StackArgs {
    /// The local stack: its resources are named `<stack>-<LogicalId>`.
    #[arg(long, env = "LOCAL_STACK")]
    stack: String,
}

#[derive(Subcommand)]
enum Command {
    /// Create the stack's tables (DynamoDB Local) and secrets (moto) unless they exist.
    Setup {
        #[command(flatten)]
        template: TemplateArgs,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Check every AWS call of the functions against their IAM statements, then forward it.
    IamProxy {
        #[command(flatten)]
        template: TemplateArgs,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:4566")]
        listen: SocketAddr,
        /// DynamoDB Local.
        #[arg(long, env = "AWS_ENDPOINT_URL_DYNAMODB")]
        dynamodb: String,
        /// moto (Secrets Manager and SES).
        #[arg(long, env = "AWS_ENDPOINT_URL_SECRETS_MANAGER")]
        secrets_manager: String,
        /// Append every decision to this file (JSON lines).
        #[arg(long)]
        record: Option<PathBuf>,
    },
    /// Run a function binary with exactly the environment Lambda would give it (a cargo runner:
    /// `cargo run` passes the binary and its arguments).
    RunFunction {
        #[command(flatten)]
        template: TemplateArgs,
        #[command(flatten)]
        stack: StackArgs,
        /// The local IAM check every AWS call of the function goes through.
        #[arg(long, env = "LOCAL_IAM_ENDPOINT")]
        iam_endpoint: String,
        /// The function binary, then its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Print the cargo binary of each function in the template, one per line.
    Binaries {
        #[command(flatten)]
        template: TemplateArgs,
    },
    /// Print each function's IAM statements (after the SAM transform) as a Markdown table.
    IamTable {
        #[command(flatten)]
        template: TemplateArgs,
    },
    /// Feed the stack's table stream to the functions with a DynamoDB event, as Lambda's event
    /// source mapping does, invoking them through `cargo lambda watch`.
    Stream {
        #[command(flatten)]
        template: TemplateArgs,
        #[command(flatten)]
        stack: StackArgs,
        /// Only these functions (logical ids); default: every function with a DynamoDB event.
        #[arg(long = "function")]
        functions: Vec<String>,
        /// Lambda Invoke API endpoint (`cargo lambda watch`).
        #[arg(long, default_value = "http://127.0.0.1:9000")]
        invoke_url: String,
        /// DynamoDB Local (it serves the Streams API too).
        #[arg(long, env = "AWS_ENDPOINT_URL_DYNAMODB")]
        dynamodb: String,
        /// The on-failure destinations' files (`<stack>-<Destination>.jsonl`) go here.
        #[arg(long, default_value = ".local")]
        failures_dir: PathBuf,
    },
    /// Rotate each secret the template gives a rotation schedule now, as Secrets Manager does:
    /// its rotation function's four steps in order, through `cargo lambda watch`.
    Rotate {
        #[command(flatten)]
        template: TemplateArgs,
        #[command(flatten)]
        stack: StackArgs,
        /// Lambda Invoke API endpoint (`cargo lambda watch`).
        #[arg(long, default_value = "http://127.0.0.1:9000")]
        invoke_url: String,
    },
    /// Serve the template's REST API locally in front of `cargo lambda watch`.
    Gateway {
        #[command(flatten)]
        template: TemplateArgs,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        /// Lambda Invoke API endpoint (`cargo lambda watch`).
        #[arg(long, default_value = "http://127.0.0.1:9000")]
        lambda: String,
        /// Accepted API key (repeat or comma-separate for several).
        #[arg(long = "api-key", env = "LOCAL_API_KEY", value_delimiter = ',', required = true)]
        api_keys: Vec<String>,
        /// Integration timeout in seconds (API Gateway's limit is 29).
        #[arg(long, default_value_t = 29)]
        integration_timeout: u64,
        /// The local IAM check whose outbox `GET /_local/outbox` shows.
        #[arg(long, env = "LOCAL_IAM_ENDPOINT")]
        iam_endpoint: Option<String>,
    },
}

fn env_region() -> String {
    std::env::var("AWS_REGION").or_else(|_| std::env::var("AWS_DEFAULT_REGION")).unwrap_or_else(|_| "us-east-1".into())
}

fn load(args: &TemplateArgs) -> Result<Template, String> {
    Template::load_with_overrides(&args.template, &args.parameter_overrides)
        .map(|t| t.with_region(env_region()))
        .map_err(|e| format!("{}: {e}", args.template.display()))
}

fn require_local_endpoint(service_var: &str) -> Result<(), String> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    if set(service_var) || set("AWS_ENDPOINT_URL") {
        Ok(())
    } else {
        Err(format!("{service_var} is not set; refusing to touch a real AWS account"))
    }
}

async fn admin_clients() -> Result<(aws_sdk_dynamodb::Client, aws_sdk_secretsmanager::Client), String> {
    require_local_endpoint("AWS_ENDPOINT_URL_DYNAMODB")?;
    require_local_endpoint("AWS_ENDPOINT_URL_SECRETS_MANAGER")?;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    Ok((aws_sdk_dynamodb::Client::new(&config), aws_sdk_secretsmanager::Client::new(&config)))
}

async fn setup(template: &TemplateArgs, stack: &StackArgs) -> Result<(), String> {
    let (dynamodb, secrets) = admin_clients().await?;
    let template = load(template)?;
    let stack = LocalStack::new(&stack.stack).map_err(|e| e.to_string())?;
    let resources = StackResources::create(&template, stack, &dynamodb, &secrets).await.map_err(|e| e.to_string())?;
    for kind in [localdev::stack::TABLE_TYPE, localdev::stack::SECRET_TYPE] {
        for id in template.resources_of_type(kind).map_err(|e| e.to_string())? {
            eprintln!("{id}: {}", resources.reference(&id).unwrap_or_default());
        }
    }
    Ok(())
}

async fn iam_proxy(
    template: &TemplateArgs,
    listen: SocketAddr,
    dynamodb: String,
    secrets_manager: String,
    record: Option<PathBuf>,
) -> Result<(), String> {
    let options = IamProxyOptions {
        template: template.template.clone(),
        parameter_overrides: template.parameter_overrides.clone(),
        region: env_region(),
        dynamodb,
        secrets_manager,
        record,
        log_denials: true,
    };
    let proxy = IamProxy::start(options, listen).await.map_err(|e| e.to_string())?;
    eprintln!("IAM check for {} on {}", template.template.display(), proxy.url());
    shutdown_signal().await;
    Ok(())
}

fn iam_table(template: &TemplateArgs) -> Result<(), String> {
    let transformed = localdev::iam::transformed(&template.template).map_err(|e| e.to_string())?;
    let cfn = Template::load_with_overrides(&transformed, &template.parameter_overrides).map_err(|e| e.to_string())?;
    print!("{}", localdev::iam::Policies::markdown(&cfn).map_err(|e| e.to_string())?);
    Ok(())
}

async fn run_function(
    template: &TemplateArgs,
    stack: &StackArgs,
    iam_endpoint: &str,
    command: &[String],
) -> Result<(), String> {
    use std::os::unix::process::CommandExt as _;

    let binary = PathBuf::from(&command[0]);
    let name = binary.file_name().and_then(|n| n.to_str()).ok_or("the first argument must be a binary")?;
    let template = load(template)?;
    let function = template.function_for_binary(name).map_err(|e| e.to_string())?;
    let stack = LocalStack::new(&stack.stack).map_err(|e| e.to_string())?;
    let (_, secrets) = admin_clients().await?;
    let resources = StackResources::discover(&template, stack, &secrets).await.map_err(|e| e.to_string())?;
    let env = template.lambda_environment(&function.logical_id, &resources, iam_endpoint).map_err(|e| e.to_string())?;
    // What the runtime emulator gives the process to reach it, as Lambda does.
    let runtime: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k == "AWS_LAMBDA_RUNTIME_API").collect();
    let error = std::process::Command::new(&binary).args(&command[1..]).env_clear().envs(env).envs(runtime).exec();
    Err(format!("cannot run {}: {error}", binary.display()))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    eprintln!("shutting down");
}

async fn gateway(
    template: &TemplateArgs,
    listen: SocketAddr,
    lambda: String,
    api_keys: Vec<String>,
    timeout: u64,
    iam_endpoint: Option<String>,
) -> Result<(), String> {
    let template = load(template)?;
    let options = GatewayOptions {
        lambda_endpoint: lambda,
        api_keys,
        integration_timeout: Duration::from_secs(timeout),
        iam_endpoint,
        ..GatewayOptions::default()
    };
    let gateway = Gateway::new(&template, options).map_err(|e| e.to_string())?;
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!("gateway for {} (stage {}) on http://{local}", gateway.api().logical_id, gateway.api().stage_name);
    for route in gateway.router().routes() {
        eprintln!("  {} {} -> {}", route.method, route.path, route.binary);
    }
    Arc::new(gateway).serve(listener, shutdown_signal()).await.map_err(|e| e.to_string())
}

async fn stream(
    template: &TemplateArgs,
    stack: &StackArgs,
    functions: Vec<String>,
    invoke_url: String,
    dynamodb: String,
    failures_dir: PathBuf,
) -> Result<(), String> {
    use localdev::stream::{run, Mapping, StreamFeed};

    let template = load(template)?;
    let stack = LocalStack::new(&stack.stack).map_err(|e| e.to_string())?;
    let functions = if functions.is_empty() {
        Mapping::all(&template).map_err(|e| e.to_string())?.into_iter().map(|m| m.function).collect()
    } else {
        functions
    };
    if functions.is_empty() {
        eprintln!("stream: no function has a DynamoDB event");
    }
    let mut running = tokio::task::JoinSet::new();
    for function in functions {
        let feed = StreamFeed::new(&template, &stack, &function, &dynamodb).await.map_err(|e| e.to_string())?;
        let mapping = feed.mapping();
        eprintln!(
            "stream: {} -> {function} ({}), batches of {}, {} filter(s)",
            feed.event_source_arn(),
            mapping.binary,
            mapping.batch_size,
            mapping.filters.len()
        );
        let (invoke_url, failures_dir) = (invoke_url.clone(), failures_dir.clone());
        running.spawn(async move { run(feed, &invoke_url, &failures_dir, std::future::pending()).await });
    }
    tokio::select! {
        () = shutdown_signal() => Ok(()),
        Some(ended) = running.join_next() => match ended {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        },
    }
}

async fn rotate(template: &TemplateArgs, stack: &StackArgs, invoke_url: &str) -> Result<(), String> {
    let template = load(template)?;
    let stack = LocalStack::new(&stack.stack).map_err(|e| e.to_string())?;
    let (_, secrets) = admin_clients().await?;
    let resources = StackResources::discover(&template, stack, &secrets).await.map_err(|e| e.to_string())?;
    for schedule in localdev::rotation::Schedule::all(&template).map_err(|e| e.to_string())? {
        let version = schedule.rotate(&template, &resources, invoke_url).await.map_err(|e| e.to_string())?;
        eprintln!("rotate: {} rotated by {} (version {version})", schedule.secret, schedule.function);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup { template, stack } => setup(&template, &stack).await,
        Command::IamProxy { template, listen, dynamodb, secrets_manager, record } => {
            iam_proxy(&template, listen, dynamodb, secrets_manager, record).await
        }
        Command::RunFunction { template, stack, iam_endpoint, command } => {
            run_function(&template, &stack, &iam_endpoint, &command).await
        }
        Command::IamTable { template } => iam_table(&template),
        Command::Stream { template, stack, functions, invoke_url, dynamodb, failures_dir } => {
            stream(&template, &stack, functions, invoke_url, dynamodb, failures_dir).await
        }
        Command::Binaries { template } => load(&template).and_then(|t| {
            t.functions().map_err(|e| e.to_string())?.iter().for_each(|f| println!("{}", f.binary));
            Ok(())
        }),
        Command::Rotate { template, stack, invoke_url } => rotate(&template, &stack, &invoke_url).await,
        Command::Gateway { template, listen, lambda, api_keys, integration_timeout, iam_endpoint } => {
            gateway(&template, listen, lambda, api_keys, integration_timeout, iam_endpoint).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("localdev: {message}");
            ExitCode::FAILURE
        }
    }
}
