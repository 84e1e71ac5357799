//! What one call into the component may consume, per installation, with safe defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// No installation's `memory_bytes` goes beyond this: it is the pooling allocator's slot size.
pub const MAX_MEMORY_BYTES: usize = 64 * 1024 * 1024;

/// No installation's `memory_bytes` goes below this: the component starts with 2 MiB of memory
/// (plugin/build.rs), so a smaller bound would fail every call before the guest ran.
pub const MIN_MEMORY_BYTES: usize = 2 * 1024 * 1024;

/// What one call for an installation may consume; every field has a safe default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Linear memory the instance may grow to (from [`MIN_MEMORY_BYTES`] to
    /// [`MAX_MEMORY_BYTES`]).
    pub memory_bytes: usize,
    /// CPU time the call's thread may spend running guest code (the thread's CPU clock, less
    /// the CPU of host calls), so that a busy machine never shortens a call's budget.
    pub cpu_ms: u64,
    /// Wall-clock deadline of the whole call, host calls and `Retry-After` waits included.
    pub wall_ms: u64,
    /// HTTP requests one call may send.
    pub http_calls: u32,
    /// Largest Jira response body handed to the guest; larger is a `response-too-large` error.
    pub response_bytes: u64,
    /// Request and response bodies one call may move in total.
    pub total_bytes: u64,
    /// Log lines one call may write.
    pub log_lines: u32,
    /// Largest webhook answer the guest may return.
    pub webhook_response_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 32 * 1024 * 1024,
            cpu_ms: 250,
            // Above the default retry budget (60 s of waits) plus a few slow Jira requests.
            wall_ms: 90_000,
            http_calls: 32,
            response_bytes: 1024 * 1024,
            total_bytes: 8 * 1024 * 1024,
            log_lines: 1_000,
            webhook_response_bytes: 64 * 1024,
        }
    }
}

impl Limits {
    /// The CPU budget as a duration.
    pub fn cpu(&self) -> Duration {
        Duration::from_millis(self.cpu_ms)
    }

    /// Why the host cannot honour these limits, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.memory_bytes > MAX_MEMORY_BYTES {
            return Err(format!(
                "memory_bytes {} is above the host's instance slot of {MAX_MEMORY_BYTES} bytes",
                self.memory_bytes
            ));
        }
        if self.memory_bytes < MIN_MEMORY_BYTES {
            return Err(format!(
                "memory_bytes {} is below the component's initial memory of \
                 {MIN_MEMORY_BYTES} bytes: every call would fail",
                self.memory_bytes
            ));
        }
        if self.cpu_ms == 0 || self.wall_ms == 0 {
            return Err("cpu_ms and wall_ms must be above zero".to_owned());
        }
        Ok(())
    }

    /// The wall-clock deadline as a duration.
    pub fn wall(&self) -> Duration {
        Duration::from_millis(self.wall_ms)
    }
}

/// The limit a call broke; the call ends, its effects are dropped, and the next call is fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// The instance tried to grow its memory past `memory_bytes`.
    #[error("limit: memory")]
    Memory,
    /// Guest code ran longer than `cpu_ms`.
    #[error("limit: cpu")]
    Cpu,
    /// The call ran past `wall_ms` of wall-clock time, or asked to wait past it.
    #[error("limit: deadline")]
    Deadline,
    /// The guest sent more than `http_calls` requests.
    #[error("limit: http-calls")]
    HttpCalls,
    /// Request, response and log bytes passed `total_bytes`.
    #[error("limit: total-bytes")]
    TotalBytes,
    /// The guest wrote more than `log_lines` log lines.
    #[error("limit: log")]
    Log,
    /// The webhook answer was larger than `webhook_response_bytes`.
    #[error("limit: webhook-response")]
    WebhookResponse,
}
