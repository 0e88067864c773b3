-- usage_hourly and latency_hourly summed per UTC day, with the same dimensions: a month's
-- report reads about 30x fewer rows when traffic is spread over many keys (each hour then
-- holds few requests per group). Written by the record writer in the same transaction as the
-- hourly rollups; reports read whole days from here and the hours at a range's edges from
-- the hourly tables.
CREATE TABLE usage_daily (
    day_ms              INTEGER NOT NULL,
    key_id              TEXT NOT NULL,
    user_id             TEXT NOT NULL,
    team                TEXT NOT NULL,
    feature             TEXT NOT NULL,
    route               TEXT NOT NULL,
    provider            TEXT NOT NULL,
    model               TEXT NOT NULL,
    requests            INTEGER NOT NULL DEFAULT 0,
    errors              INTEGER NOT NULL DEFAULT 0,
    server_errors       INTEGER NOT NULL DEFAULT 0,
    disconnects         INTEGER NOT NULL DEFAULT 0,
    attempts            INTEGER NOT NULL DEFAULT 0,
    retried             INTEGER NOT NULL DEFAULT 0,
    fallbacks           INTEGER NOT NULL DEFAULT 0,
    cache_hits          INTEGER NOT NULL DEFAULT 0,
    rate_limited        INTEGER NOT NULL DEFAULT 0,
    budget_exceeded     INTEGER NOT NULL DEFAULT 0,
    prompt_tokens       INTEGER NOT NULL DEFAULT 0,
    completion_tokens   INTEGER NOT NULL DEFAULT 0,
    cached_tokens       INTEGER NOT NULL DEFAULT 0,
    cost_usd            REAL NOT NULL DEFAULT 0,
    cache_saved_usd     REAL NOT NULL DEFAULT 0,
    latency_ms_sum      REAL NOT NULL DEFAULT 0,
    feedback_count      INTEGER NOT NULL DEFAULT 0,
    feedback_sum        REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (day_ms, key_id, user_id, team, feature, route, provider, model)
);

INSERT INTO usage_daily (day_ms, key_id, user_id, team, feature, route, provider, model,
    requests, errors, server_errors, disconnects, attempts, retried, fallbacks, cache_hits,
    rate_limited, budget_exceeded, prompt_tokens, completion_tokens, cached_tokens, cost_usd,
    cache_saved_usd, latency_ms_sum, feedback_count, feedback_sum)
SELECT hour_ms - (hour_ms % 86400000), key_id, user_id, team, feature, route, provider, model,
    SUM(requests), SUM(errors), SUM(server_errors), SUM(disconnects), SUM(attempts),
    SUM(retried), SUM(fallbacks), SUM(cache_hits), SUM(rate_limited), SUM(budget_exceeded),
    SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens), SUM(cost_usd),
    SUM(cache_saved_usd), SUM(latency_ms_sum), SUM(feedback_count), SUM(feedback_sum)
FROM usage_hourly
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

-- latency_hourly summed per UTC day, for the same reason.
CREATE TABLE latency_daily (
    day_ms   INTEGER    NOT NULL,
    provider TEXT    NOT NULL,
    model    TEXT    NOT NULL,
    series   TEXT    NOT NULL,
    bucket   INTEGER NOT NULL,
    n        INTEGER    NOT NULL,
    PRIMARY KEY (day_ms, provider, model, series, bucket)
);

INSERT INTO latency_daily (day_ms, provider, model, series, bucket, n)
SELECT hour_ms - (hour_ms % 86400000), provider, model, series, bucket, SUM(n)
FROM latency_hourly
GROUP BY 1, 2, 3, 4, 5;
