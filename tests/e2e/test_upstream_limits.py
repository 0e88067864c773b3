"""Caps on non-streamed upstream answers (``server.max_upstream_body_size`` and
``server.max_upstream_embeddings_body_size``).

An upstream that answers with a body far past the cap (300 MB here, sent from a
loop so this mock stays small) must cost the gateway about the cap, not the
body: the client gets ``502 upstream_response_too_large`` naming the key to
raise, the upstream connection is dropped rather than drained, and the
gateway's peak RSS stays within a small multiple of the cap. Answers just
under the cap still pass, and embeddings have their own, larger cap.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from gateway import Gateway

MIB = 1024 * 1024
CHAT_CAP = 8 * MIB
EMBEDDINGS_CAP = 16 * MIB
HUGE = 300 * MIB
PIECE = MIB

COMPLETION_HEAD = b'{"id":"chatcmpl-big","object":"chat.completion","created":1700000000,"model":"big",'
COMPLETION_HEAD += b'"choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"'
COMPLETION_TAIL = b'"}}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'


def completion_of(size: int) -> bytes:
    """A valid chat completion of exactly ``size`` bytes."""
    padding = size - len(COMPLETION_HEAD) - len(COMPLETION_TAIL)
    return COMPLETION_HEAD + b"a" * padding + COMPLETION_TAIL


def embeddings_of(size: int) -> bytes:
    """A valid embeddings answer of about ``size`` bytes (one long vector)."""
    count = size // len(b"0.125,")
    vector = b",".join([b"0.125"] * count)
    return (
        b'{"object":"list","model":"big","usage":{"prompt_tokens":1,"total_tokens":1},'
        b'"data":[{"object":"embedding","index":0,"embedding":[' + vector + b"]}]}"
    )


class _BigHandler(BaseHTTPRequestHandler):
    """Answers by upstream model name: ``small`` a 1 KB completion; ``huge-declared`` / ``huge-chunked`` send 300 MB
    with / without Content-Length; ``under-declared`` / ``under-chunked`` send a completion
    just under the chat cap; ``embed-over-chat-cap`` / ``embed-huge`` answer embeddings
    between the two caps / far past both."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        model = json.loads(self.rfile.read(length) or b"{}").get("model", "")
        owner: BigUpstream = self.server.owner  # type: ignore[attr-defined]
        sent = 0
        try:
            if model in ("huge-declared", "huge-chunked", "embed-huge"):
                sent = self._huge(chunked=model == "huge-chunked")
            elif model == "under-declared":
                sent = self._whole(completion_of(CHAT_CAP - 64 * 1024), chunked=False)
            elif model == "under-chunked":
                sent = self._whole(completion_of(CHAT_CAP - 64 * 1024), chunked=True)
            elif model == "small":
                sent = self._whole(completion_of(1024), chunked=False)
            elif model == "embed-over-chat-cap":
                sent = self._whole(embeddings_of(CHAT_CAP + 2 * MIB), chunked=True)
            else:
                sent = self._whole(b'{"error":{"message":"unknown model"}}', chunked=False, status=404)
        finally:
            owner.finished(model, sent)

    def _start(self, status: int, length: int | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _write(self, data: bytes, chunked: bool) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)

    def _whole(self, body: bytes, chunked: bool, status: int = 200) -> int:
        self._start(status, None if chunked else len(body))
        for at in range(0, len(body), PIECE):
            self._write(body[at : at + PIECE], chunked)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        return len(body)

    def _huge(self, chunked: bool) -> int:
        """Sends the head of a completion then 1 MB pieces until 300 MB or until the
        gateway hangs up; returns how much got out."""
        self._start(200, None if chunked else HUGE)
        sent = 0
        piece = b"a" * PIECE
        try:
            self._write(COMPLETION_HEAD, chunked)
            sent += len(COMPLETION_HEAD)
            for _ in range(HUGE // PIECE):
                self._write(piece, chunked)
                sent += PIECE
            self.wfile.flush()
        except OSError:
            self.close_connection = True
        return sent


class BigUpstream:
    """The server above, in a daemon thread on 127.0.0.1, counting what each answer sent."""

    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _BigHandler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.sent: dict[str, list[int]] = {}
        self.changed = threading.Condition()
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def finished(self, model: str, sent: int) -> None:
        with self.changed:
            self.sent.setdefault(model, []).append(sent)
            self.changed.notify_all()

    def sent_for(self, model: str, timeout: float = 60.0) -> int:
        """Bytes the (single) answer for ``model`` got out, once it is over."""
        with self.changed:
            assert self.changed.wait_for(lambda: model in self.sent, timeout), f"no answer for {model} finished"
            return self.sent[model][0]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


MODELS = ("small", "huge-declared", "huge-chunked", "under-declared", "under-chunked", "embed-over-chat-cap", "embed-huge")


def limits_config(url: str) -> str:
    models = "".join(f"  {m}:\n    provider: big\n    upstream: {m}\n" for m in MODELS)
    return f"""\
server:
  listen: "127.0.0.1:__PORT__"
  max_upstream_body_size: 8MB
  max_upstream_embeddings_body_size: 16MB
database:
  url: none
resilience:
  # One attempt: each scenario's upstream answer is counted once.
  retry: {{ max_attempts: 1, retries_per_target: 0 }}
providers:
  big:
    kind: openai_compatible
    base_url: "{url}/v1"
    api_key: "sk-big-upstream"
    timeouts: {{ connect: 2s, first_byte: 30s, idle: 10s }}
models:
{models}"""


@pytest.fixture
def big_upstream():
    upstream = BigUpstream()
    try:
        yield upstream
    finally:
        upstream.stop()


@pytest.fixture
def limited_gateway(big_upstream, workdir: Path):
    gw = Gateway(f"upstream-limits-{id(big_upstream):x}", limits_config(big_upstream.url), workdir).start()
    try:
        yield gw
    finally:
        gw.stop()


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def chat(gw: Gateway, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=60)


@pytest.mark.parametrize("model", ["huge-declared", "huge-chunked"])
def test_an_answer_past_the_cap_is_a_502_that_costs_about_the_cap(limited_gateway, big_upstream, model):
    gw = limited_gateway
    assert chat(gw, "small").status_code == 200  # warm: connection pool, allocator arenas
    baseline_kib = memory_kib(gw.proc.pid, "VmRSS")

    r = chat(gw, model)

    assert r.status_code == 502, r.text
    error = r.json()["error"]
    assert error["code"] == "upstream_response_too_large"
    assert error["type"] == "upstream_error"
    assert "8 MiB" in error["message"] and "server.max_upstream_body_size" in error["message"]
    # The rest of the 300 MB was not read: the gateway hung up (socket buffers let some
    # more than the cap out, never the whole body).
    assert big_upstream.sent_for(model) < HUGE // 4
    peak_kib = memory_kib(gw.proc.pid, "VmHWM")
    growth_mib = (peak_kib - baseline_kib) / 1024
    print(f"{model}: VmRSS before {baseline_kib / 1024:.1f} MiB, VmHWM after {peak_kib / 1024:.1f} MiB (cap 8 MiB)")
    assert growth_mib < 4 * CHAT_CAP / MIB, f"peak RSS grew {growth_mib:.1f} MiB for an 8 MiB cap"
    # The gateway is still fine.
    assert chat(gw, "under-chunked").status_code == 200


@pytest.mark.parametrize("model", ["under-declared", "under-chunked"])
def test_an_answer_just_under_the_cap_passes_whole(limited_gateway, model):
    r = chat(limited_gateway, model)

    assert r.status_code == 200, r.text[:500]
    content = r.json()["choices"][0]["message"]["content"]
    assert len(content) == len(completion_of(CHAT_CAP - 64 * 1024)) - len(COMPLETION_HEAD) - len(COMPLETION_TAIL)


def test_embeddings_have_their_own_larger_cap(limited_gateway, big_upstream):
    url = limited_gateway.url + "/v1/embeddings"

    fits = httpx.post(url, json={"model": "embed-over-chat-cap", "input": "hi"}, timeout=60)
    over = httpx.post(url, json={"model": "embed-huge", "input": "hi"}, timeout=60)

    assert fits.status_code == 200, fits.text[:500]
    assert len(fits.json()["data"][0]["embedding"]) > CHAT_CAP // len(b"0.125,")
    assert over.status_code == 502, over.text
    assert over.json()["error"]["code"] == "upstream_response_too_large"
    assert "server.max_upstream_embeddings_body_size" in over.json()["error"]["message"]
    assert "16 MiB" in over.json()["error"]["message"]
    assert big_upstream.sent_for("embed-huge") < HUGE // 4
