"""The Anthropic Messages mock upstream: ``POST /v1/messages`` (JSON and SSE with the real
event sequence), validating requests the way the real API does, with the scenarios
``upstreams.py`` lists."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from upstreams import (
    ANTHROPIC_CACHE_CREATION,
    ANTHROPIC_CACHE_READ,
    ANTHROPIC_INPUT_TOKENS,
    DROP_CHUNKS,
    HANG_SECONDS,
    SLOW_CHUNKS,
    SLOW_INTERVAL,
    TOOL_INPUT,
    TOOL_INPUTS_PARALLEL,
    MockUpstream,
    Recorded,
    _Handler,
    content_text,
    default_words,
    last_user_text,
    pick_scenario,
    split_fragments,
    tool_followup_words,
)


def _ant_error(type_: str, message: str) -> dict:
    return {"type": "error", "error": {"type": type_, "message": message}}


ANTHROPIC_TOP_LEVEL = {
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "container",
    "mcp_servers",
    "context_management",
}
ANTHROPIC_BLOCK_TYPES = {
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "search_result",
}


def validate_anthropic(body: Any) -> str | None:
    """Return an error message like the real API would, or None if valid."""
    if not isinstance(body, dict):
        return "There was an error parsing the body of your request."
    for key in body:
        if key not in ANTHROPIC_TOP_LEVEL:
            return f"{key}: Extra inputs are not permitted"
    for key in ("model", "messages", "max_tokens"):
        if key not in body:
            return f"{key}: Field required"
    if not isinstance(body["max_tokens"], int) or isinstance(body["max_tokens"], bool) or body["max_tokens"] < 1:
        return "max_tokens: Input should be a valid integer greater than or equal to 1"
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        if not isinstance(system, list) or not all(
            isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str) for b in system
        ):
            return "system: Input should be a valid string or a list of text blocks"
    msgs = body["messages"]
    if not isinstance(msgs, list) or not msgs:
        return "messages: at least one message is required"
    prev_tool_use_ids: set[str] = set()
    for i, msg in enumerate(msgs):
        if not isinstance(msg, dict):
            return f"messages.{i}: Input should be a valid dictionary"
        role = msg.get("role")
        if role == "system":
            return (
                f'messages.{i}.role: Unexpected role "system". The Messages API accepts a top-level `system` '
                'parameter, not "system" as an input message role.'
            )
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        extra = set(msg) - {"role", "content"}
        if extra:
            return f"messages.{i}.{sorted(extra)[0]}: Extra inputs are not permitted"
        content = msg.get("content")
        tool_use_ids: set[str] = set()
        if prev_tool_use_ids:
            answered = {
                b.get("tool_use_id")
                for b in (content if isinstance(content, list) else [])
                if isinstance(b, dict) and b.get("type") == "tool_result"
            }
            missing = sorted(prev_tool_use_ids - answered)
            if role != "user" or missing:
                return (
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                    f"{', '.join(missing or sorted(prev_tool_use_ids))}. Each `tool_use` block must have a "
                    "corresponding `tool_result` block in the next message."
                )
        if isinstance(content, str):
            pass
        elif isinstance(content, list):
            if not content:
                return f"messages.{i}: all messages must have non-empty content"
            for j, block in enumerate(content):
                where = f"messages.{i}.content.{j}"
                if not isinstance(block, dict) or block.get("type") not in ANTHROPIC_BLOCK_TYPES:
                    return f"{where}: Input tag {block.get('type') if isinstance(block, dict) else block!r} found using 'type' does not match any of the expected tags"
                t = block["type"]
                if t == "text" and not isinstance(block.get("text"), str):
                    return f"{where}.text: Field required"
                if t == "image":
                    src = block.get("source")
                    if not isinstance(src, dict):
                        return f"{where}.source: Field required"
                    if src.get("type") == "base64":
                        if src.get("media_type") not in ("image/jpeg", "image/png", "image/gif", "image/webp"):
                            return f"{where}.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
                        if not isinstance(src.get("data"), str) or src["data"].startswith("data:"):
                            return f"{where}.source.base64.data: invalid base64 data"
                    elif src.get("type") == "url":
                        if not isinstance(src.get("url"), str):
                            return f"{where}.source.url.url: Field required"
                    else:
                        return f"{where}.source: Input tag {src.get('type')!r} found using 'type' does not match any of the expected tags"
                if t == "tool_use":
                    if role != "assistant":
                        return f"{where}: tool_use blocks are only allowed in assistant messages"
                    if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                        return f"{where}: tool_use requires id and name"
                    if not isinstance(block.get("input"), dict):
                        return f"{where}.input: Input should be a valid dictionary"
                    tool_use_ids.add(block["id"])
                if t == "tool_result":
                    if role != "user":
                        return f"{where}: tool_result blocks are only allowed in user messages"
                    if block.get("tool_use_id") not in prev_tool_use_ids:
                        return (
                            f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {block.get('tool_use_id')}. "
                            "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                        )
        else:
            return f"messages.{i}.content: Input should be a valid string or list"
        prev_tool_use_ids = tool_use_ids if role == "assistant" else set()
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        for k, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                return f"tools.{k}.name: Field required"
            if "type" not in tool or tool.get("type") == "custom":
                if not isinstance(tool.get("input_schema"), dict):
                    return f"tools.{k}.custom.input_schema: Field required"
                extra = set(tool) - {"name", "description", "input_schema", "cache_control", "type"}
                if extra:
                    return f"tools.{k}.custom.{sorted(extra)[0]}: Extra inputs are not permitted"
    tc = body.get("tool_choice")
    if tc is not None:
        if not isinstance(tc, dict) or tc.get("type") not in ("auto", "any", "tool", "none"):
            return (
                "tool_choice: Input tag found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
            )
        if tc["type"] == "tool" and not isinstance(tc.get("name"), str):
            return "tool_choice.tool.name: Field required"
    return None


class AnthropicUpstream(MockUpstream):
    name = "anthropic"

    def __init__(self, api_keys: set[str] | list[str] | tuple[str, ...]) -> None:
        super().__init__(api_keys)
        self.signatures: set[str] = set()  # thinking signatures issued, as the real API can verify them

    def _count_tokens(self, h: _Handler, rec: Recorded) -> None:
        """A count the gateway could not have guessed: 1000 plus one per message character."""
        body = rec.body if isinstance(rec.body, dict) else {}
        if "max_tokens" in body:
            rec.response["status"] = 400
            h.send_json(400, _ant_error("invalid_request_error", "max_tokens: Extra inputs are not permitted"))
            return
        tokens = 1000 + len(json.dumps(body.get("messages", [])))
        rec.response.update(status=200, input_tokens=tokens)
        h.send_json(200, {"input_tokens": tokens})

    def _check_thinking(self, body: Any) -> str | None:
        return _thinking_problem(body, self.signatures)

    def handle(self, h: _Handler, rec: Recorded) -> None:
        key = rec.headers.get("x-api-key")
        auth = rec.headers.get("authorization", "")
        if auth.startswith("Bearer ") and key is None:  # newer SDKs authenticate this way
            key = auth[len("Bearer ") :]
        if key not in self.api_keys:
            rec.response["status"] = 401
            h.send_json(401, _ant_error("authentication_error", "invalid x-api-key"), headers={"request-id": "req_mock"})
            return
        path = rec.path.split("?")[0]
        if rec.method == "POST" and path == "/v1/messages/count_tokens":
            self._count_tokens(h, rec)
            return
        if not (rec.method == "POST" and path == "/v1/messages"):
            rec.response["status"] = 404
            h.send_json(404, _ant_error("not_found_error", f"Not found: {rec.method} {rec.path}"))
            return
        if not rec.headers.get("anthropic-version"):
            rec.response["status"] = 400
            h.send_json(400, _ant_error("invalid_request_error", "anthropic-version: header is required"))
            return
        problem = validate_anthropic(rec.body)
        if problem is not None:
            rec.response["status"] = 400
            rec.response["error"] = problem
            h.send_json(400, _ant_error("invalid_request_error", problem), headers={"request-id": "req_mock"})
            return
        self._messages(h, rec)

    def _messages(self, h: _Handler, rec: Recorded) -> None:
        body = rec.body
        model = body["model"]
        messages = body["messages"]
        picked = pick_scenario(model, messages)
        scenario = self.resolve_once(picked, messages)
        retry_after = "1" if picked.endswith("-once") else "7"
        rec.scenario = scenario
        stream = bool(body.get("stream"))
        msg_id = "msg_" + uuid.uuid4().hex[:24]
        headers = {"request-id": "req_" + uuid.uuid4().hex[:16]}

        if scenario == "hang":
            time.sleep(HANG_SECONDS)
        if scenario == "server-error":
            rec.response["status"] = 500
            h.send_json(500, _ant_error("api_error", "Internal server error"), headers=headers)
            return
        if scenario == "overloaded":
            rec.response["status"] = 529
            h.send_json(529, _ant_error("overloaded_error", "Overloaded"), headers=headers)
            return
        if scenario == "thinking":
            problem = self._check_thinking(body)
            if problem is not None:
                rec.response["status"] = 400
                rec.response["error"] = problem
                h.send_json(400, _ant_error("invalid_request_error", problem), headers=headers)
                return
        if scenario == "bad-request":
            rec.response["status"] = 400
            h.send_json(
                400,
                _ant_error("invalid_request_error", "prompt is too long: 215000 tokens > 200000 maximum"),
                headers=headers,
            )
            return
        if scenario == "rate-limited":
            rec.response["status"] = 429
            h.send_json(
                429,
                _ant_error(
                    "rate_limit_error",
                    "This request would exceed the rate limit for your organization of 50 requests per minute. "
                    "For details, refer to: https://docs.claude.com/en/api/rate-limits.",
                ),
                headers={**headers, "retry-after": retry_after, "anthropic-ratelimit-requests-remaining": "0"},
            )
            return

        last = messages[-1]
        last_results = [
            b
            for b in (last.get("content") if isinstance(last.get("content"), list) else [])
            if isinstance(b, dict) and b.get("type") == "tool_result"
        ]
        # content blocks to produce: list of ("text", [pieces]) / ("tool_use", dict)
        blocks: list[tuple[str, Any]] = []
        stop_reason = "end_turn"
        stop_sequence = None
        if scenario == "thinking":
            signature = "sig-" + uuid.uuid4().hex
            self.signatures.add(signature)
            blocks.append(("thinking", ("Let me think about the weather.", signature)))
            rec.response["signature"] = signature
        if scenario in ("tool", "parallel-tools", "thinking") and not last_results:
            tools = body.get("tools") or []
            name = "get_weather"
            tc = body.get("tool_choice") or {}
            if tc.get("type") == "tool":
                name = tc["name"]
            elif tools:
                name = tools[0]["name"]
            blocks.append(("text", ["I'll ", "look ", "up ", "the ", "weather."]))
            for inp in TOOL_INPUTS_PARALLEL if scenario == "parallel-tools" else [TOOL_INPUT]:
                blocks.append(("tool_use", {"id": "toolu_" + uuid.uuid4().hex[:22], "name": name, "input": dict(inp)}))
            stop_reason = "tool_use"
        elif scenario in ("tool", "parallel-tools", "thinking"):
            texts = []
            for res in last_results:
                rc = res.get("content")
                texts.append(rc if isinstance(rc, str) else content_text(rc))
            blocks.append(("text", tool_followup_words(" | ".join(texts))))
        elif scenario == "slow-stream":
            blocks.append(("text", list(SLOW_CHUNKS)))
        elif scenario in ("drop-mid-stream", "error-after-200", "stall-mid-stream"):
            blocks.append(("text", list(DROP_CHUNKS) + ["that ", "comes ", "late"]))
        else:
            words = default_words("Hello from the Anthropic upstream:", last_user_text(messages))
            if body["max_tokens"] < len(words):
                words = words[: body["max_tokens"]]
                stop_reason = "max_tokens"
            elif body.get("stop_sequences"):
                # pretend the model emitted the first stop sequence right after the text
                stop_reason = "stop_sequence"
                stop_sequence = body["stop_sequences"][0]
            blocks.append(("text", words))

        output_tokens = sum(len(b[1]) if b[0] == "text" else 30 for b in blocks)
        rec.response["thinking_blocks"] = [b[1] for b in blocks if b[0] == "thinking"]
        usage_full = {
            "input_tokens": ANTHROPIC_INPUT_TOKENS,
            "cache_creation_input_tokens": ANTHROPIC_CACHE_CREATION,
            "cache_read_input_tokens": ANTHROPIC_CACHE_READ,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }
        rec.response.update(
            status=200,
            usage=usage_full,
            stop_reason=stop_reason,
            stop_sequence=stop_sequence,
            tool_uses=[b[1] for b in blocks if b[0] == "tool_use"],
            chunks=[],
            chunk_times=[],
        )

        if not stream:
            if scenario == "drop-mid-stream":
                rec.response["dropped"] = True
                h.drop()
            if scenario == "error-after-200":
                rec.response["status"] = 529
                h.send_json(529, _ant_error("overloaded_error", "Overloaded"), headers=headers)
                return
            content = []
            for kind, val in blocks:
                if kind == "text":
                    content.append({"type": "text", "text": "".join(val)})
                elif kind == "thinking":
                    content.append({"type": "thinking", "thinking": val[0], "signature": val[1]})
                else:
                    content.append({"type": "tool_use", **val})
            rec.response["text"] = "".join("".join(v) for k, v in blocks if k == "text")
            h.send_json(
                200,
                {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop_reason,
                    "stop_sequence": stop_sequence,
                    "usage": usage_full,
                },
                headers=headers,
            )
            return

        def event(name: str, data: dict) -> None:
            h.send_chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

        h.start_sse(headers=headers)
        event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {**usage_full, "output_tokens": 1},
                },
            },
        )
        sent = 0
        for index, (kind, val) in enumerate(blocks):
            if kind == "thinking":
                start = {"type": "thinking", "thinking": "", "signature": ""}
                event("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
                for delta in ({"type": "thinking_delta", "thinking": val[0]}, {"type": "signature_delta", "signature": val[1]}):
                    event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            elif kind == "text":
                event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                )
                if index == 0:
                    event("ping", {"type": "ping"})
                for piece in val:
                    if scenario == "slow-stream" and sent > 0:
                        time.sleep(SLOW_INTERVAL)
                    if scenario == "stall-mid-stream" and sent == len(DROP_CHUNKS):
                        rec.response["stalled_at"] = time.monotonic()
                        time.sleep(HANG_SECONDS)
                    if scenario in ("drop-mid-stream", "error-after-200") and sent == len(DROP_CHUNKS):
                        rec.response["text"] = "".join(rec.response["chunks"])
                        if scenario == "drop-mid-stream":
                            rec.response["dropped"] = True
                            h.drop()
                        error = _ant_error("overloaded_error", "Overloaded")
                        rec.response["error_event"] = error
                        event("error", error)
                        h.end_chunks()
                        return
                    event(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}},
                    )
                    rec.response["chunks"].append(piece)
                    rec.response["chunk_times"].append(time.monotonic())
                    sent += 1
            else:
                event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "tool_use", "id": val["id"], "name": val["name"], "input": {}},
                    },
                )
                if index == 0:
                    event("ping", {"type": "ping"})
                frags = [""] + split_fragments(json.dumps(val["input"]))
                for frag in frags:
                    event(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": frag},
                        },
                    )
                rec.response.setdefault("tool_fragments", []).append(frags)
            event("content_block_stop", {"type": "content_block_stop", "index": index})
        rec.response["text"] = "".join(rec.response["chunks"])
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": {"output_tokens": output_tokens},
            },
        )
        event("message_stop", {"type": "message_stop"})
        h.end_chunks()


def _thinking_problem(body: Any, signatures: set[str]) -> str | None:
    """What the real API says when thinking is on and an earlier tool-calling turn lost its
    thinking block, or carries a signature it never issued."""
    if not isinstance(body.get("thinking"), dict) or body["thinking"].get("type") != "enabled":
        return None
    for i, msg in enumerate(body["messages"]):
        content = msg.get("content")
        if msg.get("role") != "assistant" or not isinstance(content, list):
            continue
        if any(b.get("type") == "tool_use" for b in content) and content[0].get("type") not in ("thinking", "redacted_thinking"):
            return (
                f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                f"`{content[0].get('type')}`. When `thinking` is enabled, a final `assistant` message must start "
                "with a thinking block."
            )
        for j, b in enumerate(content):
            if b.get("type") == "thinking" and b.get("signature") not in signatures:
                return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
    return None
