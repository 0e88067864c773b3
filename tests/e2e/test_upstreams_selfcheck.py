"""Self-check of the mock upstreams, using the official SDKs *directly* (no gateway).

If these fail, the mocks do not speak the real wire formats and every gateway
test built on them is suspect.  They need no switchyard binary.
"""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest

from upstreams import (
    ANTHROPIC_CACHE_CREATION,
    ANTHROPIC_CACHE_READ,
    ANTHROPIC_INPUT_TOKENS,
    DROP_CHUNKS,
    TOOL_INPUT,
    embedding_for,
)


@pytest.fixture(scope="module")
def direct_openai(upstreams):
    return openai.OpenAI(base_url=upstreams.openai.url + "/v1", api_key=upstreams.openai_key, max_retries=0, timeout=10)


@pytest.fixture(scope="module")
def direct_anthropic(upstreams):
    return anthropic.Anthropic(base_url=upstreams.anthropic.url, api_key=upstreams.anthropic_key, max_retries=0, timeout=10)


def test_openai_mock_chat_stream_and_usage(direct_openai, upstreams, nonce):
    stream = direct_openai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"hi {nonce}"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    rec = upstreams.openai.one(nonce)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == rec.response["text"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(rec.response["chunks"])


def test_openai_mock_tool_call_and_embeddings(direct_openai, upstreams, nonce):
    r = direct_openai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"{nonce} scenario:tool"}]
    )
    assert r.choices[0].finish_reason == "tool_calls"
    assert json.loads(r.choices[0].message.tool_calls[0].function.arguments) == TOOL_INPUT
    e = direct_openai.embeddings.create(model="text-embedding-3-small", input=[nonce], encoding_format="float")
    assert e.data[0].embedding == embedding_for(json.dumps(nonce))


def test_openai_mock_rate_limit_and_drop(direct_openai, nonce):
    with pytest.raises(openai.RateLimitError) as ei:
        direct_openai.chat.completions.create(model="rate-limited", messages=[{"role": "user", "content": nonce}])
    assert ei.value.response.headers["retry-after"] == "7"
    got = []
    with pytest.raises(openai.APIConnectionError):
        for c in direct_openai.chat.completions.create(
            model="drop-mid-stream", messages=[{"role": "user", "content": nonce}], stream=True
        ):
            got.append(c.choices[0].delta.content or "")
    assert "".join(got) == "".join(DROP_CHUNKS)


def test_anthropic_mock_stream_text_and_usage(direct_anthropic, upstreams, nonce):
    with direct_anthropic.messages.stream(
        model="claude-sonnet-4-5", max_tokens=100, system="be brief", messages=[{"role": "user", "content": f"hi {nonce}"}]
    ) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    rec = upstreams.anthropic.one(nonce)
    assert text == rec.response["text"]
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == ANTHROPIC_INPUT_TOKENS
    assert final.usage.cache_read_input_tokens == ANTHROPIC_CACHE_READ
    assert final.usage.cache_creation_input_tokens == ANTHROPIC_CACHE_CREATION
    assert final.usage.output_tokens == len(rec.response["chunks"])


def test_anthropic_mock_streamed_tool_use_round_trip(direct_anthropic, nonce):
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {}}}]
    with direct_anthropic.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=100,
        tools=tools,
        messages=[{"role": "user", "content": f"{nonce} scenario:tool"}],
    ) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use"
    tu = [b for b in final.content if b.type == "tool_use"][0]
    assert tu.input == TOOL_INPUT
    r = direct_anthropic.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=100,
        tools=tools,
        messages=[
            {"role": "user", "content": f"{nonce} scenario:tool"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tu.id, "content": "18C"}]},
        ],
    )
    assert r.content[0].text.startswith("The tool said: 18C")


def test_anthropic_mock_errors(direct_anthropic, nonce):
    with pytest.raises(anthropic.RateLimitError) as ei:
        direct_anthropic.messages.create(model="rate-limited", max_tokens=10, messages=[{"role": "user", "content": nonce}])
    assert ei.value.response.headers["retry-after"] == "7"
    with pytest.raises(anthropic.APIStatusError) as ei2:
        with direct_anthropic.messages.stream(
            model="error-after-200", max_tokens=10, messages=[{"role": "user", "content": nonce}]
        ) as s:
            for _ in s.text_stream:
                pass
    assert "Overloaded" in str(ei2.value)
    # The mock rejects what the real API rejects.
    with pytest.raises(anthropic.BadRequestError, match="Unexpected role"):
        direct_anthropic.messages.create(model="x", max_tokens=10, messages=[{"role": "system", "content": "s"}])
    with pytest.raises(anthropic.BadRequestError, match="Extra inputs"):
        direct_anthropic.messages.create(
            model="x", max_tokens=10, messages=[{"role": "user", "content": "s"}], extra_body={"stream_options": {}}
        )
    bad = httpx.post(
        direct_anthropic.base_url.__str__().rstrip("/") + "/v1/messages",
        headers={"x-api-key": "wrong", "anthropic-version": "2023-06-01"},
        json={},
    )
    assert bad.status_code == 401
