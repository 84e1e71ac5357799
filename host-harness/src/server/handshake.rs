//! What the host answers itself of Atlassian's requests (docs/behaviour.md#10.1,
//! docs/behaviour.md#10.4): Connect's app descriptor and `installed`/`uninstalled` callbacks,
//! and Forge's invocations. Their RS256 tokens are the host's to verify (docs/decisions/0010);
//! a verified callback writes the installation, and a Forge product event joins the queue like
//! any verified delivery.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Context, Received, Reply, queue};
use crate::install::connect::{INSTALLED_PATH, UNINSTALLED_PATH};
use crate::install::{
    ConnectKeys, ForgeKeys, Invocation, Lifecycle, Refusal, descriptor, verify_invocation,
    verify_lifecycle,
};
use crate::installation::{CredentialSpec, InstallationSpec};
use crate::wit::exports::jira_sync::plugin::webhook;

/// Where Forge posts the app's events (the remote's endpoint in the Forge manifest).
pub const FORGE_EVENTS_PATH: &str = "/forge/events";

/// Where the app descriptor is served.
pub const DESCRIPTOR_PATH: &str = "/atlassian-connect.json";

/// Seconds of leeway on handshake tokens' `exp` and `nbf`, for clocks a little apart.
pub(super) const SKEW_SECONDS: u64 = 5;

/// Seconds a transient refusal (a key server or JWKS out of reach) asks Atlassian to wait.
const RETRY_AFTER_SECONDS: u32 = 10;

/// Forge's lifecycle events: the installation is (re)written, nothing is queued.
const FORGE_INSTALLED: [&str; 2] = ["avi:forge:installed:app", "avi:forge:upgraded:app"];
/// Forge's event for an app removed from a site (not in the events this server was asked to
/// handle, but its meaning is plain).
const FORGE_UNINSTALLED: &str = "avi:forge:uninstalled:app";
/// Forge's product events the component handles.
const FORGE_ISSUE_EVENTS: [&str; 2] = ["avi:jira:updated:issue", "avi:jira:deleted:issue"];

/// The handshakes' settings and the keys they verify with.
pub(super) struct Handshakes {
    /// The app's base URL as Atlassian reaches it: the descriptor's `baseUrl`, and the `aud`
    /// (and qsh base) of lifecycle tokens.
    pub public_url: String,
    /// The app key of the descriptor and of new installations.
    pub app_key: String,
    /// The app's name in the descriptor.
    pub app_name: String,
    /// Seconds of leeway on tokens' `exp` and `nbf`.
    pub skew: u64,
    /// Connect's install-key server.
    pub connect_keys: ConnectKeys,
    /// The Forge app's ARI and Forge's JWKS, when the server answers a Forge app.
    pub forge: Option<(String, ForgeKeys)>,
}

/// Whether `path` is a handshake's.
pub(super) fn is_handshake(path: &str) -> bool {
    path == DESCRIPTOR_PATH
        || path.trim_end_matches('/') == INSTALLED_PATH
        || path.trim_end_matches('/') == UNINSTALLED_PATH
        || path.trim_end_matches('/') == FORGE_EVENTS_PATH
}

/// Answers one handshake request.
pub(super) async fn handle(context: &Arc<Context>, received: &Received) -> Reply {
    let handshakes = &context.handshakes;
    let path = received.path.trim_end_matches('/');
    let post = received.method.eq_ignore_ascii_case("POST");
    match path {
        DESCRIPTOR_PATH if received.method.eq_ignore_ascii_case("GET") => Reply::json(
            200,
            descriptor(
                &handshakes.app_key,
                &handshakes.public_url,
                &handshakes.app_name,
            ),
        ),
        INSTALLED_PATH | UNINSTALLED_PATH if post => lifecycle(context, received).await,
        FORGE_EVENTS_PATH if post => forge(context, received).await,
        _ => Reply::json(405, json!({"error": "method not allowed"})),
    }
}

/// A refused token: 503 with `Retry-After` when the keys were out of reach (Atlassian retries),
/// else 401; logged with its stable code.
fn refused(kind: &str, refusal: &Refusal) -> Reply {
    tracing::warn!(
        target: "jira_sync::server",
        kind, reason = refusal.code(), detail = %refusal, "handshake refused"
    );
    let body = json!({"error": refusal.to_string(), "reason": refusal.code()});
    if refusal.is_transient() {
        let mut reply = Reply::json(503, body);
        reply
            .headers
            .push(("Retry-After".into(), RETRY_AFTER_SECONDS.to_string()));
        return reply;
    }
    Reply::json(401, body)
}

/// 204 without a body (a 204 may not have one).
fn no_content() -> Reply {
    Reply {
        status: 204,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// A store that failed: 503, so that Atlassian sends the request again.
fn unavailable(error: impl std::fmt::Display) -> Reply {
    let mut reply = Reply::json(503, json!({"error": format!("the store failed: {error}")}));
    reply
        .headers
        .push(("Retry-After".into(), RETRY_AFTER_SECONDS.to_string()));
    reply
}

/// Connect's `installed` and `uninstalled` (docs/behaviour.md#10.1).
async fn lifecycle(context: &Arc<Context>, received: &Received) -> Reply {
    let handshakes = &context.handshakes;
    let verified = verify_lifecycle(
        &handshakes.connect_keys,
        &handshakes.public_url,
        &received.method,
        &received.path,
        &received.query,
        &received.headers,
        &received.body,
        super::outbox::now(),
        handshakes.skew,
    )
    .await;
    let lifecycle = match verified {
        Ok(lifecycle) => lifecycle,
        Err(refusal) => return refused("connect", &refusal),
    };
    let client_key = match &lifecycle {
        Lifecycle::Installed { client_key, .. } | Lifecycle::Uninstalled { client_key, .. } => {
            client_key.clone()
        }
    };
    let existing = match context.store.installation_spec(&client_key).await {
        Ok(existing) => existing,
        Err(e) => return unavailable(e),
    };
    if let Some(other) = existing.as_ref().filter(|s| !s.credentials.is_connect()) {
        return Reply::json(
            409,
            json!({"error": format!(
                "{client_key} is an installation of another kind ({})",
                other.guest_credentials().kind()
            )}),
        );
    }
    let spec = match lifecycle {
        Lifecycle::Installed {
            client_key,
            shared_secret,
            base_url,
            app_key,
        } => {
            // A reinstall keeps the installation's settings and links; the secret and the site
            // are the callback's.
            let mut spec = existing.unwrap_or_else(|| {
                InstallationSpec::new(&client_key, &shared_secret, &base_url, &app_key)
            });
            spec.shared_secret = shared_secret;
            spec.base_url = base_url;
            spec.app_key = app_key;
            spec.uninstalled = false;
            tracing::info!(target: "jira_sync::server", %client_key, "installed (Connect)");
            spec
        }
        Lifecycle::Uninstalled { client_key, .. } => {
            let Some(mut spec) = existing else {
                return no_content();
            };
            spec.uninstalled = true;
            tracing::info!(target: "jira_sync::server", %client_key, "uninstalled (Connect)");
            spec
        }
    };
    match context.store.add_installation(&spec).await {
        Ok(()) => no_content(),
        Err(e) => unavailable(e),
    }
}

/// A Forge invocation (docs/behaviour.md#10.4): the installation is written (created, or its
/// site and system token brought up to date), and a product event is queued.
async fn forge(context: &Arc<Context>, received: &Received) -> Reply {
    let Some((app_ari, keys)) = &context.handshakes.forge else {
        return Reply::json(404, json!({"error": "this server answers no Forge app"}));
    };
    let verified = verify_invocation(
        keys,
        app_ari,
        &received.headers,
        super::outbox::now(),
        context.handshakes.skew,
    )
    .await;
    let invocation = match verified {
        Ok(invocation) => invocation,
        Err(refusal) => return refused("forge", &refusal),
    };
    let Ok(event) = serde_json::from_slice::<Value>(&received.body) else {
        return Reply::json(400, json!({"error": "the event is not JSON"}));
    };
    // The event may sit under `payload` or `event` (docs/decisions/0010).
    let event_type = ["", "/payload", "/event"]
        .iter()
        .find_map(|at| event.pointer(&format!("{at}/eventType"))?.as_str())
        .unwrap_or_default()
        .to_owned();
    // Only Forge's lifecycle events change whether the app is installed.
    let installed = if FORGE_INSTALLED.contains(&event_type.as_str()) {
        Some(true)
    } else if event_type == FORGE_UNINSTALLED {
        Some(false)
    } else {
        None
    };
    let spec = match forge_installation(context, &invocation, installed).await {
        Ok(spec) => spec,
        Err(reply) => return reply,
    };
    if installed.is_some() {
        return Reply::json(200, json!({"ok": true}));
    }
    if !FORGE_ISSUE_EVENTS.contains(&event_type.as_str()) || spec.uninstalled {
        tracing::info!(
            target: "jira_sync::server",
            installation = %spec.client_key, event_type, "Forge event ignored"
        );
        return Reply::json(200, json!({"ok": true}));
    }
    let job = webhook::Job {
        client_key: spec.client_key,
        delivery_id: forge_delivery_id(&event),
        body: received.body.clone(),
    };
    match queue::enqueue(context, job).await {
        Ok(()) => Reply::json(200, json!({"ok": true})),
        Err(e) => unavailable(e),
    }
}

/// The Forge installation `invocation` names, written when it is new or its site, system token
/// or state changed; `installed` is what a lifecycle event says of its state (`None` for a
/// product event, which leaves it).
async fn forge_installation(
    context: &Arc<Context>,
    invocation: &Invocation,
    installed: Option<bool>,
) -> Result<InstallationSpec, Reply> {
    let client_key = &invocation.installation_id;
    let existing = context
        .store
        .installation_spec(client_key)
        .await
        .map_err(unavailable)?;
    let mut spec = match existing {
        Some(spec) if !matches!(spec.credentials, CredentialSpec::Forge { .. }) => {
            return Err(Reply::json(
                409,
                json!({"error": format!("{client_key} is an installation of another kind")}),
            ));
        }
        Some(spec) => spec,
        None => {
            let mut spec = InstallationSpec::new(
                client_key,
                "",
                &invocation.api_base_url,
                &context.handshakes.app_key,
            );
            spec.credentials = CredentialSpec::Forge { access_token: None };
            spec
        }
    };
    let before = serde_json::to_value(&spec).ok();
    spec.base_url = invocation.api_base_url.clone();
    if let Some(token) = &invocation.system_token {
        spec.credentials = CredentialSpec::Forge {
            access_token: Some(token.clone()),
        };
    }
    if let Some(installed) = installed {
        spec.uninstalled = !installed;
    }
    if serde_json::to_value(&spec).ok() != before {
        context
            .store
            .add_installation(&spec)
            .await
            .map_err(unavailable)?;
    }
    Ok(spec)
}

/// The delivery id of a Forge product event, for dedupe across Forge's retries (Forge names no
/// delivery id we know of; docs/decisions/0010): the issue's id with the changelog's for an
/// update, and the issue's alone for a deletion.
fn forge_delivery_id(event: &Value) -> Option<String> {
    let event = ["/payload", "/event"]
        .iter()
        .find_map(|at| {
            event
                .pointer(at)
                .filter(|inner| inner.get("issue").is_some())
        })
        .unwrap_or(event);
    let id = |at: &str| match event.pointer(at)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let issue = id("/issue/id")?;
    match event.get("eventType").and_then(Value::as_str) {
        Some("avi:jira:deleted:issue") => Some(format!("forge:deleted:{issue}")),
        _ => Some(format!("forge:{issue}:{}", id("/changelog/id")?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forge_deliveries_are_named_by_issue_and_change() {
        let updated = json!({"eventType": "avi:jira:updated:issue",
            "issue": {"id": "10007", "key": "A-1"}, "changelog": {"id": 55, "items": []}});
        assert_eq!(
            forge_delivery_id(&updated).as_deref(),
            Some("forge:10007:55")
        );
        let wrapped = json!({"payload": updated});
        assert_eq!(
            forge_delivery_id(&wrapped).as_deref(),
            Some("forge:10007:55")
        );
        let deleted = json!({"eventType": "avi:jira:deleted:issue", "issue": {"id": 7}});
        assert_eq!(
            forge_delivery_id(&deleted).as_deref(),
            Some("forge:deleted:7")
        );
        let no_change = json!({"eventType": "avi:jira:updated:issue", "issue": {"id": "1"}});
        assert_eq!(forge_delivery_id(&no_change), None, "no id: no dedupe");
    }

    #[test]
    fn handshake_paths() {
        for path in [
            "/atlassian-connect.json",
            "/atlassian-connect/installed",
            "/atlassian-connect/uninstalled/",
            "/forge/events",
        ] {
            assert!(is_handshake(path), "{path}");
        }
        assert!(!is_handshake("/atlassian-connect/other"));
    }
}
