//! `installations`: the guest may look up the call's own installation only (read once, when the
//! call was bound); the call then may reach that installation's site (egress). Any other client
//! key is refused and recorded (docs/behaviour.md#9).

use super::CallState;
use crate::wit::jira_sync::plugin::{installations, types};

impl installations::Host for CallState {
    async fn get_by_client_key(
        &mut self,
        client_key: String,
    ) -> wasmtime::Result<Option<types::Installation>> {
        if !self.own(&client_key, "installations.get-by-client-key") {
            return Ok(None);
        }
        let Some(installation) = self.tenant.as_ref().and_then(|(_, found)| found.clone()) else {
            return Ok(None);
        };
        self.egress.allow(&installation.base_url);
        Ok(Some(installation))
    }
}
