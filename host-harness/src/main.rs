//! `jira-sync-host`: run the jira-sync component from the command line. A thin layer: each
//! command parses its arguments and calls the library.

use std::borrow::Cow;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use jira_sync_host::backends::{HttpLimits, RealHttp, ScriptedHttp};
use jira_sync_host::replay::{recording_mismatch, replay_in};
use jira_sync_host::runtime::Allocation;
use jira_sync_host::server::{self, LogFormat, Server, ServerConfig};
use jira_sync_host::sim::{SimWorld, Simulator};
use jira_sync_host::{BUNDLED_COMPONENT, Runtime, Scenario, World};
use jira_sync_host::{bench, demo, load};

/// Why mimalloc: Cargo.toml, beside the dependency.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about = "Host the jira-sync WebAssembly component")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What `load` measures.
#[derive(Subcommand)]
enum LoadKind {
    /// Signed webhooks with full effects from many connections.
    Webhooks {
        #[arg(long, default_value_t = 20_000)]
        count: usize,
        /// Connections in all, shared out among the servers (at least one each).
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// `serve` processes to start; the webhooks go to them round robin, as a load
        /// balancer would spread them.
        #[arg(long, default_value_t = 1)]
        servers: usize,
        /// A postgres:// URL the servers share, as several servers of one deployment do (the
        /// run creates a schema of its own there and drops it at the end). Without it each
        /// server keeps its state in a SQLite file of its own.
        #[arg(long)]
        database: Option<String>,
        /// A redis:// URL the servers share as the guest's cache (under a key prefix of the
        /// run's own, deleted at the end). Without it each server caches in memory. These
        /// webhooks show the assignee's email, so they make no Jira call and read no cache.
        #[arg(long)]
        cache: Option<String>,
        /// Record every call as a scenario file (docs/behaviour.md#12), to measure its cost.
        #[arg(long)]
        record: bool,
    },
    /// Outbound syncs issued at once against a slow simulated Jira.
    Syncs {
        #[arg(long, default_value_t = 1_000)]
        count: usize,
        #[arg(long, default_value_t = 500)]
        latency_ms: u64,
        /// Concurrent component calls for the server (`workers`).
        #[arg(long, default_value_t = 1_024)]
        workers: usize,
    },
    /// Connections that send headers and stall, against a normal webhook's answer time.
    Stall {
        #[arg(long, default_value_t = 200)]
        connections: usize,
    },
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
    /// Measure the component against its core called natively, and print a Markdown table.
    Bench {
        /// Runs per measured batch.
        #[arg(long, default_value_t = 2_000)]
        iterations: usize,
        #[arg(long)]
        component: Option<PathBuf>,
        /// Print JSON instead.
        #[arg(long)]
        json: bool,
        /// Measure one part only (e.g. to profile it).
        #[arg(long, value_enum)]
        only: Option<bench::Section>,
    },
    /// List the component's imports.
    Imports {
        #[arg(long)]
        component: Option<PathBuf>,
    },
    /// The seed's round trip between the Jira simulator and the webhook server, as a timeline.
    Demo {
        /// Print the timeline and summary as JSON.
        #[arg(long)]
        json: bool,
        #[arg(long)]
        component: Option<PathBuf>,
        /// Record every component call of the demo's installation as a scenario file under
        /// this directory (replay each with `replay`).
        #[arg(long)]
        record: Option<PathBuf>,
        /// With `--record`: replace emails, account ids and display names by pseudonyms.
        #[arg(long, requires = "record")]
        pseudonymise: bool,
    },
    /// Serve Jira's webhooks and the platform's admin API over HTTP.
    Serve {
        /// A TOML file (README.md lists the keys); every key is optional, and every key may
        /// also come from a JIRA_SYNC_<KEY> environment variable, which wins.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Overrides the config's `listen`.
        #[arg(long)]
        listen: Option<String>,
        /// Overrides the config's `database`: a SQLite file or a postgres:// URL.
        #[arg(long)]
        database: Option<String>,
    },
    /// Measure a `serve` process from outside over loopback and print the figures as JSON.
    Load {
        #[command(subcommand)]
        what: LoadKind,
        /// The server binary to measure (default: this one), e.g. an older build.
        #[arg(long, global = true)]
        server_bin: Option<PathBuf>,
    },
    /// Run the Jira Cloud simulator until interrupted.
    Sim {
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: String,
        /// The site's data as JSON (default: the demo's world).
        #[arg(long)]
        world: Option<PathBuf>,
        /// Where to send `issue_updated` webhooks.
        #[arg(long)]
        webhook_url: Option<String>,
    },
    /// Check an installation's status mappings against its Jira site through a running server's
    /// admin API: per mapped project and issue type, whether each mapped status exists and can
    /// be reached. Fails when any mapping needs attention.
    Check {
        /// The server's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
        /// The installation's client key.
        client_key: String,
        /// The server's `admin_token`, if it has one.
        #[arg(long, env = "JIRA_SYNC_ADMIN_TOKEN")]
        token: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Record an installation's component calls as scenario files on a running server
    /// (docs/behaviour.md#12): start a session, show it, or stop it; prints the session.
    Record {
        /// The server's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
        /// start | show | stop
        #[arg(value_enum)]
        action: RecordAction,
        /// The installation's client key.
        client_key: String,
        /// With `start`: bytes of files the session may write (the server's default: 16 MiB).
        #[arg(long)]
        max_bytes: Option<u64>,
        /// With `start`: replace emails, account ids and display names by pseudonyms.
        #[arg(long)]
        pseudonymise: bool,
        /// The server's `admin_token`, if it has one.
        #[arg(long, env = "JIRA_SYNC_ADMIN_TOKEN")]
        token: Option<String>,
    },
    /// Resolve, unresolve, assign or unassign a group through a running server's admin API.
    Group {
        /// The server's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
        /// resolve | unresolve | assign | unassign
        action: String,
        group: u64,
        /// The platform user to assign (for `assign`).
        #[arg(long)]
        user: Option<u64>,
        /// The server's `admin_token`, if it has one.
        #[arg(long, env = "JIRA_SYNC_ADMIN_TOKEN")]
        token: Option<String>,
        /// Return once the change is recorded, without waiting for retries of failed pushes.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for retries before giving up (seconds).
        #[arg(long, default_value_t = 120)]
        wait_seconds: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server narrates its calls; the other commands print their own report and stay quiet.
    let (default_filter, json) = match &cli.command {
        Command::Serve { config, .. } => {
            let json = ServerConfig::from_sources(config.as_deref(), std::env::vars())
                .is_ok_and(|c| c.log_format == LogFormat::Json);
            ("warn,jira_sync=info", json)
        }
        Command::Sim { .. } => ("warn,jira_sync=info", false),
        _ => ("warn", false),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes belong on a terminal, not in a file or a log pipeline.
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
    match run(cli) {
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
            let limits = real_http.then_some(HttpLimits {
                timeout: Duration::from_millis(http_timeout_ms),
                max_response_bytes,
            });
            replay(&scenario, &component_bytes(component)?, limits)
        }
        Command::Load { what, server_bin } => {
            let binary = match server_bin {
                Some(binary) => binary,
                None => std::env::current_exe().context("find this binary")?,
            };
            let figures = match what {
                LoadKind::Webhooks {
                    count,
                    connections,
                    servers,
                    database,
                    cache,
                    record,
                } => load::webhooks(
                    &binary,
                    count,
                    connections,
                    &load::Cluster {
                        servers,
                        database,
                        cache,
                        record,
                    },
                )?,
                LoadKind::Syncs {
                    count,
                    latency_ms,
                    workers,
                } => load::syncs(
                    &binary,
                    count,
                    Duration::from_millis(latency_ms),
                    &[
                        ("workers", workers.to_string()),
                        ("queue", workers.to_string()),
                    ],
                )?,
                LoadKind::Stall { connections } => load::stall(&binary, connections)?,
            };
            println!("{}", serde_json::to_string_pretty(&figures)?);
            Ok(())
        }
        Command::Demo {
            json,
            component,
            record,
            pseudonymise,
        } => {
            let runtime = Arc::new(compile(component)?);
            let record = record.map(|directory| demo::Recording {
                directory,
                pseudonymise,
            });
            let report = demo::run(runtime, record.as_ref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", demo::render(&report));
            }
            Ok(())
        }
        Command::Serve {
            config,
            listen,
            database,
        } => serve(config, listen, database),
        Command::Sim {
            listen,
            world,
            webhook_url,
        } => sim(&listen, world, webhook_url),
        Command::Group {
            server,
            action,
            group,
            user,
            token,
            no_wait,
            wait_seconds,
        } => {
            let admin = Admin::new(server, token);
            let pushed = admin.change_group(&action, group, user)?;
            if no_wait {
                return Ok(());
            }
            admin.wait_for_pushes(group, &pushed, Duration::from_secs(wait_seconds))
        }
        Command::Check {
            server,
            client_key,
            token,
            json,
        } => {
            let admin = Admin::new(server, token);
            let path = format!(
                "/admin/installations/{}/check",
                jira_sync_plugin::qsh::encode(&client_key)
            );
            let answer = admin.call("GET", &path, "")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                print!("{}", server::check::render(&answer));
            }
            match answer["problems"].as_u64() {
                Some(0) => Ok(()),
                Some(n) => anyhow::bail!("{n} mapped status(es) need attention"),
                None => anyhow::bail!("the server's answer has no problem count: {answer}"),
            }
        }
        Command::Record {
            server,
            action,
            client_key,
            max_bytes,
            pseudonymise,
            token,
        } => {
            let admin = Admin::new(server, token);
            let path = format!(
                "/admin/installations/{}/recording",
                jira_sync_plugin::qsh::encode(&client_key)
            );
            let answer = match action {
                RecordAction::Start => {
                    let mut body = serde_json::json!({"pseudonymise": pseudonymise});
                    if let Some(max_bytes) = max_bytes {
                        body["max_bytes"] = max_bytes.into();
                    }
                    admin.call("PUT", &path, &body.to_string())?
                }
                RecordAction::Show => admin.call("GET", &path, "")?,
                RecordAction::Stop => admin.call("DELETE", &path, "")?,
            };
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(())
        }
        Command::Bench {
            iterations,
            component,
            json,
            only,
        } => {
            let rows = bench::run(&component_bytes(component)?, iterations, only)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", bench::render(&rows));
            }
            Ok(())
        }
        Command::Imports { component } => {
            let runtime = compile(component)?;
            for import in runtime.imports() {
                println!("{import}");
            }
            Ok(())
        }
    }
}

/// The component at `path`, or the one embedded in this binary.
fn component_bytes(path: Option<PathBuf>) -> anyhow::Result<Cow<'static, [u8]>> {
    match path {
        Some(path) => Ok(Cow::Owned(
            std::fs::read(&path).with_context(|| format!("read {}", path.display()))?,
        )),
        None => Ok(Cow::Borrowed(BUNDLED_COMPONENT)),
    }
}

fn compile(path: Option<PathBuf>) -> anyhow::Result<Runtime> {
    Runtime::from_bytes(&component_bytes(path)?, Default::default())
}

/// `replay`: the scenario's trace, with Jira scripted or (given `real_http`) real.
fn replay(scenario: &Path, component: &[u8], real_http: Option<HttpLimits>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(scenario)
        .with_context(|| format!("read {}", scenario.display()))?;
    let parsed = Scenario::from_json(&text)
        .with_context(|| format!("{} is not a valid scenario", scenario.display()))?;
    let runtime = Runtime::from_bytes(component, Default::default())?;
    let world = match real_http {
        Some(limits) => World::with_http(
            &parsed,
            Arc::new(RealHttp::new(limits)),
            Arc::new(ScriptedHttp::new(Vec::new())),
        ),
        None => World::new(&parsed),
    };
    let trace = replay_in(&runtime, &parsed, &world);
    println!("{}", serde_json::to_string_pretty(&trace)?);
    // A recorded scenario says what its calls did: replay must do the same (with the script;
    // a real site answers as it answers now).
    match recording_mismatch(&parsed, &trace) {
        Some(difference) if real_http.is_none() => {
            anyhow::bail!("the replay differs from the recording:\n{difference}")
        }
        _ => Ok(()),
    }
}

/// `serve`: the webhook server and admin API until interrupted.
fn serve(
    config: Option<PathBuf>,
    listen: Option<String>,
    database: Option<String>,
) -> anyhow::Result<()> {
    let mut config = ServerConfig::from_sources(config.as_deref(), std::env::vars())?;
    config.listen = listen.unwrap_or(config.listen);
    config.database = database.or(config.database);
    // Refused configurations fail before anything is written.
    config.check()?;
    let component = component_bytes(config.component.clone())?;
    let runtime = Arc::new(Runtime::cached_with(
        &component,
        &config.cache_path(),
        Allocation::Pooling {
            slots: config.workers as u32,
        },
    )?);
    let (store, state) = server::open_store(&config)?;
    let http = Arc::new(RealHttp::new(HttpLimits {
        timeout: Duration::from_millis(config.http_timeout_ms),
        max_response_bytes: config.max_response_bytes,
    }));
    let server = Server::start(&config, runtime, store, http, None)?;
    // Listening before saying so: a signal sent as soon as the address is out must not find
    // the default action (which kills the process) still in place.
    let mut termination = Termination::listen()?;
    eprintln!(
        "jira-sync-host: serving on {} (state in {state})",
        server.url()
    );
    termination.wait()?;
    eprintln!(
        "jira-sync-host: shutting down; finishing requests in flight (signal again to stop now)"
    );
    // A second signal means the operator will not wait for the grace period.
    std::thread::spawn(move || {
        if termination.wait().is_ok() {
            eprintln!("jira-sync-host: stopping now; requests in flight are cut off");
            std::process::exit(130);
        }
    });
    server.shutdown();
    Ok(())
}

/// `sim`: the Jira simulator until interrupted.
fn sim(listen: &str, world: Option<PathBuf>, webhook_url: Option<String>) -> anyhow::Result<()> {
    let world = match world {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("read {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a valid world", path.display()))?
        }
        None => SimWorld::demo(),
    };
    let sim = Simulator::start_on(listen, world)?;
    if let Some(url) = webhook_url {
        sim.set_webhook_url(&url);
    }
    let mut termination = Termination::listen()?;
    eprintln!("jira-sync-host: Jira simulator on {}", sim.base_url());
    termination.wait()
}

/// `request` with the admin token, when there is one.
fn authorized<B>(
    request: ureq::RequestBuilder<B>,
    authorization: Option<&str>,
) -> ureq::RequestBuilder<B> {
    match authorization {
        Some(value) => request.header("Authorization", value),
        None => request,
    }
}

/// What `record` does with an installation's recording session.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum RecordAction {
    /// Start (or restart in a new directory) recording.
    Start,
    /// Show the session.
    Show,
    /// Stop recording.
    Stop,
}

/// The admin API of a running server, for `group`, `check` and `record`.
struct Admin {
    server: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Admin {
    fn new(server: String, token: Option<String>) -> Self {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        );
        Admin {
            server,
            token,
            agent,
        }
    }

    fn call(&self, method: &str, path: &str, body: &str) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}{path}", self.server);
        let authorization = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let auth = authorization.as_deref();
        let mut response = match method {
            "GET" => authorized(self.agent.get(&url), auth).call(),
            "DELETE" => authorized(self.agent.delete(&url), auth).call(),
            "PUT" => authorized(self.agent.put(&url), auth).send(body.as_bytes()),
            _ => authorized(self.agent.post(&url), auth).send(body.as_bytes()),
        }
        .with_context(|| format!("reach {}", self.server))?;
        let status = response.status();
        let text = response.body_mut().read_to_string()?;
        if !status.is_success() {
            anyhow::bail!("the server answered {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("the server's answer: {text}"))
    }

    /// Resolves, unresolves, assigns or unassigns `group`; prints the answer and returns the
    /// ids of the pushes it recorded.
    fn change_group(
        &self,
        action: &str,
        group: u64,
        user: Option<u64>,
    ) -> anyhow::Result<Vec<i64>> {
        let body = match (action, user) {
            ("assign", Some(user)) => serde_json::json!({ "user": user }).to_string(),
            ("assign", None) => anyhow::bail!("assign needs --user"),
            ("resolve" | "unresolve" | "unassign", _) => String::new(),
            (other, _) => anyhow::bail!("unknown action {other}"),
        };
        let answer = self.call("POST", &format!("/admin/groups/{group}/{action}"), &body)?;
        println!("{answer}");
        Ok(answer["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["sync"]["id"].as_i64())
            .collect())
    }

    /// Waits until every push in `ids` is done; fails if one failed or is still due at the
    /// deadline.
    fn wait_for_pushes(&self, group: u64, ids: &[i64], deadline: Duration) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        loop {
            let answer = self.call("GET", &format!("/admin/groups/{group}/syncs"), "")?;
            let mine: Vec<&serde_json::Value> = answer["syncs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s["id"].as_i64().is_some_and(|id| ids.contains(&id)))
                .collect();
            let failed: Vec<_> = mine.iter().filter(|s| s["state"] == "failed").collect();
            if !failed.is_empty() {
                for push in &failed {
                    eprintln!("jira-sync-host: push failed: {push}");
                }
                anyhow::bail!("{} of {} pushes failed", failed.len(), mine.len());
            }
            if mine.iter().all(|s| s["state"] == "done") {
                return Ok(());
            }
            if started.elapsed() > deadline {
                anyhow::bail!("pushes still pending after {deadline:?}; the server keeps retrying");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// SIGTERM (what service managers and container runtimes send) and SIGINT (Ctrl-C), caught from
/// the moment [`Termination::listen`] returns.
struct Termination {
    runtime: tokio::runtime::Runtime,
    #[cfg(unix)]
    signals: [tokio::signal::unix::Signal; 2],
}

impl Termination {
    fn listen() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        #[cfg(unix)]
        let signals = runtime.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            Ok::<_, std::io::Error>([
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
            ])
        })?;
        Ok(Termination {
            runtime,
            #[cfg(unix)]
            signals,
        })
    }

    /// Returns once the process is asked to stop.
    fn wait(&mut self) -> anyhow::Result<()> {
        #[cfg(unix)]
        {
            let [terminate, interrupt] = &mut self.signals;
            self.runtime.block_on(async {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = interrupt.recv() => {}
                }
            });
        }
        #[cfg(not(unix))]
        self.runtime.block_on(tokio::signal::ctrl_c())?;
        Ok(())
    }
}
