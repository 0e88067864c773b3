-- One row per request (switchyard_core::record::RequestRecord), written in batches by the
-- recorder. Times are epoch milliseconds; JSON arrays are JSONB.
CREATE TABLE requests (
    request_id          TEXT             NOT NULL PRIMARY KEY,
    started_at_ms       BIGINT           NOT NULL,
    endpoint            TEXT             NOT NULL,
    key_id              TEXT,
    user_id             TEXT,
    team                TEXT,
    requested_model     TEXT             NOT NULL,
    route               TEXT,
    provider            TEXT,
    model               TEXT,
    upstream_model      TEXT,
    stream              BOOLEAN          NOT NULL,
    status              INTEGER          NOT NULL,
    error_code          TEXT,
    prompt_tokens       BIGINT           NOT NULL,
    completion_tokens   BIGINT           NOT NULL,
    cached_tokens       BIGINT           NOT NULL,
    usage_estimated     BOOLEAN          NOT NULL,
    cost_usd            DOUBLE PRECISION NOT NULL,
    latency_ms          DOUBLE PRECISION NOT NULL,
    ttft_ms             DOUBLE PRECISION,
    attempts            JSONB            NOT NULL DEFAULT '[]'::jsonb,
    cache_hit           BOOLEAN          NOT NULL,
    guardrail_actions   JSONB            NOT NULL DEFAULT '[]'::jsonb,
    client_disconnected BOOLEAN          NOT NULL
);

-- Spend reports: over time, per key, per team, per model.
CREATE INDEX requests_started_at ON requests (started_at_ms);
CREATE INDEX requests_key_started_at ON requests (key_id, started_at_ms);
CREATE INDEX requests_team_started_at ON requests (team, started_at_ms);
CREATE INDEX requests_model_started_at ON requests (model, started_at_ms);
