//! `deliveries`: claims on deliveries and per-field watermarks (docs/behaviour.md#7), of the
//! call's installation only. A claim is taken atomically in the backend, so that of many copies
//! of one delivery handled at once exactly one runs; marks and watermarks are staged until the
//! call succeeds and then committed in one transaction; a claim the call did not mark handled is
//! released at its end, so that Jira's retry runs.

use super::CallState;
use crate::backends::Claim;
use crate::backends::Effect;
use crate::wit::jira_sync::plugin::deliveries::{self, Field};

impl deliveries::Host for CallState {
    async fn claim(
        &mut self,
        client_key: String,
        id: String,
    ) -> wasmtime::Result<deliveries::ClaimOutcome> {
        if !self.own(&client_key, "deliveries.claim") {
            // Another installation's delivery is not this call's to handle.
            return Ok(deliveries::ClaimOutcome::Handled);
        }
        if self.staged.handled(&client_key, &id) || self.holds(&client_key, &id) {
            return Ok(deliveries::ClaimOutcome::Claimed);
        }
        if self.leased.as_ref() == Some(&(client_key.clone(), id.clone())) {
            // The caller runs this delivery under an exclusive lease (its queue's): the lease
            // is the claim, and only whether the delivery was handled is left to ask.
            let handled = self
                .backends
                .platform
                .handled(&client_key, &id)
                .await
                .map_err(|e| self.fail(e))?;
            return Ok(if handled {
                deliveries::ClaimOutcome::Handled
            } else {
                deliveries::ClaimOutcome::Claimed
            });
        }
        let now = self.backends.clock.now();
        // The claim outlives the call by a second at most: a call never runs past its deadline.
        let lease_until = now.saturating_add(self.limits.wall_ms.div_ceil(1000) + 1);
        let claim = self
            .backends
            .platform
            .claim(&client_key, &id, self.owner, now, lease_until)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(match claim {
            Claim::Claimed => {
                self.claims.push((client_key, id));
                deliveries::ClaimOutcome::Claimed
            }
            Claim::Handled => deliveries::ClaimOutcome::Handled,
            Claim::InProgress => deliveries::ClaimOutcome::InProgress,
        })
    }

    async fn mark_handled(&mut self, client_key: String, id: String) -> wasmtime::Result<()> {
        if self.own(&client_key, "deliveries.mark-handled") {
            self.staged.push(Effect::Handled(client_key, id));
        }
        Ok(())
    }

    async fn last_applied(
        &mut self,
        client_key: String,
        issue_key: String,
        field: Field,
    ) -> wasmtime::Result<Option<i64>> {
        if !self.own(&client_key, "deliveries.last-applied") {
            return Ok(None);
        }
        self.backends
            .platform
            .watermark(&client_key, &issue_key, field.into())
            .await
            .map_err(|e| self.fail(e))
    }

    async fn set_last_applied(
        &mut self,
        client_key: String,
        issue_key: String,
        field: Field,
        updated_ms: i64,
    ) -> wasmtime::Result<()> {
        if self.own(&client_key, "deliveries.set-last-applied") {
            self.staged.push(Effect::Watermark {
                issue: (client_key, issue_key),
                fields: vec![field.into()],
                updated_ms,
            });
        }
        Ok(())
    }
}
