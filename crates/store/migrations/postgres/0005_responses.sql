-- The Responses API responses the gateway served, kept so that a later request can continue a
-- conversation with previous_response_id (expanded at the gateway, whichever provider serves
-- the next turn) and GET /v1/responses/{id} can read one back. Each row holds the whole
-- conversation it answered (input_items, a JSON array) and the response object as the client
-- received it (JSON), both as text: they are read back whole, never queried inside. A row
-- belongs to the key that created it. Rows past expires_at_ms are never read, and the upkeep task deletes them.
CREATE TABLE responses (
    id              TEXT PRIMARY KEY,
    owner           TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    expires_at_ms   BIGINT NOT NULL,
    input_items     TEXT NOT NULL,
    response        TEXT NOT NULL
);

CREATE INDEX responses_expires_at ON responses (expires_at_ms);
