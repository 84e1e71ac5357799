-- The first schema: installations, links, groups, users, the delivery log (handled ids,
-- claims, per-field watermarks), the outbox and the queue. `IF NOT EXISTS` throughout, so
-- that a database created before migrations existed takes this version as it is.
CREATE TABLE IF NOT EXISTS installations (client_key TEXT PRIMARY KEY, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS links (
    client_key TEXT NOT NULL, issue_key TEXT NOT NULL, group_id INTEGER NOT NULL,
    PRIMARY KEY (client_key, issue_key, group_id));
CREATE TABLE IF NOT EXISTS groups (
    id INTEGER PRIMARY KEY, resolved INTEGER NOT NULL DEFAULT 0, assignee INTEGER);
CREATE TABLE IF NOT EXISTS users (id INTEGER NOT NULL, email TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (id, email));
CREATE TABLE IF NOT EXISTS deliveries (client_key TEXT NOT NULL, id TEXT NOT NULL,
    handled_at INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (client_key, id));
CREATE TABLE IF NOT EXISTS claims (client_key TEXT NOT NULL, id TEXT NOT NULL,
    owner INTEGER NOT NULL, lease_until INTEGER NOT NULL, PRIMARY KEY (client_key, id));
CREATE TABLE IF NOT EXISTS watermarks (client_key TEXT NOT NULL, issue_key TEXT NOT NULL,
    field TEXT NOT NULL, updated_ms INTEGER NOT NULL, PRIMARY KEY (client_key, issue_key, field));
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id INTEGER NOT NULL, client_key TEXT NOT NULL, issue_key TEXT NOT NULL,
    push TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL, lease_until INTEGER NOT NULL DEFAULT 0, outcome TEXT);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
CREATE INDEX IF NOT EXISTS outbox_group ON outbox (group_id);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_key TEXT NOT NULL, delivery_id TEXT, body BLOB NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    accepted_at INTEGER NOT NULL, next_at INTEGER NOT NULL,
    lease_until INTEGER NOT NULL DEFAULT 0, error TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_delivery ON jobs (client_key, delivery_id);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, next_at);
