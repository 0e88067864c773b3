"""Redis stopped in the middle of a run: the gateway follows its configured mode (admit or
refuse), answers within a short timeout either way, reports it in /health/ready, and recovers
by itself when Redis returns. Each test runs its own redis-server on a free port."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from gateway import Gateway
from governance_env import Admin, PrivateRedis, chat, governed_config

MOCK = """\
providers:
  demo:
    kind: mock
    mock: { text: "answer" }
models:
  demo-model:
    provider: demo
    price: { input: 1.0, output: 2.0 }
"""


@pytest.fixture
def redis(workdir):
    r = PrivateRedis(workdir).start()
    try:
        yield r
    finally:
        r.stop()


def governance_health(gw: Gateway) -> dict:
    return httpx.get(gw.url + "/health/ready", timeout=5).json()["governance"]


def until(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@pytest.mark.parametrize("mode", ["fail_open", "fail_closed"])
def test_redis_stopped_mid_run_follows_the_mode_and_recovers(workdir, redis, mode):
    nonce = uuid.uuid4().hex[:8]
    extra = MOCK + f"governance:\n  on_counter_error: {mode}\n"
    config = governed_config(f"sqlite://{workdir}/redis-{mode}-{nonce}.db", extra, redis_url=redis.url, prefix=f"t{nonce}")
    gw = Gateway(f"redis-{mode}-{nonce}", config, workdir).start()
    try:
        admin = Admin(gw)
        created = admin.create_key(limits={"rpm": 1000})
        assert chat(gw, created["key"]).status_code == 200
        used = admin.get(f"/admin/keys/{created['id']}/usage").json()["usage"]["requests_per_minute"]["used"]
        assert used == 1
        assert governance_health(gw)["counters"] == "redis"

        redis.stop()
        during = [chat(gw, created["key"], timeout=5) for _ in range(3)]  # a hang fails here
        if mode == "fail_open":
            assert [r.status_code for r in during] == [200] * 3, [r.text for r in during]
            assert governance_health(gw)["admitted_failing_open"] >= 3
        else:
            assert [r.status_code for r in during] == [503] * 3, [r.text for r in during]
            assert during[0].json()["error"]["code"] == "limits_unavailable"
            assert governance_health(gw)["refused_failing_closed"] >= 3
        assert governance_health(gw)["counter_errors"] >= 3
        assert "counters are unavailable" in gw.log_text()

        redis.start()  # same port, empty
        recovered = until(lambda: chat(gw, created["key"], timeout=5).status_code == 200, timeout=15)
        assert recovered, "requests did not succeed again after Redis came back"
        r = admin.get(f"/admin/keys/{created['id']}/usage")
        assert r.status_code == 200 and r.json()["usage"]["requests_per_minute"]["used"] >= 1, r.text
    finally:
        gw.stop()
