"""The OpenAI Responses API as an entrance: the official ``openai`` SDK's ``client.responses``
pointed at the gateway, in front of an OpenAI deployment (which must receive the client's body as
sent, and whose answer and events come back as they were) and an Anthropic one (translated both
ways), streamed and not, with function-call round trips; ``previous_response_id`` expanded at the
gateway across providers; ``GET /v1/responses/{id}`` per key; storing off; built-in tools refused
by name where they cannot run."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from gateway import ANTHROPIC_KEY, OPENAI_KEY, Gateway
from helpers import anthropic_text, assert_openai_error
from upstreams import ANTHROPIC_INPUT_TOKENS, OPENAI_PROMPT_TOKENS, TOOL_INPUT

KEY_A = "sk-responses-e2e-a"
KEY_B = "sk-responses-e2e-b"
TOOL_RESULT = "18 degrees and sunny"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["location"],
    },
}


def responses_config(oai_url: str, anthropic_url: str) -> str:
    """A gateway with a real OpenAI-kind provider (the Responses passthrough), two keys, and a
    database of its own."""
    return f"""\
server:
  listen: "127.0.0.1:__PORT__"
auth:
  api_keys: ["{KEY_A}", "{KEY_B}"]
database:
  url: "sqlite://responses-e2e.db"
records:
  log: true
responses:
  ttl: 1h
providers:
  openai_native:
    kind: openai
    base_url: "{oai_url}/v1"
    api_key: "{OPENAI_KEY}"
    timeouts: {{ connect: 2s, first_byte: 30s, idle: 10s }}
  claude:
    kind: anthropic
    base_url: "{anthropic_url}"
    api_key: "{ANTHROPIC_KEY}"
    timeouts: {{ connect: 2s, first_byte: 30s, idle: 10s }}
models:
  gpt-native:
    provider: openai_native
    upstream: gpt-4o-mini
  claude-sonnet:
    provider: claude
    upstream: claude-sonnet-4-5
"""


NO_STORE_CONFIG = """\
server:
  listen: "127.0.0.1:__PORT__"
database:
  url: none
providers:
  demo:
    kind: mock
    mock: { text: "Hello from the mock provider." }
models:
  demo-model:
    provider: demo
"""


@pytest.fixture(scope="module")
def rgw(upstreams, workdir):
    gw = Gateway("responses", responses_config(upstreams.openai.url, upstreams.anthropic.url), workdir).start()
    try:
        yield gw
    finally:
        gw.stop()


def _client(gw: Gateway, key: str = "anything") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0, timeout=20)


@pytest.fixture(scope="module")
def ca(rgw):
    with _client(rgw, KEY_A) as c:
        yield c


@pytest.fixture(scope="module")
def cb(rgw):
    with _client(rgw, KEY_B) as c:
        yield c


def _ask(client: openai.OpenAI, streamed: bool, **kwargs):
    """One turn, JSON or streamed; returns the final response and the streamed events."""
    if not streamed:
        return client.responses.create(**kwargs), []
    with client.responses.stream(**kwargs) as s:
        events = list(s)
        return s.get_final_response(), events


def _check_sequence(events) -> None:
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"], types
    assert types[-1] in ("response.completed", "response.incomplete"), types
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(len(events))), f"sequence numbers must count up from 0: {numbers}"


def _dump(items) -> list[dict]:
    return [i.model_dump(exclude_none=True) for i in items]


# ---------------------------------------------------------------------------
# (a) OpenAI: the client's body goes through, the answer comes back as it was
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
def test_an_openai_upstream_receives_the_clients_body_as_sent(ca, upstreams, nonce, streamed):
    final, events = _ask(
        ca,
        streamed,
        model="gpt-native",
        input=[{"role": "user", "content": [{"type": "input_text", "text": f"Hello {nonce}"}]}],
        instructions="Be brief.",
        metadata={"trace": nonce},
        max_output_tokens=200,
        truncation="disabled",
    )
    rec = upstreams.openai.one(nonce, path="/v1/responses")
    assert rec.response["status"] == 200, rec.response.get("error")
    expected = {
        "model": "gpt-4o-mini",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": f"Hello {nonce}"}]}],
        "instructions": "Be brief.",
        "metadata": {"trace": nonce},
        "max_output_tokens": 200,
        "truncation": "disabled",
    }
    if streamed:
        expected["stream"] = True
    assert rec.body == expected, "the upstream got something else than the client sent"
    # The upstream's own answer: its id, text and usage.
    assert final.id == rec.response["id"]
    assert final.output_text == rec.response["text"]
    assert final.usage.input_tokens == OPENAI_PROMPT_TOKENS
    if streamed:
        _check_sequence(events)
        deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert deltas == rec.response["text"]


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model", ["gpt-native", "claude-sonnet"])
def test_a_function_call_round_trip(ca, upstreams, nonce, streamed, model):
    first_input = [{"role": "user", "content": f"Weather in Paris? {nonce} scenario:tool"}]
    first, _ = _ask(ca, streamed, model=model, input=first_input, tools=[WEATHER])
    calls = [o for o in first.output if o.type == "function_call"]
    assert len(calls) == 1, first.output
    assert calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == TOOL_INPUT
    answer = {"type": "function_call_output", "call_id": calls[0].call_id, "output": TOOL_RESULT}
    final, events = _ask(ca, streamed, model=model, input=[*first_input, *_dump(first.output), answer], tools=[WEATHER])
    assert TOOL_RESULT in final.output_text
    if streamed:
        _check_sequence(events)
    if model == "gpt-native":
        legs = upstreams.openai.wait_for(nonce, path="/v1/responses", count=2)
        assert legs[1].response["status"] == 200, legs[1].response.get("error")
        assert legs[1].body["input"][-1] == answer
    else:
        legs = upstreams.anthropic.wait_for(nonce, count=2)
        assert legs[1].response["status"] == 200, legs[1].response.get("error")
        sent = legs[1].body["messages"]
        assert [b["type"] for b in sent[1]["content"]][-1] == "tool_use"
        assert sent[2]["content"][0]["tool_use_id"] == calls[0].call_id


# ---------------------------------------------------------------------------
# (b) Anthropic behind the Responses API: translated both ways
# ---------------------------------------------------------------------------


def test_anthropic_behind_the_responses_api(client, upstreams, nonce):
    r = client.responses.create(
        model="claude-sonnet",
        instructions="You are terse.",
        input=f"Hi {nonce}",
        max_output_tokens=300,
        temperature=0.5,
    )
    rec = upstreams.anthropic.one(nonce)
    assert rec.response["status"] == 200, rec.response.get("error")
    assert rec.body["system"] == "You are terse."
    assert [m["role"] for m in rec.body["messages"]] == ["user"]
    assert anthropic_text(rec.body["messages"][0]["content"]) == f"Hi {nonce}"
    assert rec.body["max_tokens"] == 300
    assert r.object == "response" and r.status == "completed"
    assert r.id.startswith("resp_")
    assert r.output_text == rec.response["text"]
    assert r.instructions == "You are terse."
    assert r.usage.input_tokens >= ANTHROPIC_INPUT_TOKENS
    assert r.usage.output_tokens > 0


def test_anthropic_streams_the_responses_event_sequence(client, upstreams, nonce):
    with client.responses.stream(model="claude-sonnet", input=f"Hi {nonce}") as s:
        events = list(s)
        final = s.get_final_response()
    rec = upstreams.anthropic.one(nonce)
    _check_sequence(events)
    types = [e.type for e in events]
    for expected in ("response.output_item.added", "response.content_part.added", "response.output_text.done"):
        assert expected in types, types
    assert final.output_text == rec.response["text"]
    assert final.usage.output_tokens > 0


def test_a_cut_answer_is_incomplete(client, nonce):
    r = client.responses.create(model="claude-sonnet", input=f"Tell me a long story {nonce}", max_output_tokens=3)
    assert r.status == "incomplete"
    assert r.incomplete_details.reason == "max_output_tokens"


def test_an_error_after_the_stream_started_is_an_error_event(client, nonce):
    stream = client.responses.create(
        model="claude-sonnet", input=f"{nonce} scenario:error-after-200", stream=True
    )
    types = [e.type for e in stream]
    assert types[0] == "response.created"
    assert types[-2:] == ["error", "response.failed"], types


def test_a_built_in_tool_is_refused_by_name_where_it_cannot_run(ca, upstreams, nonce):
    with pytest.raises(openai.BadRequestError) as e:
        ca.responses.create(model="claude-sonnet", input=f"News? {nonce}", tools=[{"type": "web_search"}])
    assert "web_search" in e.value.message
    assert e.value.code == "unsupported_parameter"
    assert upstreams.anthropic.matching(nonce) == [], "nothing was sent"
    # OpenAI runs it itself: it goes through.
    r = ca.responses.create(model="gpt-native", input=f"News? {nonce}", tools=[{"type": "web_search"}])
    assert r.output_text
    assert upstreams.openai.one(nonce, path="/v1/responses").body["tools"] == [{"type": "web_search"}]


# ---------------------------------------------------------------------------
# previous_response_id and GET /v1/responses/{id}
# ---------------------------------------------------------------------------


def test_previous_response_id_continues_on_another_provider(ca, upstreams, nonce):
    first = ca.responses.create(model="claude-sonnet", instructions="Remember names.", input=f"My name is {nonce}.")
    second = ca.responses.create(model="gpt-native", input="What is my name?", previous_response_id=first.id)
    rec = upstreams.openai.one(nonce, path="/v1/responses")
    assert rec.response["status"] == 200, rec.response.get("error")
    assert "previous_response_id" not in rec.body, "the gateway expands it; the upstream never saw that id"
    sent = rec.body["input"]
    assert sent[0] == {"type": "message", "role": "user", "content": f"My name is {nonce}."}
    assert sent[1]["role"] == "assistant" and sent[1]["content"][0]["text"] == first.output_text
    assert sent[2] == {"type": "message", "role": "user", "content": "What is my name?"}
    assert "instructions" not in rec.body, "instructions are not carried over, as at OpenAI"

    # And back to Anthropic, continuing the OpenAI turn.
    with ca.responses.stream(model="claude-sonnet", input="Say it again.", previous_response_id=second.id) as s:
        s.until_done()
    legs = upstreams.anthropic.wait_for(nonce, count=2)
    messages = legs[1].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert second.output_text in json.dumps(messages[3], ensure_ascii=False)


def test_get_reads_a_response_back_for_its_key_only(ca, cb, nonce):
    created = ca.responses.create(model="claude-sonnet", input=f"Hi {nonce}")
    got = ca.responses.retrieve(created.id)
    assert got.id == created.id
    assert got.output_text == created.output_text
    with pytest.raises(openai.NotFoundError) as e:
        cb.responses.retrieve(created.id)
    assert created.id in e.value.message
    with pytest.raises(openai.NotFoundError):
        cb.responses.create(model="claude-sonnet", input="Go on", previous_response_id=created.id)
    with pytest.raises(openai.NotFoundError):
        ca.responses.retrieve("resp_does_not_exist")


def test_a_streamed_passthrough_response_is_kept_too(ca, nonce):
    with ca.responses.stream(model="gpt-native", input=f"Hi {nonce}") as s:
        final = s.get_final_response()
    assert ca.responses.retrieve(final.id).output_text == final.output_text


def test_store_false_is_not_kept(ca, nonce):
    r = ca.responses.create(model="claude-sonnet", input=f"Hi {nonce}", store=False)
    with pytest.raises(openai.NotFoundError):
        ca.responses.retrieve(r.id)


def test_storing_off_says_so_and_how_to_turn_it_on(workdir):
    gw = Gateway("responses-no-store", NO_STORE_CONFIG, workdir).start()
    try:
        with _client(gw) as c:
            r = c.responses.create(model="demo-model", input="hi")
            assert r.output_text == "Hello from the mock provider."
            with pytest.raises(openai.BadRequestError) as e:
                c.responses.create(model="demo-model", input="again", previous_response_id=r.id)
            assert "responses.store" in e.value.message
            with pytest.raises(openai.NotFoundError) as e:
                c.responses.retrieve(r.id)
            assert "responses.store" in e.value.message
    finally:
        gw.stop()


# ---------------------------------------------------------------------------
# errors, and the mock's own checks
# ---------------------------------------------------------------------------


def test_errors_take_the_openai_shape(rgw, ca):
    with pytest.raises(openai.NotFoundError) as e:
        ca.responses.create(model="no-such-model", input="x")
    assert "no-such-model" in e.value.message
    headers = {"authorization": f"Bearer {KEY_A}", "content-type": "application/json"}
    r = httpx.post(f"{rgw.url}/v1/responses", content=b'{"model": ', headers=headers)
    assert_openai_error(r, 400)
    r = httpx.post(f"{rgw.url}/v1/responses", json={"model": "gpt-native"}, headers=headers)
    assert assert_openai_error(r, 400)["param"] == "input"
    bad = {"model": "claude-sonnet", "input": [{"type": "function_call_output", "call_id": "call_x", "output": "?"}]}
    r = httpx.post(f"{rgw.url}/v1/responses", json=bad, headers=headers)
    assert "call_x" in assert_openai_error(r, 400)["message"]
    r = httpx.post(f"{rgw.url}/v1/responses", json={"model": "gpt-native", "input": "x"})
    assert_openai_error(r, 401)


def test_the_mock_checks_requests_like_the_real_api(upstreams):
    url = f"{upstreams.openai.url}/v1/responses"
    headers = {"authorization": f"Bearer {OPENAI_KEY}"}
    r = httpx.post(url, json={"model": "m", "input": "x", "messages": []}, headers=headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_parameter"
    orphan = [{"type": "function_call_output", "call_id": "call_1", "output": "x"}]
    r = httpx.post(url, json={"model": "m", "input": orphan}, headers=headers)
    assert r.status_code == 400 and "No tool call found" in r.json()["error"]["message"]
    nested = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    r = httpx.post(url, json={"model": "m", "input": "x", "tools": nested}, headers=headers)
    assert r.status_code == 400 and r.json()["error"]["param"] == "tools[0].name"
    r = httpx.post(url, json={"model": "m", "input": "x", "previous_response_id": "resp_nope"}, headers=headers)
    assert r.status_code == 404
