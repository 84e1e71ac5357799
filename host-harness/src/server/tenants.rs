//! Fair shares of the workers: each installation's webhooks may hold at most a fixed number of
//! workers at once, so that one installation whose Jira is slow (or rate-limits it) queues behind
//! itself and never takes every worker from the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The per-installation limits on workers.
pub(super) struct Tenants {
    per_tenant: usize,
    shares: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Tenants {
    pub fn new(per_tenant: usize) -> Self {
        Tenants {
            per_tenant,
            shares: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a share of `tenant`'s workers; a request bound to no installation has none to
    /// wait for.
    pub async fn share(&self, tenant: Option<String>) -> Option<OwnedSemaphorePermit> {
        let tenant = tenant?;
        let share = {
            let mut shares = self.shares.lock().unwrap_or_else(|p| p.into_inner());
            // Drop the shares nobody holds (a held permit keeps its semaphore alive), so that the
            // map stays as small as the set of installations with work in flight.
            shares
                .retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < self.per_tenant);
            shares
                .entry(tenant)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
                .clone()
        };
        share.acquire_owned().await.ok()
    }
}
