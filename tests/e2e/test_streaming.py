"""Streaming behaviour under failure and over time.

* an upstream that drops the connection mid-stream, or sends an Anthropic
  ``event: error`` after HTTP 200, reaches the client as a final
  ``data: {"error": ...}`` frame followed by ``data: [DONE]``, which the openai
  SDK raises as ``openai.APIError`` (not a connection error) after the chunks
  that did arrive;
* an upstream that goes silent mid-stream for longer than the provider's
  ``timeouts.idle`` ends the same way, without waiting for the upstream;
* chunks are forwarded as they come, not buffered until the upstream finishes.
"""

from __future__ import annotations

import time

import openai
import pytest

from helpers import assert_request_id, parse_json, sse_data
from upstreams import DROP_CHUNKS, HANG_SECONDS, SLOW_CHUNKS

FAILING = [
    pytest.param("oai-drop", "openai", id="openai-drop-mid-stream"),
    pytest.param("claude-drop", "anthropic", id="anthropic-drop-mid-stream"),
    pytest.param("claude-overloaded", "anthropic", id="anthropic-error-event-after-200"),
    pytest.param("oai-stall", "openai", id="openai-stalls-past-idle-timeout"),
    pytest.param("claude-stall", "anthropic", id="anthropic-stalls-past-idle-timeout"),
]


def _the_request(upstream, nonce):
    recs = upstream.matching(nonce)  # no waiting for `done`: a stalled upstream is still sleeping
    assert len(recs) == 1, f"expected one upstream request, got {len(recs)}"
    return recs[0]


def _check_stall_was_cut(rec, t_end):
    if "stalled_at" in rec.response:
        assert t_end < rec.response["stalled_at"] + HANG_SECONDS, (
            "the gateway waited for the stalled upstream instead of giving up after timeouts.idle (500ms)"
        )


@pytest.mark.parametrize("model,side", FAILING)
def test_sdk_raises_api_error_after_first_chunks(client, upstreams, nonce, model, side):
    received = []
    stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"go {nonce}"}], stream=True)
    with pytest.raises(openai.APIError) as ei:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    t_end = time.monotonic()
    err = ei.value
    assert not isinstance(err, openai.APIConnectionError), (
        "the gateway cut the client connection instead of sending an error frame then [DONE]"
    )
    assert isinstance(err.body, dict) and err.body.get("message"), f"error frame without message: {err.body!r}"
    rec = _the_request(getattr(upstreams, side), nonce)
    assert "".join(received) == "".join(DROP_CHUNKS) == "".join(rec.response["chunks"][: len(DROP_CHUNKS)]), (
        "chunks sent before the failure were lost"
    )
    _check_stall_was_cut(rec, t_end)
    if model == "claude-overloaded":
        assert "overloaded" in str(err.body).lower(), f"upstream error not conveyed: {err.body}"


@pytest.mark.parametrize("model,side", FAILING)
def test_raw_stream_ends_with_error_frame_then_done(http, upstreams, nonce, model, side):
    r = http.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": f"go {nonce}"}], "stream": True},
    )
    t_end = time.monotonic()
    assert r.status_code == 200, r.text[:500]
    assert_request_id(r.headers)
    _check_stall_was_cut(_the_request(getattr(upstreams, side), nonce), t_end)
    events = sse_data(r.text)
    assert len(events) >= 3, events
    assert events[-1] == "[DONE]", f"stream does not end with [DONE]: {events[-3:]}"
    last = parse_json(events[-2])
    assert isinstance(last.get("error"), dict), f"frame before [DONE] is not an error frame: {events[-2]}"
    assert isinstance(last["error"].get("message"), str) and last["error"]["message"]
    assert "type" in last["error"]
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in map(parse_json, events[:-2]) if c.get("choices"))
    assert content == "".join(DROP_CHUNKS)
    assert sum(1 for e in events if e == "[DONE]") == 1
    assert all('"error"' not in e for e in events[:-2]), "error frame must be the last frame before [DONE]"


@pytest.mark.parametrize("model,side", [("oai-slow", "openai"), ("claude-slow", "anthropic")])
def test_chunks_are_forwarded_incrementally(client, upstreams, nonce, model, side):
    t_first = None
    parts = []
    stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"slowly {nonce}"}], stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            if t_first is None:
                t_first = time.monotonic()
            parts.append(chunk.choices[0].delta.content)
    rec = getattr(upstreams, side).one(nonce)
    sent = rec.response["chunk_times"]
    assert len(sent) == len(SLOW_CHUNKS)
    assert "".join(parts) == "".join(SLOW_CHUNKS)
    assert t_first is not None
    # The client had the first chunk before the upstream even produced its last one
    # (the upstream spaces chunks 200 ms apart, so a buffering gateway fails this).
    assert t_first < sent[-1], (
        f"first chunk reached the client {t_first - sent[0]:.3f}s after the upstream sent it, "
        f"after the upstream's last chunk ({sent[-1] - sent[0]:.3f}s)"
    )
    # and each upstream chunk became visible separately rather than as one blob
    assert len(parts) >= len(SLOW_CHUNKS)
