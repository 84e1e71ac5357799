//! The engine every runtime uses (component model, epoch interruption, pooling allocation), and
//! the on-disk cache of the compiled component, keyed by the component and the engine's
//! configuration.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::limits::MAX_MEMORY_BYTES;

/// Instances the pooling allocator keeps slots for by default: more concurrent calls than the
/// slots fail, so a server sizes its pool to its concurrent calls
/// ([`Allocation::Pooling`]). Each slot reserves (not commits) about 4 GiB of address space.
pub const POOL_SLOTS: u32 = 256;

/// Bytes of each table slot kept resident and zeroed on reuse: a page.
const TABLE_KEEP_RESIDENT: usize = 4096;

/// How instances get their memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// mmap per instance.
    OnDemand,
    /// Preallocated slots, reused warm, their first 8 MiB kept resident between calls: it halves
    /// a webhook's cost and lets two threads scale (BENCHMARKS.md).
    Pooling {
        /// Instances (and async stacks) that may exist at once.
        slots: u32,
    },
}

impl Default for Allocation {
    fn default() -> Self {
        Allocation::Pooling { slots: POOL_SLOTS }
    }
}

/// The engine configuration every runtime uses; precompiled artefacts are keyed by it.
pub fn engine() -> anyhow::Result<Engine> {
    engine_with(Allocation::default())
}

/// The engine with this allocation strategy.
pub fn engine_with(allocation: Allocation) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    if let Allocation::Pooling { slots } = allocation {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(8))
            .total_memories(slots)
            .total_tables(slots.saturating_mul(4))
            .total_stacks(slots)
            .max_memory_size(MAX_MEMORY_BYTES)
            .linear_memory_keep_resident(8 << 20)
            // One page: the component's tables fit in one, which is then simply zeroed. More
            // made wasmtime scan each table's pages for writes (one `PAGEMAP_SCAN` ioctl per
            // table, two per instance) to spare zeroing a page (BENCHMARKS.md).
            .table_keep_resident(TABLE_KEEP_RESIDENT)
            .pagemap_scan(Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&config).map_err(|e| anyhow!("create the engine: {e:#}"))
}

/// Where the compiled code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Compiled from the component now.
    Compiled,
    /// Loaded from a precompiled artefact of the same component and engine configuration.
    Artefact,
}

/// The component `bytes`, from its artefact in `cache_dir` when wasmtime accepts it, else
/// compiled now and its artefact stored for the next start.
pub(super) fn load_cached(
    engine: &Engine,
    bytes: &[u8],
    cache_dir: &Path,
) -> anyhow::Result<(Component, Origin)> {
    let artefact = artefact_path(engine, cache_dir, bytes);
    if artefact.exists() {
        // SAFETY: the artefact was written by `Component::serialize` of an engine with this
        // configuration (its name says so), into a directory the host owns; wasmtime checks
        // the header and refuses an artefact of another engine or version.
        let loaded = unsafe { Component::deserialize_file(engine, &artefact) };
        if let Ok(component) = loaded {
            return Ok((component, Origin::Artefact));
        }
    }
    let component =
        Component::new(engine, bytes).map_err(|e| anyhow!("compile the component: {e:#}"))?;
    std::fs::create_dir_all(cache_dir)?;
    let serialized = component
        .serialize()
        .map_err(|e| anyhow!("serialise the component: {e:#}"))?;
    // Write then rename, so that a concurrent loader never reads half an artefact.
    let partial = artefact.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&partial, serialized)?;
    std::fs::rename(&partial, &artefact)?;
    Ok((component, Origin::Compiled))
}

/// Where [`super::Runtime::load_cached`] keeps the artefact of `component` for `engine`:
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
