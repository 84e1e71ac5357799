//! Platform → Jira pushes through the outbox: the admin API records a group's change with one
//! outbox entry per linked issue and makes the first attempt at once; this module makes each
//! attempt, decides from its outcome whether the push is done, failed for good, or due again
//! (at the time Jira named for a 429, else after a capped backoff), and retries due entries in
//! the background, one installation at a time each round so that one slow site never delays
//! another's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Context, record_call};
use crate::backends::{Clock as _, Next, OutboxEntry, SystemClock};
use crate::recording::Asked;
use crate::replay::trace;
use crate::wit::exports::jira_sync::plugin::outbound;

/// Attempts before a push fails for good.
pub(super) const MAX_ATTEMPTS: u32 = 10;
/// Longest wait between two attempts.
const MAX_BACKOFF_SECONDS: u64 = 600;

pub(super) fn now() -> u64 {
    SystemClock {
        max_sleep: Duration::ZERO,
    }
    .now()
}

/// Makes one attempt at `entry`, records its outcome, and returns the entry as it now stands.
pub(super) async fn attempt(context: &Context, entry: &OutboxEntry) -> OutboxEntry {
    let outcome = push(context, entry).await;
    let next = next_step(&outcome, entry.attempts, now());
    let mut after = entry.clone();
    if let Err(e) = context.store.finish_push(entry.id, &outcome, next).await {
        // The lease runs out and the push is retried: at worst Jira hears it twice, which
        // leaves the issue as one push would.
        tracing::warn!(target: "jira_sync::outbox", id = entry.id, "record outcome: {e}");
    }
    after.outcome = Some(outcome);
    (after.state, after.next_at) = match next {
        Next::Done => ("done".into(), 0),
        Next::Failed => ("failed".into(), 0),
        Next::RetryAt(at) => ("pending".into(), at),
    };
    after
}

/// Runs the outbound sync the entry records; its outcome as JSON.
async fn push(context: &Context, entry: &OutboxEntry) -> Value {
    let started = Instant::now();
    let group = entry.group;
    let (kind, trigger, result, record) = if let Some(resolved) = entry.push["resolved"].as_bool() {
        let request = outbound::StatusRequest {
            client_key: entry.client_key.clone(),
            issue_key: entry.issue_key.clone(),
            resolved,
            dry_run: false,
            source: outbound::AssignmentSource::Platform,
        };
        let call = context
            .call_recorded(
                || Some(request.client_key.clone()),
                || Asked::sync_status(&request),
                trace::sync_status,
                async |backends| context.runtime.sync_status(backends, &request).await,
            )
            .await;
        let verb = if resolved { "resolve" } else { "unresolve" };
        let result = call
            .result
            .as_ref()
            .map_or_else(|e| json!({"error": e.to_string()}), Value::from);
        let error = call.result.as_ref().err().map(ToString::to_string);
        (
            "sync_status",
            format!("{verb} group {group}"),
            (result, error),
            call.record,
        )
    } else {
        let target = match entry.push["assign"].as_u64() {
            Some(user) => match context.store.user_emails(user).await {
                Ok(emails) => outbound::AssigneeTarget::Emails(emails),
                Err(e) => return json!({"error": e.to_string()}),
            },
            None => outbound::AssigneeTarget::Unassign,
        };
        let request = outbound::AssigneeRequest {
            client_key: entry.client_key.clone(),
            issue_key: entry.issue_key.clone(),
            target,
            source: outbound::AssignmentSource::Platform,
        };
        let call = context
            .call_recorded(
                || Some(request.client_key.clone()),
                || Asked::sync_assignee(&request),
                trace::sync_assignee,
                async |backends| context.runtime.sync_assignee(backends, &request).await,
            )
            .await;
        let result = call
            .result
            .as_ref()
            .map_or_else(|e| json!({"error": e.to_string()}), Value::from);
        let error = call.result.as_ref().err().map(ToString::to_string);
        (
            "sync_assignee",
            format!("assign group {group}"),
            (result, error),
            call.record,
        )
    };
    let (result, error) = result;
    record_call(
        context,
        kind,
        trigger,
        started,
        result.clone(),
        error,
        record,
    );
    result
}

/// Seconds to wait after attempt number `attempts` failed: 5, 10, 20, ... up to ten minutes.
pub(super) fn backoff(attempts: u32) -> u64 {
    5u64.saturating_mul(1 << attempts.saturating_sub(1).min(16))
        .min(MAX_BACKOFF_SECONDS)
}

/// What an attempt's outcome means for the push: done, failed for good, or due again.
pub(super) fn next_step(outcome: &Value, attempts: u32, now: u64) -> Next {
    let retry = |after: u64| {
        if attempts >= MAX_ATTEMPTS {
            Next::Failed
        } else {
            Next::RetryAt(now.saturating_add(after))
        }
    };
    let backoff = backoff(attempts);
    if outcome.get("error").is_some() {
        // The call itself failed (a backend, a limit, a trap): try again later.
        return retry(backoff);
    }
    match outcome["type"].as_str().unwrap_or_default() {
        "transitioned" | "unchanged" | "not-mapped" | "skipped-loop" | "assigned"
        | "unassigned" | "no-matching-user" | "no-verified-email" | "disabled" => Next::Done,
        "rate-limited" => retry(outcome["retry_after"].as_u64().unwrap_or(backoff).max(1)),
        "failed" => match outcome["failure"]["type"].as_str().unwrap_or_default() {
            // Jira or the network failed: transient.
            "server-error" | "http" => retry(backoff),
            _ => Next::Failed,
        },
        // issue-not-found, unauthorized, rejected, unreachable: retrying cannot help.
        _ => Next::Failed,
    }
}

/// Retries due pushes every second until the server stops.
pub(super) async fn retry_due(context: Arc<Context>, workers: usize) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = now();
        if let Ok((depth, overdue)) = context.store.outbox_backlog(now).await {
            context.metrics.outbox(depth, overdue);
        }
        let due = match context
            .store
            .claim_due_pushes(now, context.queue.lease_until(now), workers)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(target: "jira_sync::outbox", "claim due pushes: {e}");
                continue;
            }
        };
        for entry in due {
            let context = context.clone();
            tokio::spawn(async move {
                // Retries are background work: they leave a quarter of the workers to webhooks.
                let Ok(background) = context.background.clone().acquire_owned().await else {
                    return;
                };
                let Ok(worker) = context.workers.clone().acquire_owned().await else {
                    return;
                };
                attempt(&context, &entry).await;
                drop((worker, background));
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_decide_done_failed_or_when_to_retry() {
        let now = 1_000;
        for done in [
            json!({"type": "transitioned", "transitions": ["31"]}),
            json!({"type": "unchanged"}),
            json!({"type": "assigned", "account_id": "x"}),
            json!({"type": "no-matching-user"}),
        ] {
            assert_eq!(next_step(&done, 1, now), Next::Done, "{done}");
        }
        for failed in [
            json!({"type": "unauthorized"}),
            json!({"type": "issue-not-found"}),
            json!({"type": "rejected", "message": "x"}),
            json!({"type": "failed", "failure": {"type": "unexpected-status", "status": 418}}),
        ] {
            assert_eq!(next_step(&failed, 1, now), Next::Failed, "{failed}");
        }
        let limited = json!({"type": "rate-limited", "retry_after": 42});
        assert_eq!(
            next_step(&limited, 1, now),
            Next::RetryAt(1_042),
            "Jira's time"
        );
        let down = json!({"type": "failed", "failure": {"type": "server-error", "status": 503}});
        assert_eq!(next_step(&down, 1, now), Next::RetryAt(1_005));
        assert_eq!(
            next_step(&down, 3, now),
            Next::RetryAt(1_020),
            "backoff doubles"
        );
        assert_eq!(
            next_step(&down, 9, now),
            Next::RetryAt(1_600),
            "and is capped"
        );
        assert_eq!(
            next_step(&down, MAX_ATTEMPTS, now),
            Next::Failed,
            "attempts run out"
        );
        let trap = json!({"error": "backend: sqlite: database is locked"});
        assert_eq!(next_step(&trap, 1, now), Next::RetryAt(1_005));
    }
}
