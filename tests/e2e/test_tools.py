"""Tool calls: a full round trip through the Anthropic translation, and passthrough to an OpenAI-compatible upstream."""

from __future__ import annotations

import json

from helpers import accumulate, anthropic_blocks, anthropic_text, parse_json
from upstreams import TOOL_INPUT, TOOL_INPUTS_PARALLEL

WEATHER_PARAMS = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["location"],
}
TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Current weather for a city", "parameters": WEATHER_PARAMS},
    }
]
TOOL_RESULT = "18 degrees and sunny"


def _tool_result_text(block: dict) -> str:
    content = block.get("content")
    return content if isinstance(content, str) else anthropic_text(content)


def test_anthropic_streaming_tool_call_round_trip(client, upstreams, nonce):
    user = {"role": "user", "content": f"What is the weather in Paris? {nonce} scenario:tool"}

    # --- leg 1: the model asks for a tool, streamed -------------------------------
    chunks = list(
        client.chat.completions.create(
            model="claude-sonnet",
            messages=[user],
            tools=TOOLS,
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            stream=True,
        )
    )
    leg1 = upstreams.anthropic.one(nonce)
    assert leg1.response["status"] == 200, f"upstream rejected the translated request: {leg1.response.get('error')}"
    assert leg1.body["stream"] is True
    assert leg1.body["tools"] == [
        {"name": "get_weather", "description": "Current weather for a city", "input_schema": WEATHER_PARAMS}
    ]
    assert leg1.body["tool_choice"] == {"type": "tool", "name": "get_weather"}

    got = accumulate(chunks)
    # the upstream streamed the input as several input_json_delta fragments
    assert len(leg1.response["tool_fragments"][0]) > 3
    assert sorted(got["tool_calls"]) == [0], f"tool call indices should be [0], got {sorted(got['tool_calls'])}"
    call = got["tool_calls"][0]
    upstream_use = leg1.response["tool_uses"][0]
    assert call["name"] == "get_weather"
    assert call["type"] == "function"
    assert call["id"], "tool call has no id"
    assert parse_json(call["arguments"]) == TOOL_INPUT
    assert got["finish_reasons"] == ["tool_calls"]
    assert got["content"] == leg1.response["text"]  # the text block before the tool_use

    # --- leg 2: send the tool result back ------------------------------------------
    assistant = {
        "role": "assistant",
        "content": got["content"] or None,
        "tool_calls": [
            {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}
        ],
    }
    tool_msg = {"role": "tool", "tool_call_id": call["id"], "content": TOOL_RESULT}
    chunks2 = list(
        client.chat.completions.create(model="claude-sonnet", messages=[user, assistant, tool_msg], tools=TOOLS, stream=True)
    )
    reqs = upstreams.anthropic.wait_for(nonce, count=2)
    leg2 = reqs[1]
    assert leg2.response["status"] == 200, f"upstream rejected the translated request: {leg2.response.get('error')}"
    msgs = leg2.body["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    asst_blocks = anthropic_blocks(msgs[1]["content"])
    uses = [b for b in asst_blocks if b["type"] == "tool_use"]
    assert len(uses) == 1, f"expected one tool_use block, got {asst_blocks}"
    assert uses[0]["name"] == "get_weather"
    assert uses[0]["input"] == TOOL_INPUT, "tool_use.input must be the parsed arguments object"
    assert anthropic_text(msgs[1]["content"]) == got["content"]
    results = [b for b in anthropic_blocks(msgs[2]["content"]) if b["type"] == "tool_result"]
    assert len(results) == 1, f"expected one tool_result block, got {msgs[2]['content']}"
    assert _tool_result_text(results[0]) == TOOL_RESULT
    # ids are consistent end to end: the tool_use the upstream sees again is the one it issued
    # (the client may see the same id or a consistent mapping of it), and the result refers to it.
    assert uses[0]["id"] == upstream_use["id"]
    assert results[0]["tool_use_id"] == upstream_use["id"]

    got2 = accumulate(chunks2)
    assert got2["content"] == leg2.response["text"]
    assert TOOL_RESULT in got2["content"]
    assert got2["finish_reasons"] == ["stop"]


def test_anthropic_non_streaming_tool_call(client, upstreams, nonce):
    resp = client.chat.completions.create(
        model="claude-sonnet",
        messages=[{"role": "user", "content": f"Weather in Paris? {nonce} scenario:tool"}],
        tools=TOOLS,
        tool_choice="auto",
    )
    rec = upstreams.anthropic.one(nonce)
    assert rec.response["status"] == 200, f"upstream rejected the translated request: {rec.response.get('error')}"
    assert rec.body["tool_choice"] == {"type": "auto"}
    assert not rec.body.get("stream")
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == rec.response["text"]
    assert len(choice.message.tool_calls) == 1
    tc = choice.message.tool_calls[0]
    assert tc.type == "function"
    assert tc.function.name == "get_weather"
    assert tc.id
    assert json.loads(tc.function.arguments) == TOOL_INPUT


def test_anthropic_tool_choice_required_maps_to_any(client, upstreams, nonce):
    client.chat.completions.create(
        model="claude-sonnet",
        messages=[{"role": "user", "content": f"Weather? {nonce} scenario:tool"}],
        tools=TOOLS,
        tool_choice="required",
    )
    rec = upstreams.anthropic.one(nonce)
    assert rec.body["tool_choice"] == {"type": "any"}


def test_openai_streaming_tool_call_passthrough(client, upstreams, nonce):
    user = {"role": "user", "content": f"Weather in Paris? {nonce} scenario:tool"}
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=[user], tools=TOOLS, stream=True))
    rec = upstreams.openai.one(nonce)
    assert rec.body["tools"] == TOOLS
    got = accumulate(chunks)
    upstream_call = rec.response["tool_calls"][0]
    assert sorted(got["tool_calls"]) == [0]
    call = got["tool_calls"][0]
    assert call["id"] == upstream_call["id"]
    assert call["name"] == "get_weather"
    assert parse_json(call["arguments"]) == TOOL_INPUT
    assert got["finish_reasons"] == ["tool_calls"]

    # round trip: the tool message goes upstream unchanged
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": call["id"], "type": "function", "function": {"name": "get_weather", "arguments": call["arguments"]}}
        ],
    }
    tool_msg = {"role": "tool", "tool_call_id": call["id"], "content": TOOL_RESULT}
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=[user, assistant, tool_msg], tools=TOOLS)
    leg2 = upstreams.openai.wait_for(nonce, count=2)[1]
    # Passed through unchanged -- except that an explicit `"content": null` may be sent as an
    # absent `content` (the OpenAI API treats both the same for tool-calling assistant messages).
    sent_assistant = {k: v for k, v in assistant.items() if v is not None}
    got_msgs = leg2.body["messages"]
    assert [got_msgs[0], {k: v for k, v in got_msgs[1].items() if v is not None}, got_msgs[2]] == [
        user,
        sent_assistant,
        tool_msg,
    ]
    assert TOOL_RESULT in resp.choices[0].message.content


def test_anthropic_parallel_tool_calls_streaming_round_trip(client, upstreams, nonce):
    """Two tool_use blocks (after a text block) become tool_calls 0 and 1; both results go back in one user turn."""
    user = {"role": "user", "content": f"Weather in Paris and London? {nonce} scenario:parallel-tools"}
    chunks = list(client.chat.completions.create(model="claude-sonnet", messages=[user], tools=TOOLS, stream=True))
    leg1 = upstreams.anthropic.one(nonce)
    got = accumulate(chunks)
    assert sorted(got["tool_calls"]) == [0, 1], f"tool call indices should be [0, 1], got {sorted(got['tool_calls'])}"
    calls = [got["tool_calls"][0], got["tool_calls"][1]]
    assert [parse_json(c["arguments"]) for c in calls] == TOOL_INPUTS_PARALLEL
    assert calls[0]["id"] != calls[1]["id"]
    assert got["finish_reasons"] == ["tool_calls"]

    assistant = {
        "role": "assistant",
        "content": got["content"],
        "tool_calls": [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls
        ],
    }
    results = [
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "Paris: 18C"},
        {"role": "tool", "tool_call_id": calls[1]["id"], "content": [{"type": "text", "text": "London: 12C"}]},
    ]
    resp = client.chat.completions.create(model="claude-sonnet", messages=[user, assistant, *results], tools=TOOLS)
    leg2 = upstreams.anthropic.wait_for(nonce, count=2)[1]
    assert leg2.response["status"] == 200, f"upstream rejected the translated request: {leg2.response.get('error')}"
    msgs = leg2.body["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"], "both tool results belong in one user message"
    uses = [b for b in anthropic_blocks(msgs[1]["content"]) if b["type"] == "tool_use"]
    assert [u["id"] for u in uses] == [u["id"] for u in leg1.response["tool_uses"]]
    res_blocks = [b for b in anthropic_blocks(msgs[2]["content"]) if b["type"] == "tool_result"]
    assert [b["tool_use_id"] for b in res_blocks] == [u["id"] for u in uses]
    assert [_tool_result_text(b) for b in res_blocks] == ["Paris: 18C", "London: 12C"]
    assert resp.choices[0].message.content == leg2.response["text"]
    assert "Paris: 18C" in resp.choices[0].message.content and "London: 12C" in resp.choices[0].message.content


def test_openai_parallel_tool_calls_streaming(client, upstreams, nonce):
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"Weather? {nonce} scenario:parallel-tools"}],
            tools=TOOLS,
            stream=True,
        )
    )
    rec = upstreams.openai.one(nonce)
    got = accumulate(chunks)
    assert sorted(got["tool_calls"]) == [0, 1]
    assert [got["tool_calls"][i]["id"] for i in (0, 1)] == [c["id"] for c in rec.response["tool_calls"]]
    assert [parse_json(got["tool_calls"][i]["arguments"]) for i in (0, 1)] == TOOL_INPUTS_PARALLEL


def test_anthropic_tool_choice_none(client, upstreams, nonce):
    """tool_choice "none": the model must not call tools -- sent as {"type": "none"} or by leaving tools out."""
    resp = client.chat.completions.create(
        model="claude-sonnet",
        messages=[{"role": "user", "content": f"Just talk {nonce}"}],
        tools=TOOLS,
        tool_choice="none",
    )
    rec = upstreams.anthropic.one(nonce)
    assert rec.response["status"] == 200, f"upstream rejected the translated request: {rec.response.get('error')}"
    assert rec.body.get("tool_choice") == {"type": "none"} or not rec.body.get("tools"), rec.body
    assert resp.choices[0].finish_reason == "stop"
