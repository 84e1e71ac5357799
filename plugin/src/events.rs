//! Every log event name the guest emits, in one place.
//!
//! The names are part of the component's contract: hosts alert on them and tests compare traces of
//! them, so a string here never changes once released. Each constant is named after its string,
//! without the `jira.` prefix and with `.`, `-` and `_` all written `_`.

// Inbound webhook: routing, authentication, dedupe and ordering (docs/behaviour.md#1).

/// A delivery whose `X-Atlassian-Webhook-Identifier` was already handled; answered 200, no effect.
pub const WEBHOOK_DUPLICATE: &str = "jira.webhook.duplicate";
/// A webhook token failed a check (field `reason` is the stable code, `detail` the message).
pub const WEBHOOK_AUTH_FAILED: &str = "jira.webhook.auth-failed";
/// A webhook token's `iss` names no installation the host knows.
pub const WEBHOOK_UNKNOWN_INSTALLATION: &str = "jira.webhook.unknown-installation";
/// A verified webhook body is not the payload Jira documents; answered 400.
pub const WEBHOOK_BAD_PAYLOAD: &str = "jira.webhook.bad-payload";
/// A step of a verified webhook failed talking to Jira; one event per failed step.
pub const WEBHOOK_JIRA_ERROR: &str = "jira.webhook.jira-error";
/// A verified webhook without a (truthy) `changelog`; nothing to sync.
pub const MISSING_CHANGELOG: &str = "jira.missing-changelog";
/// A webhook older than the last one applied to a field of its issue: that field's step is
/// skipped (field `field`; docs/behaviour.md#7).
pub const STALE_EVENT: &str = "jira.stale-event";
/// Another copy of this delivery is being handled right now; answered 503 so that Jira retries.
pub const WEBHOOK_IN_PROGRESS: &str = "jira.webhook.in-progress";
/// An event dated further in the future than the clock skew allows (plus five minutes): applied,
/// but it does not move the watermark, so that it cannot block later events.
pub const FUTURE_TIMESTAMP: &str = "jira.future-timestamp";
/// A queued job names an installation the host no longer knows (fields `client_key`, `delivery`,
/// empty without an id); the job fails without running.
pub const JOB_UNKNOWN_INSTALLATION: &str = "jira.job.unknown-installation";

// Inbound webhook: deleted and moved issues (docs/behaviour.md#1.8).

/// Jira deleted the issue, so the host removed its links (field `groups`: how many were linked).
pub const ISSUE_DELETED: &str = "jira.issue-deleted";
/// Jira moved the issue from key `from` to `issue_key`, so its links and watermarks followed
/// (field `groups`: how many were linked to the old key).
pub const ISSUE_MOVED: &str = "jira.issue-moved";

// Inbound webhook: the assignee step (docs/behaviour.md#1.4).

/// The changelog has no `assignee` item, so the assignee step is skipped.
pub const ASSIGNEE_NOT_IN_CHANGELOG: &str = "jira.assignee-not-in-changelog";
/// Assignee sync is switched off for this direction (reverse for webhooks, forward for outbound).
pub const ASSIGNEE_SYNC_DISABLED: &str = "jira.assignee-sync-disabled";
/// The Jira issue was unassigned, so the host unassigned its linked groups.
pub const ASSIGNEE_CLEARED: &str = "jira.assignee-cleared";
/// The new Jira assignee has no email the app can read; nothing is assigned.
pub const MISSING_ASSIGNEE_EMAIL: &str = "jira.missing-assignee-email";
/// The host assigned its linked groups to the platform user with the assignee's email.
pub const ASSIGNEE_SYNCED: &str = "jira.assignee-synced";
/// No user matches the email: on a webhook no platform user, outbound no assignable Jira user.
pub const ASSIGNEE_NOT_FOUND: &str = "jira.assignee-not-found";
/// The host has no group linked to the issue, so an assignee or status change did nothing.
pub const NO_LINKED_GROUPS: &str = "jira.no-linked-groups";
/// The email API's "this account hides its email" answer was still cached; no request sent.
pub const EMAIL_HIDDEN_CACHED: &str = "jira.email-hidden-cached";

// Inbound webhook: the status step (docs/behaviour.md#1.5).

/// The changelog has no `status` item, so the status step is skipped.
pub const HANDLE_STATUS_CHANGE_UNCHANGED: &str = "jira.handle_status_change.unchanged";
/// Reverse status sync is switched off for the installation.
pub const STATUS_SYNC_DISABLED: &str = "jira.status-sync-disabled";
/// The issue entered the `done` category, so the host resolved its linked groups.
pub const STATUS_SYNC_RESOLVED: &str = "jira.status-sync.resolved";
/// The issue left the `done` category, so the host unresolved its linked groups.
pub const STATUS_SYNC_UNRESOLVED: &str = "jira.status-sync.unresolved";
/// The status change neither entered nor left the `done` category; nothing to do.
pub const STATUS_SYNC_NOOP: &str = "jira.status-sync.noop";

// Outbound status sync (docs/behaviour.md#2).

/// The issue's project has no status mapping in the installation's configuration.
pub const EXTERNAL_PROJECT_NOT_FOUND: &str = "jira.external-project-not-found";
/// The issue already has the target status; nothing is POSTed.
pub const SYNC_STATUS_OUTBOUND_UNCHANGED: &str = "jira.sync_status_outbound.unchanged";
/// The issue is in another status of the target's side (done for a resolved group, not done for
/// an unresolved one), where a person put it; nothing is POSTed (docs/behaviour.md#2.4).
pub const SYNC_STATUS_OUTBOUND_SAME_CATEGORY: &str = "jira.sync_status_outbound.same-category";
/// The status change came from this installation's own webhook; pushing it back would loop.
pub const SYNC_STATUS_OUTBOUND_SKIPPED_LOOP: &str = "jira.sync_status_outbound.skipped-loop";
/// A dry run chose its first transition and stopped without POSTing it.
pub const SYNC_STATUS_OUTBOUND_DRY_RUN: &str = "jira.sync_status_outbound.dry-run";
/// One transition was POSTed; one event per hop of the walk.
pub const SYNC_STATUS_OUTBOUND_TRANSITIONED: &str = "jira.sync_status_outbound.transitioned";
/// A transition failed after earlier hops succeeded; names where the walk left the issue.
pub const SYNC_STATUS_OUTBOUND_STOPPED_MIDWAY: &str = "jira.sync_status_outbound.stopped-midway";
/// The target status could not be reached within the hop budget.
pub const STATUS_SYNC_FAIL: &str = "jira.status-sync-fail";

// The mapping check (docs/behaviour.md#11).

/// A mapped status is missing, unreachable or of unknown reachability for an issue type, or a
/// mapped project could not be checked (fields `project_id`, `issue_type` (empty for a project),
/// `target` (empty for a project) and `problem`, the outcome's WIT name).
pub const MAPPING_CHECK_PROBLEM: &str = "jira.mapping-check.problem";

// Outbound assignee sync (docs/behaviour.md#3).

/// The assignment came from this installation's own webhook; pushing it back would loop.
pub const ASSIGNEE_LOOP_SKIPPED: &str = "jira.assignee-loop-skipped";
/// The platform user has no verified email to look the Jira user up by.
pub const ASSIGNEE_NO_VERIFIED_EMAIL: &str = "jira.assignee-no-verified-email";
/// The Jira issue's assignee was set (field `account_id`, empty when unassigned).
pub const ASSIGNEE_PUSHED: &str = "jira.assignee-pushed";
/// An assignee search spent its email API lookups and found no match; field `skipped` counts the
/// hidden emails it did not look up (docs/behaviour.md#3.2).
pub const ASSIGNEE_SEARCH_LOOKUPS_EXHAUSTED: &str = "jira.assignee-search.lookups-exhausted";

// Any Jira request (docs/behaviour.md#6).

/// Jira answered 429 and the request will be retried after field `wait` seconds.
pub const RATE_LIMIT_RETRY: &str = "jira.rate-limit-retry";
/// Jira still answered 429 when the retry budget ran out; the request fails.
pub const RATE_LIMITED: &str = "jira.rate-limited";

// The component itself.

/// The guest panicked; logged just before the instance traps (field `message`).
pub const PLUGIN_PANIC: &str = "plugin.panic";

/// Every event above, for hosts and tests that check a trace only uses known names.
pub const ALL: &[&str] = &[
    WEBHOOK_DUPLICATE,
    WEBHOOK_AUTH_FAILED,
    WEBHOOK_UNKNOWN_INSTALLATION,
    WEBHOOK_BAD_PAYLOAD,
    WEBHOOK_JIRA_ERROR,
    MISSING_CHANGELOG,
    STALE_EVENT,
    WEBHOOK_IN_PROGRESS,
    FUTURE_TIMESTAMP,
    JOB_UNKNOWN_INSTALLATION,
    ASSIGNEE_NOT_IN_CHANGELOG,
    ASSIGNEE_SYNC_DISABLED,
    ASSIGNEE_CLEARED,
    MISSING_ASSIGNEE_EMAIL,
    ASSIGNEE_SYNCED,
    ASSIGNEE_NOT_FOUND,
    NO_LINKED_GROUPS,
    EMAIL_HIDDEN_CACHED,
    HANDLE_STATUS_CHANGE_UNCHANGED,
    STATUS_SYNC_DISABLED,
    STATUS_SYNC_RESOLVED,
    STATUS_SYNC_UNRESOLVED,
    STATUS_SYNC_NOOP,
    EXTERNAL_PROJECT_NOT_FOUND,
    SYNC_STATUS_OUTBOUND_UNCHANGED,
    SYNC_STATUS_OUTBOUND_SAME_CATEGORY,
    SYNC_STATUS_OUTBOUND_SKIPPED_LOOP,
    SYNC_STATUS_OUTBOUND_DRY_RUN,
    SYNC_STATUS_OUTBOUND_TRANSITIONED,
    SYNC_STATUS_OUTBOUND_STOPPED_MIDWAY,
    STATUS_SYNC_FAIL,
    MAPPING_CHECK_PROBLEM,
    ASSIGNEE_LOOP_SKIPPED,
    ASSIGNEE_NO_VERIFIED_EMAIL,
    ASSIGNEE_PUSHED,
    ASSIGNEE_SEARCH_LOOKUPS_EXHAUSTED,
    RATE_LIMIT_RETRY,
    RATE_LIMITED,
    PLUGIN_PANIC,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        for (i, a) in ALL.iter().enumerate() {
            assert!(!ALL[i + 1..].contains(a), "{a} is listed twice");
        }
    }

    #[test]
    fn names_are_namespaced() {
        for name in ALL {
            assert!(
                name.starts_with("jira.") || name.starts_with("plugin."),
                "{name}"
            );
        }
    }
}
