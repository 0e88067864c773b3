"""OpenAI's Responses API (``POST /v1/responses``) for the mock OpenAI upstream of ``upstreams.py``,
whose dispatch hands these requests to :func:`serve`.

It checks requests the way the real API does, so that a gateway passing through something the
real API would reject gets a 400 here too: no unknown top-level parameters, a model, an input
(or a ``previous_response_id`` this upstream issued), well-formed input items (messages with a
known role and content parts of the types that role takes; ``function_call`` items with
``call_id``, ``name`` and string ``arguments``; every ``function_call_output`` answering the
``call_id`` of a function call earlier in the input), tools in the flat function shape (or a
built-in tool type).

It answers JSON or SSE with the real event sequence (``response.created``,
``response.in_progress``, ``response.output_item.added``, ``response.content_part.added``,
``response.output_text.delta``…, ``.done`` events, ``response.function_call_arguments.delta`` /
``.done``, ``response.completed`` or ``response.incomplete``), every event with its
``sequence_number`` from 0, and no ``[DONE]``.  Scenarios come from ``scenario:NAME`` in the last
user text: ``tool`` makes a function call (its output, once given, is quoted in a text answer);
anything else is a text answer that honours ``max_output_tokens`` (one token per word; status
``incomplete`` with reason ``max_output_tokens`` when cut).  ``rec.response`` holds ``status``,
``id``, ``text``, ``output`` and ``usage``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from upstreams import OPENAI_PROMPT_TOKENS, TOOL_INPUT, _oai_error, default_words, split_fragments, tool_followup_words

TOP_LEVEL = {
    "model", "input", "instructions", "tools", "tool_choice", "max_output_tokens", "temperature", "top_p",
    "parallel_tool_calls", "text", "reasoning", "metadata", "user", "stream", "store", "previous_response_id",
    "include", "truncation", "service_tier", "prompt_cache_key", "safety_identifier", "stream_options",
    "background", "max_tool_calls", "top_logprobs", "prompt", "conversation",
}  # fmt: skip
BUILT_IN_TOOLS = {
    "web_search", "web_search_preview", "file_search", "code_interpreter", "computer_use_preview",
    "image_generation", "mcp", "local_shell",
}  # fmt: skip
OTHER_ITEMS = {"reasoning", "item_reference", "web_search_call", "file_search_call", "computer_call", "computer_call_output"}
USER_PARTS = {"input_text", "input_image", "input_file"}
ASSISTANT_PARTS = {"output_text", "refusal"}


class _Invalid(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.body = _oai_error(message, "invalid_request_error", code, param)
        self.status = status


def _item_type(item: dict) -> str | None:
    return item.get("type") or ("message" if "role" in item else None)


def _check_message(item: dict, where: str) -> None:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise _Invalid(f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', 'system', and 'developer'.", f"{where}.role")
    extra = set(item) - {"type", "role", "content", "id", "status"}
    if extra:
        raise _Invalid(f"Unknown parameter: '{where}.{sorted(extra)[0]}'.", f"{where}.{sorted(extra)[0]}", "unknown_parameter")
    content = item.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _Invalid(f"Missing required parameter: '{where}.content'.", f"{where}.content", "missing_required_parameter")
    allowed = ASSISTANT_PARTS if role == "assistant" else USER_PARTS
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            names = ", ".join(f"'{a}'" for a in sorted(allowed))
            raise _Invalid(f"Invalid value: '{kind}'. Supported values are: {names}.", f"{where}.content[{j}].type", "invalid_value")
        if kind in ("input_text", "output_text") and not isinstance(part.get("text"), str):
            raise _Invalid(f"Missing required parameter: '{where}.content[{j}].text'.", f"{where}.content[{j}].text")


def _check_items(items: list, calls: set[str]) -> None:
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _Invalid(f"Invalid type for '{where}': expected an object.", where)
        kind = _item_type(item)
        if kind == "message":
            _check_message(item, where)
        elif kind == "function_call":
            for key in ("call_id", "name", "arguments"):
                if not isinstance(item.get(key), str):
                    raise _Invalid(f"Missing required parameter: '{where}.{key}'.", f"{where}.{key}", "missing_required_parameter")
            calls.add(item["call_id"])
        elif kind == "function_call_output":
            if item.get("call_id") not in calls:
                raise _Invalid(f"No tool call found for function call output with call_id {item.get('call_id')}.", "input")
            if not isinstance(item.get("output"), (str, list)):
                raise _Invalid(f"Missing required parameter: '{where}.output'.", f"{where}.output", "missing_required_parameter")
        elif kind not in OTHER_ITEMS:
            raise _Invalid(f"Invalid value: '{kind}'.", f"{where}.type", "invalid_value")


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _Invalid("Invalid type for 'tools': expected an array.", "tools")
    for k, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            if not isinstance(tool.get("name"), str):
                raise _Invalid(f"Missing required parameter: 'tools[{k}].name'.", f"tools[{k}].name", "missing_required_parameter")
            extra = set(tool) - {"type", "name", "description", "parameters", "strict"}
            if extra:
                raise _Invalid(f"Unknown parameter: 'tools[{k}].{sorted(extra)[0]}'.", f"tools[{k}].{sorted(extra)[0]}", "unknown_parameter")
        elif kind not in BUILT_IN_TOOLS:
            raise _Invalid(f"Invalid value: '{kind}'.", f"tools[{k}].type", "invalid_value")


def _expanded_input(upstream: Any, body: Any) -> list:
    """The request's whole input, checked; a ``previous_response_id`` of ours is expanded."""
    if not isinstance(body, dict):
        raise _Invalid("We could not parse the JSON body of your request.")
    for key in body:
        if key not in TOP_LEVEL:
            raise _Invalid(f"Unknown parameter: '{key}'.", key, "unknown_parameter")
    if not isinstance(body.get("model"), str):
        raise _Invalid("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    items: list = []
    previous = body.get("previous_response_id")
    if previous is not None:
        kept = _kept(upstream).get(previous)
        if kept is None:
            raise _Invalid(f"Previous response with id '{previous}' not found.", "previous_response_id", status=404)
        items.extend(kept)
    inp = body.get("input")
    if isinstance(inp, str):
        items.append({"role": "user", "content": inp})
    elif isinstance(inp, list):
        items.extend(inp)
    elif previous is None:
        raise _Invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    _check_items(items, set())
    _check_tools(body.get("tools"))
    return items


def _kept(upstream: Any) -> dict[str, list]:
    if not hasattr(upstream, "kept_responses"):
        upstream.kept_responses = {}
    return upstream.kept_responses


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") in ("input_text", "output_text"))
    return ""


def _last_user_text(items: list) -> str:
    for item in reversed(items):
        if _item_type(item) == "message" and item.get("role") == "user" and _text_of(item.get("content")):
            return _text_of(item.get("content"))
    return ""


def _answer(body: dict, items: list) -> tuple[list[dict], str, dict | None, list[str]]:
    """Output items, status, incomplete details, and the text pieces to stream."""
    last = items[-1] if items else {}
    m = re.search(r"scenario:([a-z-]+)", _last_user_text(items))
    if m and m.group(1) == "tool" and _item_type(last) != "function_call_output":
        tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
        name = tools[0]["name"] if tools else "get_weather"
        call = {
            "id": "fc_" + uuid.uuid4().hex[:24],
            "type": "function_call",
            "status": "completed",
            "call_id": "call_" + uuid.uuid4().hex[:24],
            "name": name,
            "arguments": json.dumps(TOOL_INPUT),
        }
        return [call], "completed", None, []
    if _item_type(last) == "function_call_output":
        out = last.get("output")
        words = tool_followup_words(out if isinstance(out, str) else _text_of(out))
    else:
        words = default_words("Hello from the OpenAI Responses upstream:", _last_user_text(items))
    status, incomplete = "completed", None
    limit = body.get("max_output_tokens")
    if isinstance(limit, int) and 0 < limit < len(words):
        words, status, incomplete = words[:limit], "incomplete", {"reason": "max_output_tokens"}
    message = {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": "".join(words), "annotations": [], "logprobs": []}],
    }
    return [message], status, incomplete, words


def _object(rid: str, body: dict, output: list, status: str, usage: Any, incomplete: Any = None) -> dict:
    return {
        "id": rid,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "model": body["model"],
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
        "user": body.get("user"),
    }


def serve(upstream: Any, h: Any, rec: Any) -> None:
    """Answers one ``POST /v1/responses``."""
    body = rec.body
    try:
        items = _expanded_input(upstream, body)
    except _Invalid as e:
        rec.response.update(status=e.status, error=e.body["error"]["message"])
        h.send_json(e.status, e.body)
        return
    output, status, incomplete, words = _answer(body, items)
    output_tokens = len(words) if words else 12
    usage = {
        "input_tokens": OPENAI_PROMPT_TOKENS,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": OPENAI_PROMPT_TOKENS + output_tokens,
    }
    rid = "resp_" + uuid.uuid4().hex[:24]
    final = _object(rid, body, output, status, usage, incomplete)
    text = "".join(words)
    rec.response.update(status=200, id=rid, text=text, output=output, usage=usage)
    if body.get("store", True):
        _kept(upstream)[rid] = items + output
    if not body.get("stream"):
        h.send_json(200, final, headers={"x-request-id": "req_" + uuid.uuid4().hex[:16]})
        return
    _stream(h, body, final, words)


def _stream(h: Any, body: dict, final: dict, words: list[str]) -> None:
    seq = 0

    def event(name: str, data: dict) -> None:
        nonlocal seq
        payload = {"type": name, "sequence_number": seq, **data}
        seq += 1
        h.send_chunk(f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode())

    h.start_sse(headers={"x-request-id": "req_" + uuid.uuid4().hex[:16]})
    opening = {**final, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
    event("response.created", {"response": opening})
    event("response.in_progress", {"response": opening})
    for index, item in enumerate(final["output"]):
        if item["type"] == "message":
            event("response.output_item.added", {"output_index": index, "item": {**item, "status": "in_progress", "content": []}})
            part = {"type": "output_text", "text": "", "annotations": []}
            ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
            event("response.content_part.added", {**ids, "part": part})
            for word in words:
                event("response.output_text.delta", {**ids, "delta": word, "logprobs": []})
            text = item["content"][0]["text"]
            event("response.output_text.done", {**ids, "text": text, "logprobs": []})
            event("response.content_part.done", {**ids, "part": {**part, "text": text}})
        else:
            event("response.output_item.added", {"output_index": index, "item": {**item, "status": "in_progress", "arguments": ""}})
            ids = {"item_id": item["id"], "output_index": index}
            for frag in split_fragments(item["arguments"]):
                event("response.function_call_arguments.delta", {**ids, "delta": frag})
            event("response.function_call_arguments.done", {**ids, "name": item["name"], "arguments": item["arguments"]})
        event("response.output_item.done", {"output_index": index, "item": item})
    terminal = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
    event(terminal, {"response": final})
    h.end_chunks()
