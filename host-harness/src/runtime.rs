//! One engine, the component compiled once (or loaded precompiled), a fresh store and instance
//! per call, with a memory cap and a CPU bound.
//!
//! CPU: an epoch ticker interrupts guest code every millisecond, and the deadline callback ends
//! the call once the time spent in guest code (wall time less the time inside host calls, such as
//! HTTP and `Retry-After` sleeps) passes the installation's `cpu_ms`. Epochs rather than fuel:
//! fuel counts instructions and slows every one of them, and a budget in milliseconds is what an
//! operator can reason about; the measured cost is in BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::anyhow;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    UpdateDeadline,
};

use crate::backends::Backends;
use crate::bindings::exports::jira_sync::plugin::{outbound, webhook};
use crate::bindings::{Plugin, PluginPre};
use crate::host::{CallRecord, HostState};
use crate::limits::{CallError, LimitExceeded, Limits, MAX_MEMORY_BYTES};

/// How often the epoch ticker interrupts guest code to check its CPU budget.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// The component built from this workspace's sources by the harness's build script.
pub fn bundled_component() -> PathBuf {
    PathBuf::from(env!("JIRA_SYNC_COMPONENT"))
}

/// A deliberately hostile guest against the same WIT (loops, hoards memory, panics, floods), built
/// beside the real one for the sandbox tests.
pub fn hostile_component() -> PathBuf {
    PathBuf::from(env!("JIRA_SYNC_HOSTILE_COMPONENT"))
}

/// What one call returned, and what it did on the way.
#[derive(Debug)]
pub struct Call<T> {
    pub result: Result<T, CallError>,
    pub record: CallRecord,
}

/// Where the compiled code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Compiled from the component now.
    Compiled,
    /// Loaded from a precompiled artefact of the same component and engine configuration.
    Artefact,
}

pub struct Runtime {
    engine: Engine,
    component: Component,
    pre: PluginPre<HostState>,
    origin: Origin,
    ticker: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

/// Instances the pooling allocator keeps slots for; more concurrent calls than this fail, so
/// keep a server's workers below it. Each slot reserves (not commits) 4 GiB of address space.
pub const POOL_SLOTS: u32 = 64;

/// How instances get their memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Allocation {
    /// mmap per instance.
    OnDemand,
    /// Preallocated slots, reused warm, their first 8 MiB kept resident between calls: it halves
    /// a webhook's cost and lets two threads scale (BENCHMARKS.md).
    #[default]
    Pooling,
}

/// The engine configuration every runtime uses; precompiled artefacts are keyed by it.
pub fn engine() -> anyhow::Result<Engine> {
    engine_with(Allocation::default())
}

pub fn engine_with(allocation: Allocation) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    if allocation == Allocation::Pooling {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(POOL_SLOTS)
            .total_core_instances(POOL_SLOTS * 8)
            .total_memories(POOL_SLOTS)
            .total_tables(POOL_SLOTS * 4)
            .max_memory_size(MAX_MEMORY_BYTES)
            .linear_memory_keep_resident(8 << 20)
            .table_keep_resident(1 << 16)
            .pagemap_scan(Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&config).map_err(|e| anyhow!("create the engine: {e:#}"))
}

impl Runtime {
    /// Compiles the component at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        Self::load_with(path, Allocation::default())
    }

    /// Compiles the component at `path` for an engine with this allocation strategy.
    pub fn load_with(path: &Path, allocation: Allocation) -> anyhow::Result<Self> {
        let engine = engine_with(allocation)?;
        let component = Component::from_file(&engine, path)
            .map_err(|e| anyhow!("load the component {}: {e:#}", path.display()))?;
        Self::with(engine, component, Origin::Compiled)
    }

    /// Loads the component at `path` from a precompiled artefact in `cache_dir`, keyed by the
    /// component's SHA-256 and the engine's configuration; compiles and stores the artefact when
    /// there is none or wasmtime refuses it.
    pub fn load_cached(path: &Path, cache_dir: &Path) -> anyhow::Result<Self> {
        let engine = engine()?;
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow!("read the component {}: {e}", path.display()))?;
        let artefact = artefact_path(&engine, cache_dir, &bytes);
        if artefact.exists() {
            // SAFETY: the artefact was written by `Component::serialize` of an engine with this
            // configuration (its name says so), into a directory the host owns; wasmtime checks
            // the header and refuses an artefact of another engine or version.
            let loaded = unsafe { Component::deserialize_file(&engine, &artefact) };
            if let Ok(component) = loaded {
                return Self::with(engine, component, Origin::Artefact);
            }
        }
        let component = Component::new(&engine, &bytes)
            .map_err(|e| anyhow!("compile the component {}: {e:#}", path.display()))?;
        std::fs::create_dir_all(cache_dir)?;
        let serialized = component
            .serialize()
            .map_err(|e| anyhow!("serialise the component: {e:#}"))?;
        // Write then rename, so that a concurrent loader never reads half an artefact.
        let partial = artefact.with_extension(format!("partial-{}", std::process::id()));
        std::fs::write(&partial, serialized)?;
        std::fs::rename(&partial, &artefact)?;
        Self::with(engine, component, Origin::Compiled)
    }

    fn with(engine: Engine, component: Component, origin: Origin) -> anyhow::Result<Self> {
        let mut linker = Linker::new(&engine);
        Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(|e| anyhow!("link the imports: {e:#}"))?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(PluginPre::new)
            .map_err(|e| anyhow!("the component does not fit the host's WIT: {e:#}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (engine, stop) = (engine.clone(), stop.clone());
            thread::Builder::new()
                .name("jira-sync-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })?
        };
        Ok(Runtime {
            engine,
            component,
            pre,
            origin,
            ticker: Some(ticker),
            stop,
        })
    }

    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// Creates a store and an instance and drops them: the fixed cost of a sandboxed call.
    pub fn instantiate_and_drop(&self, backends: &Backends) -> anyhow::Result<()> {
        let mut store = self.store(backends);
        self.pre
            .instantiate(&mut store)
            .map(drop)
            .map_err(|e| anyhow!("instantiate: {e:#}"))
    }

    /// The names of the component's imports, e.g. `jira-sync:plugin/http@0.1.0`.
    pub fn imports(&self) -> Vec<String> {
        self.component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    pub fn webhook(
        &self,
        backends: &Backends,
        request: &webhook::Request,
    ) -> Call<webhook::Response> {
        self.call(
            backends,
            |plugin, store| {
                plugin
                    .jira_sync_plugin_webhook()
                    .call_handle(store, request)
            },
            |response, limits| {
                if response.body.len() > limits.webhook_response_bytes {
                    Err(LimitExceeded::WebhookResponse)
                } else {
                    Ok(())
                }
            },
        )
    }

    pub fn sync_status(
        &self,
        backends: &Backends,
        request: &outbound::StatusRequest,
    ) -> Call<outbound::StatusOutcome> {
        self.call(
            backends,
            |plugin, store| {
                plugin
                    .jira_sync_plugin_outbound()
                    .call_sync_status(store, request)
            },
            |_, _| Ok(()),
        )
    }

    pub fn sync_assignee(
        &self,
        backends: &Backends,
        request: &outbound::AssigneeRequest,
    ) -> Call<outbound::AssigneeOutcome> {
        self.call(
            backends,
            |plugin, store| {
                plugin
                    .jira_sync_plugin_outbound()
                    .call_sync_assignee(store, request)
            },
            |_, _| Ok(()),
        )
    }

    /// A fresh store with the memory limiter and the CPU check.
    fn store(&self, backends: &Backends) -> Store<HostState> {
        let mut store = Store::new(&self.engine, HostState::new(backends.clone()));
        store.limiter(|state| state);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut context| {
            let state = context.data_mut();
            if state.guest_time() > state.limits.cpu() {
                Err(state.exceed(LimitExceeded::Cpu))
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        store
    }

    /// Runs `run` in a fresh instance; its effects reach the platform only if it returns, and
    /// its result passes `check`.
    fn call<T>(
        &self,
        backends: &Backends,
        run: impl FnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<T>,
        check: impl FnOnce(&T, &Limits) -> Result<(), LimitExceeded>,
    ) -> Call<T> {
        let mut store = self.store(backends);
        let result = self
            .pre
            .instantiate(&mut store)
            .and_then(|plugin| run(&plugin, &mut store));
        let state = store.data_mut();
        let result = match result {
            Ok(value) => match check(&value, &state.limits) {
                Ok(()) => {
                    state.commit();
                    Ok(value)
                }
                Err(limit) => Err(CallError::Limit(limit)),
            },
            Err(e) => Err(match state.limit_hit {
                Some(limit) => CallError::Limit(limit),
                None => CallError::Trap(format!("{e:#}")),
            }),
        };
        Call {
            result,
            record: store.into_data().record,
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

/// Where [`Runtime::load_cached`] keeps the artefact of `component` for `engine`:
/// `<component sha256>-<engine configuration hash>.cwasm` in `cache_dir`.
pub fn artefact_path(engine: &Engine, cache_dir: &Path, component: &[u8]) -> PathBuf {
    cache_dir.join(artefact_name(engine, component))
}

fn artefact_name(engine: &Engine, component: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut config = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut config);
    let digest = Sha256::digest(component);
    format!(
        "{}-{:016x}.cwasm",
        jira_sync_plugin::qsh::hex(&digest),
        config.finish()
    )
}
