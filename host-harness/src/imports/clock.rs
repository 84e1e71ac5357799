//! `clock`: the guest's only time; a sleep is host time, not guest CPU.

use super::CallState;
use crate::wit::jira_sync::plugin::clock;

impl clock::Host for CallState {
    fn now(&mut self) -> u64 {
        self.backends.clock.now()
    }

    fn sleep(&mut self, seconds: u32) {
        self.record.slept += u64::from(seconds);
        self.in_host(|state| state.backends.clock.sleep(seconds));
    }
}
