//! A wasmtime host for the jira-sync component.
//!
//! The data's path, top to bottom, is the module graph: no module imports one above it.
//!
//! | layer | module | what |
//! | --- | --- | --- |
//! | tools | `demo`, `bench`, `cli` (the binary) | the round trip, the measurements, the commands |
//! | front | `server`, `sim`, `replay`, `install` | Jira's webhooks over HTTP, the Jira simulator, scenarios, Atlassian's RS256 install and invocation tokens |
//! | sandbox | [`runtime`] | engine, pre-instantiation, a fresh store per call, memory and CPU bounds |
//! | imports | `imports` | the host side of each WIT interface, egress, staged effects |
//! | backends | [`backends`] | the traits the imports call, and the stock backends |
//! | base | [`wit`], `convert`, [`installation`], [`limits`], `signing`, `listen` | types and helpers shared by all |
//!
//! Embedding, with the in-memory backends (a real platform implements the traits of
//! [`backends`] over its own stores):
//!
//! ```no_run
//! use std::sync::Arc;
//! use jira_sync_host::backends::{Backends, MemoryCache, MemoryPlatform, SystemClock};
//! use jira_sync_host::{InstallationSpec, Runtime, bundled_component, webhook};
//! # struct Jira;
//! # impl jira_sync_host::backends::HttpBackend for Jira {
//! #     fn send(&self, _: jira_sync_host::backends::OutboundRequest)
//! #         -> jira_sync_host::backends::BoxFuture<'_, jira_sync_host::backends::HttpResult> {
//! #         Box::pin(std::future::ready(Err(jira_sync_host::HttpError::Timeout)))
//! #     }
//! # }
//! # async fn run() -> anyhow::Result<()> {
//!
//! let runtime = Runtime::load(&bundled_component())?;
//! let platform = Arc::new(MemoryPlatform::default());
//! let spec = InstallationSpec::new("jira:1c4", "s3cret", "https://acme.atlassian.net", "acme");
//! platform.add_installation((&spec).into());
//! platform.link("jira:1c4", "APP-123", &[1]);
//! let backends = Backends {
//!     http: Arc::new(Jira), // your HTTP client; the sandbox checks every URL first
//!     cache: Arc::new(MemoryCache::default()),
//!     platform,
//!     clock: Arc::new(SystemClock { max_sleep: std::time::Duration::from_secs(30) }),
//! };
//! let request = webhook::Request {
//!     method: "POST".into(),
//!     path: "/extensions/jira/issue-updated/".into(),
//!     query: String::new(),
//!     headers: vec![("Authorization".into(), "JWT ...".into())],
//!     body: b"{}".to_vec(),
//! };
//! // On the platform's tokio runtime; `runtime.blocking().webhook(..)` outside one.
//! let call = runtime.webhook(&backends, &request).await;
//! match call.result {
//!     Ok(response) => println!("answer Jira {}", response.status),
//!     Err(e) => println!("the call failed ({e}); nothing of it was applied"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Cargo features (all on by default): `replay` (scenarios, scripted HTTP, token signing,
//! recording), `sqlite`, `http-client` (real HTTP), `install` (Connect lifecycle and Forge
//! invocation tokens), `server`, `sim`, `demo`, `bench`, `cli`. With
//! `default-features = false` the crate is the runtime, the backend traits and the in-memory
//! backends.

#![warn(missing_docs)]

pub mod backends;
mod convert;
mod imports;
pub mod installation;
pub mod limits;
#[cfg(any(feature = "server", feature = "sim"))]
pub mod listen;
pub mod runtime;

#[cfg(feature = "bench")]
pub mod bench;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(feature = "install")]
pub mod install;
#[cfg(feature = "demo")]
pub mod load;
#[cfg(feature = "replay")]
pub mod recording;
#[cfg(feature = "replay")]
pub mod replay;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "replay")]
pub mod signing;
#[cfg(feature = "sim")]
pub mod sim;

/// The types generated from `wit/` (package `jira-sync:plugin`), as the host sees them.
#[allow(missing_docs)] // generated; the WIT documents every item
pub mod wit {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        // Every import may end the call: the limits, the deadline and a failing backend. Every
        // one is async, so that a call waiting on Jira, on a `Retry-After` or on a networked
        // database holds no thread (docs/decisions/0007, 0009).
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

pub use backends::Backends;
pub use imports::record::{
    Assignment, CacheStats, CallRecord, HttpExchange, LogLine, Resolution, body_value,
};
pub use installation::InstallationSpec;
pub use limits::{LimitExceeded, Limits};
#[cfg(feature = "replay")]
pub use replay::scenario::Scenario;
#[cfg(feature = "replay")]
pub use replay::{World, replay};
pub use runtime::{BUNDLED_COMPONENT, Blocking, Call, CallError, Runtime, bundled_component};
pub use wit::exports::jira_sync::plugin::{outbound, webhook};
pub use wit::jira_sync::plugin::http::Error as HttpError;
pub use wit::jira_sync::plugin::types::Installation;
