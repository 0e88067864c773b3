-- Alerts already sent: the spend anomaly alert claims (scope, owner id, hour) here before it
-- posts, so that of several replicas watching the same database only one posts each alert, and
-- a restarted gateway does not post again within the hour. Claims older than a day are deleted
-- by the upkeep task.
CREATE TABLE alerts_sent (
    kind     TEXT    NOT NULL,
    scope    TEXT    NOT NULL,
    id       TEXT    NOT NULL,
    hour_ms  BIGINT  NOT NULL,
    PRIMARY KEY (kind, scope, id, hour_ms)
);
