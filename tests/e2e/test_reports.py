"""Reports end to end: a few real requests through the gateway (two models, a fallback after an
upstream 500), then ``switchyard report … --json`` and ``/admin/reports/*`` must agree with the
request log of that run in the gateway's SQLite database, and bad parameters must be refused
with a message naming what is allowed."""

from __future__ import annotations

import datetime
import json
import sqlite3
import subprocess
import time
import uuid

import httpx
import pytest

from gateway import Gateway, gateway_bin
from governance_env import ADMIN_KEY, Admin, chat, governed_config

MODELS = """\
providers:
  demo:
    kind: mock
    mock: { text: "report answer" }
  broken:
    kind: mock
    mock: { failure_rate: 1.0, failure_status: 500 }
models:
  demo-model:
    provider: demo
    price: { input: 2.0, output: 8.0 }
  cheap-model:
    provider: demo
    price: { input: 0.5, output: 1.0 }
  broken-model:
    provider: broken
routes:
  fb:
    targets: [broken-model, demo-model]
"""


@pytest.fixture
def reporting(workdir):
    """A gateway with an SQLite database, after 3 + 1 (fallback) requests served by demo-model
    and 2 by cheap-model."""
    db = workdir / f"reports-{uuid.uuid4().hex[:8]}.db"
    gw = Gateway(f"reports-{uuid.uuid4().hex[:6]}", governed_config(f"sqlite://{db}", MODELS), workdir).start()
    try:
        key = Admin(gw).create_key(name="reports")["key"]
        for model in ["demo-model"] * 3 + ["cheap-model"] * 2 + ["fb"]:
            r = chat(gw, key, model=model)
            assert r.status_code == 200, r.text
        yield gw, db
    finally:
        gw.stop()


def report(gw: Gateway, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(
        [str(gateway_bin()), "report", *args, "--url", gw.url, "--admin-key", ADMIN_KEY],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert p.returncode == 0, p.stderr
    return p


def usage_json(gw: Gateway, *args: str, requests: int = 6) -> dict:
    """The usage report once the recorder has written all `requests` (it batches every 250 ms)."""
    deadline = time.monotonic() + 10
    while True:
        body = json.loads(report(gw, "usage", *args, "--json").stdout)
        if body["total"]["requests"] >= requests or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_cli_usage_by_model_matches_the_request_log(reporting):
    gw, db = reporting
    body = usage_json(gw, "--group-by", "model")
    assert body["group_by"] == ["model"]
    assert body["total"]["requests"] == 6
    rows = {row["model"]: row for row in body["rows"]}
    assert set(rows) == {"demo-model", "cheap-model"}
    assert rows["demo-model"]["requests"] == 4
    assert rows["cheap-model"]["requests"] == 2

    with sqlite3.connect(db) as conn:
        cost = dict(conn.execute("SELECT COALESCE(model, requested_model), SUM(cost_usd) FROM requests GROUP BY 1"))
        tokens = conn.execute("SELECT SUM(prompt_tokens), SUM(completion_tokens) FROM requests").fetchone()
    for model, usd in cost.items():
        assert rows[model]["cost_usd"] == pytest.approx(usd, rel=1e-9, abs=1e-12)
    assert body["total"]["cost_usd"] == pytest.approx(sum(cost.values()), rel=1e-9)
    assert body["total"]["cost_usd"] > 0
    assert (body["total"]["prompt_tokens"], body["total"]["completion_tokens"]) == tuple(tokens)
    # Most expensive first: demo-model costs more per token and served twice as many requests.
    assert body["rows"][0]["model"] == "demo-model"
    # The fallback request: two attempts, a fallback, no error for the client.
    demo = rows["demo-model"]
    assert (demo["retry_rate"], demo["fallback_rate"], demo["error_rate"]) == (0.25, 0.25, 0.0)
    assert demo["avg_latency_ms"] > 0

    # The table: the group column, the numbers, a total line.
    table = report(gw, "usage", "--group-by", "model").stdout
    lines = table.splitlines()
    assert "UTC, whole hours" in lines[0]
    assert lines[1].split()[:3] == ["MODEL", "REQUESTS", "ERRORS"]
    assert lines[2].split()[:2] == ["demo-model", "4"]
    assert lines[-1].split()[:2] == ["TOTAL", "6"]


def test_admin_api_reports(reporting):
    gw, db = reporting
    usage_json(gw)  # wait for the records
    admin = httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    tomorrow = today + datetime.timedelta(days=1)

    r = admin.get("/admin/reports/usage", params={"group_by": "model,day", "from": str(today), "to": str(tomorrow)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["from"] == f"{today}T00:00:00Z" and body["to"] == f"{tomorrow}T00:00:00Z"
    assert {(row["model"], row["day"], row["requests"]) for row in body["rows"]} == {
        ("demo-model", str(today), 4),
        ("cheap-model", str(today), 2),
    }
    top = admin.get("/admin/reports/usage", params={"group_by": "key", "limit": "1"}).json()
    assert len(top["rows"]) == 1 and top["rows"][0]["requests"] == 6
    # Nothing before today.
    yesterday = today - datetime.timedelta(days=1)
    empty = admin.get("/admin/reports/usage", params={"from": str(yesterday), "to": str(today)}).json()
    assert empty["rows"] == [] or empty["rows"][0]["requests"] == 0

    latency = admin.get("/admin/reports/latency")
    assert latency.status_code == 200, latency.text
    rows = {(row["provider"], row["model"]): row for row in latency.json()["rows"]}
    demo = rows[("demo", "demo-model")]
    assert demo["requests"] == 4 and demo["latency"]["count"] == 4
    assert 0 < demo["latency"]["p50_ms"] <= demo["latency"]["p99_ms"]

    events = admin.get("/admin/reports/events", params={"from": str(yesterday)}).json()
    with sqlite3.connect(db) as conn:
        attempts = [a for (text,) in conn.execute("SELECT attempts FROM requests") for a in json.loads(text)]
    errors = [a for a in attempts if a.get("error_class")]
    assert errors and all(a["model"] == "broken-model" for a in errors)
    assert [(e["provider"], e["model"], e["error_class"], e["count"]) for e in events["attempt_errors"]] == [
        ("broken", "broken-model", errors[0]["error_class"], len(errors))
    ]

    # Refusals name what is allowed; a report needs an admin key.
    bad = admin.get("/admin/reports/usage", params={"group_by": "colour"})
    assert bad.status_code == 400
    message = bad.json()["error"]["message"]
    assert all(name in message for name in ("team", "user", "key", "feature", "model", "provider", "route", "day", "hour"))
    bad_date = admin.get("/admin/reports/latency", params={"from": "last tuesday"})
    assert bad_date.status_code == 400 and "RFC 3339" in bad_date.json()["error"]["message"]
    assert admin.get("/admin/reports/events", params={"verbose": "1"}).status_code == 400
    assert httpx.get(gw.url + "/admin/reports/usage", timeout=10).status_code == 401

    cli = report(gw, "usage", "--group-by", "colour", check=False)
    assert cli.returncode != 0
    assert "team, user, key" in cli.stderr
