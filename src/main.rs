//! The `hookgate` command line: `serve`, `check`.

use clap::{Parser, Subcommand};
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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,pingora_core=warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve { config } => serve(&config),
        Command::Check { config } => check(&config),
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

fn serve(path: &Path) -> ExitCode {
    let Some(config) = load(path) else {
        return ExitCode::FAILURE;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hookgate")
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookgate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let gateway = Gateway::start(&config).await?;
    // A stable line for people and scripts (tests read the real port from it).
    println!("hookgate: ingress listening on {}", gateway.ingress_addr);
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    tracing::info!("shutting down");
    gateway.shutdown().await
}
