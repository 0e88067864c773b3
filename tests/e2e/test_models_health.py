"""GET /v1/models and the health endpoints."""

from __future__ import annotations

import pytest

from helpers import assert_request_id

CONFIGURED = {
    "gpt-4o-mini",
    "gpt-4o-mini-env",
    "claude-sonnet",
    "demo-model",
    "text-embedding-3-small",
    "oai-slow",
    "claude-slow",
}
ALIASES = {"smart", "fast"}


def test_models_lists_models_and_aliases(client):
    raw = client.models.with_raw_response.list()
    assert_request_id(raw.headers)
    ids = [m.id for m in raw.parse()]
    missing = (CONFIGURED | ALIASES) - set(ids)
    assert not missing, f"/v1/models lacks {sorted(missing)}; got {ids}"
    assert len(ids) == len(set(ids)), f"duplicate ids in /v1/models: {ids}"
    assert "claude-sonnet-4-5" not in ids, "upstream model names should not replace the configured names"


def test_models_wire_shape(http):
    r = http.get("/v1/models")
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "list"
    for m in body["data"]:
        assert m["object"] == "model"
        assert isinstance(m["id"], str)


@pytest.mark.parametrize("path", ["/health/live", "/health/ready"])
def test_health(http, path):
    r = http.get(path)
    assert r.status_code == 200, r.text
    assert_request_id(r.headers)
