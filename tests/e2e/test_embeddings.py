"""Embeddings: float and base64 encodings (the upstream always answers floats; the gateway encodes base64)."""

from __future__ import annotations

import array
import base64
import math

from helpers import assert_request_id
from upstreams import EMBEDDING_DIM


def _close_f32(got: list[float], want: list[float]) -> bool:
    """Equal within float32 precision."""
    return len(got) == len(want) and all(math.isclose(g, w, rel_tol=1e-6, abs_tol=1e-7) for g, w in zip(got, want, strict=True))


def test_embeddings_sdk_default_base64(client, upstreams, nonce):
    inputs = [f"first {nonce}", f"second {nonce}", "third"]
    raw = client.embeddings.with_raw_response.create(model="text-embedding-3-small", input=inputs)
    assert_request_id(raw.headers)
    resp = raw.parse()
    rec = upstreams.openai.one(nonce, "/v1/embeddings")
    assert rec.headers.get("authorization", "").startswith("Bearer sk-e2e-oai")
    assert rec.body["model"] == "text-embedding-3-small"
    assert rec.body["input"] == inputs
    want = rec.response["embeddings"]
    assert [d.index for d in resp.data] == [0, 1, 2]
    for d, w in zip(resp.data, want, strict=True):
        assert len(d.embedding) == EMBEDDING_DIM
        assert _close_f32(d.embedding, w), f"vector {d.index} differs: {d.embedding} vs {w}"
    assert resp.usage.prompt_tokens == rec.response["usage"]["prompt_tokens"]


def test_embeddings_float(client, upstreams, nonce):
    inputs = [f"alpha {nonce}", "beta"]
    resp = client.embeddings.create(model="text-embedding-3-small", input=inputs, encoding_format="float")
    rec = upstreams.openai.one(nonce, "/v1/embeddings")
    assert len(resp.data) == 2
    for d, w in zip(resp.data, rec.response["embeddings"], strict=True):
        assert isinstance(d.embedding, list)
        assert _close_f32(d.embedding, w)


def test_embeddings_base64_on_the_wire(http, upstreams, nonce):
    """A client that asks for base64 gets base64 strings of little-endian float32, as OpenAI sends."""
    r = http.post(
        "/v1/embeddings",
        json={"model": "text-embedding-3-small", "input": f"raw {nonce}", "encoding_format": "base64"},
    )
    assert r.status_code == 200, r.text
    assert_request_id(r.headers)
    body = r.json()
    rec = upstreams.openai.one(nonce, "/v1/embeddings")
    assert body["object"] == "list"
    assert len(body["data"]) == 1
    emb = body["data"][0]["embedding"]
    assert isinstance(emb, str), f"expected a base64 string, got {type(emb).__name__}"
    raw = base64.b64decode(emb)
    assert len(raw) == 4 * EMBEDDING_DIM
    assert _close_f32(array.array("f", raw).tolist(), rec.response["embeddings"][0])
