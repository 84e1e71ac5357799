//! The harness's own tests, one binary: the CLI as a user runs it (`cli`), the precompiled
//! component cache (`precompiled`), the real HTTP backend against loopback servers
//! (`real_http`), and three servers sharing PostgreSQL and Redis, one of them killed
//! (`multinode`).

mod cli;
mod multinode;
mod precompiled;
mod real_http;
