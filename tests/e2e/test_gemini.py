"""The Gemini provider end to end: the official openai SDK against a gateway whose models are served
by the Gemini API and by Vertex AI (static bearer token, and a service account whose JWT the mock
verifies), all mocked by ``upstream_gemini.GeminiUpstream``, which rejects what the real API rejects.

This module starts its own upstream and gateway, so the shared fixtures stay untouched.
"""

from __future__ import annotations

import base64
import json
import struct

import httpx
import openai
import pytest

from gateway import Gateway
from helpers import accumulate, assert_openai_error, parse_json
from upstream_gemini import (
    GEMINI_CACHED,
    GEMINI_PROMPT_TOKENS,
    GEMINI_THOUGHTS,
    THOUGHT_TEXT,
    GeminiUpstream,
    make_service_account,
)
from upstreams import TOOL_INPUT, TOOL_INPUTS_PARALLEL, embedding_for

GEMINI_KEY = "AIzaSy-e2e-gemini-key-5d1f0a"
VERTEX_TOKEN = "ya29.e2e-static-token-77c1"
BACKUP_TEXT = "Answer from the backup model."
VERTEX_PATH = "/v1/projects/acme/locations/us-central1/publishers/google/models"

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "City name"},
                    "unit": {"anyOf": [{"type": "string", "enum": ["celsius", "fahrenheit"]}, {"type": "null"}]},
                },
                "required": ["location"],
                "additionalProperties": False,
            },
        },
    }
]


def _config(url: str, key_file: str) -> str:
    return f"""\
server:
  listen: "127.0.0.1:__PORT__"
database:
  url: none
records:
  log: true
resilience:
  retry: {{ max_retry_wait: 1s, retries_per_target: 0 }}
providers:
  gem:
    kind: gemini
    base_url: "{url}/v1beta"
    api_key: "{GEMINI_KEY}"
    timeouts: {{ connect: 2s, first_byte: 20s, idle: 10s }}
  gem_limited:
    kind: gemini
    base_url: "{url}/v1beta"
    api_key: "{GEMINI_KEY}"
  gem_wrong_key:
    kind: gemini
    base_url: "{url}/v1beta"
    api_key: "AIzaSy-not-the-right-key"
  vertex_static:
    kind: vertex
    base_url: "{url}/v1"
    api_key: "{VERTEX_TOKEN}"
    vertex: {{ project: acme, location: us-central1 }}
  vertex_sa:
    kind: vertex
    base_url: "{url}/v1"
    vertex: {{ project: acme, location: us-central1, credentials_file: "{key_file}" }}
  backup:
    kind: mock
    mock: {{ text: "{BACKUP_TEXT}" }}
models:
  gemini-flash:
    provider: gem
    upstream: gemini-2.5-flash
  gemini-blocked:
    provider: gem
    upstream: blocked
  gemini-malformed:
    provider: gem
    upstream: malformed
  gemini-limited:
    provider: gem_limited
    upstream: rate-limited
  gemini-wrong-key:
    provider: gem_wrong_key
    upstream: gemini-2.5-flash
  gemini-embed:
    provider: gem
    upstream: gemini-embedding-001
  vertex-static:
    provider: vertex_static
    upstream: gemini-2.5-pro
  vertex-sa:
    provider: vertex_sa
    upstream: gemini-2.5-pro
  vertex-sa-embed:
    provider: vertex_sa
    upstream: gemini-embedding-001
  backup:
    provider: backup
routes:
  guarded:
    targets: [gemini-blocked]
    fallbacks: {{ content_policy: [backup] }}
"""


@pytest.fixture(scope="module")
def gemini(workdir):
    upstream = GeminiUpstream({GEMINI_KEY}, bearer_tokens=(VERTEX_TOKEN,)).start()
    key_file, public = make_service_account(f"{upstream.url}/token")
    upstream.service_account = (key_file, public)
    path = workdir / "gemini-service-account.json"  # a throwaway key made for this run
    path.write_text(json.dumps(key_file))
    gw = Gateway("gemini", _config(upstream.url, str(path)), workdir)
    gw.start()
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="anything", max_retries=0, timeout=20)
    try:
        yield upstream, client, gw
    finally:
        client.close()
        gw.stop()
        upstream.stop()


@pytest.fixture
def upstream(gemini):
    return gemini[0]


@pytest.fixture
def client(gemini):
    return gemini[1]


def _accepted(rec):
    assert rec.response.get("status") == 200, f"the mock rejected the translated request: {rec.response.get('error')}"
    return rec


# ---------------------------------------------------------------------------
# chat
# ---------------------------------------------------------------------------


def test_chat_non_streaming(client, upstream, nonce):
    r = client.chat.completions.create(
        model="gemini-flash",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": f"Hello there {nonce}"},
            {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": "again"},
        ],
        temperature=0.3,
        top_p=0.9,
        max_tokens=200,
        stop=["END"],
        seed=11,
    )
    rec = _accepted(upstream.one(nonce))
    assert rec.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert rec.headers["x-goog-api-key"] == GEMINI_KEY
    assert rec.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in rec.body["contents"]] == ["user", "model", "user"]
    assert rec.body["generationConfig"] == {
        "temperature": 0.3,
        "topP": 0.9,
        "maxOutputTokens": 200,
        "stopSequences": ["END"],
        "seed": 11,
    }
    assert r.choices[0].message.content == "Hello from Gemini: you said: again"
    assert r.choices[0].finish_reason == "stop"
    assert r.model  # the gateway answers with a model name


def test_chat_streaming_with_usage(client, upstream, nonce):
    chunks = list(
        client.chat.completions.create(
            model="gemini-flash",
            messages=[{"role": "user", "content": f"stream please {nonce}"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    rec = _accepted(upstream.one(nonce))
    assert rec.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    got = accumulate(chunks)
    assert got["roles"] == ["assistant"]
    assert got["content"] == f"Hello from Gemini: you said: stream please {nonce}"
    assert got["finish_reasons"] == ["stop"]
    assert len(got["usage_chunks"]) == 1
    usage = got["usage_chunks"][0].usage
    words = len(got["content"].split(" "))
    assert (usage.prompt_tokens, usage.completion_tokens) == (GEMINI_PROMPT_TOKENS, words + GEMINI_THOUGHTS)


def test_max_tokens_ends_with_length(client, upstream, nonce):
    r = client.chat.completions.create(
        model="gemini-flash", messages=[{"role": "user", "content": f"long answer {nonce}"}], max_completion_tokens=3
    )
    assert _accepted(upstream.one(nonce)).body["generationConfig"] == {"maxOutputTokens": 3}
    assert r.choices[0].finish_reason == "length"
    assert r.choices[0].message.content == "Hello from Gemini: "


def test_usage_counts_thoughts_and_cached_tokens(client, upstream, nonce):
    r = client.chat.completions.create(
        model="gemini-flash",
        messages=[{"role": "user", "content": f"think {nonce}"}],
        extra_body={"thinking_config": {"include_thoughts": True}, "reasoning_effort": "medium"},
    )
    rec = _accepted(upstream.one(nonce))
    assert rec.body["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 8192}
    answer_words = len(r.choices[0].message.content.split(" "))
    u = r.usage
    assert u.prompt_tokens == GEMINI_PROMPT_TOKENS
    assert u.completion_tokens == answer_words + GEMINI_THOUGHTS
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert u.prompt_tokens_details.cached_tokens == GEMINI_CACHED
    assert u.completion_tokens_details.reasoning_tokens == GEMINI_THOUGHTS
    # The thought text was asked for, so it comes back beside the answer, not in it.
    assert r.choices[0].message.model_extra["reasoning_content"] == THOUGHT_TEXT
    assert THOUGHT_TEXT not in r.choices[0].message.content


def test_an_image_goes_as_inline_data(client, upstream, nonce):
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="
    client.chat.completions.create(
        model="gemini-flash",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"what is this {nonce}"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                ],
            }
        ],
    )
    parts = _accepted(upstream.one(nonce)).body["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": png}}


# ---------------------------------------------------------------------------
# tools and thought signatures
# ---------------------------------------------------------------------------


def _second_turn(user: dict, call, result: str) -> list[dict]:
    return [
        user,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}],
        },
        {"role": "tool", "tool_call_id": call["id"], "content": result},
    ]


def test_a_thought_signature_survives_a_two_turn_tool_conversation(client, upstream, nonce):
    user = {"role": "user", "content": f"Weather in Paris? {nonce} scenario:tool"}
    r1 = client.chat.completions.create(model="gemini-flash", messages=[user], tools=TOOLS, tool_choice="required")
    leg1 = _accepted(upstream.one(nonce))
    assert leg1.body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    declared = leg1.body["tools"][0]["functionDeclarations"][0]
    assert declared["parameters"] == {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "City name"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "nullable": True},
        },
        "required": ["location"],
    }
    assert r1.choices[0].finish_reason == "tool_calls"
    tc = r1.choices[0].message.tool_calls[0]
    assert tc.function.name == "get_weather"
    assert parse_json(tc.function.arguments) == TOOL_INPUT
    issued = leg1.response["frames"][0]["candidates"][0]["content"]["parts"][0]["thoughtSignature"]

    call = {"id": tc.id, "name": tc.function.name, "arguments": tc.function.arguments}
    r2 = client.chat.completions.create(model="gemini-flash", messages=_second_turn(user, call, '{"temp": 18}'), tools=TOOLS)
    leg2 = _accepted(upstream.wait_for(nonce, count=2)[1])
    model_turn, answer_turn = leg2.body["contents"][1], leg2.body["contents"][2]
    assert model_turn["parts"][0]["thoughtSignature"] == issued, "the signature came back unchanged"
    assert answer_turn == {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 18}}}]}
    assert r2.choices[0].message.content == 'The tool said: {"temp": 18}'


def test_without_its_signature_the_second_turn_is_rejected_as_gemini_does(client, upstream, nonce):
    """The control for the test above: a call id that lost its signature gets Gemini's 400."""
    user = {"role": "user", "content": f"Weather in Paris? {nonce} scenario:tool"}
    r1 = client.chat.completions.create(model="gemini-flash", messages=[user], tools=TOOLS)
    tc = r1.choices[0].message.tool_calls[0]
    call = {"id": "call_0123456789abcdef", "name": tc.function.name, "arguments": tc.function.arguments}
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gemini-flash", messages=_second_turn(user, call, "18C"), tools=TOOLS)
    assert "thought_signature" in str(e.value)


def test_streamed_parallel_tool_calls_round_trip(client, upstream, nonce):
    user = {"role": "user", "content": f"Paris and London? {nonce} scenario:parallel-tools"}
    got = accumulate(
        list(
            client.chat.completions.create(
                model="gemini-flash",
                messages=[user],
                tools=TOOLS,
                tool_choice={"type": "function", "function": {"name": "get_weather"}},
                stream=True,
            )
        )
    )
    leg1 = _accepted(upstream.one(nonce))
    assert leg1.body["toolConfig"]["functionCallingConfig"] == {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    assert got["finish_reasons"] == ["tool_calls"]
    assert sorted(got["tool_calls"]) == [0, 1]
    calls = [got["tool_calls"][k] for k in (0, 1)]
    assert [parse_json(c["arguments"]) for c in calls] == TOOL_INPUTS_PARALLEL
    assert all(c["type"] == "function" and c["name"] == "get_weather" for c in calls)

    messages = [
        user,
        {
            "role": "assistant",
            "tool_calls": [{"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls],
        },
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "sunny"},
        {"role": "tool", "tool_call_id": calls[1]["id"], "content": "rain"},
    ]
    got2 = accumulate(list(client.chat.completions.create(model="gemini-flash", messages=messages, tools=TOOLS, stream=True)))
    leg2 = _accepted(upstream.wait_for(nonce, count=2)[1])
    assert [p.get("thoughtSignature") is not None for p in leg2.body["contents"][1]["parts"]] == [True, False]
    assert len(leg2.body["contents"][2]["parts"]) == 2, "both results in one user turn"
    assert got2["content"] == 'The tool said: {"output": "sunny"} | {"output": "rain"}'


def test_a_malformed_function_call_is_a_clear_error(client, upstream, nonce):
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model="gemini-malformed", messages=[{"role": "user", "content": f"x {nonce}"}])
    assert e.value.status_code == 502
    assert "MALFORMED_FUNCTION_CALL" in str(e.value)


# ---------------------------------------------------------------------------
# errors and fallback
# ---------------------------------------------------------------------------


def test_a_blocked_prompt_falls_back_to_the_content_policy_target(client, upstream, nonce):
    r = client.chat.completions.create(model="guarded", messages=[{"role": "user", "content": f"something {nonce}"}])
    assert _accepted(upstream.one(nonce)).scenario == "blocked"
    assert r.choices[0].message.content == BACKUP_TEXT

    stream = client.chat.completions.create(model="guarded", messages=[{"role": "user", "content": f"stream {nonce}"}], stream=True)
    assert accumulate(list(stream))["content"] == BACKUP_TEXT

    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gemini-blocked", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "content_policy_violation"
    assert "PROHIBITED_CONTENT" in str(e.value)


def test_upstream_errors_keep_their_meaning(gemini, nonce):
    _, _, gw = gemini
    with httpx.Client(base_url=gw.url, timeout=20) as http:
        body = {"messages": [{"role": "user", "content": f"hi {nonce}"}]}
        limited = http.post("/v1/chat/completions", json={**body, "model": "gemini-limited"})
        err = assert_openai_error(limited, 429)
        assert "quota" in err["message"]
        wrong_key = http.post("/v1/chat/completions", json={**body, "model": "gemini-wrong-key"})
        err = assert_openai_error(wrong_key, 502)
        assert err["code"] == "upstream_auth_failed"
        refused = http.post("/v1/chat/completions", json={**body, "model": "gemini-flash", "logit_bias": {"1": 5}})
        err = assert_openai_error(refused, 400)
        assert "logit_bias" in err["message"] and "Gemini" in err["message"]


# ---------------------------------------------------------------------------
# embeddings
# ---------------------------------------------------------------------------


def _floats(item) -> list[float]:
    if isinstance(item.embedding, str):  # the SDK asked for base64
        raw = base64.b64decode(item.embedding)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return list(item.embedding)


def test_embeddings_single_and_batch(client, upstream, nonce):
    one = client.embeddings.create(model="gemini-embed", input=f"hello {nonce}", dimensions=8)
    rec = _accepted(upstream.one(nonce))
    assert rec.path == "/v1beta/models/gemini-embedding-001:embedContent"
    assert rec.body == {"content": {"parts": [{"text": f"hello {nonce}"}]}, "outputDimensionality": 8}
    assert _floats(one.data[0]) == pytest.approx(embedding_for(f"hello {nonce}")[:8], rel=1e-6)

    texts = [f"a {nonce}", f"b {nonce}", f"c {nonce}"]
    many = client.embeddings.create(model="gemini-embed", input=texts, encoding_format="float")
    rec = _accepted(upstream.wait_for(nonce, path="/v1beta/models/gemini-embedding-001:batchEmbedContents")[0])
    assert [r["model"] for r in rec.body["requests"]] == ["models/gemini-embedding-001"] * 3
    assert [d.index for d in many.data] == [0, 1, 2]
    for item, text in zip(many.data, texts, strict=True):
        assert _floats(item) == pytest.approx(embedding_for(text), rel=1e-6)
    assert many.usage.prompt_tokens > 0


# ---------------------------------------------------------------------------
# Vertex AI
# ---------------------------------------------------------------------------


def test_vertex_with_a_static_bearer_token(client, upstream, nonce):
    r = client.chat.completions.create(model="vertex-static", messages=[{"role": "user", "content": f"hi {nonce}"}])
    rec = _accepted(upstream.one(nonce))
    assert rec.path == f"{VERTEX_PATH}/gemini-2.5-pro:generateContent"
    assert rec.headers["authorization"] == f"Bearer {VERTEX_TOKEN}"
    assert "x-goog-api-key" not in rec.headers
    assert r.choices[0].message.content.startswith("Hello from Gemini")


def test_vertex_with_a_service_account(client, upstream, nonce):
    before = len(upstream.matching("assertion=", path="/token"))
    r = client.chat.completions.create(model="vertex-sa", messages=[{"role": "user", "content": f"first {nonce}"}])
    got = accumulate(
        list(client.chat.completions.create(model="vertex-sa", messages=[{"role": "user", "content": f"second {nonce}"}], stream=True))
    )
    one = client.embeddings.create(model="vertex-sa-embed", input=[f"x {nonce}", f"y {nonce}"])
    calls = upstream.wait_for(nonce, count=3)
    exchanges = upstream.matching("assertion=", path="/token")[before:]
    assert r.choices[0].message.content.startswith("Hello from Gemini")
    assert got["finish_reasons"] == ["stop"]
    assert len(one.data) == 2
    if before == 0:
        assert len(exchanges) == 1, "the access token is fetched once and then reused"
    assert all(e.response.get("status") == 200 for e in exchanges), [e.response for e in exchanges]
    token = upstream.issued_tokens[-1]
    for rec in calls:
        _accepted(rec)
        assert rec.headers["authorization"] == f"Bearer {token}"
        assert rec.path.startswith(f"{VERTEX_PATH}/gemini-")
    batch = next(c for c in calls if c.path.endswith(":batchEmbedContents"))
    assert {q["model"] for q in batch.body["requests"]} == {"projects/acme/locations/us-central1/publishers/google/models/gemini-embedding-001"}


# ---------------------------------------------------------------------------
# the mock itself rejects what Gemini rejects (no gateway involved)
# ---------------------------------------------------------------------------


def _user(text: str = "hi") -> dict:
    return {"role": "user", "parts": [{"text": text}]}


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"contents": []}, "contents is not specified"),
        ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "valid role"),
        ({"contents": [_user("")]}, "empty text"),
        ({"contents": [{"role": "user", "parts": [{"text": "a", "inlineData": {"mimeType": "image/png", "data": "AA=="}}]}]}, "exactly one"),
        ({"contents": [_user(), {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]}, "function call turn"),
        (
            {
                "contents": [
                    _user(),
                    {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
                    {"role": "user", "parts": [{"functionResponse": {"name": "g", "response": {}}}]},
                ]
            },
            "function call turn",
        ),
        ({"contents": [_user()], "generationConfig": {"max_tokens": 5}}, "Unknown name"),
        ({"contents": [_user()], "generationConfig": {"maxOutputTokens": "5"}}, "Invalid value"),
        ({"contents": [_user()], "messages": []}, "Unknown name"),
        (
            {
                "contents": [_user()],
                "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}}]}],
            },
            "additionalProperties",
        ),
        ({"contents": [_user()], "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "object", "properties": {}}}]}]}, "non-empty"),
    ],
)
def test_the_mock_rejects_what_gemini_rejects(body, complaint):
    from upstream_gemini import validate_gemini

    problem = validate_gemini(body)
    assert problem is not None and complaint in problem, problem


def test_the_mock_token_endpoint_refuses_a_forged_assertion(upstream):
    forged = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0." + "A" * 342
    r = httpx.post(
        f"{upstream.url}/token",
        content=f"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={forged}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
