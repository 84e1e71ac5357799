//! `installations`: the guest looks an installation up, and the call takes on that
//! installation's site (egress) and limits (docs/behaviour.md#9).

use super::CallState;
use crate::wit::jira_sync::plugin::{installations, types};

impl installations::Host for CallState {
    fn get_by_client_key(&mut self, client_key: String) -> Option<types::Installation> {
        let (installation, limits) = self.backends.platform.installation(&client_key)?;
        // The guest may now reach this installation's site, and only sites it looked up.
        self.egress.allow(&installation.base_url);
        self.limits = limits;
        Some(installation)
    }
}
