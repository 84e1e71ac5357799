//! `installations`: the guest may look up the call's own installation only; the call then may
//! reach that installation's site (egress). Any other client key is refused and recorded
//! (docs/behaviour.md#9).

use super::CallState;
use crate::wit::jira_sync::plugin::{installations, types};

impl installations::Host for CallState {
    fn get_by_client_key(&mut self, client_key: String) -> Option<types::Installation> {
        if !self.own(&client_key, "installations.get-by-client-key") {
            return None;
        }
        let installation = self.tenant.as_ref()?.1.clone()?;
        self.egress.allow(&installation.base_url);
        Some(installation)
    }
}
