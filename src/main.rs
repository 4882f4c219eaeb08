//! The `hookgate` command line: `serve`, `check`, `repair`, `test`, `requests export`,
//! `listen`, `transform run`, `completions`.

use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;
use hookgate::config::LogFormat;
use hookgate::pipeline::sample::payload_from_sample;
use hookgate::pipeline::transform::{self, Admission, PoolSettings, Transformation, WorkerPool};
use hookgate::pipeline::view::transform_input;
use hookgate::{rule_tests, Config, Gateway};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser)]
#[command(
    name = "hookgate",
    version,
    about = "A self-hosted webhook gateway",
    after_help = "Examples:\n  hookgate serve --config gateway.toml\n  hookgate check --config gateway.toml\n  hookgate test --config gateway.toml tests/rules/\n  hookgate listen --key $KEY --source shop --to http://localhost:3000\n  hookgate completions bash > /etc/bash_completion.d/hookgate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The `--config` argument of the commands that read a config file.
#[derive(clap::Args)]
struct ConfigFile {
    /// The config file.
    #[arg(long, default_value = "gateway.toml")]
    config: PathBuf,
}

/// `hookgate serve`'s arguments.
#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    file: ConfigFile,
    /// How the log is written (overrides `server.log_format`).
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway described by a config file.
    #[command(
        after_help = "Example:\n  hookgate serve --config gateway.toml\n  (SIGHUP reloads the file; SIGTERM drains and exits)"
    )]
    Serve(ServeArgs),
    /// Validate a config file; prints every problem with its file, line and key.
    #[command(
        after_help = "Example:\n  hookgate check --config gateway.toml\n  gateway.toml:19:10: connections[0].source: unknown source \"shpo\" (declared: \"shop\")"
    )]
    Check(ConfigFile),
    /// Set aside damaged bytes of the request journal (a start names them),
    /// keeping every whole record; the gateway must be stopped.
    #[command(
        after_help = "Example:\n  hookgate repair --config gateway.toml\n  (after a start that said: journal segment … damaged at byte N)"
    )]
    Repair(ConfigFile),
    /// Work with JavaScript transformations.
    #[command(
        after_help = "Example:\n  hookgate transform run rules/shopify-compact-order.js --request fixtures/shopify/request.json"
    )]
    Transform {
        #[command(subcommand)]
        command: TransformCommand,
    },
    /// Run recorded requests through the config's rules; a table of what
    /// passed, the differences of what failed (exit 1).
    #[command(
        after_help = "Example:\n  hookgate test --config gateway.toml tests/rules/\n  (no PATH: tests/rules beside the config file)"
    )]
    Test {
        #[command(flatten)]
        file: ConfigFile,
        /// Recorded request files, or directories of them (`*.json`, walked).
        paths: Vec<PathBuf>,
    },
    /// Work with the requests a running gateway stored.
    #[command(
        after_help = "Example:\n  hookgate requests export req_2xGf… --api http://127.0.0.1:8081 --key $KEY > tests/rules/order.json"
    )]
    Requests {
        #[command(subcommand)]
        command: RequestsCommand,
    },
    /// Deliver a source's events to a local server: through a CLI
    /// destination of a running gateway (created when absent, named after
    /// you), each local answer recorded as the event's attempt.
    #[command(
        after_help = "Examples:\n  hookgate listen --api http://127.0.0.1:8081 --key $KEY --source shop --to http://localhost:3000 --path /webhooks\n  2026-12-04T10:31:33.120Z  200  POST /webhooks/orders  12 ms  evt_…\n  hookgate listen --key $KEY --destination laptop --to http://localhost:3000"
    )]
    Listen(ListenArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  hookgate completions bash > /etc/bash_completion.d/hookgate\n  hookgate completions zsh > \"${fpath[1]}/_hookgate\"\n  hookgate completions fish > ~/.config/fish/completions/hookgate.fish"
    )]
    Completions {
        /// The shell to complete for.
        shell: Shell,
    },
    /// Internal: a process that runs transformations for a gateway, speaking
    /// on stdin and stdout. Started by the gateway, not by people.
    #[command(hide = true)]
    TransformWorker {
        /// Address-space limit set on the process at start.
        #[arg(long)]
        max_memory_bytes: u64,
    },
}

/// `hookgate listen`'s arguments.
#[derive(clap::Args)]
struct ListenArgs {
    /// The gateway's management API.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    api: String,
    /// An API key (else the HOOKGATE_API_KEY environment variable).
    #[arg(long)]
    key: Option<String>,
    /// The source whose events to receive (its name), through your own
    /// CLI destination.
    #[arg(long, required_unless_present = "destination")]
    source: Option<String>,
    /// Instead of --source: an existing CLI destination to listen on (its
    /// name or id, e.g. one declared in gateway.toml); nothing is created.
    #[arg(long, conflicts_with_all = ["source", "path", "name"])]
    destination: Option<String>,
    /// The local server to deliver to.
    #[arg(long)]
    to: url::Url,
    /// The path under `--to` events go to (the CLI destination's `cli_path`;
    /// the forwarded path follows it).
    #[arg(long, default_value = "/")]
    path: String,
    /// Names the CLI destination (`cli-NAME`) and its connection
    /// (`SOURCE-cli-NAME`); defaults to $USER.
    #[arg(long)]
    name: Option<String>,
}

#[derive(Subcommand)]
enum TransformCommand {
    /// Run a transformation on a sample request; prints the result and the logs.
    #[command(
        after_help = "Example:\n  hookgate transform run rules/add-header-from-body.js --request fixtures/stripe/request.json --env HEADER=x-kind"
    )]
    Run {
        /// The JavaScript file (`addHandler('transform', (request, context) => …)`).
        code_file: PathBuf,
        /// A sample request: {"method", "url", "headers", "body"} as in fixtures/.
        #[arg(long)]
        request: PathBuf,
        /// `process.env` entries, KEY=VALUE, repeatable.
        #[arg(long = "env", value_parser = parse_env)]
        env: Vec<(String, String)>,
    },
}

#[derive(Subcommand)]
enum RequestsCommand {
    /// Write a stored request as a recorded request for `hookgate test`,
    /// expecting what happened to it.
    #[command(
        after_help = "Example:\n  HOOKGATE_API_KEY=$KEY hookgate requests export req_2xGf… > tests/rules/order.json"
    )]
    Export {
        /// The request's id (`req_…`).
        id: String,
        /// The gateway's management API.
        #[arg(long, default_value = "http://127.0.0.1:8081")]
        api: String,
        /// An API key (else the HOOKGATE_API_KEY environment variable).
        #[arg(long)]
        key: Option<String>,
    },
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("\"{text}\" is not KEY=VALUE"))
}

/// pingora logs a request it cannot parse at ERROR with its raw bytes,
/// credentials (`Authorization`) included. Such a request is the client's
/// fault and answered 400: the log keeps neither its secrets nor the noise
/// any client on the internet could make.
const UNREADABLE_REQUESTS_UNLOGGED: &str = "pingora_core::apps::http_app=off";

/// Logs to stderr from now on, in `format`.
fn start_logging(format: LogFormat) {
    let logger = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,pingora_core=warn".into())
                .add_directive(UNREADABLE_REQUESTS_UNLOGGED.parse().expect("a directive")),
        );
    match format {
        // Colours only for people: logs piped to files or collectors stay plain.
        LogFormat::Text => logger
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // One object per line, the event's fields at the top level beside
        // those of the spans it happened in (request_id, event_id, …).
        LogFormat::Json => logger.json().flatten_event(true).init(),
    }
}

fn main() -> ExitCode {
    let command = Cli::parse().command;
    if !matches!(command, Command::Serve(_)) {
        start_logging(LogFormat::Text);
    }
    match command {
        Command::Serve(args) => serve(&args),
        Command::Check(file) => check(&file.config),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "hookgate",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Repair(file) => repair(&file.config),
        Command::Test { file, paths } => test(&file.config, paths),
        Command::Requests {
            command: RequestsCommand::Export { id, api, key },
        } => export(&id, &api, key),
        Command::Listen(args) => listen(args),
        Command::Transform {
            command:
                TransformCommand::Run {
                    code_file,
                    request,
                    env,
                },
        } => match transform_run(&code_file, &request, env) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("hookgate: {message}");
                ExitCode::FAILURE
            }
        },
        Command::TransformWorker { max_memory_bytes } => {
            match transform::worker::serve(max_memory_bytes) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("hookgate transform-worker: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn load(path: &Path) -> Option<Config> {
    match Config::load(path) {
        Ok(config) => Some(config),
        Err(errors) => {
            eprintln!("{errors}");
            None
        }
    }
}

fn check(path: &Path) -> ExitCode {
    match load(path) {
        Some(config) => {
            for warning in &config.warnings {
                eprintln!("warning: {warning}");
            }
            println!(
                "{}: ok ({} sources, {} destinations, {} connections)",
                path.display(),
                config.sources.len(),
                config.destinations.len(),
                config.connections.len()
            );
            ExitCode::SUCCESS
        }
        None => ExitCode::FAILURE,
    }
}

fn repair(path: &Path) -> ExitCode {
    let Some(config) = load(path) else {
        return ExitCode::FAILURE;
    };
    let data_dir = &config.server.data_dir;
    match hookgate::store::Store::repair_journal(data_dir) {
        Ok(repaired) if repaired.is_empty() => {
            println!("{}: the request journal is whole", data_dir.display());
            ExitCode::SUCCESS
        }
        Ok(repaired) => {
            for set_aside in repaired {
                let outcome = match set_aside.records_follow {
                    true => "whole records after them kept",
                    false => "they ran to the end: cut off",
                };
                println!(
                    "{}: {} bad bytes at byte {} set aside in {} ({outcome})",
                    set_aside.segment.display(),
                    set_aside.len,
                    set_aside.offset,
                    set_aside.kept.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!(
                "hookgate: repairing the request journal in {} (is a gateway still running on it?): {error}",
                data_dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// `hookgate test`: exit 1 when a recorded request fails (or cannot run).
fn test(path: &Path, mut paths: Vec<PathBuf>) -> ExitCode {
    let Some(config) = load(path) else {
        return ExitCode::FAILURE;
    };
    if paths.is_empty() {
        paths.push(path.parent().unwrap_or(Path::new(".")).join("tests/rules"));
    }
    let files = match rule_tests::case_files(&paths) {
        Ok(files) if files.is_empty() => {
            eprintln!("hookgate: no recorded requests (*.json) in {paths:?}");
            return ExitCode::FAILURE;
        }
        Ok(files) => files,
        Err(error) => {
            eprintln!("hookgate: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut replay = rule_tests::replay::Replay::new(&config);
    let results = rule_tests::run(&mut replay, &files, hookgate::ids::now_ms());
    match rule_tests::report(&results, &mut std::io::stdout()) {
        Ok(true) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// The API key given, else HOOKGATE_API_KEY's.
fn api_key(given: Option<String>) -> Option<String> {
    let key = given.or_else(|| std::env::var("HOOKGATE_API_KEY").ok());
    if key.is_none() {
        eprintln!("hookgate: give --key or set HOOKGATE_API_KEY");
    }
    key
}

/// A runtime for the commands that call a gateway's API.
fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `hookgate requests export`: the recorded request on stdout.
fn export(id: &str, api: &str, key: Option<String>) -> ExitCode {
    let Some(key) = api_key(key) else {
        return ExitCode::FAILURE;
    };
    let runtime = client_runtime();
    let api = rule_tests::export::Api::new(api, &key);
    match runtime.block_on(rule_tests::export::export(&api, id)) {
        Ok(case) => {
            let text = serde_json::to_string_pretty(&case).expect("a recorded request serializes");
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("hookgate: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `hookgate listen`: runs until interrupted, or a failure connecting again
/// would not mend (exit 1).
fn listen(args: ListenArgs) -> ExitCode {
    use hookgate::listen::Target;
    let Some(key) = api_key(args.key) else {
        return ExitCode::FAILURE;
    };
    let target = match (args.destination, args.source) {
        (Some(destination), _) => Target::Destination(destination),
        (None, source) => Target::Source {
            source: source.expect("clap requires --source without --destination"),
            path: args.path,
            name: (args.name.or_else(|| std::env::var("USER").ok()))
                .unwrap_or_else(|| "cli".into()),
        },
    };
    let options = hookgate::listen::Options {
        api: args.api,
        key,
        target,
        to: args.to,
    };
    match client_runtime().block_on(hookgate::listen::run(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("hookgate listen: {failure}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    let path = &args.file.config;
    let config = load(path);
    // Set by the file, which must be read first: what goes wrong reading
    // it is told as text.
    let configured = config.as_ref().map(|c| c.server.log_format);
    start_logging(args.log_format.or(configured).unwrap_or_default());
    let Some(config) = config else {
        return ExitCode::FAILURE;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hookgate")
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(config, path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookgate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config, path: &Path) -> anyhow::Result<()> {
    // Before anything is announced: a SIGHUP sent as soon as the ingress
    // answers must reload, not kill the process (SIGHUP's default).
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    log_warnings(&config);
    let gateway = Gateway::start(&config).await?;
    // A stable line for people and scripts (tests read the real port from it).
    println!("hookgate: ingress listening on {}", gateway.ingress_addr);
    if let Some(api) = gateway.api_addr {
        println!("hookgate: management API listening on {api}");
    }
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => reload(&gateway, path).await,
        }
    }
    tracing::info!("shutting down");
    gateway.shutdown().await
}

/// What loads but is questionable in the config, once per load.
fn log_warnings(config: &Config) {
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
}

/// SIGHUP: serves the config file anew, or keeps the running config and says
/// what is wrong with the file.
async fn reload(gateway: &Gateway, path: &Path) {
    let result = match Config::load(path) {
        Ok(config) => {
            log_warnings(&config);
            gateway.reload(config).await.map_err(|e| format!("{e:#}"))
        }
        Err(errors) => Err(errors.to_string()),
    };
    match result {
        Ok(()) => tracing::info!(config = %path.display(), "config reloaded"),
        Err(error) => tracing::error!(
            config = %path.display(),
            "config not reloaded, the previous one stays in use:\n{error}"
        ),
    }
}

/// `hookgate transform run`: the transformation as the router runs it, on one sample.
fn transform_run(
    code_file: &Path,
    request: &Path,
    env: Vec<(String, String)>,
) -> Result<(), String> {
    let read =
        |path: &Path| std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()));
    let payload =
        payload_from_sample(&read(request)?).map_err(|e| format!("{}: {e}", request.display()))?;
    let name = code_file.display().to_string();
    let defaults = hookgate::config::LimitsSection::default();
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let pool = WorkerPool::shared(PoolSettings {
        workers: 1,
        ..defaults.transform_pool(exe)
    });
    let transformation = Transformation::new(
        &pool,
        &name,
        &read(code_file)?,
        env.into_iter().collect(),
        defaults.transform_limits(),
        Admission::Wait,
    )
    .map_err(|e| format!("{name}: {e}"))?;
    let context = serde_json::json!({ "connection": { "id": "web_cli", "name": "cli" } });
    let (result, logs) = match transformation.run(&transform_input(&payload), &context) {
        Ok(output) => (Ok(output.request), output.logs),
        Err(failure) => (Err(failure.error.to_string()), failure.logs),
    };
    let printed = serde_json::json!({ "request": result.as_ref().ok(), "error": result.as_ref().err(), "logs": logs });
    println!(
        "{}",
        serde_json::to_string_pretty(&printed).expect("JSON values serialize")
    );
    result.map(drop).map_err(|e| format!("{name}: {e}"))
}
