//! The host capabilities the core needs, one small trait per WIT import. The wasm glue implements
//! them over the imports; native tests and benchmarks implement them in memory.

use crate::model::{
    AssignOutcome, Claim, Field, HttpError, HttpRequest, HttpResponse, Installation, Level,
    ResolutionStrategy, StatusChange, UnassignOutcome,
};

/// Outbound HTTP to the installation's Jira site (the `http` import).
pub trait Http {
    /// Sends one request and waits for its response; any status is a response.
    fn send(&mut self, request: HttpRequest) -> Result<HttpResponse, HttpError>;
}

/// The host's key/value cache, shared by all calls, expiring on the host clock (`cache` import).
pub trait Cache {
    /// The live value under `key`, if any.
    fn get(&mut self, key: &str) -> Option<String>;
    /// Stores `value` under `key` for `ttl_seconds`.
    fn set(&mut self, key: &str, value: &str, ttl_seconds: u32);
    /// Removes `key`.
    fn delete(&mut self, key: &str);
}

/// The host's registry of installations (`installations` import).
pub trait Installations {
    /// The installation whose Connect `clientKey` is `client_key`, if any.
    fn by_client_key(&mut self, client_key: &str) -> Option<Installation>;
}

/// The platform's groups linked to a Jira issue (`group-assignment` and `group-status` imports).
pub trait Groups {
    /// Assigns the issue's linked groups to the platform user whose verified email is `email`.
    fn assign(&mut self, client_key: &str, issue_key: &str, email: &str) -> AssignOutcome;
    /// Unassigns the issue's linked groups.
    fn unassign(&mut self, client_key: &str, issue_key: &str) -> UnassignOutcome;
    /// Resolves the issue's linked groups the way `strategy` says.
    fn resolve(
        &mut self,
        client_key: &str,
        issue_key: &str,
        strategy: ResolutionStrategy,
    ) -> StatusChange;
    /// Unresolves the issue's linked groups.
    fn unresolve(&mut self, client_key: &str, issue_key: &str) -> StatusChange;
}

/// The platform's links between its groups and Jira issues, kept in step when Jira deletes or
/// moves an issue (`links` import, docs/behaviour.md#1.8).
pub trait Links {
    /// Jira deleted the issue: removes its links and watermarks with the call's effects; how many
    /// groups were linked.
    fn remove_links(&mut self, client_key: &str, issue_key: &str) -> u32;
    /// Jira moved issue `from` to `to`: its links and watermarks follow, with the call's effects;
    /// how many groups were linked to `from`.
    fn rename_links(&mut self, client_key: &str, from: &str, to: &str) -> u32;
}

/// What the host remembers of Jira's deliveries, for dedupe and ordering (`deliveries` import,
/// docs/behaviour.md#7).
pub trait Deliveries {
    /// Claims delivery `id` (`X-Atlassian-Webhook-Identifier`), atomically across every copy.
    fn claim(&mut self, client_key: &str, id: &str) -> Claim;
    /// Records the claimed delivery as handled, with the call's other effects.
    fn mark_handled(&mut self, client_key: &str, id: &str);
    /// The `issue.fields.updated` (Unix ms) of the last event applied to this field of
    /// `issue_key`.
    fn last_applied(&mut self, client_key: &str, issue_key: &str, field: Field) -> Option<i64>;
    /// Moves this field's watermark to `updated_ms`, only forward, with the call's effects.
    fn set_last_applied(
        &mut self,
        client_key: &str,
        issue_key: &str,
        field: Field,
        updated_ms: i64,
    );
}

/// The host's clock; the guest has no other (`clock` import).
pub trait Clock {
    /// Seconds since the Unix epoch.
    fn now(&mut self) -> u64;
    /// Waits `seconds` (e.g. a `Retry-After`); the host may shorten or simulate it.
    fn sleep(&mut self, seconds: u32);
}

/// Structured logging (`log` import); `event` is one of [`crate::events`].
pub trait Log {
    /// Records `event` at `level` with key/value `fields`.
    fn log(&mut self, level: Level, event: &str, fields: &[(&str, &str)]);
}

/// Everything a flow may touch.
pub trait Env: Http + Cache + Installations + Groups + Links + Deliveries + Clock + Log {}

impl<T: Http + Cache + Installations + Groups + Links + Deliveries + Clock + Log> Env for T {}
