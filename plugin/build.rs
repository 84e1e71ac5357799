//! Gives the component's core module 2 MiB of initial memory (1 MiB of stack, its data, and
//! about 1 MiB of heap for `src/heap.rs`), so that a webhook's allocations fit without growing
//! memory: growth costs the host an `mprotect` per call and another to undo it when it recycles
//! the instance's slot (docs/decisions/0013-fixed-cost-per-call.md). 4 MiB measured slower: the
//! host scans every page of the initial memory for dirty ones when it recycles the slot.

/// Initial linear memory of the component, in bytes (32 pages of 64 KiB).
const INITIAL_MEMORY: u32 = 2 * 1024 * 1024;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=--initial-memory={INITIAL_MEMORY}");
    }
}
