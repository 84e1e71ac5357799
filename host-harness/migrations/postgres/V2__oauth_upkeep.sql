-- Who keeps an OAuth 2.0 installation's tokens and webhooks up (docs/behaviour.md#10.2): a
-- lease, so that one server at a time refreshes (Atlassian rotates refresh tokens), which also
-- holds the next attempt back after a failure, and the failures in a row that set that backoff.
-- A row is made by the first lease; no row means free now.
CREATE TABLE oauth_upkeep (
    client_key TEXT COLLATE "C" PRIMARY KEY,
    lease_until BIGINT NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0
);
