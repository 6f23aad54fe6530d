//! `localdev`: set up, configure and front the local stack from `template.yaml`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use localdev::environment::{render_env_file, AWS_VARIABLES};
use localdev::gateway::{Gateway, GatewayOptions};
use localdev::{LocalNames, Template};

#[derive(Parser)]
#[command(version, about = "Local development stack derived from template.yaml")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct TemplateArgs {
    /// SAM template.
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// Parameter overrides, as for `sam deploy --parameter-overrides` ("Name=Value Name2=Value2").
    #[arg(long, env = "PARAMETER_OVERRIDES", default_value = "")]
    parameter_overrides: String,
}

#[derive(Args)]
struct NameArgs {
    /// Local DynamoDB table name.
    #[arg(long, env = "TABLE_NAME")]
    table: String,
    /// Local Secrets Manager secret name (the signing key).
    #[arg(long, env = "SIGNING_KEY_SECRET_ID")]
    secret: String,
}

#[derive(Subcommand)]
enum Command {
    /// Create the table (DynamoDB Local) and the signing-key secret (moto) unless they exist.
    Setup {
        #[command(flatten)]
        template: TemplateArgs,
        #[command(flatten)]
        names: NameArgs,
    },
    /// Write the functions' environment as KEY=VALUE lines for `cargo lambda watch --env-file`.
    EnvFile {
        #[command(flatten)]
        template: TemplateArgs,
        #[command(flatten)]
        names: NameArgs,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
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
        Err(format!("{service_var} is not set; refusing to create resources in a real AWS account"))
    }
}

async fn setup(template: &TemplateArgs, names: &NameArgs) -> Result<(), String> {
    require_local_endpoint("AWS_ENDPOINT_URL_DYNAMODB")?;
    require_local_endpoint("AWS_ENDPOINT_URL_SECRETS_MANAGER")?;
    let template = load(template)?;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let table = template.table_definition().map_err(|e| e.to_string())?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let created = table.ensure(&dynamodb, &names.table).await.map_err(|e| e.to_string())?;
    eprintln!("table {}: {}", names.table, if created { "created" } else { "exists" });
    let secret = template.secret_spec().map_err(|e| e.to_string())?;
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let created = secret.ensure(&secrets, &names.secret).await.map_err(|e| e.to_string())?;
    eprintln!("secret {}: {}", names.secret, if created { "created" } else { "exists" });
    Ok(())
}

fn env_file(template: &TemplateArgs, names: &NameArgs, out: Option<&PathBuf>) -> Result<(), String> {
    let template = load(template)?;
    let local = LocalNames { table_name: names.table.clone(), secret_name: names.secret.clone() };
    let mut vars: BTreeMap<String, String> = template.runtime_environment().map_err(|e| e.to_string())?;
    vars.extend(template.function_environment(&local).map_err(|e| e.to_string())?);
    for name in AWS_VARIABLES {
        if let Ok(value) = std::env::var(name) {
            vars.insert((*name).to_owned(), value);
        }
    }
    let text = render_env_file(&vars);
    match out {
        None => std::io::stdout().write_all(text.as_bytes()).map_err(|e| e.to_string()),
        Some(path) => {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text)
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| format!("{}: {e}", path.display()))
        }
    }
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
) -> Result<(), String> {
    let template = load(template)?;
    let options = GatewayOptions {
        lambda_endpoint: lambda,
        api_keys,
        integration_timeout: Duration::from_secs(timeout),
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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup { template, names } => setup(&template, &names).await,
        Command::EnvFile { template, names, out } => env_file(&template, &names, out.as_ref()),
        Command::Gateway { template, listen, lambda, api_keys, integration_timeout } => {
            gateway(&template, listen, lambda, api_keys, integration_timeout).await
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
