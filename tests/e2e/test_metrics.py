"""GET /metrics on the real binary: a mixed run (successes, a stream, a fallback after a 500,
an upstream error, a bad request, a key's rpm limit, a made-up model name), then the scraped
counters must agree with the request records of that run in its SQLite database. Also the
switches: ``telemetry.metrics.enabled: false`` is a 404, ``require_key`` wants an admin or API
key."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections import defaultdict

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from gateway import Gateway
from governance_env import ADMIN_KEY, Admin, chat, governed_config, wait_for_fresh_minute

MIXED = """\
providers:
  demo:
    kind: mock
    mock: { text: "metric answer", chunk_words: 1 }
  broken:
    kind: mock
    mock: { failure_rate: 1.0, failure_status: 500 }
models:
  demo-model:
    provider: demo
    price: { input: 2.0, output: 8.0 }
  broken-model:
    provider: broken
routes:
  fb:
    targets: [broken-model, demo-model]
"""

HOSTILE_MODEL = 'evil"} 1\nswitchyard_pwned{x="y'


def scrape(gw: Gateway, key: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.get(gw.url + "/metrics", headers=headers, timeout=10)


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of the exposition by sample name, through the Prometheus text parser."""
    out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name].append((dict(s.labels), s.value))
    return out


def total(found: dict, name: str, **match: str) -> float:
    return sum(v for labels, v in found.get(name, []) if all(labels.get(k) == want for k, want in match.items()))


def status_class(status: int) -> str:
    return "client_closed" if status == 499 else f"{status // 100}xx"


def recorded(db_path) -> dict:
    """What the request log of the run says, in the metrics' terms."""
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT status, prompt_tokens, completion_tokens, cost_usd, attempts FROM requests").fetchall()
    classes: dict[str, int] = defaultdict(int)
    failed_attempts = 0
    for status, _, _, _, attempts in rows:
        classes[status_class(status)] += 1
        failed_attempts += sum(1 for a in json.loads(attempts or "[]") if a.get("error_class"))
    return {
        "classes": dict(classes),
        "input": sum(r[1] for r in rows),
        "output": sum(r[2] for r in rows),
        "cost": sum(r[3] for r in rows),
        "failed_attempts": failed_attempts,
        "count": len(rows),
    }


def scraped(found: dict) -> dict:
    classes: dict[str, int] = defaultdict(int)
    for labels, v in found.get("switchyard_requests_total", []):
        classes[labels["status_class"]] += int(v)
    return {
        "classes": dict(classes),
        "input": int(total(found, "switchyard_tokens_total", direction="input")),
        "output": int(total(found, "switchyard_tokens_total", direction="output")),
        "cost": total(found, "switchyard_cost_usd_total"),
        "failed_attempts": int(total(found, "switchyard_upstream_errors_total")),
        "count": sum(classes.values()),
    }


def test_metrics_agree_with_the_request_log(workdir):
    db_path = workdir / f"metrics-{uuid.uuid4().hex[:8]}.db"
    gw = Gateway(f"metrics-{uuid.uuid4().hex[:6]}", governed_config(f"sqlite://{db_path}", MIXED), workdir).start()
    try:
        admin = Admin(gw)
        key = admin.create_key(name="metrics")["key"]
        limited = admin.create_key(name="metrics-limited", limits={"rpm": 1})["key"]

        for _ in range(3):
            assert chat(gw, key).status_code == 200
        with httpx.stream(
            "POST",
            gw.url + "/v1/chat/completions",
            json={"model": "demo-model", "stream": True, "messages": [{"role": "user", "content": "stream please"}]},
            headers={"authorization": f"Bearer {key}"},
            timeout=10,
        ) as r:
            assert r.status_code == 200
            assert "[DONE]" in r.read().decode()
        fallback = chat(gw, key, model="fb")
        assert fallback.status_code == 200, fallback.text
        assert fallback.headers.get("x-switchyard-model") == "demo-model"
        failed = chat(gw, key, model="broken-model")
        assert failed.status_code >= 500, failed.text
        bad = httpx.post(
            gw.url + "/v1/chat/completions",
            json={"model": "demo-model", "messages": "not a list"},
            headers={"authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert bad.status_code == 400, bad.text
        unknown = chat(gw, key, model=HOSTILE_MODEL)
        assert 400 <= unknown.status_code < 500, unknown.text
        wait_for_fresh_minute(3)
        assert chat(gw, limited).status_code == 200
        over = chat(gw, limited)
        assert over.status_code == 429 and over.json()["error"]["code"] == "rate_limit_exceeded", over.text

        # Records reach the database and the metrics in batches (every 250 ms): poll until the
        # two agree, bounded.
        deadline = time.monotonic() + 15
        while True:
            r = scrape(gw)
            assert r.status_code == 200, r.text
            found = samples(r.text)
            want, got = recorded(db_path), scraped(found)
            if want == {**got, "cost": want["cost"]} and got["cost"] == pytest.approx(want["cost"], rel=1e-9, abs=1e-12):
                # Ten requests, the malformed one included: every request has its record.
                if want["count"] >= 10:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"/metrics never agreed with the request log:\nlog:     {want}\nmetrics: {got}")
            time.sleep(0.1)

        assert r.headers["content-type"].startswith("application/openmetrics-text")
        # The strict OpenMetrics parser accepts it too.
        assert len(list(openmetrics_families(r.text))) > 10

        assert want["classes"]["2xx"] >= 6 and want["classes"]["4xx"] >= 2 and want["classes"]["5xx"] >= 1, want
        assert want["input"] > 0 and want["output"] > 0 and want["cost"] > 0
        assert want["failed_attempts"] >= 2
        assert total(found, "switchyard_requests_total", route="fb", model="demo-model", status_class="2xx") == 1
        assert total(found, "switchyard_fallbacks_total", route="fb") >= 1
        assert total(found, "switchyard_upstream_errors_total", provider="broken", model="broken-model") >= 2
        assert total(found, "switchyard_admission_rejections_total", reason="rate_limited") == 1
        assert total(found, "switchyard_time_to_first_token_seconds_count", model="demo-model") >= 1
        duration = total(found, "switchyard_request_duration_seconds_count", provider="demo", model="demo-model")
        assert duration == total(found, "switchyard_requests_total", provider="demo", model="demo-model")
        inf = total(found, "switchyard_request_duration_seconds_bucket", model="demo-model", le="+Inf")
        assert inf == duration

        # Scrape-time gauges.
        assert total(found, "switchyard_records_dropped_total") == 0
        assert total(found, "switchyard_records_lost_total") == 0
        assert total(found, "switchyard_record_write_errors_total") == 0
        assert "switchyard_records_buffered" in found
        breakers = {labels["deployment"]: v for labels, v in found["switchyard_breaker_open"]}
        assert breakers["demo-model"] == 0 and set(breakers) >= {"demo-model", "broken-model"}
        assert {labels["deployment"] for labels, _ in found["switchyard_upstream_in_flight"]} >= {"demo-model"}
        assert total(found, "switchyard_governance_rejected_total") >= 1

        # Bounded labels: nothing the client made up, nothing per request or per key.
        assert "evil" not in r.text and "pwned" not in r.text
        allowed_models = {"demo-model", "broken-model", "none"}
        for name, rows in found.items():
            for labels, _ in rows:
                assert set(labels) <= {"endpoint", "route", "provider", "model", "status_class", "direction",
                                       "error_class", "guardrail", "action", "reason", "deployment", "le"}, (name, labels)
                if "model" in labels:
                    assert labels["model"] in allowed_models, (name, labels)
                assert labels.get("route", "none") in {"fb", "none"}, (name, labels)
    finally:
        gw.stop()


SWITCHES = """\
server:
  listen: "127.0.0.1:__PORT__"
auth:
  admin_keys: ["{admin}"]
  api_keys: ["sk-metrics-api"]
database:
  url: none
telemetry:
  metrics: {{ enabled: {enabled}, require_key: {require_key} }}
providers:
  demo:
    kind: mock
    mock: {{ text: "hi" }}
models:
  demo-model:
    provider: demo
"""


def test_metrics_require_key_and_disabled(workdir):
    guarded = Gateway(
        f"metrics-key-{uuid.uuid4().hex[:6]}", SWITCHES.format(admin=ADMIN_KEY, enabled="true", require_key="true"), workdir
    ).start()
    try:
        assert scrape(guarded).status_code == 401
        assert scrape(guarded, "sk-wrong").status_code == 401
        assert scrape(guarded, ADMIN_KEY).status_code == 200
        assert scrape(guarded, "sk-metrics-api").status_code == 200
        assert chat(guarded, "sk-metrics-api").status_code == 200
        deadline = time.monotonic() + 10
        while total(samples(scrape(guarded, ADMIN_KEY).text), "switchyard_requests_total", status_class="2xx") < 1:
            assert time.monotonic() < deadline, "the request never showed in /metrics"
            time.sleep(0.1)
    finally:
        guarded.stop()

    disabled = Gateway(
        f"metrics-off-{uuid.uuid4().hex[:6]}", SWITCHES.format(admin=ADMIN_KEY, enabled="false", require_key="false"), workdir
    ).start()
    try:
        r = scrape(disabled, ADMIN_KEY)
        assert r.status_code == 404, r.text
        assert chat(disabled, "sk-metrics-api").status_code == 200
    finally:
        disabled.stop()
