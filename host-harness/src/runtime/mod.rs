//! The sandbox: one engine, the component compiled once (or loaded precompiled) and
//! pre-instantiated, and a fresh store and instance per call with a memory cap and a CPU bound
//! (docs/decisions/0001-fresh-instance-per-call.md). Each call is bound to one installation
//! before the guest runs (`binding.rs`), and its staged effects reach the platform only when it
//! succeeds.
//!
//! - `engine.rs`: the engine's configuration, pooling allocation, the artefact cache;
//! - `cpu.rs`: the epoch ticker and the per-call CPU check.
//!
//! The runtime knows the imports (`CallState`) and the backends below it, and nothing of
//! replay, the server or the simulator above it.

mod binding;
mod cpu;
mod engine;
mod exports;

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use wasmtime::Store;
use wasmtime::component::{Component, HasSelf, Instance, InstancePre, Linker};

use crate::backends::{BackendError, Backends};
use crate::imports::CallState;
use crate::imports::record::CallRecord;
use crate::limits::{LimitExceeded, Limits};
use crate::wit::exports::jira_sync::plugin::{mapping_check, outbound, webhook};
use crate::wit::{Plugin, PluginPre};
use cpu::Ticker;
use exports::Exports;

pub use binding::webhook_tenant;
pub use cpu::EPOCH_TICK;
pub use engine::{Allocation, Origin, POOL_SLOTS, artefact_path, engine, engine_with};

/// The component built from this workspace's sources, embedded in the binary: an installed or
/// copied binary needs no file beside it.
pub const BUNDLED_COMPONENT: &[u8] = include_bytes!(env!("JIRA_SYNC_COMPONENT"));

/// Where the build script wrote the bundled component, for tools that need it as a file (e.g.
/// the jco transpiler in the tests). It exists only in the build directory.
pub fn bundled_component() -> PathBuf {
    PathBuf::from(env!("JIRA_SYNC_COMPONENT"))
}

/// A deliberately hostile guest against the same WIT (loops, hoards memory, panics, floods), built
/// beside the real one for the sandbox tests.
pub fn hostile_component() -> PathBuf {
    PathBuf::from(env!("JIRA_SYNC_HOSTILE_COMPONENT"))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow!("read the component {}: {e}", path.display()))
}

/// Why a call produced no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The call broke one of its limits.
    #[error("{0}")]
    Limit(LimitExceeded),
    /// The guest trapped (e.g. it panicked); the message is wasmtime's.
    #[error("trap: {0}")]
    Trap(String),
    /// A backend failed during the call or its commit; nothing of the call was applied, and a
    /// webhook should be answered so that Jira retries.
    #[error("{0}")]
    Backend(BackendError),
    /// The guest answered something the host's contract forbids (e.g. work for another
    /// installation); nothing of the call was applied.
    #[error("contract: {0}")]
    Contract(String),
}

/// What one call returned, and what it did on the way.
#[derive(Debug)]
pub struct Call<T> {
    /// The export's result, or why there is none.
    pub result: Result<T, CallError>,
    /// Everything the call did through the imports.
    pub record: CallRecord,
}

/// The loaded component, ready to run calls in parallel (one store each).
pub struct Runtime {
    engine: wasmtime::Engine,
    component: Component,
    pre: InstancePre<CallState>,
    exports: Exports,
    origin: Origin,
    allocation: Allocation,
    // Dropped with the runtime: stops the epoch ticker.
    _ticker: Ticker,
}

impl Runtime {
    /// Compiles the component at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        Self::from_bytes(&read(path)?, Allocation::default())
    }

    /// Compiles the component embedded in this binary ([`BUNDLED_COMPONENT`]).
    pub fn bundled() -> anyhow::Result<Self> {
        Self::from_bytes(BUNDLED_COMPONENT, Allocation::default())
    }

    /// Compiles the component `bytes` for an engine with this allocation strategy.
    pub fn from_bytes(bytes: &[u8], allocation: Allocation) -> anyhow::Result<Self> {
        let engine = engine_with(allocation)?;
        let component =
            Component::new(&engine, bytes).map_err(|e| anyhow!("compile the component: {e:#}"))?;
        Self::with(engine, component, Origin::Compiled, allocation)
    }

    /// Loads the component at `path` from a precompiled artefact in `cache_dir`, keyed by the
    /// component's SHA-256 and the engine's configuration; compiles and stores the artefact when
    /// there is none or wasmtime refuses it.
    pub fn load_cached(path: &Path, cache_dir: &Path) -> anyhow::Result<Self> {
        Self::cached(&read(path)?, cache_dir)
    }

    /// [`Runtime::load_cached`] for component `bytes` (e.g. [`BUNDLED_COMPONENT`]).
    pub fn cached(bytes: &[u8], cache_dir: &Path) -> anyhow::Result<Self> {
        Self::cached_with(bytes, cache_dir, Allocation::default())
    }

    /// [`Runtime::cached`] with this allocation strategy (e.g. a server's pool sized to its
    /// concurrent calls).
    pub fn cached_with(
        bytes: &[u8],
        cache_dir: &Path,
        allocation: Allocation,
    ) -> anyhow::Result<Self> {
        let engine = engine_with(allocation)?;
        let (component, origin) = engine::load_cached(&engine, bytes, cache_dir)?;
        Self::with(engine, component, origin, allocation)
    }

    fn with(
        engine: wasmtime::Engine,
        component: Component,
        origin: Origin,
        allocation: Allocation,
    ) -> anyhow::Result<Self> {
        let mut linker = Linker::new(&engine);
        Plugin::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |state| state)
            .map_err(|e| anyhow!("link the imports: {e:#}"))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| anyhow!("the component does not fit the host's WIT: {e:#}"))?;
        // The generated bindings check that every export the host calls is there.
        PluginPre::new(pre.clone())
            .map_err(|e| anyhow!("the component does not fit the host's WIT: {e:#}"))?;
        let exports = Exports::find(&engine, &component)?;
        let ticker = Ticker::start(&engine)?;
        Ok(Runtime {
            engine,
            component,
            pre,
            exports,
            origin,
            allocation,
            _ticker: ticker,
        })
    }

    /// How many calls may be in flight at once (`None`: as many as memory allows).
    pub fn capacity(&self) -> Option<usize> {
        match self.allocation {
            Allocation::Pooling { slots } => Some(slots as usize),
            Allocation::OnDemand => None,
        }
    }

    /// Whether the code was compiled now or loaded from an artefact.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// Creates a store and an instance and drops them: the fixed cost of a sandboxed call.
    pub async fn instantiate_and_drop(&self, backends: &Backends) -> anyhow::Result<()> {
        let mut store = self.store(backends, None).await;
        self.pre
            .instantiate_async(&mut store)
            .await
            .map(drop)
            .map_err(|e| anyhow!("instantiate: {e:#}"))
    }

    /// The names of the component's imports, e.g. `jira-sync:plugin/http@0.5.0`.
    pub fn imports(&self) -> Vec<String> {
        self.component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// The same calls, run to completion on the calling thread: for replay, tools and tests,
    /// never from inside an async task (it would block the task's thread while Jira answers).
    pub fn blocking(&self) -> Blocking<'_> {
        Blocking(self)
    }

    /// `webhook.handle`: one Jira request in, the answer for Jira out.
    pub async fn webhook(
        &self,
        backends: &Backends,
        request: &webhook::Request,
    ) -> Call<webhook::Response> {
        self.call(
            backends,
            binding::webhook_tenant(request),
            async |instance, store| {
                exports::call(instance, store, &self.exports.handle, (request,)).await
            },
            |response: &webhook::Response, limits| {
                if response.body.len() > limits.webhook_response_bytes {
                    Err(CallError::Limit(LimitExceeded::WebhookResponse))
                } else {
                    Ok(())
                }
            },
        )
        .await
    }

    /// `webhook.accept`: verifies one Jira request and says whether it needs work later, which
    /// [`Runtime::process`] then does. A job for an installation other than the one the call
    /// was bound to is refused.
    pub async fn accept(
        &self,
        backends: &Backends,
        request: &webhook::Request,
    ) -> Call<webhook::Acceptance> {
        let tenant = binding::webhook_tenant(request);
        let bound = tenant.clone();
        self.call(
            backends,
            tenant,
            async |instance, store| {
                exports::call(instance, store, &self.exports.accept, (request,)).await
            },
            move |acceptance, limits| match acceptance {
                webhook::Acceptance::Answered(response) => {
                    if response.body.len() > limits.webhook_response_bytes {
                        Err(CallError::Limit(LimitExceeded::WebhookResponse))
                    } else {
                        Ok(())
                    }
                }
                webhook::Acceptance::Queued(job) => {
                    if bound.as_deref() == Some(job.client_key.as_str()) {
                        Ok(())
                    } else {
                        Err(CallError::Contract(format!(
                            "accept queued a job for installation `{}`, not this call's",
                            job.client_key
                        )))
                    }
                }
            },
        )
        .await
    }

    /// `webhook.process`: runs a job [`Runtime::accept`] queued, bound to the job's
    /// installation. The delivery is claimed in the backend, so that copies of one job run at
    /// once are applied once.
    pub async fn process(
        &self,
        backends: &Backends,
        job: &webhook::Job,
    ) -> Call<webhook::JobOutcome> {
        self.process_with(backends, job, false).await
    }

    /// [`Runtime::process`] for a caller that runs the job under an exclusive lease (a queue
    /// that hands each job to one runner at a time): the lease is the delivery's claim, and the
    /// backend is only asked whether the delivery was handled, which saves a write.
    pub async fn process_leased(
        &self,
        backends: &Backends,
        job: &webhook::Job,
    ) -> Call<webhook::JobOutcome> {
        self.process_with(backends, job, true).await
    }

    async fn process_with(
        &self,
        backends: &Backends,
        job: &webhook::Job,
        leased: bool,
    ) -> Call<webhook::JobOutcome> {
        let lease = job
            .delivery_id
            .clone()
            .filter(|_| leased)
            .map(|id| (job.client_key.clone(), id));
        self.call_leased(
            backends,
            Some(job.client_key.clone()),
            lease,
            async |instance, store| {
                exports::call(instance, store, &self.exports.process, (job,)).await
            },
            |_, _| Ok(()),
        )
        .await
    }

    /// `outbound.sync-status`: moves a linked Jira issue to the status of its group.
    pub async fn sync_status(
        &self,
        backends: &Backends,
        request: &outbound::StatusRequest,
    ) -> Call<outbound::StatusOutcome> {
        self.call(
            backends,
            Some(request.client_key.clone()),
            async |instance, store| {
                exports::call(instance, store, &self.exports.sync_status, (request,)).await
            },
            |_, _| Ok(()),
        )
        .await
    }

    /// `outbound.sync-assignee`: sets a linked Jira issue's assignee from its group's.
    pub async fn sync_assignee(
        &self,
        backends: &Backends,
        request: &outbound::AssigneeRequest,
    ) -> Call<outbound::AssigneeOutcome> {
        self.call(
            backends,
            Some(request.client_key.clone()),
            async |instance, store| {
                exports::call(instance, store, &self.exports.sync_assignee, (request,)).await
            },
            |_, _| Ok(()),
        )
        .await
    }

    /// `mapping-check.check`: checks the status mappings of installation `client_key` against
    /// its Jira site, bound to that installation.
    pub async fn check_mappings(
        &self,
        backends: &Backends,
        client_key: &str,
    ) -> Call<Result<Vec<mapping_check::ProjectReport>, mapping_check::CheckError>> {
        self.call(
            backends,
            Some(client_key.to_owned()),
            async |instance, store| {
                exports::call(instance, store, &self.exports.check, (client_key,)).await
            },
            |_, _| Ok(()),
        )
        .await
    }

    /// A fresh store bound to `tenant`, with the memory limiter and the CPU check.
    async fn store(&self, backends: &Backends, tenant: Option<String>) -> Store<CallState> {
        let state = CallState::new(backends.clone(), tenant).await;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| state);
        cpu::bound(&mut store);
        store
    }

    /// Runs `run` in a fresh instance; its effects reach the platform only if it returns, and
    /// its result passes `check`.
    async fn call<T>(
        &self,
        backends: &Backends,
        tenant: Option<String>,
        run: impl AsyncFnOnce(&Instance, &mut Store<CallState>) -> wasmtime::Result<T>,
        check: impl FnOnce(&T, &Limits) -> Result<(), CallError>,
    ) -> Call<T> {
        self.call_leased(backends, tenant, None, run, check).await
    }

    /// [`Runtime::call`], with the delivery the caller holds under a lease of its own.
    async fn call_leased<T>(
        &self,
        backends: &Backends,
        tenant: Option<String>,
        lease: Option<(String, String)>,
        run: impl AsyncFnOnce(&Instance, &mut Store<CallState>) -> wasmtime::Result<T>,
        check: impl FnOnce(&T, &Limits) -> Result<(), CallError>,
    ) -> Call<T> {
        let mut store = self.store(backends, tenant).await;
        if let Some((client_key, id)) = lease {
            store.data_mut().lease_delivery(client_key, id);
        }
        let result = match store.data_mut().backend_error.clone() {
            // The installation could not be read: the guest does not run.
            Some(error) => Err(CallError::Backend(error)),
            None => self.run(&mut store, run, check).await,
        };
        let state = store.data_mut();
        state.release_claims().await;
        Call {
            result,
            record: store.into_data().record,
        }
    }

    /// Instantiates, runs, checks and commits: the call's result.
    async fn run<T>(
        &self,
        store: &mut Store<CallState>,
        run: impl AsyncFnOnce(&Instance, &mut Store<CallState>) -> wasmtime::Result<T>,
        check: impl FnOnce(&T, &Limits) -> Result<(), CallError>,
    ) -> Result<T, CallError> {
        // The guest's CPU time starts here, on the thread that polls the call first.
        store.data_mut().enter_guest();
        let result = match self.pre.instantiate_async(&mut *store).await {
            Ok(instance) => run(&instance, store).await,
            Err(e) => Err(e),
        };
        let state = store.data_mut();
        match result {
            Ok(value) => {
                check(&value, &state.limits)?;
                state.commit().await.map_err(CallError::Backend)?;
                Ok(value)
            }
            Err(e) => Err(match (state.limit_hit, state.backend_error.take()) {
                (Some(limit), _) => CallError::Limit(limit),
                (None, Some(error)) => CallError::Backend(error),
                (None, None) => CallError::Trap(format!("{e:#}")),
            }),
        }
    }
}

/// [`Runtime`]'s calls run to completion on the calling thread (see [`Runtime::blocking`]).
pub struct Blocking<'a>(&'a Runtime);

impl Blocking<'_> {
    /// [`Runtime::webhook`], blocking.
    pub fn webhook(
        &self,
        backends: &Backends,
        request: &webhook::Request,
    ) -> Call<webhook::Response> {
        pollster::block_on(self.0.webhook(backends, request))
    }

    /// [`Runtime::accept`], blocking.
    pub fn accept(
        &self,
        backends: &Backends,
        request: &webhook::Request,
    ) -> Call<webhook::Acceptance> {
        pollster::block_on(self.0.accept(backends, request))
    }

    /// [`Runtime::process`], blocking.
    pub fn process(&self, backends: &Backends, job: &webhook::Job) -> Call<webhook::JobOutcome> {
        pollster::block_on(self.0.process(backends, job))
    }

    /// [`Runtime::process_leased`], blocking.
    pub fn process_leased(
        &self,
        backends: &Backends,
        job: &webhook::Job,
    ) -> Call<webhook::JobOutcome> {
        pollster::block_on(self.0.process_leased(backends, job))
    }

    /// [`Runtime::sync_status`], blocking.
    pub fn sync_status(
        &self,
        backends: &Backends,
        request: &outbound::StatusRequest,
    ) -> Call<outbound::StatusOutcome> {
        pollster::block_on(self.0.sync_status(backends, request))
    }

    /// [`Runtime::sync_assignee`], blocking.
    pub fn sync_assignee(
        &self,
        backends: &Backends,
        request: &outbound::AssigneeRequest,
    ) -> Call<outbound::AssigneeOutcome> {
        pollster::block_on(self.0.sync_assignee(backends, request))
    }

    /// [`Runtime::check_mappings`], blocking.
    pub fn check_mappings(
        &self,
        backends: &Backends,
        client_key: &str,
    ) -> Call<Result<Vec<mapping_check::ProjectReport>, mapping_check::CheckError>> {
        pollster::block_on(self.0.check_mappings(backends, client_key))
    }

    /// [`Runtime::instantiate_and_drop`], blocking.
    pub fn instantiate_and_drop(&self, backends: &Backends) -> anyhow::Result<()> {
        pollster::block_on(self.0.instantiate_and_drop(backends))
    }
}
