"""The OpenAI-compatible mock upstream: ``POST /v1/chat/completions`` (JSON and SSE),
``POST /v1/embeddings``, ``GET /v1/models`` and ``POST /v1/responses`` (served by
``upstream_responses.py``), with the scenarios ``upstreams.py`` lists."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from upstream_responses import serve as serve_responses
from upstreams import (
    DROP_CHUNKS,
    HANG_SECONDS,
    OPENAI_PROMPT_TOKENS,
    SCENARIOS,
    SLOW_CHUNKS,
    SLOW_INTERVAL,
    TOOL_INPUT,
    TOOL_INPUTS_PARALLEL,
    MockUpstream,
    Recorded,
    _Handler,
    _oai_error,
    content_text,
    default_words,
    embedding_for,
    last_user_text,
    pick_scenario,
    split_fragments,
    tool_followup_words,
    words_of,
)


class OpenAIUpstream(MockUpstream):
    name = "openai"
    models = ("gpt-4o-mini", "text-embedding-3-small") + SCENARIOS

    def handle(self, h: _Handler, rec: Recorded) -> None:
        auth = rec.headers.get("authorization", "")
        if not (auth.startswith("Bearer ") and auth[len("Bearer ") :] in self.api_keys):
            rec.response["status"] = 401
            h.send_json(
                401,
                _oai_error(f"Incorrect API key provided: {auth[:12]!r}.", "invalid_request_error", "invalid_api_key"),
            )
            return
        path = rec.path.split("?")[0]
        if rec.method == "GET" and path == "/v1/models":
            h.send_json(
                200,
                {
                    "object": "list",
                    "data": [{"id": m, "object": "model", "created": 1700000000, "owned_by": "mock"} for m in self.models],
                },
            )
            return
        if rec.method == "POST" and path == "/v1/chat/completions":
            self._chat(h, rec)
            return
        if rec.method == "POST" and path == "/v1/embeddings":
            self._embeddings(h, rec)
            return
        if rec.method == "POST" and path == "/v1/responses":
            serve_responses(self, h, rec)
            return
        rec.response["status"] = 404
        h.send_json(404, _oai_error(f"Invalid URL ({rec.method} {rec.path})", "invalid_request_error"))

    # -- chat ---------------------------------------------------------------
    def _chat(self, h: _Handler, rec: Recorded) -> None:
        body = rec.body
        if not isinstance(body, dict):
            rec.response["status"] = 400
            h.send_json(400, _oai_error("We could not parse the JSON body of your request.", "invalid_request_error"))
            return
        for req in ("model", "messages"):
            if req not in body:
                rec.response["status"] = 400
                h.send_json(
                    400,
                    _oai_error(
                        f"Missing required parameter: '{req}'.", "invalid_request_error", "missing_required_parameter", req
                    ),
                )
                return
        model = body["model"]
        messages = body["messages"]
        picked = pick_scenario(model, messages)
        scenario = self.resolve_once(picked, messages)
        retry_after = "1" if picked.endswith("-once") else "7"
        rec.scenario = scenario
        stream = bool(body.get("stream"))
        include_usage = stream and bool((body.get("stream_options") or {}).get("include_usage"))

        if scenario == "hang":
            time.sleep(HANG_SECONDS)
        if scenario == "server-error":
            rec.response["status"] = 500
            h.send_json(
                500,
                _oai_error("The server had an error while processing your request. Sorry about that!", "server_error"),
            )
            return
        if scenario == "bad-request":
            rec.response["status"] = 400
            h.send_json(
                400,
                _oai_error(
                    "Invalid value for 'temperature': must be between 0 and 2 (mock bad-request scenario).",
                    "invalid_request_error",
                    "invalid_value",
                    "temperature",
                ),
            )
            return
        if scenario == "context-length":
            rec.response["status"] = 400
            h.send_json(
                400,
                _oai_error(
                    "This model's maximum context length is 16385 tokens. However, your messages resulted in "
                    "20112 tokens. Please reduce the length of the messages.",
                    "invalid_request_error",
                    "context_length_exceeded",
                    "messages",
                ),
            )
            return
        if scenario == "rate-limited":
            rec.response["status"] = 429
            h.send_json(
                429,
                _oai_error(
                    f"Rate limit reached for {model} in organization org-mock on requests per min (RPM): "
                    f"Limit 3, Used 3, Requested 1. Please try again in {retry_after}s.",
                    "requests",
                    "rate_limit_exceeded",
                ),
                headers={
                    "retry-after": retry_after,
                    "x-ratelimit-limit-requests": "3",
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": "7s",
                },
            )
            return

        tool_calls: list[dict] = []
        answered = bool(messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool")
        if scenario in ("tool", "parallel-tools") and not answered:
            tools = body.get("tools") or []
            name = "get_weather"
            if tools and isinstance(tools[0], dict):
                name = tools[0].get("function", {}).get("name", name)
            inputs = TOOL_INPUTS_PARALLEL if scenario == "parallel-tools" else [TOOL_INPUT]
            tool_calls = [
                {
                    "id": "call_" + uuid.uuid4().hex[:24],
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(x)},
                }
                for x in inputs
            ]
            words: list[str] = []
            finish = "tool_calls"
        elif scenario in ("tool", "parallel-tools"):
            words = tool_followup_words(content_text(messages[-1].get("content")))
            finish = "stop"
        elif scenario == "slow-stream":
            words = list(SLOW_CHUNKS)
            finish = "stop"
        elif scenario in ("drop-mid-stream", "stall-mid-stream"):
            words = list(DROP_CHUNKS) + ["that ", "comes ", "late"]
            finish = "stop"
        elif scenario == "echo-split":
            said = re.sub(r"\s*scenario:echo-split", "", last_user_text(messages))
            words = split_fragments(said, 5)
            finish = "stop"
        elif scenario == "json-valid" or (picked == "json-invalid-once" and scenario == "default"):
            words = ['{"answer": ', '"ok"}']
            finish = "stop"
        elif scenario in ("json-invalid", "json-invalid-once"):
            words = words_of("Sure! Here is your answer: ok")
            finish = "stop"
        else:
            words = default_words("Hello from the OpenAI upstream:", last_user_text(messages))
            finish = "stop"
            limit = body.get("max_completion_tokens") or body.get("max_tokens")
            if isinstance(limit, int) and 0 < limit < len(words):
                words = words[:limit]
                finish = "length"

        completion_tokens = len(words) if not tool_calls else 12 * len(tool_calls)
        usage = {
            "prompt_tokens": OPENAI_PROMPT_TOKENS,
            "completion_tokens": completion_tokens,
            "total_tokens": OPENAI_PROMPT_TOKENS + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        rec.response.update(status=200, usage=usage, finish_reason=finish, tool_calls=tool_calls, chunks=[], chunk_times=[])
        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())

        if not stream:
            if scenario == "drop-mid-stream":
                rec.response["dropped"] = True
                h.drop()
            text = "".join(words)
            rec.response["text"] = text
            message: dict[str, Any] = {
                "role": "assistant",
                "content": None if tool_calls else text,
                "refusal": None,
                "annotations": [],
            }
            if tool_calls:
                message["tool_calls"] = tool_calls
            h.send_json(
                200,
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                    "usage": usage,
                    "service_tier": "default",
                    "system_fingerprint": "fp_mock",
                },
                headers={"x-request-id": "req_" + uuid.uuid4().hex[:16]},
            )
            return

        def frame(
            delta: dict | None, finish_reason: str | None = None, *, usage_obj: Any = None, no_choices: bool = False
        ) -> bytes:
            chunk: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": "fp_mock",
                "choices": [] if no_choices else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                chunk["usage"] = usage_obj
            return b"data: " + json.dumps(chunk).encode() + b"\n\n"

        h.start_sse(headers={"x-request-id": "req_" + uuid.uuid4().hex[:16]})
        if tool_calls:
            h.send_chunk(frame({"role": "assistant", "content": None, "refusal": None}))
            for index, tc in enumerate(tool_calls):
                first = {
                    "index": index,
                    "id": tc["id"],
                    "type": "function",
                    "function": {"name": tc["function"]["name"], "arguments": ""},
                }
                h.send_chunk(frame({"tool_calls": [first]}))
                for frag in split_fragments(tc["function"]["arguments"]):
                    h.send_chunk(frame({"tool_calls": [{"index": index, "function": {"arguments": frag}}]}))
                    rec.response["chunks"].append(frag)
                    rec.response["chunk_times"].append(time.monotonic())
        else:
            h.send_chunk(frame({"role": "assistant", "content": "", "refusal": None}))
            for i, word in enumerate(words):
                if scenario == "slow-stream" and i > 0:
                    time.sleep(SLOW_INTERVAL)
                if scenario == "stall-mid-stream" and i == len(DROP_CHUNKS):
                    rec.response["stalled_at"] = time.monotonic()
                    time.sleep(HANG_SECONDS)
                if scenario == "drop-mid-stream" and i == len(DROP_CHUNKS):
                    rec.response["text"] = "".join(rec.response["chunks"])
                    rec.response["dropped"] = True
                    h.drop()
                h.send_chunk(frame({"content": word}))
                rec.response["chunks"].append(word)
                rec.response["chunk_times"].append(time.monotonic())
        rec.response["text"] = "" if tool_calls else "".join(rec.response["chunks"])
        h.send_chunk(frame({}, finish))
        if include_usage:
            h.send_chunk(frame(None, usage_obj=usage, no_choices=True))
        h.send_chunk(b"data: [DONE]\n\n")
        h.end_chunks()

    # -- embeddings -----------------------------------------------------------
    def _embeddings(self, h: _Handler, rec: Recorded) -> None:
        body = rec.body
        if not isinstance(body, dict) or "input" not in body or "model" not in body:
            rec.response["status"] = 400
            h.send_json(400, _oai_error("Missing required parameter: 'input'.", "invalid_request_error", None, "input"))
            return
        inp = body["input"]
        inputs = [inp] if isinstance(inp, str) else list(inp)
        if body.get("model") == "rate-limited":
            rec.response["status"] = 429
            h.send_json(429, _oai_error("Rate limit reached.", "requests", "rate_limit_exceeded"), headers={"retry-after": "7"})
            return
        # Like many OpenAI-compatible servers: ignores encoding_format, always floats.
        vectors = [embedding_for(json.dumps(x)) for x in inputs]
        tokens = sum(len(str(x).split()) for x in inputs)
        rec.response.update(status=200, embeddings=vectors, usage={"prompt_tokens": tokens, "total_tokens": tokens})
        h.send_json(
            200,
            {
                "object": "list",
                "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )
