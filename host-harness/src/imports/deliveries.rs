//! `deliveries`: handled delivery ids and per-issue watermarks (docs/behaviour.md#7); what the
//! guest records is staged until the call succeeds, so a failed call's delivery stays unhandled
//! and Jira's retry runs.

use super::CallState;
use super::effects::Effect;
use crate::wit::jira_sync::plugin::deliveries;

impl deliveries::Host for CallState {
    fn seen(&mut self, client_key: String, id: String) -> bool {
        self.staged.seen(&client_key, &id) || self.backends.deliveries.seen(&client_key, &id)
    }

    fn mark_seen(&mut self, client_key: String, id: String) {
        self.staged.push(Effect::Seen(client_key, id));
    }

    fn last_applied(&mut self, client_key: String, issue_key: String) -> Option<i64> {
        self.backends
            .deliveries
            .last_applied(&client_key, &issue_key)
    }

    fn set_last_applied(&mut self, client_key: String, issue_key: String, updated_ms: i64) {
        self.staged
            .push(Effect::Applied(client_key, issue_key, updated_ms));
    }
}
