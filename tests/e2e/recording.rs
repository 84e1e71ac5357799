//! Recording mode (docs/behaviour.md#12): every component call of an installation written as a
//! scenario file, which replay plays back to the recorded result, without a secret in it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jira_sync_host::demo::{self, Recording};
use jira_sync_host::recording::PLACEHOLDER_SECRET;
use jira_sync_host::replay::{recording_mismatch, replay};
use jira_sync_host::server::ServerConfig;
use jira_sync_host::sim::Webhook;
use jira_sync_host::{InstallationSpec, Scenario};
use jira_sync_plugin::signature;
use serde_json::{Value, json};

use super::dialects::{self, CLIENT_ID, CLIENT_SECRET, HOOK_SECRET};
use super::{Stack, runtime};

/// A directory of the test's own, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("jira-sync-recording-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every scenario file under `dir`, in the order they were written, with its text.
fn recorded(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let text = std::fs::read_to_string(&path).unwrap();
                files.push((path, text));
            }
        }
    }
    files.sort();
    files
}

/// Replays every file and asserts each reproduces its recording; the files' step kinds.
fn replay_every(files: &[(PathBuf, String)]) -> Vec<String> {
    files
        .iter()
        .map(|(path, text)| {
            let scenario =
                Scenario::from_json(text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let trace = replay(runtime().as_ref(), &scenario);
            if let Some(difference) = recording_mismatch(&scenario, &trace) {
                panic!("{} replays differently:\n{difference}", path.display());
            }
            trace["steps"][0]["kind"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn a_recorded_demo_round_trip_replays_call_for_call_without_a_secret() {
    let dir = TempDir::new("demo");
    let record = Recording {
        directory: dir.0.clone(),
        pseudonymise: false,
    };
    let report = demo::run(runtime(), Some(&record)).unwrap();
    let files = recorded(&dir.0);
    assert_eq!(
        json!(files.len()),
        report.summary["component_calls"],
        "one file per component call"
    );
    assert_eq!(report.summary["recorded"]["files"], json!(files.len()));
    let kinds = replay_every(&files);
    for kind in [
        "check_mappings",
        "sync_status_outbound",
        "accept",
        "process",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }
    let secret = &jira_sync_host::sim::SimWorld::demo()
        .installation
        .shared_secret;
    for (path, text) in &files {
        assert!(
            !text.contains(secret.as_str()),
            "{} holds the secret",
            path.display()
        );
        let scenario = Scenario::from_json(text).unwrap();
        assert_eq!(scenario.installation.shared_secret, PLACEHOLDER_SECRET);
    }
    // The hidden email came from Jira's email API, and the second assignment from the cache:
    // both were recorded as what the call read.
    let email_lookup = files
        .iter()
        .find(|(_, text)| text.contains("/rest/api/3/user/email"))
        .expect("the email API exchange was recorded");
    assert!(email_lookup.1.contains("ada@example.com"));
    assert!(
        files.iter().any(|(_, text)| {
            let scenario: Value = serde_json::from_str(text).unwrap();
            scenario["cache"].as_object().is_some_and(|cache| {
                cache
                    .values()
                    .any(|v| v.as_str().unwrap().contains("ada@example.com"))
            })
        }),
        "a call found the email in the cache"
    );
}

#[test]
fn a_replay_that_differs_from_its_recording_is_told() {
    let dir = TempDir::new("tampered");
    let record = Recording {
        directory: dir.0.clone(),
        pseudonymise: false,
    };
    demo::run(runtime(), Some(&record)).unwrap();
    let (path, text) = recorded(&dir.0)
        .into_iter()
        .find(|(path, _)| {
            path.to_string_lossy()
                .ends_with("sync_status_outbound.json")
        })
        .unwrap();
    let mut scenario: Value = serde_json::from_str(&text).unwrap();
    // Jira now refuses the transition the recording saw it take.
    let post = scenario["http"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|stub| stub["method"] == "POST")
        .unwrap();
    post["status"] = json!(400);
    let scenario: Scenario = serde_json::from_value(scenario).unwrap();
    let trace = replay(runtime().as_ref(), &scenario);
    let difference = recording_mismatch(&scenario, &trace)
        .unwrap_or_else(|| panic!("{} replayed the same with a 400", path.display()));
    assert!(difference.starts_with("step 0: `"), "{difference}");
}

#[test]
fn pseudonymised_recordings_name_nobody_and_still_replay() {
    let dir = TempDir::new("pseudonyms");
    let record = Recording {
        directory: dir.0.clone(),
        pseudonymise: true,
    };
    demo::run(runtime(), Some(&record)).unwrap();
    let files = recorded(&dir.0);
    replay_every(&files);
    for (path, text) in &files {
        let lower = text.to_lowercase();
        for personal in ["ada@example.com", "5f1a", "ada byron"] {
            assert!(
                !lower.contains(personal),
                "{} names {personal}",
                path.display()
            );
        }
        let scenario: Value = serde_json::from_str(text).unwrap();
        assert_eq!(scenario["recorded"]["pseudonymised"], json!(true));
    }
    assert!(
        files
            .iter()
            .any(|(_, text)| text.contains("@example.invalid")),
        "the emails were replaced, not dropped"
    );
}

/// `method` on the server's admin `path`: the status and the JSON answer.
fn admin(stack: &Stack, method: &str, path: &str, body: &str) -> (u16, Value) {
    let url = format!("{}{path}", stack.server.as_ref().unwrap().url());
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let mut response = match method {
        "PUT" => agent.put(&url).send(body.as_bytes()),
        "GET" => agent.get(&url).call(),
        _ => agent.delete(&url).call(),
    }
    .unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_vec().unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[test]
fn recording_is_switched_per_installation_at_run_time_and_stops_at_its_bound() {
    let dir = TempDir::new("switch");
    let mut stack = Stack::new("recording-switch");
    stack.server = None;
    stack.start_server_with(ServerConfig {
        recordings_dir: Some(dir.0.clone()),
        ..ServerConfig::default()
    });
    let site = jira_sync_host::sim::SimWorld::demo()
        .installation
        .client_key;
    let key = jira_sync_plugin::qsh::encode(&site);
    let path = format!("/admin/installations/{key}/recording");
    let switch = |method: &str, body: &str| admin(&stack, method, &path, body);
    let other = InstallationSpec::new("jira:other", "other-secret", "https://o.invalid", "app");
    stack.store.add_installation(&other).unwrap();

    assert_eq!(
        admin(
            &stack,
            "PUT",
            "/admin/installations/jira%3Anobody/recording",
            ""
        )
        .0,
        404
    );
    for bad in [
        r#"{"max_bytes": 0}"#,
        r#"{"max_bytes": "lots"}"#,
        r#"{"colour": 1}"#,
    ] {
        let (status, answer) = switch("PUT", bad);
        assert_eq!(status, 400, "{bad}: {answer}");
    }
    assert_eq!(switch("GET", "").0, 404);

    // Nothing is recorded before the switch.
    stack.send(
        "before",
        stack.assignee_body("5f1a", "2023-01-01T00:00:00.000+0000"),
    );
    let (status, _) = admin(
        &stack,
        "PUT",
        "/admin/installations/jira%3Aother/recording",
        "",
    );
    assert_eq!(status, 200);
    let (status, answer) = switch("PUT", r#"{"max_bytes": 20000}"#);
    assert_eq!(status, 200, "{answer}");
    let directory = PathBuf::from(answer["recording"]["directory"].as_str().unwrap());
    assert!(directory.starts_with(&dir.0), "{directory:?}");

    // A forged delivery is recorded and replays as refused; then signed ones until the bound.
    stack.sim.send(Webhook {
        id: "forged".into(),
        body: stack.assignee_body("5f1a", "2023-01-01T00:01:00.000+0000"),
        authorization: Some(jira_sync_host::signing::authorization(
            &site,
            "not the secret",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            ("POST", "/extensions/jira/issue-updated/", ""),
            &Default::default(),
        )),
    });
    stack.settle();
    assert_eq!(stack.last_delivery_status(), Some(409));
    for i in 0..20 {
        let updated = format!("2023-01-01T00:{:02}:00.000+0000", i + 2);
        let account = if i % 2 == 0 { "5f1a" } else { "bob-account" };
        stack.send(
            &format!("during-{i}"),
            stack.assignee_body(account, &updated),
        );
    }
    let (status, answer) = switch("GET", "");
    assert_eq!(status, 200);
    assert_eq!(answer["recording"]["full"], json!(true), "{answer}");
    // Stopping answers once every file of the session is written.
    let (status, answer) = switch("DELETE", "");
    assert_eq!(status, 200);
    let session = &answer["stopped"];
    let files = recorded(&directory);
    assert_eq!(json!(files.len()), session["files"]);
    let bytes: usize = files.iter().map(|(_, text)| text.len()).sum();
    assert_eq!(json!(bytes), session["bytes"]);
    assert!(bytes <= 20_000, "{bytes} bytes past the bound");
    assert!(files.len() >= 2, "{} files", files.len());
    replay_every(&files);
    let first: Value = serde_json::from_str(&files[0].1).unwrap();
    assert_eq!(
        first["recorded"]["steps"][0]["response"]["status"],
        json!(409)
    );

    assert_eq!(switch("GET", "").0, 404);
    assert_eq!(switch("DELETE", "").0, 404);
    let (_, other) = admin(
        &stack,
        "GET",
        "/admin/installations/jira%3Aother/recording",
        "",
    );
    assert_eq!(
        other["recording"]["files"],
        json!(0),
        "another installation's calls are not its"
    );
    // Stopped: the next delivery writes nothing.
    stack.send(
        "after",
        stack.assignee_body("5f1a", "2023-01-02T00:00:00.000+0000"),
    );
    assert_eq!(recorded(&directory).len(), files.len());
    assert_eq!(
        stack.group().assignee,
        Some(7),
        "recording changed nothing of the sync"
    );
}

#[test]
fn admin_and_oauth_deliveries_are_recorded_with_their_proofs_made_again() {
    let dir = TempDir::new("dialects");
    let (server, _store, _db) = dialects::server_with(
        "recording-dialects",
        ServerConfig {
            recordings_dir: Some(dir.0.clone()),
            ..ServerConfig::default()
        },
    );
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    for key in ["site-admin", "cloud-1"] {
        let url = format!("{}/admin/installations/{key}/recording", server.url());
        assert_eq!(agent.put(&url).send("{}").unwrap().status(), 200);
    }
    // As Jira writes it (its own key order and spacing), which a scenario cannot rewrite
    // without breaking the signature over it.
    let admin_body =
        br#"{"webhookEvent": "jira:issue_updated", "issue": {"key": "ADM-1", "id": "1",
        "fields": {"assignee": {"emailAddress": "ada@example.com", "accountId": "5f1a"}}},
        "changelog": {"items": [{"to": "5f1a", "fieldId": "assignee", "field": "assignee"}]}}"#
            .to_vec();
    let oauth_body = dialects::assigned_to_ada("OA-1");
    let id = |id: &str| ("X-Atlassian-Webhook-Identifier", id.to_owned());
    let sent = [
        (
            "/webhooks/admin/site-admin",
            vec![
                ("X-Hub-Signature", signature::sign(HOOK_SECRET, &admin_body)),
                id("a-1"),
            ],
            &admin_body,
            200,
        ),
        (
            "/webhooks/admin/site-admin",
            vec![
                ("X-Hub-Signature", signature::sign("guess", &admin_body)),
                id("a-2"),
            ],
            &admin_body,
            409,
        ),
        (
            "/webhooks/oauth/cloud-1",
            vec![
                (
                    "Authorization",
                    format!(
                        "Bearer {}",
                        dialects::oauth_token(CLIENT_ID, CLIENT_SECRET, 60)
                    ),
                ),
                id("o-1"),
            ],
            &oauth_body,
            200,
        ),
        (
            "/webhooks/oauth/cloud-1",
            vec![
                (
                    "Authorization",
                    format!("Bearer {}", dialects::oauth_token(CLIENT_ID, "guess", 60)),
                ),
                id("o-2"),
            ],
            &oauth_body,
            409,
        ),
    ];
    for (path, headers, body, status) in &sent {
        assert_eq!(
            dialects::post(&server, path, headers, body),
            *status,
            "{path} {headers:?}"
        );
    }
    assert!(server.wait_for_jobs(Duration::from_secs(20)));
    // Stopping answers once every file of the session is written.
    for key in ["site-admin", "cloud-1"] {
        let url = format!("{}/admin/installations/{key}/recording", server.url());
        assert_eq!(agent.delete(&url).call().unwrap().status(), 200);
    }
    let files = recorded(&dir.0);
    // Four deliveries answered, two of them queued and processed.
    assert_eq!(
        files.len(),
        6,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    replay_every(&files);
    for (path, text) in &files {
        for secret in [HOOK_SECRET, CLIENT_SECRET, "api-token", "access-token"] {
            assert!(!text.contains(secret), "{} holds {secret}", path.display());
        }
    }
    let accepted: Vec<Value> = files
        .iter()
        .map(|(_, text)| serde_json::from_str::<Value>(text).unwrap())
        .filter(|scenario| scenario["steps"][0]["accept"].is_object())
        .collect();
    let admin = accepted
        .iter()
        .find(|scenario| scenario["installation"]["client_key"] == "site-admin")
        .unwrap();
    assert_eq!(
        admin["steps"][0]["accept"]["body"],
        json!(String::from_utf8(admin_body).unwrap()),
        "kept as received"
    );
    assert_eq!(
        admin["recorded"]["steps"][0]["outcome"]["queued"]["delivery_id"],
        json!("a-1"),
        "the admin delivery the server accepted replays as accepted"
    );
    for scenario in &accepted {
        let headers = scenario["steps"][0]["accept"]["headers"]
            .as_object()
            .unwrap();
        assert!(
            headers.keys().all(|name| [
                "authorization",
                "x-hub-signature",
                "x-atlassian-webhook-identifier",
                "content-type"
            ]
            .contains(&name.to_ascii_lowercase().as_str())),
            "{headers:?}"
        );
    }
}

#[test]
fn a_pseudonymised_assignee_push_replays_with_its_search_and_cache_keys_renamed() {
    let dir = TempDir::new("assign");
    let mut stack = Stack::new("recording-assign");
    stack.server = None;
    stack.start_server_with(ServerConfig {
        recordings_dir: Some(dir.0.clone()),
        ..ServerConfig::default()
    });
    let key = jira_sync_plugin::qsh::encode(
        &jira_sync_host::sim::SimWorld::demo()
            .installation
            .client_key,
    );
    let path = format!("/admin/installations/{key}/recording");
    assert_eq!(
        admin(&stack, "PUT", &path, r#"{"pseudonymise": true}"#).0,
        200
    );
    // Twice: the second push finds Ada's account in the cache.
    for _ in 0..2 {
        let answer = stack.admin("/admin/groups/1/assign", r#"{"user": 7}"#);
        assert_eq!(
            answer["results"][0]["sync"]["state"],
            json!("done"),
            "{answer}"
        );
    }
    let (status, _) = admin(&stack, "DELETE", &path, "");
    assert_eq!(status, 200);
    let files = recorded(&dir.0);
    // Jira's webhooks for the assignment come back and are recorded too.
    let kinds = replay_every(&files);
    let pushes: Vec<&(PathBuf, String)> = files
        .iter()
        .zip(&kinds)
        .filter(|(_, kind)| *kind == "sync_assignee_outbound")
        .map(|(file, _)| file)
        .collect();
    assert_eq!(pushes.len(), 2, "{kinds:?}");
    for (path, text) in &files {
        let lower = text.to_lowercase();
        for personal in ["ada@example.com", "ada%40example.com", "5f1a", "ada byron"] {
            assert!(
                !lower.contains(personal),
                "{} names {personal}",
                path.display()
            );
        }
    }
    assert!(
        pushes[0].1.contains("%40example.invalid"),
        "the search's query was renamed, not dropped"
    );
}
