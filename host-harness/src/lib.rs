//! A wasmtime host for the jira-sync component.
//!
//! [`Runtime`] loads the component once and runs each call in a fresh, limited instance;
//! [`Backends`] are what the imports are implemented over; [`replay`] plays a [`Scenario`] and
//! returns a JSON trace of everything the component did.

pub mod backends;
pub mod bench;
pub mod demo;
pub mod egress;
pub mod host;
pub mod incoming;
pub mod limits;
pub mod native;
pub mod outcome;
pub mod real_http;
pub mod replay;
pub mod runtime;
pub mod scenario;
pub mod scripted;
pub mod server;
pub mod signing;
pub mod sim;
pub mod store;

/// Host-side bindings generated from `wit/`.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        // These two may end the call: they enforce the per-call limits.
        imports: {
            "jira-sync:plugin/http.send": trappable,
            "jira-sync:plugin/log.log": trappable,
        },
    });
}

pub use backends::Backends;
pub use replay::{World, replay};
pub use runtime::{Call, Runtime, bundled_component};
pub use scenario::Scenario;
