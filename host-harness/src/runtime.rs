//! One engine, the component compiled once, a fresh store and instance per call.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, StoreLimitsBuilder};

use crate::backends::Backends;
use crate::bindings::exports::jira_sync::plugin::{outbound, webhook};
use crate::bindings::{Plugin, PluginPre};
use crate::host::{CallRecord, HostState};

/// Linear memory one call may grow to.
pub const DEFAULT_MEMORY_LIMIT: usize = 64 * 1024 * 1024;

/// The component built from this workspace's sources by the harness's build script.
pub fn bundled_component() -> PathBuf {
    PathBuf::from(env!("JIRA_SYNC_COMPONENT"))
}

/// What one call returned, and what it did on the way.
#[derive(Debug)]
pub struct Call<T> {
    /// The export's result, or why the instance failed (a trap, a broken limit).
    pub result: Result<T, String>,
    pub record: CallRecord,
}

pub struct Runtime {
    engine: Engine,
    component: Component,
    pre: PluginPre<HostState>,
}

impl Runtime {
    /// Compiles the component at `path` and links it against the host's imports.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config)?;
        let component = Component::from_file(&engine, path)
            .map_err(|e| anyhow!("load the component {}: {e:#}", path.display()))?;
        let mut linker = Linker::new(&engine);
        Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)?;
        let pre = PluginPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Runtime {
            engine,
            component,
            pre,
        })
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
        self.call(backends, |plugin, store| {
            plugin
                .jira_sync_plugin_webhook()
                .call_handle(store, request)
        })
    }

    pub fn sync_status(
        &self,
        backends: &Backends,
        request: &outbound::StatusRequest,
    ) -> Call<outbound::StatusOutcome> {
        self.call(backends, |plugin, store| {
            plugin
                .jira_sync_plugin_outbound()
                .call_sync_status(store, request)
        })
    }

    pub fn sync_assignee(
        &self,
        backends: &Backends,
        request: &outbound::AssigneeRequest,
    ) -> Call<outbound::AssigneeOutcome> {
        self.call(backends, |plugin, store| {
            plugin
                .jira_sync_plugin_outbound()
                .call_sync_assignee(store, request)
        })
    }

    fn call<T>(
        &self,
        backends: &Backends,
        run: impl FnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Call<T> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(DEFAULT_MEMORY_LIMIT)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(&self.engine, HostState::new(backends.clone(), limits));
        store.limiter(|state| &mut state.limits);
        let result = self
            .pre
            .instantiate(&mut store)
            .and_then(|plugin| run(&plugin, &mut store))
            .map_err(|e| format!("{e:#}"));
        Call {
            result,
            record: store.into_data().record,
        }
    }
}
