//! The component's capabilities are exactly the WIT's: it imports only our package.

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
