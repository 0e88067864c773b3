"""Bad input and upstream errors come back as OpenAI-shaped errors with the right status."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from helpers import assert_openai_error, assert_request_id
from upstreams import HANG_SECONDS

CHAT = "/v1/chat/completions"


def test_malformed_json_is_400(http):
    r = http.post(CHAT, content=b'{"model": "gpt-4o-mini", "messages": [', headers={"content-type": "application/json"})
    assert_openai_error(r, 400)


def test_missing_messages_is_400(http, upstreams, nonce):
    r = http.post(CHAT, json={"model": "gpt-4o-mini", "nonce": nonce})
    err = assert_openai_error(r, 400)
    assert "messages" in err["message"] or err.get("param") == "messages", err
    assert upstreams.openai.matching(nonce) == [], "an invalid request was forwarded upstream"


def test_messages_of_wrong_type_is_400(http):
    r = http.post(CHAT, json={"model": "gpt-4o-mini", "messages": "hello"})
    assert_openai_error(r, 400)


def test_unknown_model_lists_available(http):
    r = http.post(CHAT, json={"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]})
    err = assert_openai_error(r, (404, 400))
    assert "no-such-model" in err["message"]
    for name in ("gpt-4o-mini", "claude-sonnet", "smart"):  # a model, another model, an alias
        assert name in err["message"], f"available model/alias {name!r} not listed in: {err['message']}"


def test_unknown_model_via_sdk(client):
    with pytest.raises((openai.NotFoundError, openai.BadRequestError)) as ei:
        client.chat.completions.create(model="gpt-5o", messages=[{"role": "user", "content": "hi"}])
    assert ei.value.request_id, "SDK error carries no x-request-id"


def test_wrong_content_type_is_415(http):
    body = json.dumps({"model": "demo-model", "messages": [{"role": "user", "content": "hi"}]})
    r = http.post(CHAT, content=body.encode(), headers={"content-type": "text/plain"})
    assert_openai_error(r, 415)


def test_body_over_cap_is_413(small_gateway):
    pad = "x" * (100 * 1024)  # 100 KB > 64KB cap
    r = httpx.post(
        small_gateway.url + CHAT,
        json={"model": "demo-model", "messages": [{"role": "user", "content": pad}]},
        timeout=10,
    )
    err = assert_openai_error(r, 413)
    assert err["code"] == "body_too_large"


def test_chunked_body_over_cap_is_413(small_gateway):
    """No content-length to check up front: the cap must still hold while streaming the body in."""
    piece = b"x" * 8192
    head = b'{"model": "demo-model", "messages": [{"role": "user", "content": "'
    tail = b'"}]}'

    def gen():
        yield head
        for _ in range(12):  # 96 KB
            yield piece
        yield tail

    r = httpx.post(small_gateway.url + CHAT, content=gen(), headers={"content-type": "application/json"}, timeout=10)
    assert_openai_error(r, 413)


def test_body_under_cap_is_served(small_gateway):
    pad = "x" * (32 * 1024)
    r = httpx.post(
        small_gateway.url + CHAT, json={"model": "demo-model", "messages": [{"role": "user", "content": pad}]}, timeout=10
    )
    assert r.status_code == 200, r.text
    assert_request_id(r.headers)
    assert r.json()["choices"][0]["message"]["content"] == "Hello from the mock provider."


@pytest.mark.parametrize(
    "model,stream",
    [("oai-limited", False), ("claude-limited", False), ("claude-limited-stream", True)],
)
def test_upstream_429_keeps_retry_after(client, upstreams, model, stream, nonce):
    with pytest.raises(openai.RateLimitError) as ei:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"hi {nonce}"}], stream=stream)
    e = ei.value
    side = "anthropic" if model.startswith("claude") else "openai"
    assert getattr(upstreams, side).matching(nonce), "the request never reached the upstream"
    assert e.status_code == 429
    assert e.response.headers.get("retry-after") == "7"
    assert e.request_id
    assert e.response.headers.get("content-type", "").startswith("application/json")
    err = e.response.json()["error"]
    assert {"message", "type", "param", "code"} <= set(err), err
    assert "rate limit" in err["message"].lower(), f"upstream's message lost: {err}"


def test_error_responses_for_unknown_path_have_request_id(http):
    r = http.get("/v1/definitely-not-here")
    assert r.status_code == 404
    assert_request_id(r.headers)


def test_default_body_cap_is_10mb(http):
    pad = "x" * (11 * 1024 * 1024)
    r = http.post(CHAT, json={"model": "demo-model", "messages": [{"role": "user", "content": pad}]})
    assert_openai_error(r, 413)


@pytest.mark.parametrize(
    "model,upstream_message",
    [
        ("oai-bad-request", "Invalid value for 'temperature'"),
        ("claude-bad-request", "prompt is too long"),
    ],
)
def test_upstream_400_stays_400_with_its_message(client, model, upstream_message):
    """A request the provider rejects is the client's problem: 400 and the provider's explanation, not a 5xx."""
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert upstream_message in ei.value.message
    assert ei.value.request_id


@pytest.mark.parametrize("model", ["oai-server-error", "claude-server-error"])
def test_upstream_500_is_5xx_openai_error(http, model):
    r = http.post(CHAT, json={"model": model, "messages": [{"role": "user", "content": "hi"}]})
    err = assert_openai_error(r, (500, 502, 503))
    assert err["message"]


@pytest.mark.parametrize("model", ["oai-hang", "claude-hang"])
def test_upstream_first_byte_timeout_is_504(http, model):
    """The provider's timeouts.first_byte is 500ms; the upstream would answer after 3 s."""
    t0 = time.monotonic()
    r = http.post(CHAT, json={"model": model, "messages": [{"role": "user", "content": "hi"}]})
    elapsed = time.monotonic() - t0
    err = assert_openai_error(r, 504)
    assert err["code"] == "upstream_timeout"
    assert elapsed < HANG_SECONDS, f"timed out after {elapsed:.2f}s, not at first_byte (500ms)"


def test_unreachable_upstream_is_502(http):
    r = http.post(CHAT, json={"model": "dead-model", "messages": [{"role": "user", "content": "hi"}]})
    assert_openai_error(r, (502, 503))


@pytest.mark.parametrize("model,side", [("oai-flaky-429", "openai"), ("claude-flaky-429", "anthropic")])
def test_short_retry_after_is_waited_for_and_retried(client, upstreams, model, side, nonce):
    """A 429 whose Retry-After (1s) is within resilience.retry.max_retry_wait: the client never sees it."""
    resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"retry me {nonce}"}])
    first, second = getattr(upstreams, side).wait_for(nonce, count=2)
    assert first.response["status"] == 429 and second.response["status"] == 200
    assert second.received_at - first.received_at >= 0.9, "Retry-After: 1 was not honoured"
    assert resp.choices[0].message.content == second.response["text"]


@pytest.mark.parametrize("model,side", [("oai-flaky-500", "openai"), ("claude-flaky-500", "anthropic")])
def test_one_upstream_500_is_retried(client, upstreams, model, side, nonce):
    resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"retry me {nonce}"}])
    first, second = getattr(upstreams, side).wait_for(nonce, count=2)
    assert first.response["status"] == 500 and second.response["status"] == 200
    assert resp.choices[0].message.content == second.response["text"]
