-- The web console's request explorer: which request replays which. A replay is a request like
-- any other (its record is in `requests`); this table links it to the request it replayed, and
-- lets the explorer list a request's replays through the index on replay_of. Written by the
-- admin API when it sends a replay, so the request log's writer and its columns stay as they
-- are.
CREATE TABLE request_replays (
    request_id  TEXT    NOT NULL PRIMARY KEY,
    replay_of   TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    at_ms       BIGINT  NOT NULL
);

CREATE INDEX request_replays_replay_of ON request_replays (replay_of);
