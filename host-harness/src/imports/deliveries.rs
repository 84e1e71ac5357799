//! `deliveries`: handled delivery ids and per-field watermarks (docs/behaviour.md#7), of the
//! call's installation only. Asking whether a delivery was seen claims it atomically, so that of
//! many copies handled at once exactly one runs; marks and watermarks are staged until the call
//! succeeds and then committed in one transaction, and a claim the call did not mark handled is
//! released at its end, so that Jira's retry runs.

use super::CallState;
use super::effects::Effect;
use crate::backends::{Claim, Field};
use crate::wit::jira_sync::plugin::deliveries;

impl deliveries::Host for CallState {
    fn seen(&mut self, client_key: String, id: String) -> wasmtime::Result<bool> {
        if !self.own(&client_key, "deliveries.seen") {
            return Ok(false);
        }
        if self.staged.handled(&client_key, &id) {
            return Ok(true);
        }
        let now = self.backends.clock.now();
        // The claim outlives the call by a second at most: a call never runs past its deadline.
        let lease_until = now.saturating_add(self.limits.wall_ms.div_ceil(1000) + 1);
        let claim = self
            .backends
            .platform
            .claim(&client_key, &id, self.owner, now, lease_until)
            .map_err(|e| self.fail(e))?;
        Ok(match claim {
            Claim::Claimed => {
                self.claims.push((client_key, id));
                false
            }
            Claim::Handled | Claim::InProgress => true,
        })
    }

    fn mark_seen(&mut self, client_key: String, id: String) -> wasmtime::Result<()> {
        if self.own(&client_key, "deliveries.mark-seen") {
            self.staged.push(Effect::Handled(client_key, id));
        }
        Ok(())
    }

    fn last_applied(
        &mut self,
        client_key: String,
        issue_key: String,
    ) -> wasmtime::Result<Option<i64>> {
        if !self.own(&client_key, "deliveries.last-applied") {
            return Ok(None);
        }
        let mut newest = None;
        for field in Field::ALL {
            let mark = self
                .backends
                .platform
                .watermark(&client_key, &issue_key, field)
                .map_err(|e| self.fail(e))?;
            newest = newest.max(mark);
        }
        Ok(newest)
    }

    fn set_last_applied(
        &mut self,
        client_key: String,
        issue_key: String,
        updated_ms: i64,
    ) -> wasmtime::Result<()> {
        if self.own(&client_key, "deliveries.set-last-applied") {
            self.staged.push(Effect::Watermark {
                issue: (client_key, issue_key),
                fields: Field::ALL.to_vec(),
                updated_ms,
            });
        }
        Ok(())
    }
}
