//! Prometheus metrics at `/metrics`: webhooks by answer, component calls by kind and outcome with
//! their latency, Jira requests by status, limits hit, sandbox refusals, and requests turned away
//! because the server was full.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::imports::record::CallRecord;

type Labels = Vec<(&'static str, String)>;

/// The server's metrics.
pub(super) struct Metrics {
    registry: Registry,
    webhooks: Family<Labels, Counter>,
    calls: Family<Labels, Counter>,
    latency: Family<Labels, Histogram>,
    jira: Family<Labels, Counter>,
    limits: Family<Labels, Counter>,
    refusals: Counter,
    busy: Counter,
    outbox_depth: Gauge,
    outbox_overdue: Gauge,
    queue_depth: Gauge,
    queue_age: Gauge,
    queue_failed: Counter,
    database_statements: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("jira_sync");
        let webhooks = Family::<Labels, Counter>::default();
        let calls = Family::<Labels, Counter>::default();
        let latency = Family::<Labels, Histogram>::new_with_constructor(|| {
            // 50 µs to about 13 s.
            Histogram::new(exponential_buckets(0.000_05, 4.0, 10))
        });
        let jira = Family::<Labels, Counter>::default();
        let limits = Family::<Labels, Counter>::default();
        let refusals = Counter::default();
        let busy = Counter::default();
        let outbox_depth = Gauge::default();
        let outbox_overdue = Gauge::default();
        let queue_depth = Gauge::default();
        let queue_age = Gauge::default();
        let queue_failed = Counter::default();
        let database_statements = Gauge::default();
        registry.register(
            "database_statements",
            "Statements this server sent to a networked database (PostgreSQL) so far",
            database_statements.clone(),
        );
        registry.register(
            "webhooks",
            "Webhooks answered, by HTTP status",
            webhooks.clone(),
        );
        registry.register(
            "component_calls",
            "Component calls, by kind and outcome",
            calls.clone(),
        );
        registry.register(
            "component_call_seconds",
            "Component call latency, by kind",
            latency.clone(),
        );
        registry.register(
            "jira_requests",
            "Requests to Jira, by status (or transport error)",
            jira.clone(),
        );
        registry.register(
            "limits_hit",
            "Calls ended by a limit, by limit",
            limits.clone(),
        );
        registry.register(
            "sandbox_refusals",
            "Imports refused for reaching another installation",
            refusals.clone(),
        );
        registry.register(
            "busy",
            "Requests answered 503 because the server was full",
            busy.clone(),
        );
        registry.register(
            "outbox_pushes",
            "Pushes to Jira not yet done or failed",
            outbox_depth.clone(),
        );
        registry.register(
            "outbox_overdue_seconds",
            "How long the most overdue push is past its time",
            outbox_overdue.clone(),
        );
        registry.register(
            "queue_jobs",
            "Accepted webhooks whose work is waiting or running",
            queue_depth.clone(),
        );
        registry.register(
            "queue_oldest_seconds",
            "How long the oldest waiting or running job has been in the queue",
            queue_age.clone(),
        );
        registry.register(
            "queue_jobs_failed",
            "Jobs that failed for good after their attempts ran out",
            queue_failed.clone(),
        );
        Metrics {
            registry,
            outbox_depth,
            outbox_overdue,
            queue_depth,
            queue_age,
            queue_failed,
            database_statements,
            webhooks,
            calls,
            latency,
            jira,
            limits,
            refusals,
            busy,
        }
    }

    /// Counts a webhook's answer.
    pub fn webhook(&self, status: u16) {
        self.webhooks
            .get_or_create(&vec![("status", status.to_string())])
            .inc();
    }

    /// Counts one component call: `kind` is `webhook`, `sync_status` or `sync_assignee`;
    /// `error` the call's error, if it failed.
    pub fn call(
        &self,
        kind: &'static str,
        elapsed: Duration,
        error: Option<&str>,
        record: &CallRecord,
    ) {
        let outcome = match error {
            None => "ok",
            Some(e) if e.starts_with("limit") => "limit",
            Some(e) if e.starts_with("backend") => "backend",
            Some(_) => "trap",
        };
        self.calls
            .get_or_create(&vec![
                ("kind", kind.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
        self.latency
            .get_or_create(&vec![("kind", kind.to_owned())])
            .observe(elapsed.as_secs_f64());
        if let Some(limit) = error.and_then(|e| e.strip_prefix("limit: ")) {
            self.limits
                .get_or_create(&vec![("limit", limit.to_owned())])
                .inc();
        }
        for exchange in &record.http {
            let status = exchange
                .status
                .map_or_else(|| "error".to_owned(), |s| s.to_string());
            self.jira.get_or_create(&vec![("status", status)]).inc();
        }
        self.refusals.inc_by(record.refusals.len() as u64);
    }

    /// Statements sent to a networked database so far.
    pub fn database_statements(&self, statements: u64) {
        self.database_statements.set(statements as i64);
    }

    /// The queue's backlog: jobs waiting or running, and the oldest one's age.
    pub fn queue(&self, depth: u64, oldest_seconds: u64) {
        self.queue_depth.set(depth as i64);
        self.queue_age.set(oldest_seconds as i64);
    }

    /// Counts a job that failed for good.
    pub fn job_failed(&self) {
        self.queue_failed.inc();
    }

    /// The outbox's backlog: pushes waiting, and the most overdue one's lateness.
    pub fn outbox(&self, depth: u64, overdue_seconds: u64) {
        self.outbox_depth.set(depth as i64);
        self.outbox_overdue.set(overdue_seconds as i64);
    }

    /// Counts a request turned away because the server was full.
    pub fn busy(&self) {
        self.busy.inc();
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}
