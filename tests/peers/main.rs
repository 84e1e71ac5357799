//! Tests against peers nobody here wrote, run under Node.js from `interop/`: Atlassian's
//! `atlassian-jwt` (`jwt`), the component transpiled by jco (`jco`), RS256 tokens signed by
//! jose (`rs256`), and admin webhooks' signatures made by `@octokit/webhooks-methods` (`hub`).

mod hub;
mod jco;
mod jwt;
mod rs256;
