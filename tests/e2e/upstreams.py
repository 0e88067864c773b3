"""Mock upstream LLM servers for the Switchyard end-to-end tests.

Two servers, standard library only (``http.server.ThreadingHTTPServer``), each
run in a background thread on an ephemeral port on 127.0.0.1:

* ``OpenAIUpstream``: an OpenAI-compatible API -- ``POST /v1/chat/completions``
  (JSON and SSE, including the ``stream_options.include_usage`` final chunk with
  ``choices: []``), ``POST /v1/embeddings`` (always float vectors, like many
  OpenAI-compatible servers that ignore ``encoding_format``), ``GET /v1/models``,
  and ``POST /v1/responses`` (in ``upstream_responses.py``).
* ``AnthropicUpstream``: the Anthropic Messages API -- ``POST /v1/messages``
  (JSON and SSE with the real event sequence: message_start, content_block_start,
  ping, content_block_delta with text_delta / input_json_delta,
  content_block_stop, message_delta, message_stop; ``event: error``).
  It validates requests the way the real API does (required headers and
  ``max_tokens``, no ``system`` role in ``messages``, no unknown top-level
  fields, well-formed content blocks, tool_result matching a tool_use), so a
  gateway that sends something the real API would reject gets a 400 here too.

Streaming responses use ``Transfer-Encoding: chunked`` (one HTTP chunk per SSE
event), so a dropped connection is a protocol error for the client, exactly as
with a real upstream.

Scenario control -- chosen by the upstream model name, or by a magic word
``scenario:NAME`` in the last user message:

* ``slow-stream``      5 content chunks, one every 200 ms
* ``drop-mid-stream``  2 content chunks, then the socket is closed without
                       finishing the chunked body
* ``stall-mid-stream`` 2 content chunks, a 3 s pause, then the rest
* ``hang``             waits 3 s before answering at all
* ``rate-limited``     429 with ``retry-after: 7`` and the provider's error body
* ``server-error``     500 with the provider's error body
* ``rate-limited-once`` / ``server-error-once``: the first request of a
                       conversation (same last user text) gets a 429 with
                       ``retry-after: 1`` / a 500; later ones succeed
* ``bad-request``      400 invalid_request_error with the provider's error body
* ``context-length``   (OpenAI) 400 ``context_length_exceeded``, as OpenAI answers a
                       prompt longer than the model's context window
* ``tool``             a tool call (Anthropic: a text block then a tool_use
                       block whose input is streamed as input_json_delta
                       fragments). When the last message is a tool result the
                       answer is text quoting that result.
* ``parallel-tools``   like ``tool`` with two calls (Paris, then London)
* ``error-after-200``  (Anthropic) some text, then ``event: error`` with
                       ``overloaded_error``
* ``overloaded``       (Anthropic) 529 ``overloaded_error``
* ``echo-split``       (OpenAI) the last user text back (magic word removed) in
                       5-character pieces, so a value in it is split across chunks
* ``json-valid`` / ``json-invalid`` (OpenAI) ``{"answer": "ok"}`` / prose that is
                       not JSON; ``json-invalid-once``: prose the first time, then
                       the valid JSON
* ``thinking``         (Anthropic) like ``tool``, each answer opened by a thinking
                       block with a signature; as the real API does with
                       thinking on, a later turn whose tool-calling assistant
                       message does not start with an issued thinking block
                       (signature intact) is refused with a 400
* anything else        a plain text answer (honours ``max_tokens``: one token
                       per word, finish ``length`` / stop_reason ``max_tokens``)

Every request is recorded (``Recorded``): path, method, lower-cased headers,
parsed JSON body, the scenario, and what was sent back (``response`` dict:
``text``, ``chunks``, ``chunk_times`` as ``time.monotonic()`` values,
``tool_calls``, ``usage``, ``embeddings``...).  ``done`` is set when the
response has been completely written (or the connection dropped).
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SCENARIOS = (
    "slow-stream",
    "drop-mid-stream",
    "stall-mid-stream",
    "hang",
    "rate-limited",
    "rate-limited-once",
    "server-error",
    "server-error-once",
    "bad-request",
    "context-length",
    "tool",
    "parallel-tools",
    "error-after-200",
    "overloaded",
    "thinking",
    "echo-split",
    "json-valid",
    "json-invalid",
    "json-invalid-once",
)

SLOW_CHUNKS = ["one ", "two ", "three ", "four ", "five"]
SLOW_INTERVAL = 0.2
HANG_SECONDS = 3.0  # "hang" waits this long before answering; "stall-mid-stream" pauses this long mid-stream
DROP_CHUNKS = ["partial ", "answer "]
EMBEDDING_DIM = 16

# Anthropic usage reported by the mock (message_start / non-streaming body).
ANTHROPIC_INPUT_TOKENS = 21
ANTHROPIC_CACHE_READ = 5
ANTHROPIC_CACHE_CREATION = 3
OPENAI_PROMPT_TOKENS = 17

TOOL_INPUT = {"location": "Paris", "unit": "celsius"}
TOOL_INPUTS_PARALLEL = [TOOL_INPUT, {"location": "London", "unit": "celsius"}]


@dataclass
class Recorded:
    """One request received by a mock upstream."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    body: Any
    received_at: float
    scenario: str = "default"
    response: dict[str, Any] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")


class _Dropped(Exception):
    """Raised inside a handler after the socket was closed on purpose."""


# ---------------------------------------------------------------------------
# helpers shared by both servers
# ---------------------------------------------------------------------------


def content_text(content: Any) -> str:
    """Text of an OpenAI or Anthropic message content (string or part list)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                out.append(str(part.get("text", "")))
        return "".join(out)
    return ""


def last_user_text(messages: Any) -> str:
    """Text of the last user message that has text (Anthropic tool_result-only turns are skipped)."""
    if not isinstance(messages, list):
        return ""
    for msg in reversed(messages):
        if isinstance(msg, dict) and msg.get("role") == "user":
            text = content_text(msg.get("content"))
            if text:
                return text
    return ""


def pick_scenario(model: Any, messages: Any) -> str:
    if isinstance(model, str) and model in SCENARIOS:
        return model
    m = re.search(r"scenario:([a-z0-9-]+)", last_user_text(messages))
    if m and m.group(1) in SCENARIOS:
        return m.group(1)
    return "default"


def split_fragments(s: str, size: int = 7) -> list[str]:
    return [s[i : i + size] for i in range(0, len(s), size)]


def embedding_for(text: str) -> list[float]:
    """Deterministic float64 vector (not exactly representable in float32). Texts that mention
    "semtest" get the vector of their words alone (case, spacing and punctuation ignored), so
    the semantic cache's tests have prompts that differ and embed the same."""
    if "semtest" in text:
        text = " ".join(re.findall(r"\w+", text.lower()))
    rnd = random.Random(f"emb:{text}")
    return [rnd.uniform(-1.0, 1.0) for _ in range(EMBEDDING_DIM)]


def words_of(text: str) -> list[str]:
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]]


def default_words(prefix: str, user_text: str) -> list[str]:
    # Non-ASCII on purpose: the gateway must not mangle multi-byte UTF-8.
    said = " ".join(user_text.split()[:6])
    return words_of(f"{prefix} naïve café ☕ — you said: {said}")


def tool_followup_words(result_text: str) -> list[str]:
    return words_of(f"The tool said: {result_text}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-upstream/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    # -- request ----------------------------------------------------------
    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until blank line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        raw = self._read_body() if method == "POST" else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        rec = Recorded(
            method=method,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            raw=raw,
            body=body,
            received_at=time.monotonic(),
        )
        owner: MockUpstream = self.server.owner  # type: ignore[attr-defined]
        owner._record(rec)
        try:
            owner.handle(self, rec)
        except _Dropped:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            rec.response["client_gone"] = True
        finally:
            rec.response.setdefault("finished_at", time.monotonic())
            rec.done.set()

    # -- response ---------------------------------------------------------
    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def start_sse(self, headers: dict[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def send_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def drop(self) -> None:
        """Close the connection in the middle of the response."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()
        raise _Dropped()


class MockUpstream:
    """Base: a ThreadingHTTPServer in a daemon thread, recording requests."""

    name = "upstream"

    def __init__(self, api_keys: set[str] | list[str] | tuple[str, ...]) -> None:
        self.api_keys = set(api_keys)
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], int] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------
    def start(self) -> MockUpstream:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        httpd.owner = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"mock-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> MockUpstream:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "upstream not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- recording --------------------------------------------------------
    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)

    def matching(self, needle: str, path: str | None = None) -> list[Recorded]:
        """Requests whose raw body contains ``needle`` (and, optionally, on ``path``)."""
        with self._lock:
            reqs = list(self.requests)
        return [r for r in reqs if needle in r.text and (path is None or r.path == path)]

    def wait_for(self, needle: str, path: str | None = None, timeout: float = 5.0, count: int = 1) -> list[Recorded]:
        """Poll (bounded) until ``count`` matching requests were fully answered."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.matching(needle, path)
            if len(found) >= count and all(r.done.is_set() for r in found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name} upstream: expected {count} request(s) containing {needle!r}"
                    f"{' on ' + path if path else ''}, got {len(found)}; all paths seen: "
                    f"{[r.path for r in self.requests]}"
                )
            time.sleep(0.01)

    def one(self, needle: str, path: str | None = None, timeout: float = 5.0) -> Recorded:
        found = self.wait_for(needle, path, timeout)
        assert len(found) == 1, f"{self.name} upstream got {len(found)} requests containing {needle!r}, expected 1"
        return found[0]

    def resolve_once(self, scenario: str, messages: Any) -> str:
        """``X-once`` is ``X`` the first time a conversation is seen, ``default`` afterwards."""
        if not scenario.endswith("-once"):
            return scenario
        key = (scenario, last_user_text(messages))
        with self._lock:
            self._seen[key] = n = self._seen.get(key, 0) + 1
        return scenario.removesuffix("-once") if n == 1 else "default"

    def handle(self, h: _Handler, rec: Recorded) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


# ---------------------------------------------------------------------------
# OpenAI-compatible upstream
# ---------------------------------------------------------------------------


def _oai_error(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


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
            from upstream_responses import serve  # imports this module: load it lazily

            serve(self, h, rec)
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


# ---------------------------------------------------------------------------
# Anthropic Messages upstream
# ---------------------------------------------------------------------------


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


def start_upstreams(openai_keys: Any, anthropic_keys: Any) -> tuple[OpenAIUpstream, AnthropicUpstream]:
    return OpenAIUpstream(openai_keys).start(), AnthropicUpstream(anthropic_keys).start()  # type: ignore[return-value]


__all__ = [
    "AnthropicUpstream",
    "OpenAIUpstream",
    "Recorded",
    "SCENARIOS",
    "SLOW_CHUNKS",
    "DROP_CHUNKS",
    "TOOL_INPUT",
    "TOOL_INPUTS_PARALLEL",
    "HANG_SECONDS",
    "ANTHROPIC_INPUT_TOKENS",
    "ANTHROPIC_CACHE_READ",
    "ANTHROPIC_CACHE_CREATION",
    "OPENAI_PROMPT_TOKENS",
    "embedding_for",
    "tool_followup_words",
    "start_upstreams",
    "validate_anthropic",
]
