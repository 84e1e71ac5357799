//! `jira-sync-host`: run the jira-sync component from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use jira_sync_host::{Runtime, Scenario, bundled_component, replay};

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
        } => {
            let text = std::fs::read_to_string(&scenario)
                .with_context(|| format!("read {}", scenario.display()))?;
            let scenario = Scenario::from_json(&text)
                .with_context(|| format!("{} is not a valid scenario", scenario.display()))?;
            let runtime = Runtime::load(&component.unwrap_or_else(bundled_component))?;
            let trace = replay(&runtime, &scenario);
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
