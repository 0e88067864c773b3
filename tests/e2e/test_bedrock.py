"""The Bedrock provider end to end: the official openai SDK against the gateway, the gateway
against a mock Bedrock Runtime (``upstream_bedrock.py``) that verifies SigV4 signatures,
speaks the binary event stream and validates requests as the Converse API does.

This module starts its own mock and its own gateway (with ``AWS_*`` variables in its
environment), so it shares no fixture state with the rest of the suite.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote

import httpx
import openai
import pytest
import upstream_bedrock as br
from gateway import Gateway
from helpers import accumulate, assert_openai_error, parse_json, sse_data

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["location"],
        },
    },
}
DEFAULT_MAX_TOKENS = 512
# One transparent pixel.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def _config(url: str) -> str:
    timeouts = "{ connect: 2s, first_byte: 20s, idle: 10s }"

    def provider(name: str, extra: str = "") -> str:
        return f'  {name}:\n    kind: bedrock\n    base_url: "{url}"\n    timeouts: {timeouts}\n{extra}'

    static = (
        "    aws:\n"
        '      region: "${BR_E2E_REGION}"\n'
        '      access_key_id: "${BR_E2E_KEY_ID}"\n'
        '      secret_access_key: "${BR_E2E_SECRET}"\n'
        '      session_token: "${BR_E2E_TOKEN}"\n'
    )
    bad_secret = f'    aws: {{ region: us-east-1, access_key_id: "{br.ACCESS_KEY_ID}", secret_access_key: "not-the-secret" }}\n'
    providers = "".join(
        [
            provider("br_env"),
            provider("br_static", static),
            provider("br_key", '    api_key: "${BR_E2E_API_KEY}"\n'),
            provider("br_bad_secret", bad_secret),
            provider("br_throttled_http"),
            provider("br_throttled_frame"),
            provider("br_throttled_mid"),
        ]
    )
    return f"""\
server:
  listen: "127.0.0.1:__PORT__"
records:
  log: true
resilience:
  retry: {{ max_retry_wait: 1s }}
providers:
{providers}models:
  claude-bedrock:
    provider: br_env
    upstream: "{br.MODEL_ID}"
    default_max_tokens: {DEFAULT_MAX_TOKENS}
  claude-profile:
    provider: br_env
    upstream: "{br.PROFILE_ARN}"
  claude-static:
    provider: br_static
    upstream: "{br.MODEL_ID}"
  claude-key:
    provider: br_key
    upstream: "{br.MODEL_ID}"
  claude-bad-secret:
    provider: br_bad_secret
    upstream: "{br.MODEL_ID}"
  throttled-http:
    provider: br_throttled_http
    upstream: "{br.THROTTLED_HTTP}"
  throttled-frame:
    provider: br_throttled_frame
    upstream: "{br.THROTTLED_FRAME}"
  throttled-mid:
    provider: br_throttled_mid
    upstream: "{br.THROTTLED_MID_STREAM}"
routes:
  bedrock-after-http-throttle:
    targets: [throttled-http, claude-bedrock]
  bedrock-after-frame-throttle:
    targets: [throttled-frame, claude-bedrock]
"""


@pytest.fixture(scope="module")
def bedrock():
    upstream = br.BedrockUpstream().start()
    try:
        yield upstream
    finally:
        upstream.stop()


@pytest.fixture(scope="module")
def gw(bedrock, workdir):
    env = {
        "AWS_ACCESS_KEY_ID": br.ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": br.SECRET_ACCESS_KEY,
        "AWS_SESSION_TOKEN": "",
        "AWS_BEARER_TOKEN_BEDROCK": "",
        "AWS_REGION": br.REGION,
        "BR_E2E_REGION": br.REGION,
        "BR_E2E_KEY_ID": br.TEMP_ACCESS_KEY_ID,
        "BR_E2E_SECRET": br.TEMP_SECRET_ACCESS_KEY,
        "BR_E2E_TOKEN": br.SESSION_TOKEN,
        "BR_E2E_API_KEY": br.API_KEY,
    }
    g = Gateway("bedrock", _config(bedrock.url), workdir, env=env)
    g.start()
    try:
        yield g
    finally:
        g.stop()


@pytest.fixture(scope="module")
def sdk(gw):
    c = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="anything", max_retries=0, timeout=20)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def nonce() -> str:
    return "n" + uuid.uuid4().hex[:12]


def _one(bedrock: br.BedrockUpstream, nonce: str, status: int = 200) -> br.Recorded:
    found = [r for r in bedrock.matching(nonce) if r.status == status]
    assert len(found) == 1, f"expected one upstream request answered {status}, got {[(r.path, r.status, r.error) for r in bedrock.matching(nonce)]}"
    return found[0]


# ---------------------------------------------------------------------------
# SigV4, non-streaming and streaming
# ---------------------------------------------------------------------------


def test_non_streaming_chat_is_signed_and_translated(sdk, bedrock, nonce):
    r = sdk.chat.completions.create(
        model="claude-bedrock",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"hello there {nonce}"}],
        temperature=0.3,
        stop=["END"],
    )
    assert r.choices[0].message.content.startswith("Hello from Bedrock naïve café ☕")
    assert nonce in r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"
    assert r.model == br.MODEL_ID
    assert r.usage.prompt_tokens == br.INPUT_TOKENS + br.CACHE_READ_TOKENS
    assert r.usage.prompt_tokens_details.cached_tokens == br.CACHE_READ_TOKENS

    rec = _one(bedrock, nonce)
    assert rec.auth == "sigv4"
    # Encoded once on the wire; the mock verified the double-encoded signature.
    assert rec.path == "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    assert {"host", "x-amz-date", "content-type"} <= set(rec.signed_headers)
    assert rec.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={br.ACCESS_KEY_ID}/")
    assert "x-amz-security-token" not in rec.headers
    assert rec.body["system"] == [{"text": "Be brief."}]
    assert rec.body["inferenceConfig"] == {"maxTokens": DEFAULT_MAX_TOKENS, "temperature": 0.3, "stopSequences": ["END"]}
    assert "model" not in rec.body and "stream" not in rec.body


def test_streaming_chat_decodes_the_event_stream(sdk, bedrock, nonce):
    stream = sdk.chat.completions.create(
        model="claude-bedrock",
        messages=[{"role": "user", "content": f"stream please {nonce}"}],
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=64,
    )
    got = accumulate(list(stream))
    rec = _one(bedrock, nonce)
    assert got["content"] == rec.response["text"]
    assert "naïve café ☕" in got["content"]
    assert got["roles"] == ["assistant"]
    assert got["finish_reasons"] == ["stop"]
    usage = got["usage_chunks"][-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (br.INPUT_TOKENS + br.CACHE_READ_TOKENS, rec.response["usage"]["outputTokens"])
    assert rec.path.endswith("%3A0/converse-stream")
    assert rec.headers["accept"] == "application/vnd.amazon.eventstream"
    assert rec.body["inferenceConfig"]["maxTokens"] == 64


def test_max_tokens_cuts_the_answer_with_finish_length(sdk, bedrock, nonce):
    r = sdk.chat.completions.create(model="claude-bedrock", messages=[{"role": "user", "content": f"long {nonce}"}], max_tokens=3)
    assert r.choices[0].finish_reason == "length"
    assert r.choices[0].message.content == "Hello from Bedrock"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_inference_profile_arn_is_one_encoded_segment(sdk, bedrock, nonce, stream):
    r = sdk.chat.completions.create(model="claude-profile", messages=[{"role": "user", "content": f"arn {nonce}"}], stream=stream)
    text = accumulate(list(r))["content"] if stream else r.choices[0].message.content
    assert nonce in text
    rec = _one(bedrock, nonce)
    assert rec.model_id == br.PROFILE_ARN
    assert rec.path.startswith("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.")
    assert rec.auth == "sigv4"


def test_temporary_credentials_from_the_config_sign_the_session_token(sdk, bedrock, nonce):
    r = sdk.chat.completions.create(model="claude-static", messages=[{"role": "user", "content": f"temp {nonce}"}])
    assert nonce in r.choices[0].message.content
    rec = _one(bedrock, nonce)
    assert rec.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={br.TEMP_ACCESS_KEY_ID}/")
    assert rec.headers["x-amz-security-token"] == br.SESSION_TOKEN
    assert "x-amz-security-token" in rec.signed_headers


def test_a_wrong_secret_is_rejected_by_the_signature_check(sdk, bedrock, nonce):
    with pytest.raises(openai.APIStatusError) as ei:
        sdk.chat.completions.create(model="claude-bad-secret", messages=[{"role": "user", "content": f"bad {nonce}"}])
    assert ei.value.status_code == 502
    assert "not-the-secret" not in str(ei.value.body)
    rejected = bedrock.matching(nonce)
    assert rejected and all(r.status == 403 and r.error == "InvalidSignatureException" for r in rejected)


# ---------------------------------------------------------------------------
# Bedrock API keys
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_bedrock_api_key_is_sent_as_bearer_without_sigv4(sdk, bedrock, nonce, stream):
    r = sdk.chat.completions.create(model="claude-key", messages=[{"role": "user", "content": f"key {nonce}"}], stream=stream)
    text = accumulate(list(r))["content"] if stream else r.choices[0].message.content
    assert nonce in text
    rec = _one(bedrock, nonce)
    assert rec.auth == "bearer"
    assert rec.headers["authorization"] == f"Bearer {br.API_KEY}"
    assert "x-amz-date" not in rec.headers


# ---------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------


def test_streaming_tool_call_round_trip(sdk, bedrock, nonce):
    messages = [{"role": "user", "content": f"What's the weather in Paris? scenario:tool {nonce}"}]
    first = accumulate(list(sdk.chat.completions.create(model="claude-bedrock", messages=messages, tools=[WEATHER_TOOL], stream=True)))
    assert first["finish_reasons"] == ["tool_calls"]
    assert first["content"] == "Let me check."
    assert list(first["tool_calls"]) == [0]
    call = first["tool_calls"][0]
    assert call["type"] == "function" and call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == br.TOOL_INPUT
    upstream_call = _one(bedrock, nonce).response["tool_call"]
    assert call["id"] == upstream_call["toolUseId"]

    messages += [
        {
            "role": "assistant",
            "content": first["content"],
            "tool_calls": [{"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}],
        },
        {"role": "tool", "tool_call_id": call["id"], "content": "18 degrees and sunny"},
    ]
    second = accumulate(list(sdk.chat.completions.create(model="claude-bedrock", messages=messages, tools=[WEATHER_TOOL], stream=True)))
    assert second["content"] == "The tool said: 18 degrees and sunny"
    assert second["finish_reasons"] == ["stop"]

    follow_up = [r for r in bedrock.matching(nonce) if r.status == 200][1].body
    assert [m["role"] for m in follow_up["messages"]] == ["user", "assistant", "user"]
    assert follow_up["messages"][1]["content"] == [
        {"text": "Let me check."},
        {"toolUse": {"toolUseId": call["id"], "name": "get_weather", "input": br.TOOL_INPUT}},
    ]
    assert follow_up["messages"][2]["content"] == [{"toolResult": {"toolUseId": call["id"], "content": [{"text": "18 degrees and sunny"}]}}]
    assert follow_up["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"] == WEATHER_TOOL["function"]["parameters"]


def test_non_streaming_tool_call_with_tool_choice_required(sdk, bedrock, nonce):
    r = sdk.chat.completions.create(
        model="claude-bedrock",
        messages=[{"role": "user", "content": f"weather scenario:tool {nonce}"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert json.loads(choice.message.tool_calls[0].function.arguments) == br.TOOL_INPUT
    assert _one(bedrock, nonce).body["toolConfig"]["toolChoice"] == {"any": {}}


# ---------------------------------------------------------------------------
# Throttling: HTTP 429 and exception frames
# ---------------------------------------------------------------------------


def test_http_throttling_is_a_429_for_the_client(sdk, bedrock, nonce):
    with pytest.raises(openai.RateLimitError) as ei:
        sdk.chat.completions.create(model="throttled-http", messages=[{"role": "user", "content": f"busy {nonce}"}])
    assert br.THROTTLE_MESSAGE in str(ei.value.body)
    assert all(r.error == "ThrottlingException" for r in bedrock.matching(nonce))


def test_http_throttling_falls_back_to_the_next_target(sdk, bedrock, nonce):
    r = sdk.chat.completions.create(model="bedrock-after-http-throttle", messages=[{"role": "user", "content": f"fallback {nonce}"}])
    assert nonce in r.choices[0].message.content
    recs = bedrock.matching(nonce)
    assert recs[0].model_id == br.THROTTLED_HTTP and recs[0].status == 429
    assert recs[-1].model_id == br.MODEL_ID and recs[-1].status == 200


def test_a_throttling_frame_before_the_first_chunk_falls_back(sdk, bedrock, nonce):
    stream = sdk.chat.completions.create(
        model="bedrock-after-frame-throttle", messages=[{"role": "user", "content": f"frame {nonce}"}], stream=True
    )
    got = accumulate(list(stream))
    assert nonce in got["content"] and got["finish_reasons"] == ["stop"]
    models = [r.model_id for r in bedrock.matching(nonce)]
    assert models[0] == br.THROTTLED_FRAME and models[-1] == br.MODEL_ID


def test_a_throttling_frame_mid_stream_ends_the_stream_with_an_error(sdk, gw, bedrock, nonce):
    received = []
    stream = sdk.chat.completions.create(model="throttled-mid", messages=[{"role": "user", "content": f"mid {nonce}"}], stream=True)
    with pytest.raises(openai.APIError) as ei:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert not isinstance(ei.value, openai.APIConnectionError)
    assert "".join(received) == "".join(br.MID_STREAM_TEXT)
    assert br.THROTTLE_MESSAGE in str(ei.value.body)

    raw = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "throttled-mid", "messages": [{"role": "user", "content": f"raw {nonce}"}], "stream": True},
        timeout=20,
    )
    events = sse_data(raw.text)
    assert events[-1] == "[DONE]"
    error = parse_json(events[-2])["error"]
    assert br.THROTTLE_MESSAGE in error["message"] and error["type"]


# ---------------------------------------------------------------------------
# What Bedrock cannot do
# ---------------------------------------------------------------------------


def test_an_unsupported_parameter_is_refused_before_any_upstream_call(sdk, bedrock, nonce):
    with pytest.raises(openai.BadRequestError) as ei:
        sdk.chat.completions.create(model="claude-bedrock", messages=[{"role": "user", "content": f"lp {nonce}"}], logprobs=True)
    assert "logprobs" in str(ei.value.body) and "Bedrock" in str(ei.value.body)
    assert bedrock.matching(nonce) == []


def test_images_go_inline_and_links_are_refused(sdk, gw, bedrock, nonce):
    r = sdk.chat.completions.create(
        model="claude-bedrock",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"describe {nonce}"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            }
        ],
    )
    assert nonce in r.choices[0].message.content
    assert _one(bedrock, nonce).body["messages"][0]["content"][1] == {"image": {"format": "png", "source": {"bytes": PNG}}}

    link = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={
            "model": "claude-bedrock",
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": f"https://example.com/{nonce}.png"}}]}],
        },
        timeout=20,
    )
    err = assert_openai_error(link, 400)
    assert "data: URL" in err["message"]
    assert len(bedrock.matching(nonce)) == 1


def test_embeddings_are_refused_with_a_reason(gw):
    r = httpx.post(f"{gw.url}/v1/embeddings", json={"model": "claude-bedrock", "input": "hi"}, timeout=20)
    err = assert_openai_error(r, 400)
    assert "embeddings" in err["message"]


# ---------------------------------------------------------------------------
# The mock rejects what Bedrock rejects (so a translation bug fails a test)
# ---------------------------------------------------------------------------


def _post_signed(bedrock: br.BedrockUpstream, body: dict, secret: str = br.SECRET_ACCESS_KEY, model: str = br.MODEL_ID) -> httpx.Response:
    url = f"{bedrock.url}/model/{quote(model, safe='-_.~')}/converse"
    data = json.dumps(body).encode()
    headers = br.sign("POST", url, data, br.ACCESS_KEY_ID, secret, {"content-type": "application/json"})
    headers.pop("host")
    return httpx.post(url, content=data, headers=headers, timeout=10)


def _user(text: str) -> dict:
    return {"role": "user", "content": [{"text": text}]}


TOOL_CONFIG = {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}]}
TOOL_USE = {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}]}


@pytest.mark.parametrize(
    "body,needle",
    [
        ({"messages": [_user("hi")], "model": "x"}, "extraneous key [model]"),
        ({"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]}, "must start with a user message"),
        ({"messages": [_user("a"), _user("b")]}, "must alternate"),
        ({"messages": [_user(" ")]}, "is blank"),
        ({"messages": [_user("hi")], "inferenceConfig": {"maxTokens": 0}}, "positive integer"),
        ({"messages": [_user("hi")], "inferenceConfig": {"temperature": 1.5}}, "between 0 and 1"),
        ({"messages": [_user("hi"), TOOL_USE, _user("no result")], "toolConfig": TOOL_CONFIG}, "Expected toolResult"),
        (
            {"messages": [_user("hi"), TOOL_USE, {"role": "user", "content": [{"toolResult": {"toolUseId": "t9", "content": [{"text": "r"}]}}]}], "toolConfig": TOOL_CONFIG},
            "does not match",
        ),
        ({"messages": [_user("hi"), TOOL_USE, {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "r"}]}}]}]}, "toolConfig field must be defined"),
        ({"messages": [{"role": "user", "content": [{"image": {"format": "tiff", "source": {"bytes": PNG}}}]}]}, "image.format"),
        ({"messages": [_user("hi")], "toolConfig": {**TOOL_CONFIG, "toolChoice": {"tool": {"name": "g"}}}}, "not one of the tools"),
    ],
)
def test_the_mock_validates_like_the_converse_api(bedrock, body, needle):
    r = _post_signed(bedrock, body)
    assert r.status_code == 400, r.text
    assert r.headers["x-amzn-errortype"].startswith("ValidationException")
    assert needle in r.json()["message"]


def test_the_mock_checks_signatures_and_frames(bedrock):
    assert _post_signed(bedrock, {"messages": [_user("hi")]}).status_code == 200
    bad = _post_signed(bedrock, {"messages": [_user("hi")]}, secret="wrong")
    assert bad.status_code == 403 and bad.headers["x-amzn-errortype"].startswith("InvalidSignatureException")
    # A colon left unencoded is signed differently from what the mock reconstructs.
    url = f"{bedrock.url}/model/{br.MODEL_ID}/converse"
    data = json.dumps({"messages": [_user("hi")]}).encode()
    headers = br.sign("POST", url.replace(":0/", "%3A0/"), data, br.ACCESS_KEY_ID, br.SECRET_ACCESS_KEY, {})
    headers.pop("host")
    assert httpx.post(url, content=data, headers=headers, timeout=10).status_code == 403

    frames = br.answer_frames(br.plan_answer({"messages": [_user("hi")]}))
    decoded = br.read_frames(b"".join(frames))
    assert [h[":event-type"] for h, _ in decoded][:2] == ["messageStart", "contentBlockDelta"]
    assert decoded[-1][1]["usage"]["inputTokens"] == br.INPUT_TOKENS
