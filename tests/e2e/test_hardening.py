"""Hardening: slow or stuck clients cannot hold connections, the connection cap refuses and
recovers, the in-flight cap sheds with 503 at once (and readiness follows), and a panic in one
request's handling is answered 500 while the gateway serves on."""

from __future__ import annotations

import resource
import selectors
import socket
import threading
import time
import uuid

import httpx
import pytest

from gateway import MOCK_TEXT, Gateway
from helpers import assert_openai_error

HEADER_TIMEOUT_S = 1
SLOW_LATENCY_S = 4
MAX_IN_FLIGHT = 4

HARDENED_CONFIG = f"""\
server:
  listen: "127.0.0.1:__PORT__"
  header_read_timeout: {HEADER_TIMEOUT_S}s
  body_read_timeout: 1s
  idle_timeout: 5s
  max_connections: 4000
  max_in_flight: {MAX_IN_FLIGHT}
database:
  url: none
providers:
  demo:
    kind: mock
    mock: {{ text: "{MOCK_TEXT}" }}
  slow:
    kind: mock
    mock: {{ text: "slow answer", latency: {SLOW_LATENCY_S}s }}
models:
  demo-model:
    provider: demo
  slow-model:
    provider: slow
"""

MAX_CONNECTIONS = 20

CAPPED_CONFIG = f"""\
server:
  listen: "127.0.0.1:__PORT__"
  max_connections: {MAX_CONNECTIONS}
  header_read_timeout: 30s
  idle_timeout: 30s
database:
  url: none
providers:
  demo:
    kind: mock
    mock: {{ text: "{MOCK_TEXT}" }}
models:
  demo-model:
    provider: demo
"""

CHAT = {"model": "demo-model", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def hardened(workdir):
    gw = Gateway("hardened", HARDENED_CONFIG, workdir)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture(scope="module")
def capped(workdir):
    gw = Gateway("capped", CAPPED_CONFIG, workdir)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def raise_fd_limit(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        pytest.skip(f"this test needs {want} open files; the limit is {soft}")


def drain_until_closed(sock: socket.socket) -> bool:
    """Reads what the gateway sent; True once the gateway has closed the connection."""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:  # reset by the gateway: closed too
        return True


def metric(gw: Gateway, name: str) -> float:
    text = httpx.get(gw.url + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics:\n{text[:3000]}")


def test_trickled_request_heads_are_closed_while_chat_is_served(hardened):
    raise_fd_limit(4096)
    sel = selectors.DefaultSelector()
    opened = time.monotonic()
    socks = []
    try:
        for _ in range(1000):
            s = socket.create_connection(("127.0.0.1", hardened.port), timeout=5)
            s.sendall(b"POST /v1/chat/compl")  # half a request line, no end in sight
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            socks.append(s)
        open_socks = set(socks)
        served = 0
        deadline = opened + 10 * HEADER_TIMEOUT_S + 5
        with httpx.Client(base_url=hardened.url, timeout=10) as http:
            while open_socks and time.monotonic() < deadline:
                for s in list(open_socks):  # a byte now and then, as a slow-loris client does
                    try:
                        s.send(b"e")
                    except OSError:
                        open_socks.discard(s)
                r = http.post("/v1/chat/completions", json=CHAT)
                assert r.status_code == 200, f"chat not served while trickling clients wait: {r.status_code} {r.text[:300]}"
                served += 1
                for key, _ in sel.select(timeout=0.3):
                    if drain_until_closed(key.fileobj):
                        open_socks.discard(key.fileobj)
                        sel.unregister(key.fileobj)
        took = time.monotonic() - opened
        assert not open_socks, (
            f"{len(open_socks)} of 1000 trickling connections still open {took:.1f}s after opening "
            f"(header_read_timeout: {HEADER_TIMEOUT_S}s)"
        )
        assert served >= 1
    finally:
        sel.close()
        for s in socks:
            s.close()


def test_a_body_that_never_completes_gets_408_and_a_closed_connection(hardened):
    with socket.create_connection(("127.0.0.1", hardened.port), timeout=10) as s:
        s.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + b'{"model": '
        )
        started = time.monotonic()
        received = b""
        while True:
            try:
                data = s.recv(65536)
            except TimeoutError:
                pytest.fail(f"connection still open 10 s after a body stalled (body_read_timeout: 1s); got {received[:300]!r}")
            except ConnectionResetError:
                break
            if not data:
                break
            received += data
        took = time.monotonic() - started
    assert took < 10
    assert received.startswith(b"HTTP/1.1 408"), f"expected a 408 before the close, got {received[:300]!r}"
    assert b"request_timeout" in received and b"body_read_timeout" in received, received[:600]


def test_connections_past_the_cap_are_refused_and_service_resumes(capped):
    held = []
    try:
        for _ in range(MAX_CONNECTIONS):  # each proven accepted by one answered request, then kept open
            s = socket.create_connection(("127.0.0.1", capped.port), timeout=5)
            s.sendall(b"GET /health/live HTTP/1.1\r\nHost: gw\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200"), "a connection under the cap was not served"
            held.append(s)
        try:
            r = httpx.get(capped.url + "/health/live", timeout=5)
            assert r.status_code == 503, f"a connection past max_connections was served: {r.status_code}"
        except httpx.TransportError:
            pass  # closed at once: refused
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            r = httpx.post(capped.url + "/v1/chat/completions", json=CHAT, timeout=5)
            if r.status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "not serving again 10 s after the connections past the cap went away"
        time.sleep(0.1)
    assert metric(capped, "switchyard_refused_connections_total") >= 1


def test_past_max_in_flight_requests_are_shed_at_once_and_readiness_follows(hardened):
    results: list[tuple[int, float, httpx.Headers, dict]] = []
    lock = threading.Lock()
    body = {"model": "slow-model", "messages": [{"role": "user", "content": "hi"}]}

    def call():
        started = time.monotonic()
        r = httpx.post(hardened.url + "/v1/chat/completions", json=body, timeout=30)
        with lock:
            results.append((r.status_code, time.monotonic() - started, r.headers, r.json()))

    threads = [threading.Thread(target=call) for _ in range(3 * MAX_IN_FLIGHT)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + SLOW_LATENCY_S - 1
    while time.monotonic() < deadline:
        with lock:
            if len(results) >= 2 * MAX_IN_FLIGHT:
                break
        time.sleep(0.05)
    ready = httpx.get(hardened.url + "/health/ready", timeout=5)
    for t in threads:
        t.join(timeout=30)
    statuses = sorted(r[0] for r in results)
    assert len(results) == 3 * MAX_IN_FLIGHT, f"requests lost: {statuses}"
    assert ready.status_code == 503 and ready.json()["status"] == "overloaded", (
        f"/health/ready while shedding: {ready.status_code} {ready.text}"
    )
    shed = [r for r in results if r[0] == 503]
    admitted = [r for r in results if r[0] != 503]
    assert len(shed) >= 2 * MAX_IN_FLIGHT, f"statuses with max_in_flight {MAX_IN_FLIGHT}: {statuses}"
    assert all(r[0] == 200 for r in admitted), f"an admitted request failed: {statuses}"
    for _status, took, headers, err in shed:
        assert headers.get("retry-after") == "1", dict(headers)
        assert err["error"]["type"] == "overloaded_error", err
        assert took < SLOW_LATENCY_S - 1, f"a shed request waited {took:.1f}s: it was queued, not shed"
    assert metric(hardened, "switchyard_shed_requests_total") >= 2 * MAX_IN_FLIGHT
    deadline = time.monotonic() + 10
    while httpx.get(hardened.url + "/health/ready", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "/health/ready still not ready 10 s after the load went"
        time.sleep(0.1)


def test_a_panic_in_a_request_is_answered_500_and_the_gateway_serves_on(hardened):
    rid = "panic-" + uuid.uuid4().hex[:12]
    log_start = hardened.log_size()
    with httpx.Client(base_url=hardened.url, timeout=10) as http:
        r = http.post(
            "/v1/chat/completions", json=CHAT, headers={"x-switchyard-test-panic": "1", "x-request-id": rid}
        )
        err = assert_openai_error(r, 500)
        assert err["type"] == "server_error", err
        assert r.headers["x-request-id"] == rid
        again = http.post("/v1/chat/completions", json=CHAT)
        assert again.status_code == 200, again.text[:300]
        assert again.json()["choices"][0]["message"]["content"] == MOCK_TEXT
    assert hardened.proc.poll() is None, "the gateway exited after a panic"
    deadline = time.monotonic() + 5
    while rid not in hardened.log_text(log_start):
        assert time.monotonic() < deadline, "the panic was not logged with its request id"
        time.sleep(0.05)
