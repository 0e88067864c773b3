"""Process lifecycle: SIGTERM finishes in-flight streams, then the process exits promptly and cleanly."""

from __future__ import annotations

import signal
import subprocess
import time

import httpx
import pytest

from gateway import SLOW_MOCK_CONFIG, Gateway
from helpers import parse_json, sse_data


@pytest.fixture
def lone_gateway(workdir):
    gw = Gateway(f"lifecycle-{time.monotonic_ns()}", SLOW_MOCK_CONFIG, workdir)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def _wait_exit(gw: Gateway, timeout: float) -> int | None:
    try:
        return gw.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def test_sigterm_on_idle_gateway_exits_promptly(lone_gateway):
    r = httpx.post(
        lone_gateway.url + "/v1/chat/completions",
        json={"model": "slow-mock", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert r.status_code == 200
    lone_gateway.proc.send_signal(signal.SIGTERM)
    code = _wait_exit(lone_gateway, 5)
    assert code is not None, "switchyard still running 5 s after SIGTERM with nothing in flight"
    assert code == 0, f"exit code {code} after SIGTERM"


def test_sigterm_lets_an_in_flight_stream_finish(lone_gateway):
    body = {"model": "slow-mock", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.Client(timeout=10) as c, c.stream("POST", lone_gateway.url + "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        first = next(line for line in lines if line.startswith("data:"))
        lone_gateway.proc.send_signal(signal.SIGTERM)
        rest = "\n\n".join(lines)
    events = sse_data(first + "\n\n" + rest)
    assert events[-1] == "[DONE]", f"stream cut by shutdown: {events[-3:]}"
    content = "".join((c["choices"][0]["delta"].get("content") or "") for c in map(parse_json, events[:-1]) if c.get("choices"))
    assert content == "one two three four five six"
    code = _wait_exit(lone_gateway, 5)
    assert code is not None, "switchyard still running 5 s after its last stream ended"
