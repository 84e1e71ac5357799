//! The component's exported functions, found by name once when the component is loaded, so
//! that a call looks up (and type-checks) only the one function it runs. The generated
//! `Plugin::instantiate` looked up all of them on every instantiation, over a tenth of a bare
//! instance's cost (BENCHMARKS.md).

use anyhow::anyhow;
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, Instance, Lift, Lower,
};
use wasmtime::{AsContextMut, Engine};

use crate::imports::CallState;

/// Where each export the host calls sits in the component.
pub(super) struct Exports {
    pub handle: ComponentExportIndex,
    pub accept: ComponentExportIndex,
    pub process: ComponentExportIndex,
    pub sync_status: ComponentExportIndex,
    pub sync_assignee: ComponentExportIndex,
    pub check: ComponentExportIndex,
}

impl Exports {
    /// Finds the exports in `component` by interface and function name (the generated
    /// `PluginPre` has checked that the versions are the host's); a function's types are
    /// checked when it is called.
    pub fn find(engine: &Engine, component: &Component) -> anyhow::Result<Self> {
        let ty = component.component_type();
        let find = |interface: &str, function: &str| {
            let prefix = format!("jira-sync:plugin/{interface}@");
            let name = ty
                .exports(engine)
                .map(|(name, _)| name)
                .find(|name| name.starts_with(&prefix))
                .ok_or_else(|| anyhow!("the component exports no `{prefix}…` interface"))?;
            let instance = component
                .get_export_index(None, name)
                .ok_or_else(|| anyhow!("no export `{name}`"))?;
            component
                .get_export_index(Some(&instance), function)
                .ok_or_else(|| anyhow!("`{name}` does not export `{function}`"))
        };
        Ok(Exports {
            handle: find("webhook", "handle")?,
            accept: find("webhook", "accept")?,
            process: find("webhook", "process")?,
            sync_status: find("outbound", "sync-status")?,
            sync_assignee: find("outbound", "sync-assignee")?,
            check: find("mapping-check", "check")?,
        })
    }
}

/// Calls the export at `index` of `instance` with `params`.
pub(super) async fn call<P, R>(
    instance: &Instance,
    mut store: impl AsContextMut<Data = CallState>,
    index: &ComponentExportIndex,
    params: P,
) -> wasmtime::Result<R>
where
    P: ComponentNamedList + Lower + Send + Sync,
    (R,): ComponentNamedList + Lift + Send + Sync + 'static,
{
    let func = instance.get_typed_func::<P, (R,)>(&mut store, index)?;
    func.call_async(&mut store, params).await.map(|(r,)| r)
}
