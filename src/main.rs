//! The `hookgate` command line: `serve`, `check`, `repair`, `transform run`.

use clap::{Parser, Subcommand};
use hookgate::pipeline::sample::payload_from_sample;
use hookgate::pipeline::transform::Transformation;
use hookgate::pipeline::view::transform_input;
use hookgate::{Config, Gateway};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser)]
#[command(name = "hookgate", version, about = "A self-hosted webhook gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway described by a config file.
    Serve {
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
    },
    /// Validate a config file; prints every problem with its file, line and key.
    Check {
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
    },
    /// Set aside damaged bytes of the request journal (a start names them),
    /// keeping every whole record; the gateway must be stopped.
    Repair {
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
    },
    /// Work with JavaScript transformations.
    Transform {
        #[command(subcommand)]
        command: TransformCommand,
    },
}

#[derive(Subcommand)]
enum TransformCommand {
    /// Run a transformation on a sample request; prints the result and the logs.
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

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("\"{text}\" is not KEY=VALUE"))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        // Colours only for people: logs piped to files or collectors stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,pingora_core=warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve { config } => serve(&config),
        Command::Check { config } => check(&config),
        Command::Repair { config } => repair(&config),
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

fn serve(path: &Path) -> ExitCode {
    let Some(config) = load(path) else {
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

/// SIGHUP: serves the config file anew, or keeps the running config and says
/// what is wrong with the file.
async fn reload(gateway: &Gateway, path: &Path) {
    let result = match Config::load(path) {
        Ok(config) => gateway.reload(config).await.map_err(|e| format!("{e:#}")),
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
    let limits = hookgate::config::LimitsSection::default().transform_limits();
    let transformation = Transformation::new(
        &name,
        &read(code_file)?,
        env.into_iter().collect(),
        limits,
        1,
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
