//! The component's capabilities are exactly the WIT's (it imports only our package), and it keeps
//! to its size budget.

use jira_sync_tests::runtime;

#[test]
fn component_imports_only_jira_sync_interfaces() {
    let imports = runtime().imports();
    assert!(!imports.is_empty());
    for import in &imports {
        assert!(
            import.starts_with("jira-sync:plugin/") && import.ends_with("@0.5.0"),
            "unexpected import {import}"
        );
    }
    let mut names: Vec<&str> = imports
        .iter()
        .map(|i| &i["jira-sync:plugin/".len()..i.len() - "@0.5.0".len()])
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cache",
            "clock",
            "deliveries",
            "group-assignment",
            "group-status",
            "http",
            "installations",
            "links",
            "log",
            "types"
        ]
    );
}

#[test]
fn the_component_stays_within_its_size_budget() {
    // A platform downloads, stores and compiles it per deployment: 300 KB is the budget
    // (BENCHMARKS.md). The guest is always built with the `wasm-release` profile, so this
    // holds for debug and release test runs alike.
    let size = jira_sync_host::BUNDLED_COMPONENT.len();
    assert!(size <= 300_000, "the component is {size} bytes");
}
