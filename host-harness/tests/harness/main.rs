//! The harness's own tests, one binary: the CLI as a user runs it (`cli`), the precompiled
//! component cache (`precompiled`), and the real HTTP backend against loopback servers
//! (`real_http`).

mod cli;
mod precompiled;
mod real_http;
