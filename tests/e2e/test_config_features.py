"""Documented config features (docs/configuration.md), observed from the outside."""

from __future__ import annotations

import math

import httpx
import openai
import pytest

from gateway import CLIENT_KEY, OPENAI_POOL_KEYS
from helpers import accumulate, assert_openai_error, assert_request_id

CHAT = "/v1/chat/completions"
IMAGE_PART = {"type": "image_url", "image_url": {"url": "https://example.com/images/cat.jpg"}}


# --- providers -------------------------------------------------------------------


def test_api_key_pool_is_used_round_robin(client, upstreams, nonce):
    for i in range(len(OPENAI_POOL_KEYS)):
        client.chat.completions.create(model="gpt-pool", messages=[{"role": "user", "content": f"pool {i} {nonce}"}])
    recs = upstreams.openai.wait_for(nonce, count=len(OPENAI_POOL_KEYS))
    used = [r.headers.get("authorization") for r in recs]
    assert sorted(used) == sorted(f"Bearer {k}" for k in OPENAI_POOL_KEYS), f"keys used: {used}"


def test_provider_extra_headers_are_sent(client, upstreams, nonce):
    client.chat.completions.create(model="gpt-pool", messages=[{"role": "user", "content": f"hdr {nonce}"}])
    assert upstreams.openai.one(nonce).headers.get("x-e2e-extra") == "hello-upstream"
    client.chat.completions.create(model="claude-sonnet", messages=[{"role": "user", "content": f"hdr {nonce}"}])
    assert upstreams.anthropic.one(nonce).headers.get("anthropic-beta") == "prompt-caching-2024-07-31"


# --- models ----------------------------------------------------------------------


def test_default_max_tokens_per_model(client, upstreams, nonce):
    client.chat.completions.create(model="claude-big", messages=[{"role": "user", "content": f"big {nonce}"}])
    assert upstreams.anthropic.one(nonce).body["max_tokens"] == 8192
    client.chat.completions.create(model="claude-sonnet", messages=[{"role": "user", "content": f"default {nonce}"}])
    assert upstreams.anthropic.wait_for(nonce, count=2)[1].body["max_tokens"] == 4096


def test_capabilities_refuse_before_reaching_the_provider(http, upstreams, nonce):
    r = http.post(CHAT, json={"model": "embed-only", "messages": [{"role": "user", "content": f"x {nonce}"}]})
    err = assert_openai_error(r, 400)
    assert err["code"] == "model_not_capable"
    r = http.post(
        CHAT,
        json={"model": "text-only", "messages": [{"role": "user", "content": [{"type": "text", "text": nonce}, IMAGE_PART]}]},
    )
    err = assert_openai_error(r, 400)
    assert err["code"] == "model_not_capable"
    r = http.post("/v1/embeddings", json={"model": "text-only", "input": nonce})
    assert assert_openai_error(r, 400)["code"] == "model_not_capable"
    assert upstreams.openai.matching(nonce) == []


def test_ordered_route_skips_targets_that_cannot_serve(client, upstreams, nonce):
    """route vision: [text-only (no vision), claude-sonnet]: images go to the second target, text to the first."""
    client.chat.completions.create(
        model="vision", messages=[{"role": "user", "content": [{"type": "text", "text": f"img {nonce}"}, IMAGE_PART]}]
    )
    assert upstreams.anthropic.one(nonce).body["model"] == "claude-sonnet-4-5"
    assert upstreams.openai.matching(nonce) == []
    client.chat.completions.create(model="vision", messages=[{"role": "user", "content": f"text {nonce}"}])
    assert upstreams.openai.one(nonce).body["model"] == "gpt-4o-mini"


# --- the mock provider ---------------------------------------------------------------


def test_mock_echo(client):
    text = "please repeat these seven words back now"
    resp = client.chat.completions.create(model="echo-model", messages=[{"role": "user", "content": text}])
    assert resp.choices[0].message.content == text
    chunks = list(client.chat.completions.create(model="echo-model", messages=[{"role": "user", "content": text}], stream=True))
    got = accumulate(chunks)
    assert got["content"] == text
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == math.ceil(
        len(text.split()) / 2
    )  # chunk_words: 2


def test_mock_failure_status_429(client):
    with pytest.raises(openai.RateLimitError) as ei:
        client.chat.completions.create(model="always-429", messages=[{"role": "user", "content": "x"}])
    assert ei.value.response.headers.get("retry-after") == "1"


def test_mock_embeddings_are_deterministic_unit_vectors(client):
    a = client.embeddings.create(model="demo-model", input=["alpha", "beta", "alpha"])
    vecs = [d.embedding for d in a.data]
    assert [len(v) for v in vecs] == [64, 64, 64]
    for v in vecs:
        assert math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-5)
    assert vecs[0] == vecs[2] and vecs[0] != vecs[1]
    b = client.embeddings.create(model="demo-model", input="alpha", dimensions=8)
    assert len(b.data[0].embedding) == 8


# --- auth --------------------------------------------------------------------------


def _chat_body():
    return {"model": "demo-model", "messages": [{"role": "user", "content": "hi"}]}


def test_auth_rejects_missing_and_wrong_keys(auth_gateway):
    r = httpx.post(auth_gateway.url + CHAT, json=_chat_body(), timeout=10)
    assert assert_openai_error(r, 401)["type"] == "authentication_error"
    r = httpx.post(auth_gateway.url + CHAT, json=_chat_body(), headers={"authorization": "Bearer nope"}, timeout=10)
    assert_openai_error(r, 401)
    c = openai.OpenAI(base_url=auth_gateway.url + "/v1", api_key="wrong-key", max_retries=0, timeout=10)
    with pytest.raises(openai.AuthenticationError):
        c.chat.completions.create(**_chat_body())


def test_auth_accepts_bearer_and_x_api_key(auth_gateway):
    c = openai.OpenAI(base_url=auth_gateway.url + "/v1", api_key=CLIENT_KEY, max_retries=0, timeout=10)
    assert c.chat.completions.create(**_chat_body()).choices[0].message.content
    r = httpx.post(auth_gateway.url + CHAT, json=_chat_body(), headers={"x-api-key": CLIENT_KEY}, timeout=10)
    assert r.status_code == 200, r.text
    assert_request_id(r.headers)


def test_auth_leaves_health_open(auth_gateway):
    """Load balancers and orchestrators probe health without credentials."""
    for path in ("/health/live", "/health/ready"):
        assert httpx.get(auth_gateway.url + path, timeout=10).status_code == 200


def test_auth_protects_model_list(auth_gateway):
    """With auth.api_keys set, clients must send a key -- the model list is no exception (as with OpenAI)."""
    r = httpx.get(auth_gateway.url + "/v1/models", timeout=10)
    assert_openai_error(r, 401)
    ok = httpx.get(auth_gateway.url + "/v1/models", headers={"authorization": f"Bearer {CLIENT_KEY}"}, timeout=10)
    assert ok.status_code == 200
