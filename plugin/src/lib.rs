//! jira-sync's guest: everything the component knows about Jira.
//!
//! The core is plain Rust over the small traits of [`env`](mod@env), so the same code runs
//! natively (tests, benchmarks, the harness's signing) and inside the component, where `guest`
//! implements the traits over the WIT imports. The log event names it emits are all in
//! [`events`].

#![warn(missing_docs)]

pub mod env;
pub mod events;
pub mod jira;
pub mod jwt;
pub mod mapping_check;
pub mod model;
pub mod outbound;
pub mod payload;
pub mod qsh;
pub mod signature;
pub mod statuses;
pub mod timestamp;
pub mod users;
pub mod webhook;

#[cfg(target_arch = "wasm32")]
mod guest;
#[cfg(target_arch = "wasm32")]
mod heap;
