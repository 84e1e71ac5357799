//! The trace of one step: what the component answered and everything it did on the way. The
//! server's recordings (`crate::recording`) write their expectations with the same functions,
//! so that a replayed recording is compared like for like.

use serde_json::{Map, Value, json};

use crate::imports::record::{CallRecord, body_value};
use crate::runtime::Call;
use crate::wit::exports::jira_sync::plugin::{mapping_check, outbound, webhook};

/// A `webhook` (handle) step.
pub fn webhook(call: &Call<webhook::Response>) -> Value {
    let response = call.result.as_ref().ok().map(response);
    step("webhook", response, Value::Null, call)
}

/// An `accept` step: the answer, or the job it queued.
pub fn accept(call: &Call<webhook::Acceptance>) -> Value {
    let (answer, outcome) = match &call.result {
        Ok(webhook::Acceptance::Answered(r)) => (Some(response(r)), Value::Null),
        Ok(webhook::Acceptance::Queued(job)) => (
            None,
            json!({
                "queued": {
                    "client_key": job.client_key,
                    "delivery_id": job.delivery_id,
                    "body": body_value(&job.body),
                }
            }),
        ),
        Err(_) => (None, Value::Null),
    };
    step("accept", answer, outcome, call)
}

/// A `process` step.
pub fn process(call: &Call<webhook::JobOutcome>) -> Value {
    let outcome = call.result.as_ref().map_or(Value::Null, job_outcome);
    step("process", None, outcome, call)
}

/// How a job ended, as traces and the server's log write it.
pub fn job_outcome(outcome: &webhook::JobOutcome) -> Value {
    match outcome {
        webhook::JobOutcome::Done => json!({"type": "done"}),
        webhook::JobOutcome::RetryAfter(seconds) => {
            json!({"type": "retry-after", "seconds": seconds})
        }
        webhook::JobOutcome::Failed(why) => json!({"type": "failed", "error": why}),
    }
}

/// A `sync_status_outbound` step.
pub fn sync_status(call: &Call<outbound::StatusOutcome>) -> Value {
    let outcome = call.result.as_ref().map_or(Value::Null, Value::from);
    step("sync_status_outbound", None, outcome, call)
}

/// A `sync_assignee_outbound` step.
pub fn sync_assignee(call: &Call<outbound::AssigneeOutcome>) -> Value {
    let outcome = call.result.as_ref().map_or(Value::Null, Value::from);
    step("sync_assignee_outbound", None, outcome, call)
}

/// A `check_mappings` step.
pub fn check_mappings(
    call: &Call<Result<Vec<mapping_check::ProjectReport>, mapping_check::CheckError>>,
) -> Value {
    let outcome = match &call.result {
        Ok(Ok(reports)) => json!({"projects": reports.iter().map(Value::from).collect::<Vec<_>>()}),
        Ok(Err(e)) => json!({"error": Value::from(e)}),
        Err(_) => Value::Null,
    };
    step("check_mappings", None, outcome, call)
}

/// A step's trace as a recording keeps it: without the headers of the requests the guest sent,
/// which carry tokens signed with the installation's secret (a replay signs with another).
pub fn comparable(step: &Value) -> Value {
    let mut step = step.clone();
    if let Some(http) = step.get_mut("http").and_then(Value::as_array_mut) {
        for exchange in http {
            if let Some(exchange) = exchange.as_object_mut() {
                exchange.remove("headers");
            }
        }
    }
    step
}

fn response(r: &webhook::Response) -> Value {
    let headers: Map<String, Value> = r
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), json!(value)))
        .collect();
    json!({
        "status": r.status,
        "headers": headers,
        "body": body_value(&r.body),
    })
}

/// One step's entry in the trace (README.md, "Scenarios and traces").
fn step<T>(kind: &str, response: Option<Value>, outcome: Value, call: &Call<T>) -> Value {
    let CallRecord {
        http,
        assignments,
        resolutions,
        links,
        cache,
        logs,
        slept,
        refusals,
        superseded,
    } = &call.record;
    let mut step = json!({
        "kind": kind,
        "response": response,
        "outcome": outcome,
        "error": call.result.as_ref().err().map(|e| e.to_string()),
        "http": http,
        "assignments": assignments,
        "resolutions": resolutions,
        "cache": cache,
        "logs": logs,
        "slept": slept,
    });
    // Only a misbehaving guest is refused anything; the shipped component's traces (which other
    // runtimes reproduce) never carry the key.
    if !refusals.is_empty() {
        step["refusals"] = json!(refusals);
    }
    // Only deleted and moved issues change links; other traces stay as they were.
    if !links.is_empty() {
        step["links"] = json!(links);
    }
    if !superseded.is_empty() {
        step["superseded"] = json!(superseded);
    }
    step
}
