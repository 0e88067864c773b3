-- One row per request (switchyard_core::record::RequestRecord), written in batches by the
-- recorder. Times are epoch milliseconds; JSON arrays are stored as TEXT.
CREATE TABLE requests (
    request_id          TEXT    NOT NULL PRIMARY KEY,
    started_at_ms       INTEGER NOT NULL,
    endpoint            TEXT    NOT NULL,
    key_id              TEXT,
    user_id             TEXT,
    team                TEXT,
    requested_model     TEXT    NOT NULL,
    route               TEXT,
    provider            TEXT,
    model               TEXT,
    upstream_model      TEXT,
    stream              BOOLEAN NOT NULL,
    status              INTEGER NOT NULL,
    error_code          TEXT,
    prompt_tokens       INTEGER NOT NULL,
    completion_tokens   INTEGER NOT NULL,
    cached_tokens       INTEGER NOT NULL,
    usage_estimated     BOOLEAN NOT NULL,
    cost_usd            REAL    NOT NULL,
    latency_ms          REAL    NOT NULL,
    ttft_ms             REAL,
    attempts            TEXT    NOT NULL DEFAULT '[]',
    cache_hit           BOOLEAN NOT NULL,
    guardrail_actions   TEXT    NOT NULL DEFAULT '[]',
    client_disconnected BOOLEAN NOT NULL
);

-- Spend reports: over time, per key, per team, per model.
CREATE INDEX requests_started_at ON requests (started_at_ms);
CREATE INDEX requests_key_started_at ON requests (key_id, started_at_ms);
CREATE INDEX requests_team_started_at ON requests (team, started_at_ms);
CREATE INDEX requests_model_started_at ON requests (model, started_at_ms);
