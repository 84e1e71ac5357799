//! `clock`: the guest's only time; a sleep is host time, not guest CPU, and a sleep that would
//! end past the call's deadline ends the call instead.

use std::time::Duration;

use super::CallState;
use crate::limits::LimitExceeded;
use crate::wit::jira_sync::plugin::clock;

impl clock::Host for CallState {
    async fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(self.backends.clock.now())
    }

    async fn sleep(&mut self, seconds: u32) -> wasmtime::Result<()> {
        if self.past_deadline(Duration::from_secs(u64::from(seconds))) {
            return Err(self.exceed(LimitExceeded::Deadline));
        }
        self.record.slept += u64::from(seconds);
        let clock = self.backends.clock.clone();
        self.in_host(clock.sleep(seconds)).await;
        Ok(())
    }
}
