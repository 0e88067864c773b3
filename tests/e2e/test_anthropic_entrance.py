"""The Anthropic Messages API as an entrance: the official ``anthropic`` SDK pointed at the
gateway, in front of an Anthropic-dialect upstream (which must receive the client's body,
thinking blocks, ``cache_control`` and ``anthropic-beta`` as sent) and an OpenAI-dialect one
(translated both ways), streamed and not, with tool-use round trips."""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from gateway import AUTH_CONFIG, CLIENT_KEY, Gateway
from upstreams import ANTHROPIC_CACHE_READ, ANTHROPIC_INPUT_TOKENS, TOOL_INPUT

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["location"],
    },
}
TOOL_RESULT = "18 degrees and sunny"
BETA = "interleaved-thinking-2025-05-14"
# The `claude` provider of the main config sets a beta header of its own.
CONFIGURED_BETA = "prompt-caching-2024-07-31"


@pytest.fixture(scope="module")
def ant(gateway):
    c = anthropic.Anthropic(base_url=gateway.url, api_key="anything", max_retries=0, timeout=20)
    try:
        yield c
    finally:
        c.close()


def _user(text: str, cache: bool = False) -> dict:
    block: dict = {"type": "text", "text": text}
    if cache:
        block["cache_control"] = {"type": "ephemeral"}
    return {"role": "user", "content": [block]}


def _dump(blocks) -> list[dict]:
    return [b.model_dump(exclude_none=True) for b in blocks]


def test_an_anthropic_upstream_receives_the_clients_body_and_beta_as_sent(ant, upstreams, nonce):
    system = [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]
    messages = [_user(f"Hello {nonce}", cache=True)]
    msg = ant.messages.create(
        model="claude-sonnet",
        max_tokens=300,
        system=system,
        messages=messages,
        extra_body={"top_k": 5},
        extra_headers={"anthropic-beta": BETA},
    )
    rec = upstreams.anthropic.one(nonce)
    assert rec.response["status"] == 200, rec.response.get("error")
    assert rec.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 300,
        "system": system,
        "messages": messages,
        "top_k": 5,
    }, "the upstream got something else than the client sent"
    assert rec.headers["anthropic-beta"] == f"{CONFIGURED_BETA},{BETA}"
    # The answer is the upstream's own, usage and all.
    assert msg.content[0].text == rec.response["text"]
    assert msg.usage.input_tokens == ANTHROPIC_INPUT_TOKENS
    assert msg.usage.cache_read_input_tokens == ANTHROPIC_CACHE_READ
    assert msg.model == "claude-sonnet-4-5"


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
def test_thinking_and_tool_use_round_trip_to_anthropic_untouched(ant, upstreams, nonce, streamed):
    thinking = {"type": "enabled", "budget_tokens": 1024}
    first = [_user(f"Weather in Paris? {nonce} scenario:thinking")]

    def ask(messages):
        kwargs = dict(
            model="claude-sonnet",
            max_tokens=2048,
            thinking=thinking,
            tools=[WEATHER_TOOL],
            messages=messages,
            extra_headers={"anthropic-beta": BETA},
        )
        if streamed:
            with ant.messages.stream(**kwargs) as s:
                return s.get_final_message()
        return ant.messages.create(**kwargs)

    msg = ask(first)
    leg1 = upstreams.anthropic.one(nonce)
    assert leg1.body["thinking"] == thinking
    assert [b.type for b in msg.content] == ["thinking", "text", "tool_use"]
    assert msg.content[0].signature == leg1.response["signature"], "the signature must come back intact"
    assert msg.stop_reason == "tool_use"
    use = msg.content[2]
    assert use.input == TOOL_INPUT

    # Turn 2: the assistant turn goes back with its thinking block, as Claude requires.
    assistant = {"role": "assistant", "content": _dump(msg.content)}
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": TOOL_RESULT}]}
    final = ask([*first, assistant, result])
    legs = upstreams.anthropic.wait_for(nonce, count=2)
    leg2 = legs[-1]
    assert leg2.response["status"] == 200, f"the upstream refused the second turn: {leg2.response.get('error')}"
    assert leg2.body["messages"][1] == assistant, "the thinking block was changed on its way back"
    assert TOOL_RESULT in "".join(b.text for b in final.content if b.type == "text")


def test_openai_upstream_behind_the_messages_api(ant, upstreams, nonce):
    msg = ant.messages.create(
        model="gpt-4o-mini",
        max_tokens=200,
        system="Be brief.",
        messages=[{"role": "user", "content": f"Hi {nonce}"}],
        stop_sequences=["zzz"],
        metadata={"user_id": "u-42"},
    )
    rec = upstreams.openai.one(nonce)
    assert rec.response["status"] == 200, rec.response.get("error")
    assert rec.body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert rec.body["max_tokens"] == 200
    assert rec.body["stop"] == ["zzz"]
    assert rec.body["user"] == "u-42"
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.content[0].text == rec.response["text"]
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens > 0


def test_openai_upstream_streams_the_anthropic_event_sequence(gateway, ant, upstreams, nonce):
    with ant.messages.stream(
        model="gpt-4o-mini", max_tokens=200, messages=[{"role": "user", "content": f"Hi {nonce}"}]
    ) as s:
        events = [e.type for e in s]
        final = s.get_final_message()
    rec = upstreams.openai.one(nonce)
    assert events[0] == "message_start"
    assert events[-1] == "message_stop"
    assert "content_block_start" in events and "content_block_stop" in events
    assert final.content[0].text == rec.response["text"]
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
def test_tool_use_round_trip_through_an_openai_upstream(ant, upstreams, nonce, streamed):
    first = [{"role": "user", "content": f"Weather in Paris? {nonce} scenario:tool"}]

    def ask(messages):
        kwargs = dict(model="gpt-4o-mini", max_tokens=500, tools=[WEATHER_TOOL], messages=messages)
        if streamed:
            with ant.messages.stream(**kwargs) as s:
                return s.get_final_message()
        return ant.messages.create(**kwargs)

    msg = ask(first)
    leg1 = upstreams.openai.one(nonce)
    assert leg1.body["tools"][0]["function"]["name"] == "get_weather"
    assert leg1.body["tools"][0]["function"]["parameters"] == WEATHER_TOOL["input_schema"]
    uses = [b for b in msg.content if b.type == "tool_use"]
    assert msg.stop_reason == "tool_use"
    assert len(uses) == 1 and uses[0].name == "get_weather" and uses[0].input == TOOL_INPUT

    assistant = {"role": "assistant", "content": _dump(msg.content)}
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": TOOL_RESULT}]}
    final = ask([*first, assistant, result])
    leg2 = upstreams.openai.wait_for(nonce, count=2)[-1]
    assert leg2.response["status"] == 200, leg2.response.get("error")
    sent = leg2.body["messages"]
    assert sent[1]["tool_calls"][0]["id"] == uses[0].id
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == TOOL_INPUT
    assert sent[2] == {"role": "tool", "tool_call_id": uses[0].id, "content": TOOL_RESULT}
    assert TOOL_RESULT in "".join(b.text for b in final.content if b.type == "text")


def test_errors_take_the_anthropic_shape(gateway, ant):
    with pytest.raises(anthropic.NotFoundError) as e:
        ant.messages.create(model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["type"] == "not_found_error"
    assert "no-such-model" in e.value.body["error"]["message"]

    r = httpx.post(f"{gateway.url}/v1/messages", content=b'{"model": ', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert r.headers["x-request-id"]

    r = httpx.post(f"{gateway.url}/v1/messages", json={"model": "claude-sonnet", "messages": []})
    assert r.status_code == 400
    assert "max_tokens" in r.json()["error"]["message"]


def test_an_error_after_the_stream_started_is_an_error_event(ant, nonce):
    with pytest.raises(anthropic.APIStatusError) as e:
        with ant.messages.stream(
            model="claude-sonnet",
            max_tokens=100,
            messages=[{"role": "user", "content": f"{nonce} scenario:error-after-200"}],
        ) as s:
            for _ in s:
                pass
    assert "overloaded" in str(e.value).lower()


def test_count_tokens_asks_anthropic_and_estimates_for_others(ant, upstreams, nonce):
    messages = [{"role": "user", "content": f"How many tokens is this? {nonce}"}]
    counted = ant.messages.count_tokens(model="claude-sonnet", messages=messages)
    rec = upstreams.anthropic.one(nonce, path="/v1/messages/count_tokens")
    assert counted.input_tokens == rec.response["input_tokens"], "Anthropic's own count, not an estimate"
    assert rec.body == {"model": "claude-sonnet-4-5", "messages": messages}

    short = ant.messages.count_tokens(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    long = ant.messages.count_tokens(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "a much longer question " * 40}]
    )
    assert 0 < short.input_tokens < long.input_tokens


def test_auth_by_x_api_key_or_bearer(workdir):
    gw = Gateway("anthropic-auth", AUTH_CONFIG, workdir).start()
    try:
        ask = dict(model="demo-model", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
        with anthropic.Anthropic(base_url=gw.url, api_key=CLIENT_KEY, max_retries=0) as by_key:
            assert by_key.messages.create(**ask).content[0].text
        with anthropic.Anthropic(base_url=gw.url, auth_token=CLIENT_KEY, max_retries=0) as by_bearer:
            assert by_bearer.messages.create(**ask).content[0].text
        with anthropic.Anthropic(base_url=gw.url, api_key="sk-wrong", max_retries=0) as wrong:
            with pytest.raises(anthropic.AuthenticationError) as e:
                wrong.messages.create(**ask)
        assert e.value.body["error"]["type"] == "authentication_error"
    finally:
        gw.stop()


# ---------------------------------------------------------------------------
# An Anthropic primary that is overloaded, and a Gemini fallback
# ---------------------------------------------------------------------------

GEMINI_KEY = "AIzaSy-e2e-anthropic-fallback"


@pytest.fixture(scope="module")
def fallback_gateway(upstreams, workdir):
    from upstream_gemini import GeminiUpstream

    gemini = GeminiUpstream({GEMINI_KEY}).start()
    config = f"""\
server:
  listen: "127.0.0.1:__PORT__"
database:
  url: none
records:
  log: true
resilience:
  retry: {{ retries_per_target: 0 }}
providers:
  claude:
    kind: anthropic
    base_url: "{upstreams.anthropic.url}"
    api_key: "{upstreams.anthropic_key}"
  gem:
    kind: gemini
    base_url: "{gemini.url}/v1beta"
    api_key: "{GEMINI_KEY}"
models:
  claude-overloaded:
    provider: claude
    upstream: overloaded
  gemini-flash:
    provider: gem
    upstream: gemini-2.5-flash
  claude-plain:
    provider: claude
    upstream: claude-sonnet-4-5
routes:
  claude-main:
    targets: [claude-overloaded, gemini-flash]
  claude-lenient:
    targets: [claude-plain]
    drop_unsupported_params: true
"""
    gw = Gateway("anthropic-fallback", config, workdir).start()
    try:
        yield gw, gemini
    finally:
        gw.stop()
        gemini.stop()


def test_an_overloaded_anthropic_primary_falls_back_to_gemini_streamed(fallback_gateway, upstreams, nonce):
    gw, gemini = fallback_gateway
    first = [{"role": "user", "content": f"Weather in Paris? {nonce} scenario:tool"}]
    with anthropic.Anthropic(base_url=gw.url, api_key="anything", max_retries=0, timeout=20) as ant:

        def ask(messages):
            with ant.messages.stream(
                model="claude-main", max_tokens=500, tools=[WEATHER_TOOL], messages=messages
            ) as s:
                events = [e.type for e in s]
                return events, s.get_final_message(), s.response.headers

        events, msg, headers = ask(first)
        assert upstreams.anthropic.one(nonce).response["status"] == 529
        assert gemini.one(nonce).response["status"] == 200
        assert headers["x-switchyard-provider"] == "gem"
        assert "claude-overloaded(overloaded)" in headers["x-switchyard-fallback-path"]
        assert events[0] == "message_start" and events[-1] == "message_stop"
        assert events.count("content_block_start") == events.count("content_block_stop")
        uses = [b for b in msg.content if b.type == "tool_use"]
        assert msg.stop_reason == "tool_use" and uses[0].input == TOOL_INPUT

        # Turn 2 also lands on Gemini, which refuses it unless its thought signature came back.
        assistant = {"role": "assistant", "content": _dump(msg.content)}
        result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": TOOL_RESULT}]}
        events, final, _ = ask([*first, assistant, result])
        leg2 = gemini.wait_for(nonce, count=2)[-1]
        assert leg2.response["status"] == 200, leg2.response.get("error")
        assert TOOL_RESULT in "".join(b.text for b in final.content if b.type == "text")


def test_a_parameter_the_provider_cannot_honour_is_refused_by_name_unless_dropped(fallback_gateway, upstreams, nonce):
    import openai

    gw, _ = fallback_gateway
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key="anything", max_retries=0) as client:
        ask = dict(messages=[{"role": "user", "content": f"Hi {nonce}"}], n=2, logprobs=True)
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model="claude-plain", **ask)
        message = e.value.body["message"]
        assert '"n"' in message and "Anthropic" in message and "drop_unsupported_params" in message
        assert e.value.body["code"] == "unsupported_parameter"
        assert not upstreams.anthropic.matching(nonce), "nothing may reach the provider"

        reply = client.chat.completions.create(model="claude-lenient", **ask)
        sent = upstreams.anthropic.one(nonce)
        assert "n" not in sent.body and "logprobs" not in sent.body
        assert len(reply.choices) == 1
