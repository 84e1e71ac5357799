//! Atlassian's asymmetric dialects, verified by the host: Connect's signed `installed` and
//! `uninstalled` callbacks ([`connect`]) and Forge's remote invocations ([`forge`]).
//!
//! Both carry RS256 tokens whose public keys live on Atlassian's servers ([`keys`]); the guest's
//! sandbox has no way to fetch them, so unlike the HS256 webhooks these are the host's to check.
//! A verified installation is then the platform's to store (its shared secret is what the guest
//! verifies webhooks with).
//!
//! Key fetches use reqwest, so the `async` functions here run on a tokio runtime with its IO
//! driver (the server's).

pub mod connect;
pub mod forge;
pub mod keys;
mod refusal;
#[cfg(test)]
mod test_support;
mod token;

pub use connect::{Lifecycle, descriptor, verify_lifecycle};
pub use forge::{Invocation, verify_invocation};
pub use keys::{ConnectKeys, ForgeKeys, KeyError};
pub use refusal::Refusal;
