//! `jira-sync-host`: run the jira-sync component from the command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use jira_sync_host::real_http::{HttpLimits, RealHttp};
use jira_sync_host::replay::replay_in;
use jira_sync_host::scripted::ScriptedHttp;
use jira_sync_host::{Runtime, Scenario, World, bundled_component};

#[derive(Parser)]
#[command(version, about = "Host the jira-sync WebAssembly component")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Play a scenario file against the component and print its JSON trace.
    Replay {
        /// The scenario (see README.md for its format).
        scenario: PathBuf,
        /// A component other than the one built from this workspace.
        #[arg(long)]
        component: Option<PathBuf>,
        /// Send real HTTP requests to the installation's base URL instead of the script.
        #[arg(long)]
        real_http: bool,
        /// Timeout of one real request, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        http_timeout_ms: u64,
        /// Largest real response body accepted, in bytes.
        #[arg(long, default_value_t = 1024 * 1024)]
        max_response_bytes: u64,
    },
    /// List the component's imports.
    Imports {
        #[arg(long)]
        component: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jira-sync-host: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Replay {
            scenario,
            component,
            real_http,
            http_timeout_ms,
            max_response_bytes,
        } => {
            let text = std::fs::read_to_string(&scenario)
                .with_context(|| format!("read {}", scenario.display()))?;
            let scenario = Scenario::from_json(&text)
                .with_context(|| format!("{} is not a valid scenario", scenario.display()))?;
            let runtime = Runtime::load(&component.unwrap_or_else(bundled_component))?;
            let world = if real_http {
                let limits = HttpLimits {
                    timeout: Duration::from_millis(http_timeout_ms),
                    max_response_bytes,
                };
                World::with_http(
                    &scenario,
                    Arc::new(RealHttp::new(limits)),
                    Arc::new(ScriptedHttp::new(Vec::new())),
                )
            } else {
                World::new(&scenario)
            };
            let trace = replay_in(&runtime, &scenario, &world);
            println!("{}", serde_json::to_string_pretty(&trace)?);
        }
        Command::Imports { component } => {
            let runtime = Runtime::load(&component.unwrap_or_else(bundled_component))?;
            for import in runtime.imports() {
                println!("{import}");
            }
        }
    }
    Ok(())
}
