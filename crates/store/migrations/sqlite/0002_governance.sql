-- Governance: teams, users and the virtual keys issued to them (switchyard_core::auth::keys),
-- the admin audit log and server settings. Times are epoch milliseconds; JSON is stored as TEXT
-- (`models` is NULL when every model is allowed). A key is stored as its HMAC (`key_hash`) and a
-- display prefix, never in clear.

CREATE TABLE teams (
    id            TEXT    NOT NULL PRIMARY KEY,
    name          TEXT,
    -- Teams belong to no team: the column keeps users and teams alike (one Member type).
    team_id       TEXT    CHECK (team_id IS NULL),
    models        TEXT,
    limits        TEXT    NOT NULL DEFAULT '{}',
    metadata      TEXT    NOT NULL DEFAULT 'null',
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    name          TEXT,
    team_id       TEXT,
    models        TEXT,
    limits        TEXT    NOT NULL DEFAULT '{}',
    metadata      TEXT    NOT NULL DEFAULT 'null',
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

CREATE TABLE virtual_keys (
    id            TEXT    NOT NULL PRIMARY KEY,
    key_hash      TEXT    NOT NULL UNIQUE,
    prefix        TEXT    NOT NULL,
    name          TEXT,
    user_id       TEXT,
    team_id       TEXT,
    models        TEXT,
    limits        TEXT    NOT NULL DEFAULT '{}',
    tags          TEXT    NOT NULL DEFAULT '[]',
    metadata      TEXT    NOT NULL DEFAULT 'null',
    expires_at_ms INTEGER,
    revoked_at_ms INTEGER,
    replaced_by   TEXT,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

CREATE INDEX virtual_keys_user_id ON virtual_keys (user_id);
CREATE INDEX virtual_keys_team_id ON virtual_keys (team_id);

-- Who changed what through the admin API, newest rows last.
CREATE TABLE audit_log (
    id      INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at_ms   INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    target  TEXT    NOT NULL,
    details TEXT    NOT NULL DEFAULT 'null'
);

CREATE INDEX audit_log_at ON audit_log (at_ms);

-- Server-wide values shared by every replica (the secret keys are hashed under, …).
CREATE TABLE settings (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

-- The model a request asked for, when a limit sent it to a cheaper one.
ALTER TABLE requests ADD COLUMN downgraded_from TEXT;

-- Spend per user (per key and per team are indexed by 0001).
CREATE INDEX requests_user_started_at ON requests (user_id, started_at_ms);
