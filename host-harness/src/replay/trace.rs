//! The trace of one step: what the component answered and everything it did on the way.

use serde_json::{Value, json};

use crate::imports::record::CallRecord;
use crate::runtime::Call;

/// One step's entry in the trace (README.md, "Scenarios and traces").
pub(super) fn step<T>(kind: &str, response: Option<Value>, outcome: Value, call: Call<T>) -> Value {
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
    } = call.record;
    let mut step = json!({
        "kind": kind,
        "response": response,
        "outcome": outcome,
        "error": call.result.err().map(|e| e.to_string()),
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
