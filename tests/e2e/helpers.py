"""Small assertion helpers shared by the end-to-end tests."""

from __future__ import annotations

import json
from typing import Any

import httpx


def assert_request_id(headers: Any) -> str:
    rid = headers.get("x-request-id")
    assert rid, f"response has no x-request-id header; headers: {dict(headers)}"
    return rid


def assert_openai_error(resp: httpx.Response, status: int | tuple[int, ...]) -> dict:
    """The response is an OpenAI-shaped error with the given status; returns the error object."""
    statuses = (status,) if isinstance(status, int) else status
    assert resp.status_code in statuses, f"expected HTTP {statuses}, got {resp.status_code}: {resp.text[:500]}"
    assert_request_id(resp.headers)
    assert resp.headers.get("content-type", "").startswith("application/json"), (
        f"error content-type is {resp.headers.get('content-type')!r}; body: {resp.text[:300]}"
    )
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"not an OpenAI error body: {body}"
    err = body["error"]
    for key in ("message", "type", "param", "code"):
        assert key in err, f"error object lacks {key!r}: {err}"
    assert isinstance(err["message"], str) and err["message"], f"empty error message: {err}"
    assert isinstance(err["type"], str) and err["type"], f"empty error type: {err}"
    return err


def sse_data(text: str) -> list[str]:
    """The ``data:`` payloads of an SSE body, one per event."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].removeprefix(" ") for line in block.split("\n") if line.startswith("data:")]
        if data:
            events.append("\n".join(data))
    return events


def anthropic_blocks(content: Any) -> list[dict]:
    """Anthropic message content normalised to a list of blocks."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content)


def anthropic_text(content: Any) -> str:
    return "".join(b.get("text", "") for b in anthropic_blocks(content) if b.get("type") == "text")


def anthropic_system(body: dict) -> str:
    system = body.get("system")
    if system is None:
        return ""
    return system if isinstance(system, str) else "".join(b["text"] for b in system)


def accumulate(chunks: list) -> dict:
    """Reassemble an OpenAI SDK chat stream the way client code does."""
    content = []
    roles = []
    finish = []
    tool_calls: dict[int, dict] = {}
    usage_chunks = []
    empty_choice_chunks = []
    for c in chunks:
        assert c.object == "chat.completion.chunk", f"unexpected object {c.object!r}"
        if c.usage is not None:
            usage_chunks.append(c)
        if not c.choices:
            empty_choice_chunks.append(c)
            continue
        choice = c.choices[0]
        d = choice.delta
        if d.role:
            roles.append(d.role)
        if d.content:
            content.append(d.content)
        for tc in d.tool_calls or []:
            slot = tool_calls.setdefault(tc.index, {"id": None, "type": None, "name": "", "arguments": ""})
            if tc.id:
                slot["id"] = tc.id
            if tc.type:
                slot["type"] = tc.type
            if tc.function is not None:
                if tc.function.name:
                    slot["name"] += tc.function.name
                if tc.function.arguments:
                    slot["arguments"] += tc.function.arguments
        if choice.finish_reason:
            finish.append(choice.finish_reason)
    return {
        "content": "".join(content),
        "roles": roles,
        "finish_reasons": finish,
        "tool_calls": tool_calls,
        "usage_chunks": usage_chunks,
        "empty_choice_chunks": empty_choice_chunks,
    }


def parse_json(s: str) -> Any:
    try:
        return json.loads(s)
    except ValueError as e:
        raise AssertionError(f"not valid JSON: {s!r} ({e})") from None
