//! The host capabilities the core needs, one small trait per WIT import. The wasm glue implements
//! them over the imports; native tests and benchmarks implement them in memory.

use crate::model::{
    AssignOutcome, HttpError, HttpRequest, HttpResponse, Installation, Level, ResolutionStrategy,
    StatusChange, UnassignOutcome,
};

pub trait Http {
    fn send(&mut self, request: HttpRequest) -> Result<HttpResponse, HttpError>;
}

pub trait Cache {
    fn get(&mut self, key: &str) -> Option<String>;
    fn set(&mut self, key: &str, value: &str, ttl_seconds: u32);
    fn delete(&mut self, key: &str);
}

pub trait Installations {
    fn by_client_key(&mut self, client_key: &str) -> Option<Installation>;
}

pub trait Groups {
    fn assign(&mut self, client_key: &str, issue_key: &str, email: &str) -> AssignOutcome;
    fn unassign(&mut self, client_key: &str, issue_key: &str) -> UnassignOutcome;
    fn resolve(
        &mut self,
        client_key: &str,
        issue_key: &str,
        strategy: ResolutionStrategy,
    ) -> StatusChange;
    fn unresolve(&mut self, client_key: &str, issue_key: &str) -> StatusChange;
}

pub trait Deliveries {
    fn seen(&mut self, client_key: &str, id: &str) -> bool;
    fn mark_seen(&mut self, client_key: &str, id: &str);
    fn last_applied(&mut self, client_key: &str, issue_key: &str) -> Option<i64>;
    fn set_last_applied(&mut self, client_key: &str, issue_key: &str, updated_ms: i64);
}

pub trait Clock {
    fn now(&mut self) -> u64;
    fn sleep(&mut self, seconds: u32);
}

pub trait Log {
    fn log(&mut self, level: Level, event: &str, fields: &[(&str, &str)]);
}

/// Everything a flow may touch.
pub trait Env: Http + Cache + Installations + Groups + Deliveries + Clock + Log {}

impl<T: Http + Cache + Installations + Groups + Deliveries + Clock + Log> Env for T {}
