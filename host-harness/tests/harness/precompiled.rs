//! The precompiled artefact cache: reused when it matches, refused and rebuilt when it does not.

use jira_sync_host::runtime::{Origin, artefact_path, engine};
use jira_sync_host::{Runtime, bundled_component};

fn cache_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("jira-sync-cwasm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn the_second_load_uses_the_artefact() {
    let dir = cache_dir("reuse");
    let first = Runtime::load_cached(&bundled_component(), &dir).unwrap();
    assert_eq!(first.origin(), Origin::Compiled);
    let second = Runtime::load_cached(&bundled_component(), &dir).unwrap();
    assert_eq!(second.origin(), Origin::Artefact);
    assert_eq!(second.imports(), first.imports());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_corrupt_artefact_is_refused_and_rebuilt() {
    let dir = cache_dir("corrupt");
    let component = std::fs::read(bundled_component()).unwrap();
    let path = artefact_path(&engine().unwrap(), &dir, &component);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&path, b"not a precompiled component").unwrap();
    let runtime = Runtime::load_cached(&bundled_component(), &dir).unwrap();
    assert_eq!(runtime.origin(), Origin::Compiled);
    assert_eq!(
        Runtime::load_cached(&bundled_component(), &dir)
            .unwrap()
            .origin(),
        Origin::Artefact
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_artefact_of_another_engine_configuration_is_refused() {
    let dir = cache_dir("foreign");
    let component = std::fs::read(bundled_component()).unwrap();
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    // No epoch interruption: code compiled this way could not be interrupted.
    let foreign = wasmtime::Engine::new(&config).unwrap();
    let serialized = wasmtime::component::Component::new(&foreign, &component)
        .unwrap()
        .serialize()
        .unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        artefact_path(&engine().unwrap(), &dir, &component),
        serialized,
    )
    .unwrap();
    let runtime = Runtime::load_cached(&bundled_component(), &dir).unwrap();
    assert_eq!(runtime.origin(), Origin::Compiled);
    std::fs::remove_dir_all(&dir).unwrap();
}
