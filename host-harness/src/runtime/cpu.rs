//! CPU accounting: a ticker thread advances the engine's epoch every [`EPOCH_TICK`], and each
//! store's deadline callback ends the call once its guest CPU time (the thread's CPU clock, less
//! host calls) passes the installation's `cpu_ms`, or its wall time passes `wall_ms`. Epochs rather than fuel: docs/decisions/0002-epochs-not-fuel.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use wasmtime::{Engine, Store, UpdateDeadline};

use crate::imports::CallState;
use crate::limits::LimitExceeded;

/// How often the epoch ticker interrupts guest code to check its CPU budget.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// The thread that advances the engine's epoch; stopped and joined on drop.
pub(super) struct Ticker {
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Ticker {
    /// Starts ticking `engine`.
    pub fn start(engine: &Engine) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (engine, stop) = (engine.clone(), stop.clone());
            thread::Builder::new()
                .name("jira-sync-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })?
        };
        Ok(Ticker {
            thread: Some(thread),
            stop,
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Checks the store's guest time against its CPU budget at every tick, and yields the thread.
pub(super) fn bound(store: &mut Store<CallState>) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut context| {
        let state = context.data_mut();
        if state.guest_time() > state.limits.cpu() {
            Err(state.exceed(LimitExceeded::Cpu))
        } else if state.past_deadline(Duration::ZERO) {
            Err(state.exceed(LimitExceeded::Deadline))
        } else {
            // A guest computing past a tick lets the thread's other calls run (an async
            // executor's thread is shared), then goes on.
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(state.yield_thread()),
            ))
        }
    });
}
