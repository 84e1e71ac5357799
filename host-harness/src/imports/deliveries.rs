//! `deliveries`: handled delivery ids and per-issue watermarks (docs/behaviour.md#7), of the
//! call's installation only; what the guest records is staged until the call succeeds, so a
//! failed call's delivery stays unhandled and Jira's retry runs.

use super::CallState;
use super::effects::Effect;
use crate::wit::jira_sync::plugin::deliveries;

impl deliveries::Host for CallState {
    fn seen(&mut self, client_key: String, id: String) -> bool {
        if !self.own(&client_key, "deliveries.seen") {
            return false;
        }
        self.staged.seen(&client_key, &id) || self.backends.deliveries.seen(&client_key, &id)
    }

    fn mark_seen(&mut self, client_key: String, id: String) {
        if !self.own(&client_key, "deliveries.mark-seen") {
            return;
        }
        self.staged.push(Effect::Seen(client_key, id));
    }

    fn last_applied(&mut self, client_key: String, issue_key: String) -> Option<i64> {
        if !self.own(&client_key, "deliveries.last-applied") {
            return None;
        }
        self.backends
            .deliveries
            .last_applied(&client_key, &issue_key)
    }

    fn set_last_applied(&mut self, client_key: String, issue_key: String, updated_ms: i64) {
        if !self.own(&client_key, "deliveries.set-last-applied") {
            return;
        }
        self.staged
            .push(Effect::Applied(client_key, issue_key, updated_ms));
    }
}
