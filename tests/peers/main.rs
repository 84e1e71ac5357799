//! Tests against peers nobody here wrote, run under Node.js from `interop/`: Atlassian's
//! `atlassian-jwt` (`jwt`) and the component transpiled by jco (`jco`).

mod jco;
mod jwt;
