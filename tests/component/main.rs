//! Tests that drive the built component through the runtime: one binary, so that wasmtime is
//! linked once for all of them.
//!
//! - `auth`: every way a webhook's token can fail (docs/behaviour.md#1.1, #1.2, #4);
//! - `webhook`: the inbound flows (docs/behaviour.md#1, #5, #7);
//! - `outbound`: status and assignee pushes to Jira (docs/behaviour.md#2, #3, #6);
//! - `backends`: failing backends end calls cleanly and apply nothing;
//! - `contract`: the component imports exactly our WIT;
//! - `deliveries`: a delivery another call is handling is answered so that Jira retries;
//! - `sandbox`: a hostile guest is contained;
//! - `hostile_input`: mutated tokens and bodies (proptest).

mod auth;
mod backends;
mod contract;
mod deliveries;
mod hostile_input;
mod outbound;
mod recorded_state;
mod sandbox;
mod webhook;
