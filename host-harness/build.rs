//! Builds the guest for `wasm32-unknown-unknown` and encodes it as a component, so that
//! `cargo test` and `cargo run` always load the component of the sources they were built from.
//!
//! A core module encoded with wit-component imports exactly our WIT; a `wasm32-wasip2` std guest
//! would drag in WASI interfaces the plugin never uses (docs/decisions/0005-core-module-encoded-by-wit-component.md).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";
const PROFILE: &str = "wasm-release";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("host-harness sits in the workspace");
    for watched in [
        "plugin/src",
        "plugin/Cargo.toml",
        "tests/hostile/src",
        "tests/hostile/Cargo.toml",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    require_target();

    // A target dir of its own: the outer build holds the lock on the workspace's.
    let target_dir = root.join("target").join("guest");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "-p", "jira-sync-plugin", "-p", "jira-sync-hostile"])
        .args(["--lib", "--target", TARGET])
        .args(["--profile", PROFILE, "--target-dir"])
        .arg(&target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_MAKEFLAGS")
        .status()
        .expect("run cargo to build the guest");
    assert!(status.success(), "building the guests failed (see above)");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    // The hostile guest is built the same way; only the sandbox tests load it.
    for (module, variable) in [
        ("jira_sync_plugin", "JIRA_SYNC_COMPONENT"),
        ("jira_sync_hostile", "JIRA_SYNC_HOSTILE_COMPONENT"),
    ] {
        let module_path = target_dir
            .join(TARGET)
            .join(PROFILE)
            .join(format!("{module}.wasm"));
        let component_path = out.join(format!("{module}.wasm"));
        encode(&module_path, &component_path);
        println!("cargo:rustc-env={variable}={}", component_path.display());
    }
}

fn require_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("run rustc --print sysroot");
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let installed = Path::new(&sysroot).join("lib/rustlib").join(TARGET);
    if !installed.exists() {
        panic!(
            "\n\nThe component is built for {TARGET}, which is not installed.\n\
             Run:  rustup target add {TARGET}\n\n"
        );
    }
}

fn encode(module_path: &Path, component_path: &Path) {
    let module =
        fs::read(module_path).unwrap_or_else(|e| panic!("read {}: {e}", module_path.display()));
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|e| panic!("encode the component: {e:?}"));
    fs::write(component_path, component)
        .unwrap_or_else(|e| panic!("write {}: {e}", component_path.display()));
}
