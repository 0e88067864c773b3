"""Mock upstream LLM servers for the Switchyard end-to-end tests: what they share.

Standard library only (``http.server.ThreadingHTTPServer``), each server run in a
background thread on an ephemeral port on 127.0.0.1. This module holds the
scenarios, the request recording and the HTTP plumbing (``MockUpstream``); each
provider's server is a module of its own:

* ``OpenAIUpstream`` (``upstream_openai.py``): an OpenAI-compatible API -- ``POST /v1/chat/completions``
  (JSON and SSE, including the ``stream_options.include_usage`` final chunk with
  ``choices: []``), ``POST /v1/embeddings`` (always float vectors, like many
  OpenAI-compatible servers that ignore ``encoding_format``), ``GET /v1/models``,
  and ``POST /v1/responses`` (in ``upstream_responses.py``).
* ``AnthropicUpstream`` (``upstream_anthropic.py``): the Anthropic Messages API -- ``POST /v1/messages``
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


def _oai_error(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


__all__ = [
    "Recorded",
    "MockUpstream",
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
]
