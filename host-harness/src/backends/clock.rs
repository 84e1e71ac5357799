//! Clocks: the machine's, and a manual one that replay and tests move by hand.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{BoxFuture, Clock};

/// The machine's clock; `sleep` really waits, capped so that a hostile `Retry-After` cannot park
/// a call for long. On a tokio runtime the wait is a timer and holds no thread; elsewhere (the
/// blocking wrapper) it sleeps the calling thread.
pub struct SystemClock {
    /// The longest single sleep honoured.
    pub max_sleep: std::time::Duration,
}

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn sleep(&self, seconds: u32) -> BoxFuture<'_, ()> {
        let wait = std::time::Duration::from_secs(u64::from(seconds)).min(self.max_sleep);
        Box::pin(async move {
            if tokio::runtime::Handle::try_current().is_ok() {
                tokio::time::sleep(wait).await;
            } else {
                std::thread::sleep(wait);
            }
        })
    }
}

/// A clock that moves only when told to; `sleep` advances it, so retries replay instantly.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock stopped at `now` (Unix seconds).
    pub fn new(now: u64) -> Self {
        ManualClock(AtomicU64::new(now))
    }

    /// Moves the clock forward.
    pub fn advance(&self, seconds: u64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    fn sleep(&self, seconds: u32) -> BoxFuture<'_, ()> {
        self.advance(u64::from(seconds));
        Box::pin(std::future::ready(()))
    }
}
