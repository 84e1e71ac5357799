//! Tests against peers nobody here wrote, run under Node.js from `interop/`: Atlassian's
//! `atlassian-jwt` (`jwt`), the component transpiled by jco (`jco`), and RS256 tokens signed by
//! jose (`rs256`).

mod jco;
mod jwt;
mod rs256;
