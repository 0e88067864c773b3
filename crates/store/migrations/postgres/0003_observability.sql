-- Observability: what the reports, the feedback endpoint and the telemetry need of a record,
-- and hourly rollups that answer the reports without scanning the request log.

ALTER TABLE requests ADD COLUMN dialect TEXT NOT NULL DEFAULT 'openai';
ALTER TABLE requests ADD COLUMN feature TEXT;
ALTER TABLE requests ADD COLUMN tags JSONB NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE requests ADD COLUMN cache_saved_usd DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN admission TEXT;
ALTER TABLE requests ADD COLUMN trace_id TEXT;
ALTER TABLE requests ADD COLUMN request_body TEXT;
ALTER TABLE requests ADD COLUMN response_body TEXT;
ALTER TABLE requests ADD COLUMN feedback_score DOUBLE PRECISION;
ALTER TABLE requests ADD COLUMN feedback_comment TEXT;
ALTER TABLE requests ADD COLUMN feedback_at_ms BIGINT;

-- Every index on the log is paid for by every record written. Reports read the rollups below;
-- the log keeps its primary key (feedback, explorer) and its time index (retention, listing).
DROP INDEX requests_key_started_at;
DROP INDEX requests_team_started_at;
DROP INDEX requests_model_started_at;

-- Requests per hour and per (key, user, team, feature, route, provider, model), added to by the
-- record writer in the same transaction as the records. Absent dimensions are '' rather than
-- NULL so that the primary key can merge them. `model` is the deployment that served, else the
-- model the client asked for.
CREATE TABLE usage_hourly (
    hour_ms             BIGINT NOT NULL,
    key_id              TEXT NOT NULL,
    user_id             TEXT NOT NULL,
    team                TEXT NOT NULL,
    feature             TEXT NOT NULL,
    route               TEXT NOT NULL,
    provider            TEXT NOT NULL,
    model               TEXT NOT NULL,
    requests            BIGINT NOT NULL DEFAULT 0,
    errors              BIGINT NOT NULL DEFAULT 0,
    server_errors       BIGINT NOT NULL DEFAULT 0,
    disconnects         BIGINT NOT NULL DEFAULT 0,
    attempts            BIGINT NOT NULL DEFAULT 0,
    retried             BIGINT NOT NULL DEFAULT 0,
    fallbacks           BIGINT NOT NULL DEFAULT 0,
    cache_hits          BIGINT NOT NULL DEFAULT 0,
    rate_limited        BIGINT NOT NULL DEFAULT 0,
    budget_exceeded     BIGINT NOT NULL DEFAULT 0,
    prompt_tokens       BIGINT NOT NULL DEFAULT 0,
    completion_tokens   BIGINT NOT NULL DEFAULT 0,
    cached_tokens       BIGINT NOT NULL DEFAULT 0,
    cost_usd            DOUBLE PRECISION NOT NULL DEFAULT 0,
    cache_saved_usd     DOUBLE PRECISION NOT NULL DEFAULT 0,
    latency_ms_sum      DOUBLE PRECISION NOT NULL DEFAULT 0,
    feedback_count      BIGINT NOT NULL DEFAULT 0,
    feedback_sum        DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (hour_ms, key_id, user_id, team, feature, route, provider, model)
);

-- Latency and time-to-first-token histograms per hour, provider and model: bucket b holds
-- values in [2^((b-1)/8), 2^(b/8)) ms (bucket 0: under 1 ms), so percentiles are read from
-- a few hundred rows with about 4 % error, whatever the number of requests.
CREATE TABLE latency_hourly (
    hour_ms  BIGINT    NOT NULL,
    provider TEXT    NOT NULL,
    model    TEXT    NOT NULL,
    series   TEXT    NOT NULL,
    bucket   INTEGER NOT NULL,
    n        BIGINT    NOT NULL,
    PRIMARY KEY (hour_ms, provider, model, series, bucket)
);

-- Counted events per hour, provider and model: failed upstream attempts by error class
-- (kind 'attempt_error'), guardrail actions by guardrail and action (kind 'guardrail').
CREATE TABLE events_hourly (
    hour_ms  BIGINT NOT NULL,
    provider TEXT NOT NULL,
    model    TEXT NOT NULL,
    kind     TEXT NOT NULL,
    label    TEXT NOT NULL,
    n        BIGINT NOT NULL,
    PRIMARY KEY (hour_ms, provider, model, kind, label)
);

-- The rollups of requests recorded before this migration (their histograms are not rebuilt).
INSERT INTO usage_hourly (hour_ms, key_id, user_id, team, feature, route, provider, model,
    requests, errors, server_errors, disconnects, cache_hits, prompt_tokens, completion_tokens,
    cached_tokens, cost_usd, latency_ms_sum)
SELECT started_at_ms - (started_at_ms % 3600000), COALESCE(key_id, ''), COALESCE(user_id, ''),
    COALESCE(team, ''), '', COALESCE(route, ''), COALESCE(provider, ''),
    COALESCE(model, requested_model), COUNT(*),
    SUM(CASE WHEN status >= 400 AND status <> 499 THEN 1 ELSE 0 END),
    SUM(CASE WHEN status >= 500 THEN 1 ELSE 0 END),
    SUM(CASE WHEN status = 499 THEN 1 ELSE 0 END),
    SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END),
    SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens), SUM(cost_usd),
    SUM(latency_ms)
FROM requests
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
