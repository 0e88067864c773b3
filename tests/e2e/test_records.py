"""The request log on the real binary, on SQLite and on PostgreSQL: after a mixed run (success,
stream, fallback, upstream error, client disconnect, malformed request) there is exactly one
record per request, with its attempts, and the hourly rollup the reports read adds up to the
records; feedback attaches to a request (404 for an unknown id or another key's request); and a
SIGTERM under load loses no record of a request that got an answer."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
import uuid

import httpx
import pytest

from gateway import Gateway
from governance_env import ADMIN_KEY, Admin, PgDatabase, chat, governed_config, psql

MIXED = """\
providers:
  demo:
    kind: mock
    mock: { text: "recorded answer", chunk_words: 1 }
  slow:
    kind: mock
    mock: { text: "one two three four five six seven eight nine ten", chunk_words: 1, chunk_interval: 300ms }
  broken:
    kind: mock
    mock: { failure_rate: 1.0, failure_status: 500 }
models:
  demo-model:
    provider: demo
    price: { input: 2.0, output: 8.0 }
  slow-model:
    provider: slow
    price: { input: 1.0, output: 4.0 }
  broken-model:
    provider: broken
routes:
  fb:
    targets: [broken-model, demo-model]
  kept:
    targets: [demo-model]
    record_bodies: true
records:
  max_body_size: 40
"""


class Log:
    """The request log of one gateway's database, as rows of dicts."""

    def __init__(self, url: str, pg: PgDatabase | None) -> None:
        self.url, self.pg = url, pg

    def rows(self, sql: str) -> list[dict]:
        if self.pg:
            wrapped = f"SELECT COALESCE(json_agg(t), '[]'::json) FROM ({sql}) t"
            return json.loads(psql(self.pg.name, wrapped))
        with sqlite3.connect(self.url.removeprefix("sqlite://")) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(sql).fetchall()]

    def requests(self) -> dict[str, dict]:
        rows = self.rows(
            "SELECT request_id, status, stream, error_code, attempts, cost_usd, client_disconnected, "
            "ttft_ms, model, feedback_score, feedback_comment, request_body, response_body FROM requests"
        )
        for r in rows:
            if isinstance(r["attempts"], str):
                r["attempts"] = json.loads(r["attempts"])
        return {r["request_id"]: r for r in rows}

    def wait_for(self, ids: list[str], timeout: float = 15) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.requests()
            if all(i in found for i in ids) or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


@pytest.fixture(params=["sqlite", "postgres"])
def logged(request, workdir):
    pg = None
    if request.param == "postgres":
        pg = PgDatabase()
        url = pg.url
    else:
        url = f"sqlite://{workdir / f'records-{uuid.uuid4().hex[:8]}.db'}"
    gw = Gateway(f"records-{request.param}-{uuid.uuid4().hex[:6]}", governed_config(url, MIXED), workdir).start()
    try:
        yield gw, Log(url, pg)
    finally:
        gw.stop()
        if pg:
            pg.close()


def disconnect_mid_stream(gw: Gateway, key: str) -> str:
    """Starts a slow stream, reads its first chunk, and goes away."""
    with httpx.stream(
        "POST",
        gw.url + "/v1/chat/completions",
        json={"model": "slow-model", "stream": True, "messages": [{"role": "user", "content": "talk slowly"}]},
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    ) as r:
        assert r.status_code == 200
        next(r.iter_bytes())
        return r.headers["x-request-id"]


def test_one_record_per_request_with_its_attempts_and_rollups_that_add_up(logged):
    gw, log = logged
    admin = Admin(gw)
    key = admin.create_key(name="records")["key"]
    other = admin.create_key(name="someone-else")["key"]
    auth = {"authorization": f"Bearer {key}"}

    ok = chat(gw, key)
    assert ok.status_code == 200, ok.text
    with httpx.stream(
        "POST",
        gw.url + "/v1/chat/completions",
        json={"model": "demo-model", "stream": True, "messages": [{"role": "user", "content": "stream"}]},
        headers=auth,
        timeout=10,
    ) as r:
        assert r.status_code == 200
        assert "[DONE]" in r.read().decode()
        streamed = r.headers["x-request-id"]
    fallback = chat(gw, key, model="fb")
    assert fallback.status_code == 200, fallback.text
    failed = chat(gw, key, model="broken-model")
    assert failed.status_code >= 500, failed.text
    gone = disconnect_mid_stream(gw, key)
    malformed = httpx.post(gw.url + "/v1/chat/completions", content=b'{"model": ', headers={**auth, "content-type": "application/json"}, timeout=10)
    assert malformed.status_code == 400, malformed.text

    ids = {
        "ok": ok.headers["x-request-id"],
        "stream": streamed,
        "fallback": fallback.headers["x-request-id"],
        "failed": failed.headers["x-request-id"],
        "gone": gone,
        "malformed": malformed.headers["x-request-id"],
    }
    records = log.wait_for(list(ids.values()))
    assert set(ids.values()) <= set(records), f"missing records: {set(ids.values()) - set(records)}"
    # Admin calls are not model calls: the log holds exactly the six requests.
    assert len(records) == 6, sorted(records)

    r = records[ids["ok"]]
    assert (r["status"], len(r["attempts"]), r["model"]) == (200, 1, "demo-model")
    assert r["cost_usd"] > 0
    r = records[ids["stream"]]
    assert r["status"] == 200 and bool(r["stream"]) and r["ttft_ms"] is not None
    r = records[ids["fallback"]]
    assert r["status"] == 200 and r["model"] == "demo-model"
    assert len(r["attempts"]) == int(fallback.headers["x-switchyard-attempts"]) >= 2
    assert [a["model"] for a in r["attempts"]][-1] == "demo-model"
    assert all(a["status"] == 500 and a["error_class"] for a in r["attempts"][:-1])
    r = records[ids["failed"]]
    assert r["status"] == failed.status_code and r["error_code"] == failed.json()["error"]["code"]
    assert r["attempts"] and all(a["error_class"] for a in r["attempts"])
    r = records[ids["gone"]]
    assert r["status"] == 499 and bool(r["client_disconnected"])
    r = records[ids["malformed"]]
    assert r["status"] == 400 and r["attempts"] == []

    # The rollup the reports read holds every request once, and the same spend.
    rollup = log.rows("SELECT SUM(requests) AS n, SUM(cost_usd) AS cost FROM usage_hourly")[0]
    assert rollup["n"] == 6
    assert rollup["cost"] == pytest.approx(sum(r["cost_usd"] for r in records.values()), rel=1e-9)

    # Feedback: the request's own key may rate it; an admin key may too; nobody else sees it.
    def feedback(body: dict, as_key: str) -> httpx.Response:
        return httpx.post(gw.url + "/v1/feedback", json=body, headers={"authorization": f"Bearer {as_key}"}, timeout=10)

    assert feedback({"request_id": ids["ok"], "score": 1, "comment": "useful"}, key).status_code == 200
    assert feedback({"request_id": ids["stream"], "score": -1}, ADMIN_KEY).status_code == 200
    stranger = feedback({"request_id": ids["ok"], "score": -1}, other)
    assert stranger.status_code == 404, stranger.text
    unknown = feedback({"request_id": "no-such-request", "score": 1}, key)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "request_not_found"
    assert feedback({"request_id": ids["ok"], "score": "great"}, key).status_code == 400
    records = log.requests()
    assert (records[ids["ok"]]["feedback_score"], records[ids["ok"]]["feedback_comment"]) == (1, "useful")
    assert records[ids["stream"]]["feedback_score"] == -1
    # Rating again replaces the score; the rollup follows.
    assert feedback({"request_id": ids["ok"], "score": 0.5}, key).status_code == 200
    rolled = log.rows("SELECT SUM(feedback_count) AS n, SUM(feedback_sum) AS total FROM usage_hourly")[0]
    assert rolled["n"] == 2 and rolled["total"] == pytest.approx(-0.5)


def test_bodies_are_kept_only_on_routes_that_ask_capped(logged):
    gw, log = logged
    key = Admin(gw).create_key(name="bodies")["key"]
    kept = chat(gw, key, model="kept")
    assert kept.status_code == 200, kept.text
    with httpx.stream(
        "POST",
        gw.url + "/v1/chat/completions",
        json={"model": "kept", "stream": True, "messages": [{"role": "user", "content": "stream it"}]},
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    ) as r:
        r.read()
        streamed = r.headers["x-request-id"]
    plain = chat(gw, key)
    ids = [kept.headers["x-request-id"], streamed, plain.headers["x-request-id"]]
    records = log.wait_for(ids)
    body = records[ids[0]]
    assert body["request_body"].startswith('{"model":') and len(body["request_body"].encode()) <= 40
    assert body["response_body"] and len(body["response_body"].encode()) <= 40
    assert records[ids[1]]["response_body"] == "recorded answer"
    assert records[ids[2]]["request_body"] is None and records[ids[2]]["response_body"] is None


SLOW = """\
providers:
  demo:
    kind: mock
    mock: { text: "draining", latency: 400ms }
models:
  demo-model:
    provider: demo
    price: { input: 2.0, output: 8.0 }
"""


async def fire(url: str, key: str, n: int) -> list[httpx.Response | Exception]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(i: int):
            await asyncio.sleep(i * 0.002)  # spread over a second: some in flight, some not yet sent
            body = {"model": "demo-model", "messages": [{"role": "user", "content": f"request {i}"}]}
            try:
                return await client.post(url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"})
            except httpx.HTTPError as e:
                return e

        return await asyncio.gather(*(one(i) for i in range(n)))


def test_sigterm_under_load_keeps_the_record_of_every_answered_request(workdir):
    db = workdir / f"drain-{uuid.uuid4().hex[:8]}.db"
    gw = Gateway(f"drain-{uuid.uuid4().hex[:6]}", governed_config(f"sqlite://{db}", SLOW), workdir).start()
    key = Admin(gw).create_key(name="drain")["key"]

    async def run():
        load = asyncio.create_task(fire(gw.url, key, 500))
        await asyncio.sleep(0.6)
        gw.proc.send_signal(signal.SIGTERM)
        return await load

    try:
        results = asyncio.run(run())
        assert gw.proc.wait(timeout=30) == 0, gw.log_text()
    finally:
        gw.stop()
    answered = [r.headers["x-request-id"] for r in results if isinstance(r, httpx.Response)]
    assert len(answered) > 50, "the load should have been under way when SIGTERM arrived"
    assert any(not isinstance(r, httpx.Response) for r in results), "some requests should have come after the stop"
    with sqlite3.connect(db) as conn:
        stored = {row[0] for row in conn.execute("SELECT request_id FROM requests")}
    missing = [i for i in answered if i not in stored]
    assert not missing, f"{len(missing)} of {len(answered)} answered requests have no record"
