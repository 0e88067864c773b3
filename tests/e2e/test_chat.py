"""Chat completions through the gateway: JSON and SSE, both upstream kinds, mock provider, alias routes."""

from __future__ import annotations

import pytest

from gateway import ANTHROPIC_KEY, MOCK_TEXT, OPENAI_ENV_KEY, OPENAI_KEY
from helpers import accumulate, anthropic_blocks, anthropic_system, anthropic_text, assert_request_id
from upstreams import (
    ANTHROPIC_CACHE_CREATION,
    ANTHROPIC_CACHE_READ,
    ANTHROPIC_INPUT_TOKENS,
    OPENAI_PROMPT_TOKENS,
)

ANTHROPIC_PROMPT_TOKENS = ANTHROPIC_INPUT_TOKENS + ANTHROPIC_CACHE_READ + ANTHROPIC_CACHE_CREATION


# ---------------------------------------------------------------------------
# non-streaming
# ---------------------------------------------------------------------------


def test_chat_openai_compatible_passthrough(client, upstreams, nonce):
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": f"Say hi {nonce}"},
    ]
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages, temperature=0.2, extra_body={"foo_extra": 1}
    )
    assert_request_id(raw.headers)
    resp = raw.parse()
    rec = upstreams.openai.one(nonce, "/v1/chat/completions")

    # what went upstream
    assert rec.headers.get("authorization") == f"Bearer {OPENAI_KEY}", "configured key not sent (or client key leaked)"
    assert rec.body["model"] == "gpt-4o-mini"
    assert rec.body["messages"] == messages
    assert rec.body["temperature"] == 0.2
    assert rec.body.get("foo_extra") == 1, f"unknown field not passed through: {rec.body}"
    assert not rec.body.get("stream")

    # what came back
    assert resp.object == "chat.completion"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == rec.response["text"]
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens == OPENAI_PROMPT_TOKENS
    assert resp.usage.completion_tokens == rec.response["usage"]["completion_tokens"]
    assert resp.usage.total_tokens == rec.response["usage"]["total_tokens"]


def test_chat_anthropic_translation(client, upstreams, nonce):
    raw = client.chat.completions.with_raw_response.create(
        model="claude-sonnet",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": f"Say hi {nonce}"},
        ],
    )
    assert_request_id(raw.headers)
    resp = raw.parse()
    rec = upstreams.anthropic.one(nonce)

    assert rec.path == "/v1/messages"
    assert rec.response["status"] == 200, f"upstream rejected the translated request: {rec.response.get('error')}"
    assert rec.headers.get("x-api-key") == ANTHROPIC_KEY
    assert rec.headers.get("anthropic-version") == "2023-06-01"
    assert rec.body["model"] == "claude-sonnet-4-5"
    assert anthropic_system(rec.body) == "You are terse."
    assert [m["role"] for m in rec.body["messages"]] == ["user"]
    assert anthropic_text(rec.body["messages"][0]["content"]) == f"Say hi {nonce}"
    assert isinstance(rec.body["max_tokens"], int) and rec.body["max_tokens"] > 0  # default filled in
    assert not rec.body.get("stream")

    assert resp.object == "chat.completion"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == rec.response["text"]
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens == ANTHROPIC_PROMPT_TOKENS
    assert resp.usage.completion_tokens == rec.response["usage"]["output_tokens"]
    assert resp.usage.total_tokens == ANTHROPIC_PROMPT_TOKENS + rec.response["usage"]["output_tokens"]


def test_chat_anthropic_sampling_parameters(client, upstreams, nonce):
    resp = client.chat.completions.create(
        model="claude-sonnet",
        messages=[{"role": "user", "content": f"params {nonce}"}],
        max_tokens=200,
        temperature=0.3,
        top_p=0.9,
        stop=["END"],
    )
    rec = upstreams.anthropic.one(nonce)
    assert rec.response["status"] == 200, f"upstream rejected the translated request: {rec.response.get('error')}"
    assert rec.body["max_tokens"] == 200
    assert rec.body["temperature"] == 0.3
    assert rec.body["top_p"] == 0.9
    assert rec.body.get("stop_sequences") == ["END"]
    assert rec.response["stop_reason"] == "stop_sequence"
    assert resp.choices[0].message.content == rec.response["text"]
    assert resp.choices[0].finish_reason == "stop"


def test_chat_anthropic_max_completion_tokens(client, upstreams, nonce):
    """Newer clients send max_completion_tokens instead of max_tokens."""
    resp = client.chat.completions.create(
        model="claude-sonnet", messages=[{"role": "user", "content": f"long answer please {nonce}"}], max_completion_tokens=3
    )
    rec = upstreams.anthropic.one(nonce)
    assert rec.body["max_tokens"] == 3
    assert resp.choices[0].finish_reason == "length"


def test_chat_anthropic_developer_and_multiple_system_messages(client, upstreams, nonce):
    """`developer` is the newer name of `system`; several of them all reach the top-level system prompt."""
    client.chat.completions.create(
        model="claude-sonnet",
        messages=[
            {"role": "developer", "content": "Rule A."},
            {"role": "system", "content": [{"type": "text", "text": "Rule B."}]},
            {"role": "user", "content": f"hello {nonce}"},
        ],
    )
    rec = upstreams.anthropic.one(nonce)
    assert rec.response["status"] == 200, f"upstream rejected the translated request: {rec.response.get('error')}"
    system = anthropic_system(rec.body)
    assert "Rule A." in system and "Rule B." in system
    assert system.index("Rule A.") < system.index("Rule B.")
    assert [m["role"] for m in rec.body["messages"]] == ["user"]


@pytest.mark.parametrize("model,side", [("claude-sonnet", "anthropic"), ("gpt-4o-mini", "openai")])
def test_chat_max_tokens_gives_finish_reason_length(client, upstreams, nonce, model, side):
    resp = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": f"long answer please {nonce}"}], max_tokens=3
    )
    rec = getattr(upstreams, side).one(nonce)
    assert rec.body["max_tokens"] == 3
    assert len(rec.response["text"].split()) == 3
    assert resp.choices[0].message.content == rec.response["text"]
    assert resp.choices[0].finish_reason == "length"


def test_chat_multi_turn_history_reaches_anthropic_in_order(client, upstreams, nonce):
    client.chat.completions.create(
        model="claude-sonnet",
        messages=[
            {"role": "system", "content": "Rule one."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": [{"type": "text", "text": f"second question {nonce}"}]},
        ],
    )
    rec = upstreams.anthropic.one(nonce)
    assert rec.response["status"] == 200, f"upstream rejected the translated request: {rec.response.get('error')}"
    msgs = rec.body["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert [anthropic_text(m["content"]) for m in msgs] == ["first question", "first answer", f"second question {nonce}"]
    assert anthropic_system(rec.body) == "Rule one."


def test_chat_via_mock_provider(client):
    raw = client.chat.completions.with_raw_response.create(model="demo-model", messages=[{"role": "user", "content": "hi"}])
    assert_request_id(raw.headers)
    resp = raw.parse()
    assert resp.choices[0].message.content == MOCK_TEXT
    assert resp.choices[0].finish_reason == "stop"


def test_chat_via_alias_route_uses_first_target(client, upstreams, nonce):
    resp = client.chat.completions.create(model="smart", messages=[{"role": "user", "content": f"route me {nonce}"}])
    rec = upstreams.anthropic.one(nonce)  # smart -> [claude-sonnet, gpt-4o-mini]
    assert rec.body["model"] == "claude-sonnet-4-5"
    assert resp.choices[0].message.content == rec.response["text"]
    assert upstreams.openai.matching(nonce) == [], "the second target was called although the first succeeded"


def test_chat_via_alias_route_to_mock(client):
    resp = client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
    assert resp.choices[0].message.content == MOCK_TEXT


def test_env_var_interpolated_api_key_is_sent(client, upstreams, nonce):
    client.chat.completions.create(model="gpt-4o-mini-env", messages=[{"role": "user", "content": f"env {nonce}"}])
    rec = upstreams.openai.one(nonce)
    assert rec.headers.get("authorization") == f"Bearer {OPENAI_ENV_KEY}"


def test_request_ids_are_unique(client):
    ids = {
        client.chat.completions.with_raw_response.create(model="demo-model", messages=[{"role": "user", "content": "x"}]).headers[
            "x-request-id"
        ]
        for _ in range(3)
    }
    assert len(ids) == 3


# ---------------------------------------------------------------------------
# streaming
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("model,side", [("gpt-4o-mini", "openai"), ("claude-sonnet", "anthropic")])
def test_stream_content_reassembles(client, upstreams, nonce, model, side):
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": f"stream to me {nonce}"}], stream=True
    )
    assert_request_id(raw.headers)
    assert raw.headers.get("content-type", "").startswith("text/event-stream")
    chunks = list(raw.parse())
    rec = getattr(upstreams, side).one(nonce)
    assert rec.body.get("stream") is True
    got = accumulate(chunks)
    assert got["content"] == rec.response["text"]
    assert len(rec.response["chunks"]) > 3
    assert got["roles"][:1] == ["assistant"], "first delta should carry role=assistant"
    assert got["finish_reasons"] == ["stop"]
    # Without include_usage, no usage-only chunk: client code doing chunk.choices[0] must not break.
    assert got["empty_choice_chunks"] == [], "chunk with empty choices sent although include_usage was not requested"
    assert len({c.id for c in chunks}) == 1, "chunk ids differ within one stream"


def test_stream_via_mock_provider(client):
    chunks = list(client.chat.completions.create(model="demo-model", messages=[{"role": "user", "content": "hi"}], stream=True))
    got = accumulate(chunks)
    assert got["content"] == MOCK_TEXT
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= len(MOCK_TEXT.split())  # chunk_words: 1
    assert got["finish_reasons"] == ["stop"]


@pytest.mark.parametrize(
    "model,side,prompt_tokens",
    [("gpt-4o-mini", "openai", OPENAI_PROMPT_TOKENS), ("claude-sonnet", "anthropic", ANTHROPIC_PROMPT_TOKENS)],
)
def test_stream_include_usage(client, upstreams, nonce, model, side, prompt_tokens):
    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": f"count my tokens {nonce}"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    rec = getattr(upstreams, side).one(nonce)
    if side == "anthropic":
        assert "stream_options" not in rec.body
        completion_tokens = rec.response["usage"]["output_tokens"]
    else:
        completion_tokens = rec.response["usage"]["completion_tokens"]
    got = accumulate(chunks)
    assert got["content"] == rec.response["text"]
    last = chunks[-1]
    assert last.choices == [], f"last chunk should have choices == [], got {last.choices}"
    assert last.usage is not None, "last chunk carries no usage"
    assert last.usage.prompt_tokens == prompt_tokens
    assert last.usage.completion_tokens == completion_tokens
    assert last.usage.total_tokens == prompt_tokens + completion_tokens
    assert got["usage_chunks"] == [last], "usage must only be on the final chunk"
    assert got["finish_reasons"] == ["stop"]


def test_stream_anthropic_request_shape(client, upstreams, nonce):
    list(
        client.chat.completions.create(
            model="claude-sonnet",
            messages=[{"role": "system", "content": "S."}, {"role": "user", "content": f"shape {nonce}"}],
            stream=True,
        )
    )
    rec = upstreams.anthropic.one(nonce)
    assert rec.response["status"] == 200, f"upstream rejected the translated request: {rec.response.get('error')}"
    assert rec.body["stream"] is True
    assert anthropic_system(rec.body) == "S."
    assert all(b["type"] == "text" for b in anthropic_blocks(rec.body["messages"][0]["content"]))
