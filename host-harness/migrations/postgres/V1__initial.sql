-- The platform, the delivery log, the queue and the outbox of jira-sync's host, shared by every
-- server that points at this database: the same tables as the SQLite file (sqlite.rs, queue.rs,
-- outbox.rs), with BIGINT times (Unix seconds; watermarks in ms) and ids, BYTEA bodies, and
-- JSON kept as text so that it round-trips exactly as serde_json wrote it.
--
-- Keys and sorted text are COLLATE "C": byte order, as SQLite's BINARY, whatever the database's
-- locale, so that lists come back in the same order on both stores.

CREATE TABLE installations (
    client_key TEXT COLLATE "C" PRIMARY KEY,
    spec TEXT NOT NULL
);

CREATE TABLE groups (
    id BIGINT PRIMARY KEY,
    resolved BOOLEAN NOT NULL DEFAULT FALSE,
    assignee BIGINT
);

CREATE TABLE links (
    client_key TEXT COLLATE "C" NOT NULL,
    issue_key TEXT COLLATE "C" NOT NULL,
    group_id BIGINT NOT NULL,
    PRIMARY KEY (client_key, issue_key, group_id)
);
-- links_of_group and change_group look links up by group.
CREATE INDEX links_group ON links (group_id);

-- An email is one per user whatever its case (SQLite: COLLATE NOCASE in the primary key), and
-- looked up case-insensitively.
CREATE TABLE users (
    id BIGINT NOT NULL,
    email TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX users_id_email ON users (id, lower(email));
CREATE INDEX users_email ON users (lower(email));

CREATE TABLE deliveries (
    client_key TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    handled_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (client_key, id)
);
-- Retention deletes by age.
CREATE INDEX deliveries_handled_at ON deliveries (handled_at);

CREATE TABLE claims (
    client_key TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    owner BIGINT NOT NULL,
    lease_until BIGINT NOT NULL,
    PRIMARY KEY (client_key, id)
);

CREATE TABLE watermarks (
    client_key TEXT COLLATE "C" NOT NULL,
    issue_key TEXT COLLATE "C" NOT NULL,
    field TEXT COLLATE "C" NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (client_key, issue_key, field)
);

CREATE TABLE jobs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_key TEXT COLLATE "C" NOT NULL,
    delivery_id TEXT COLLATE "C",
    body BYTEA NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    accepted_at BIGINT NOT NULL,
    next_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    error TEXT
);
-- One job per delivery; NULLs are distinct, so jobs without a delivery id never collide (as in
-- SQLite).
CREATE UNIQUE INDEX jobs_delivery ON jobs (client_key, delivery_id);
CREATE INDEX jobs_due ON jobs (state, next_at);
CREATE INDEX jobs_lease ON jobs (state, lease_until);
-- The claim walks each installation's due jobs in id order.
CREATE INDEX jobs_client ON jobs (client_key, id);

CREATE TABLE outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id BIGINT NOT NULL,
    client_key TEXT COLLATE "C" NOT NULL,
    issue_key TEXT COLLATE "C" NOT NULL,
    push TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    outcome TEXT
);
CREATE INDEX outbox_due ON outbox (state, next_at);
CREATE INDEX outbox_lease ON outbox (state, lease_until);
CREATE INDEX outbox_group ON outbox (group_id);
CREATE INDEX outbox_client ON outbox (client_key, id);
