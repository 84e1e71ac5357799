//! `log`: the guest's log lines, counted against the call's line and byte budgets.

use super::CallState;
use super::record::{LogLine, string_map};
use crate::limits::LimitExceeded;
use crate::wit::jira_sync::plugin::log;

impl log::Host for CallState {
    async fn log(
        &mut self,
        level: log::Level,
        event: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        self.usage.log_lines += 1;
        self.usage.bytes +=
            (event.len() + fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()) as u64;
        if self.usage.log_lines > self.limits.log_lines {
            return Err(self.exceed(LimitExceeded::Log));
        }
        if self.usage.bytes > self.limits.total_bytes {
            return Err(self.exceed(LimitExceeded::TotalBytes));
        }
        self.record.logs.push(LogLine {
            level: level.into(),
            event,
            fields: string_map(&fields),
        });
        Ok(())
    }
}
